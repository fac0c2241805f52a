import BatonCore
import BatonGateway
import Foundation

/// What the manager needs of the gateway: where to send traffic, and per-version figures.
public protocol TrafficRouting: Sendable {
    func setPolicy(_ policy: TrafficPolicy?, deployment: String)
    func stats(deployment: String, since: Date) -> [String: VersionStatsSnapshot]
    func stats(deployment: String) -> [String: VersionStatsSnapshot]
    func resetStats(deployment: String, version: String)
    /// The sampled numeric inputs and predictions of a version over the last `since`.
    func driftSample(deployment: String, version: String, since: Duration) -> DriftSample
    /// Requests a replica is answering now; a draining replica stops once it has none. Nil:
    /// the router does not count, and a drain waits its full time.
    func requestsInFlight(replicaID: String) -> Int?
}

/// Live values of one version, sampled by the gateway for drift.
public struct DriftSample: Sendable, Hashable {
    public var fields: [String: [Double]]
    public var predictions: [Double]

    public init(fields: [String: [Double]] = [:], predictions: [Double] = []) {
        self.fields = fields
        self.predictions = predictions
    }
}

extension TrafficRouting {
    /// A router that keeps no samples has nothing to compare with a baseline.
    public func driftSample(deployment: String, version: String, since: Duration) -> DriftSample { DriftSample() }
    public func requestsInFlight(replicaID: String) -> Int? { nil }
}

extension Gateway: TrafficRouting {
    public func requestsInFlight(replicaID: String) -> Int? { inFlight(replicaID: replicaID) }

    /// The gateway keeps a window back from now; analysis asks from a moment (its step's start).
    public func stats(deployment: String, since: Date) -> [String: VersionStatsSnapshot] {
        stats(deployment: deployment, since: .milliseconds(Int64(max(0, Date().timeIntervalSince(since)) * 1000)))
    }

    public func driftSample(deployment: String, version: String, since: Duration) -> DriftSample {
        let window = driftWindow(deployment: deployment, version: version, since: since)
        return DriftSample(fields: window.fields, predictions: window.predictions)
    }
}

/// One comparison of a canary with its threshold (and with stable, for relative checks).
public struct AnalysisCheck: Sendable, Hashable {
    public var name: String
    public var canary: Double?
    public var stable: Double?
    public var threshold: Double
    /// Nil while there is not enough data to decide.
    public var passed: Bool?

    public var json: JSONValue {
        .object([
            "check": .string(name), "canary": canary.map(JSONValue.number) ?? .null, "stable": stable.map(JSONValue.number) ?? .null,
            "threshold": .number(threshold), "passed": passed.map(JSONValue.bool) ?? .null,
        ])
    }

    /// A sentence for the audit trail: which check failed, with both values.
    public var sentence: String {
        let canaryText = canary.map { Self.format($0) } ?? "n/a"
        let stableText = stable.map { " (stable \(Self.format($0)))" } ?? ""
        let bound = name.hasSuffix("(min)") ? "is under the minimum" : "is over the limit"
        return "\(name) \(canaryText)\(stableText) \(bound) \(Self.format(threshold))"
    }

    static func format(_ value: Double) -> String { String(format: "%.4g", value) }
}

public enum AnalysisVerdict: String, Sendable, Hashable {
    /// Every check is green with enough requests.
    case passed
    case failed
    /// Not enough requests (or metric points) yet to decide.
    case waiting
}

public struct AnalysisResult: Sendable, Hashable {
    public var verdict: AnalysisVerdict
    public var checks: [AnalysisCheck]
    public var at: Date
    public var canaryRequests: Int
    public var stableRequests: Int

    public var failedCheck: AnalysisCheck? { checks.first { $0.passed == false } }

    public var json: JSONValue {
        .object([
            "verdict": .string(verdict.rawValue), "checks": .array(checks.map(\.json)), "at": .string(at.formatted(.iso8601)),
            "canary_requests": .number(Double(canaryRequests)), "stable_requests": .number(Double(stableRequests)),
        ])
    }
}

/// The canary analysis, a pure function of the figures so it is tested without processes.
public enum CanaryAnalysis {
    /// `metrics` holds, per configured metric check in order, the canary's mean over the window
    /// (nil when no point was recorded).
    public static func analyze(
        _ spec: AnalysisSpec, canary: VersionStatsSnapshot?, stable: VersionStatsSnapshot?, metrics: [Double?], at: Date
    ) -> AnalysisResult {
        let canaryRequests = canary?.requests ?? 0
        let stableRequests = stable?.requests ?? 0
        let minimum = max(1, spec.minRequests)
        let canaryEnough = canaryRequests >= minimum
        let stableEnough = stableRequests >= minimum
        var checks: [AnalysisCheck] = []
        func check(_ name: String, _ canaryValue: Double?, _ stableValue: Double?, _ threshold: Double?, decided: Bool, _ value: Double?) {
            guard let threshold else { return }
            let passed: Bool? = decided ? (value.map { $0 <= threshold } ?? true) : nil
            checks.append(AnalysisCheck(name: name, canary: canaryValue, stable: stableValue, threshold: threshold, passed: passed))
        }
        check("error_rate", canary?.errorRate, stable?.errorRate, spec.maxErrorRate, decided: canaryEnough, canary?.errorRate)
        if let canary, let stable {
            check(
                "error_rate_increase", canary.errorRate, stable.errorRate, spec.maxErrorRateIncrease,
                decided: canaryEnough && stableEnough, canary.errorRate - stable.errorRate)
        } else {
            check("error_rate_increase", canary?.errorRate, stable?.errorRate, spec.maxErrorRateIncrease, decided: false, nil)
        }
        check("p99_latency_ms", canary?.p99Ms, stable?.p99Ms, spec.maxP99LatencyMs, decided: canaryEnough, canary?.p99Ms)
        let ratio: Double? = {
            guard let canary, let stable, stable.p99Ms > 0 else { return nil }
            return canary.p99Ms / stable.p99Ms
        }()
        check(
            "p99_latency_ratio", canary?.p99Ms, stable?.p99Ms, spec.maxP99LatencyRatio,
            decided: canaryEnough && stableEnough && ratio != nil, ratio)
        var metricsWaiting = false
        for (index, threshold) in spec.metrics.enumerated() {
            let value = index < metrics.count ? metrics[index] : nil
            if let minimum = threshold.min {
                let passed = value.map { $0 >= minimum }
                if passed == nil { metricsWaiting = true }
                checks.append(AnalysisCheck(name: "\(threshold.name) (min)", canary: value, stable: nil, threshold: minimum, passed: passed))
            }
            if let maximum = threshold.max {
                let passed = value.map { $0 <= maximum }
                if passed == nil { metricsWaiting = true }
                checks.append(AnalysisCheck(name: "\(threshold.name) (max)", canary: value, stable: nil, threshold: maximum, passed: passed))
            }
        }
        let verdict: AnalysisVerdict
        if checks.contains(where: { $0.passed == false }) {
            verdict = .failed
        } else if !canaryEnough || metricsWaiting {
            verdict = .waiting
        } else {
            verdict = .passed
        }
        return AnalysisResult(verdict: verdict, checks: checks, at: at, canaryRequests: canaryRequests, stableRequests: stableRequests)
    }
}
