import Foundation

/// One deployment as declared: what to run, how to check it and how to roll out a new version.
public struct DeploymentSpec: Sendable, Hashable, Codable {
    public var name: String
    public var owner: String?
    public var description: String?
    /// `models:/NAME@ALIAS` or `models:/NAME/VERSION`.
    public var model: String
    /// Run with `/bin/sh -c` in `workdir`; everything else reaches it through the environment.
    public var command: String
    /// Absolute once loaded (relative paths are resolved against the declaring file's folder).
    public var workdir: String?
    public var health: String
    public var replicas: Int
    public var env: [String: String]
    public var sticky: String?
    public var rollout: RolloutSpec
    public var slo: SLOSpec?
    public var drift: DriftSpec?
    public var alertWebhook: String?
    /// The declaring file (nil for one put through the API) and the line of its name.
    public var sourceFile: String?
    public var line: Int

    public init(
        name: String, owner: String? = nil, description: String? = nil, model: String, command: String, workdir: String? = nil,
        health: String = "/health", replicas: Int = 1, env: [String: String] = [:], sticky: String? = nil,
        rollout: RolloutSpec = RolloutSpec(), slo: SLOSpec? = nil, drift: DriftSpec? = nil, alertWebhook: String? = nil,
        sourceFile: String? = nil, line: Int = 0
    ) {
        self.name = name
        self.owner = owner
        self.description = description
        self.model = model
        self.command = command
        self.workdir = workdir
        self.health = health
        self.replicas = replicas
        self.env = env
        self.sticky = sticky
        self.rollout = rollout
        self.slo = slo
        self.drift = drift
        self.alertWebhook = alertWebhook
        self.sourceFile = sourceFile
        self.line = line
    }

    /// Whether a change from `other` needs the replicas restarted (rollout and SLO settings do not).
    public func runsDifferently(from other: DeploymentSpec) -> Bool {
        command != other.command || workdir != other.workdir || health != other.health || env != other.env
    }
}

public struct RolloutStep: Sendable, Hashable, Codable {
    public var percent: Double
    public var durationSeconds: Double

    public init(percent: Double, durationSeconds: Double) {
        self.percent = percent
        self.durationSeconds = durationSeconds
    }
}

public struct RolloutSpec: Sendable, Hashable, Codable {
    public var steps: [RolloutStep]
    public var analysis: AnalysisSpec

    public init(steps: [RolloutStep] = [], analysis: AnalysisSpec = AnalysisSpec()) {
        self.steps = steps
        self.analysis = analysis
    }
}

/// A bound on a metric from the metrics API, tagged `deployment` and `version`.
public struct MetricThreshold: Sendable, Hashable, Codable {
    public var name: String
    public var min: Double?
    public var max: Double?

    public init(name: String, min: Double? = nil, max: Double? = nil) {
        self.name = name
        self.min = min
        self.max = max
    }
}

/// How a canary is compared with stable; a nil threshold is not checked.
public struct AnalysisSpec: Sendable, Hashable, Codable {
    public var intervalSeconds: Double
    public var minRequests: Int
    public var maxErrorRate: Double?
    public var maxErrorRateIncrease: Double?
    public var maxP99LatencyMs: Double?
    public var maxP99LatencyRatio: Double?
    public var metrics: [MetricThreshold]

    public init(
        intervalSeconds: Double = 60, minRequests: Int = 50, maxErrorRate: Double? = 0.01, maxErrorRateIncrease: Double? = nil,
        maxP99LatencyMs: Double? = nil, maxP99LatencyRatio: Double? = nil, metrics: [MetricThreshold] = []
    ) {
        self.intervalSeconds = intervalSeconds
        self.minRequests = minRequests
        self.maxErrorRate = maxErrorRate
        self.maxErrorRateIncrease = maxErrorRateIncrease
        self.maxP99LatencyMs = maxP99LatencyMs
        self.maxP99LatencyRatio = maxP99LatencyRatio
        self.metrics = metrics
    }
}

public struct SLOSpec: Sendable, Hashable, Codable {
    public var maxErrorRate: Double?
    public var maxP99LatencyMs: Double?
    public var windowSeconds: Double

    public init(maxErrorRate: Double? = nil, maxP99LatencyMs: Double? = nil, windowSeconds: Double = 300) {
        self.maxErrorRate = maxErrorRate
        self.maxP99LatencyMs = maxP99LatencyMs
        self.windowSeconds = windowSeconds
    }
}

public struct DriftSpec: Sendable, Hashable, Codable {
    public var maxPSI: Double?
    public var windowSeconds: Double

    public init(maxPSI: Double? = nil, windowSeconds: Double = 3600) {
        self.maxPSI = maxPSI
        self.windowSeconds = windowSeconds
    }
}

/// A parsed `models:/...` reference.
public enum ModelReference: Sendable, Hashable, CustomStringConvertible {
    case alias(model: String, alias: String)
    case version(model: String, version: Int)

    /// Nil when the text is neither `models:/NAME@ALIAS` nor `models:/NAME/VERSION`.
    public init?(parsing text: String) {
        guard text.hasPrefix("models:/") else { return nil }
        let rest = String(text.dropFirst("models:/".count))
        if let at = rest.firstIndex(of: "@") {
            let model = String(rest[..<at])
            let alias = String(rest[rest.index(after: at)...])
            guard !model.isEmpty, !alias.isEmpty, !model.contains("/"), !alias.contains("/") else { return nil }
            self = .alias(model: model, alias: alias)
            return
        }
        let parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, let version = Int(parts[1]), version > 0 else { return nil }
        self = .version(model: String(parts[0]), version: version)
    }

    public var model: String {
        switch self {
        case .alias(let model, _), .version(let model, _): return model
        }
    }

    public var description: String {
        switch self {
        case .alias(let model, let alias): return "models:/\(model)@\(alias)"
        case .version(let model, let version): return "models:/\(model)/\(version)"
        }
    }
}
