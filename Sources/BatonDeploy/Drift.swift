import BatonCore
import BatonGateway
import Foundation

/// A model version's `baseline.json` (format `baton.baseline/1`, written by `baton.log_baseline`):
/// bins of each numeric feature and of the predictions.
public struct Baseline: Sendable, Hashable {
    public var features: [String: Bins]
    public var predictions: Bins?

    public init(features: [String: Bins], predictions: Bins?) {
        self.features = features
        self.predictions = predictions
    }

    /// Reads the baseline from JSON text; a feature whose bins are malformed is left out.
    public static func parse(_ data: Data) -> Baseline? {
        guard let object = try? JSONValue.parse(data).objectValue else { return nil }
        func bins(_ value: JSONValue?) -> Bins? {
            guard let entry = value?.objectValue, case .array(let edgeValues)? = entry["edges"], case .array(let shareValues)? = entry["shares"]
            else { return nil }
            func number(_ value: JSONValue) -> Double? {
                if case .number(let number) = value { return number }
                return nil
            }
            let edges = edgeValues.compactMap(number)
            let shares = shareValues.compactMap(number)
            guard edges.count == edgeValues.count, shares.count == shareValues.count else { return nil }
            return try? Bins(edges: edges, shares: shares)
        }
        var features: [String: Bins] = [:]
        for (name, value) in object["features"]?.objectValue ?? [:] {
            if let parsed = bins(value) { features[name] = parsed }
        }
        return Baseline(features: features, predictions: bins(object["predictions"]))
    }

    /// The baseline of a version: `baseline.json` in its own files first, then at the root of
    /// its run's artifacts. Nil when neither exists or reads.
    public static func load(for version: PlacedVersion) -> Baseline? {
        for folder in [version.modelDir, version.runArtifactDir].compactMap({ $0 }) {
            let path = URL(fileURLWithPath: folder).appendingPathComponent("baseline.json").path
            if let data = FileManager.default.contents(atPath: path), let baseline = parse(data) { return baseline }
        }
        return nil
    }
}

/// PSI of one version's live sample against its baseline.
public struct VersionDrift: Sendable, Hashable {
    public struct Entry: Sendable, Hashable {
        public var psi: Double
        public var liveCount: Int
    }

    public var version: String
    public var baselineFound: Bool
    public var features: [String: Entry]
    public var prediction: Entry?

    /// Compares each feature of the baseline with the live values of the same name.
    public static func compute(version: String, baseline: Baseline?, sample: DriftSample) -> VersionDrift {
        guard let baseline else { return VersionDrift(version: version, baselineFound: false, features: [:], prediction: nil) }
        var features: [String: Entry] = [:]
        for (name, bins) in baseline.features {
            let live = (sample.fields[name] ?? []).filter(\.isFinite)
            features[name] = Entry(psi: PopulationStability.psi(baseline: bins, live: live), liveCount: live.count)
        }
        let prediction = baseline.predictions.map { bins in
            let live = sample.predictions.filter(\.isFinite)
            return Entry(psi: PopulationStability.psi(baseline: bins, live: live), liveCount: live.count)
        }
        return VersionDrift(version: version, baselineFound: true, features: features, prediction: prediction)
    }

    public var json: JSONValue {
        func entry(_ value: Entry) -> JSONValue {
            .object(["psi": .number(value.psi), "live_count": .number(Double(value.liveCount))])
        }
        var object: [String: JSONValue] = [
            "baseline": .string(baselineFound ? "found" : "missing"), "features": .object(features.mapValues(entry)),
        ]
        if let prediction { object["prediction"] = entry(prediction) }
        return .object(object)
    }
}

extension DeploymentManager {
    /// PSI per version (stable and canary) over the deployment's drift window.
    func drift(_ name: String) throws(DeploymentError) -> (windowSeconds: Double, versions: [VersionDrift]) {
        let deployment = try deployment(name)
        let windowSeconds = deployment.spec.drift?.windowSeconds ?? 3600
        var result: [VersionDrift] = []
        for placed in [deployment.state.stable, deployment.state.canary].compactMap({ $0 }) {
            let sample = router.driftSample(
                deployment: name, version: placed.version, since: .milliseconds(Int64(windowSeconds * 1000)))
            result.append(VersionDrift.compute(version: placed.version, baseline: Baseline.load(for: placed), sample: sample))
        }
        return (windowSeconds, result)
    }

    /// The document of `GET /api/v1/deployments/NAME/drift`.
    public func driftJSON(_ name: String) throws(DeploymentError) -> JSONValue {
        let maxPSI = try deployment(name).spec.drift?.maxPSI
        let (windowSeconds, versions) = try drift(name)
        var object: [String: JSONValue] = [
            "deployment": .string(name), "window_seconds": .number(windowSeconds),
            "versions": .object(Dictionary(versions.map { ($0.version, $0.json) }, uniquingKeysWith: { first, _ in first })),
        ]
        if let maxPSI { object["max_psi"] = .number(maxPSI) }
        return .object(object)
    }
}
