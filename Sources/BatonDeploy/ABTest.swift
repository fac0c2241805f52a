import BatonCore
import BatonGateway
import BatonStore
import Foundation

extension ABTestRecord {
    var json: JSONValue {
        .object([
            "stable": .string(stable), "candidate": .string(candidate), "percent": .number(percent),
            "started_at": .string(startedAt.formatted(.iso8601)),
            "ended_at": endedAt.map { .string($0.formatted(.iso8601)) } ?? .null,
            "state": .string(endedAt == nil ? "running" : "ended"),
        ])
    }
}

extension DesiredState {
    /// Closes the running A/B test, if any, when its rollout ends.
    mutating func endABTest(at date: Date) {
        if abTest != nil, abTest?.endedAt == nil { abTest?.endedAt = date }
    }
}

extension DeploymentManager {
    /// The summary of the deployment's latest A/B test: for every metric reported for either
    /// variant during the test (feedback, or points with `deployment` and `version` tags from
    /// the metrics API), each variant's count, mean and 95 % interval, and the candidate's
    /// difference from stable with its interval. A metric whose values are all 0 or 1 is a
    /// proportion (Wilson intervals); others are means (Welch's difference). The store sums the
    /// points, so a test with millions of reports costs the same to summarise as a small one.
    public func abSummary(_ name: String) async throws -> JSONValue {
        let deployment = try deployment(name)
        guard let test = deployment.state.abTest else {
            throw DeploymentError.conflict(
                "deployment \(name) has had no A/B test",
                fix: "start one: baton deploy ab \(name) --model models:/MODEL/VERSION --percent 50")
        }
        let end = (test.endedAt ?? clock()).addingTimeInterval(0.001)
        let variants = [test.stable, test.candidate]
        let series = try await store.metricSeries(name: nil).filter { series in
            series.tags["deployment"] == name && variants.contains(series.tags["version"] ?? "")
        }
        var metrics: [JSONValue] = []
        for metric in Set(series.map(\.name)).sorted() {
            var moments: [String: MetricMoments] = [:]
            for version in variants {
                moments[version] = try await store.metricMoments(
                    name: metric, tags: ["deployment": name, "version": version], from: test.startedAt, to: end)
            }
            let stable = moments[test.stable] ?? MetricMoments()
            let candidate = moments[test.candidate] ?? MetricMoments()
            guard stable.count + candidate.count > 0 else { continue }
            metrics.append(Self.compare(metric: metric, stable: (test.stable, stable), candidate: (test.candidate, candidate)))
        }
        var summary = test.json.objectValue ?? [:]
        summary["deployment"] = .string(name)
        summary["metrics"] = .array(metrics)
        return .object(summary)
    }

    static func compare(
        metric: String, stable: (version: String, moments: MetricMoments), candidate: (version: String, moments: MetricMoments)
    ) -> JSONValue {
        let isProportion = stable.moments.nonBinary == 0 && candidate.moments.nonBinary == 0
        // For a 0/1 metric the sum is the number of successes.
        let successes = (stable: Int(stable.moments.sum.rounded()), candidate: Int(candidate.moments.sum.rounded()))
        let a: MeanEstimate
        let b: MeanEstimate
        let difference: DifferenceEstimate
        if isProportion {
            a = ABStatistics.proportion(successes: successes.stable, trials: stable.moments.count)
            b = ABStatistics.proportion(successes: successes.candidate, trials: candidate.moments.count)
            difference = ABStatistics.proportionDifference(
                successesA: successes.stable, trialsA: stable.moments.count,
                successesB: successes.candidate, trialsB: candidate.moments.count)
        } else {
            a = ABStatistics.mean(count: stable.moments.count, sum: stable.moments.sum, sumOfSquares: stable.moments.sumOfSquares)
            b = ABStatistics.mean(
                count: candidate.moments.count, sum: candidate.moments.sum, sumOfSquares: candidate.moments.sumOfSquares)
            difference = ABStatistics.difference(a, b)
        }
        // Only a difference whose interval leaves out 0, measured on both sides, names a winner.
        let measured = a.count >= 2 && b.count >= 2
        let significant = measured && (difference.low > 0 || difference.high < 0)
        func variant(_ estimate: MeanEstimate) -> JSONValue {
            .object([
                "count": .number(Double(estimate.count)), "mean": .number(rounded(estimate.mean)),
                "low": .number(rounded(estimate.low)), "high": .number(rounded(estimate.high)),
            ])
        }
        return .object([
            "name": .string(metric), "kind": .string(isProportion ? "proportion" : "mean"),
            "variants": .object([stable.version: variant(a), candidate.version: variant(b)]),
            "difference": .object([
                "value": .number(rounded(difference.difference)), "low": .number(rounded(difference.low)),
                "high": .number(rounded(difference.high)),
                "relative": a.mean != 0 ? .number(rounded(difference.difference / abs(a.mean))) : .null,
            ]),
            "significant": .bool(significant),
            "higher": significant ? .string(difference.low > 0 ? candidate.version : stable.version) : .null,
        ])
    }

    private static func rounded(_ value: Double) -> Double {
        guard value.isFinite else { return 0 }
        return (value * 1_000_000).rounded() / 1_000_000
    }
}

extension DeploymentManager {
    /// The versions a deployment serves or compared in its latest A/B test; nil for an unknown
    /// deployment. Feedback that names its version must name one of these.
    public func knownVersions(_ name: String) -> Set<String>? {
        guard let state = try? deployment(name).state else { return nil }
        var versions = Set([state.stable?.version, state.canary?.version].compactMap { $0 })
        if let test = state.abTest { versions.formUnion([test.stable, test.candidate]) }
        return versions
    }
}
