import BatonCore
import BatonStore
import Foundation
import Testing

@testable import BatonDeploy

@Suite struct SpecTests {
    static let good = """
        deployments:
          churn:
            owner: mlops
            description: Churn scoring
            model: models:/churn@champion
            command: python3 serve.py
            workdir: ..
            health: /healthz
            replicas: 2
            env: {LOG_LEVEL: info}
            sticky: customer_id
            rollout:
              steps:
                - {percent: 10, duration: 30m}
                - {percent: 50, duration: 1s}
              analysis:
                interval: 200ms
                min_requests: 5
                max_error_rate: 0.01
                max_error_rate_increase: 0.005
                max_p99_latency_ms: 250
                max_p99_latency_ratio: 1.5
                metrics:
                  - {name: churn.accuracy, min: 0.6}
            slo: {max_error_rate: 0.02, max_p99_latency_ms: 300, window: 5m}
            drift: {max_psi: 0.2, window: 1h}
            alerts: {webhook: "http://127.0.0.1:9000/hook"}
        """

    @Test func aFullDeploymentParses() throws {
        #expect(DeploymentParser.isDefinitionFile(Self.good))
        #expect(!DeploymentParser.isDefinitionFile("tasks:\n  a: {command: x}\ndeployments: {}\n"))
        let outcome = DeploymentParser.parse(Self.good, file: "p/deploy.yaml", directory: "/srv/pipelines")
        #expect(outcome.issues.isEmpty, "\(outcome.issues)")
        let spec = try #require(outcome.deployments.first)
        #expect(spec.name == "churn" && spec.owner == "mlops" && spec.model == "models:/churn@champion")
        #expect(spec.workdir == "/srv" && spec.health == "/healthz" && spec.replicas == 2 && spec.env == ["LOG_LEVEL": "info"])
        #expect(spec.rollout.steps == [RolloutStep(percent: 10, durationSeconds: 1800), RolloutStep(percent: 50, durationSeconds: 1)])
        #expect(spec.rollout.analysis.intervalSeconds == 0.2 && spec.rollout.analysis.minRequests == 5)
        #expect(spec.rollout.analysis.maxP99LatencyRatio == 1.5 && spec.rollout.analysis.metrics == [MetricThreshold(name: "churn.accuracy", min: 0.6)])
        #expect(spec.slo?.windowSeconds == 300 && spec.drift?.maxPSI == 0.2 && spec.alertWebhook == "http://127.0.0.1:9000/hook")
        #expect(spec.line == 2)
    }

    @Test func badSpecsGetErrorsWithLineFieldValueAndFix() throws {
        let text = """
            deployments:
              churn:
                model: churn@champion
                comand: python3 serve.py
                replicas: 0
                rollout:
                  steps:
                    - {percent: 50, duration: 10 parsecs}
                    - {percent: 20, duration: 1m}
                  analysis: {max_error_rate: 2}
            """
        let outcome = DeploymentParser.parse(text, file: "deploy.yaml", directory: "/tmp")
        #expect(outcome.deployments.isEmpty)
        func issue(_ field: String) -> ValidationIssue? { outcome.issues.first { $0.field == field } }
        let model = try #require(issue("deployments.churn.model"))
        #expect(model.line == 3 && model.value == "churn@champion" && model.fix?.contains("models:/NAME@ALIAS") == true)
        let unknown = try #require(issue("deployments.churn.comand"))
        #expect(unknown.line == 4 && unknown.fix?.contains("command") == true, "did-you-mean: \(unknown)")
        #expect(issue("deployments.churn.replicas")?.value == "0")
        #expect(issue("deployments.churn.rollout.steps.0.duration")?.value == "10 parsecs")
        #expect(issue("deployments.churn.rollout.steps.1.percent")?.message.contains("raise") == true)
        #expect(issue("deployments.churn.rollout.analysis.max_error_rate")?.fix != nil)
        #expect(issue("deployments.churn.command")?.message.contains("needs `command`") == true)
        #expect(outcome.issues.allSatisfy { $0.file == "deploy.yaml" && $0.fix != nil })
    }

    @Test func yamlSyntaxErrorsNameTheirLine() {
        let outcome = DeploymentParser.parse("deployments:\n  churn: {model: [\n", file: "d.yaml", directory: "/tmp")
        #expect(outcome.issues.count == 1 && outcome.issues[0].line > 0)
    }

    @Test func jsonBodiesUseTheSameChecks() throws {
        let spec = try DeploymentParser.parseJSON(
            #"{"model": "models:/churn/3", "command": "python3 serve.py", "rollout": {"steps": [{"percent": 10, "duration": "1s"}]}}"#,
            name: "churn"
        ).get()
        #expect(spec.name == "churn" && spec.rollout.steps.count == 1 && spec.sourceFile == nil)
        guard case .failure(.invalidSpec(let issues)) = DeploymentParser.parseJSON(#"{"model": "models:/churn/x", "command": "c"}"#, name: "churn")
        else {
            Issue.record("a bad model reference must fail")
            return
        }
        #expect(issues.first?.field == "deployments.churn.model")
    }

    @Test func modelReferences() {
        #expect(ModelReference(parsing: "models:/churn@champion") == .alias(model: "churn", alias: "champion"))
        #expect(ModelReference(parsing: "models:/churn/3") == .version(model: "churn", version: 3))
        #expect(ModelReference(parsing: "models:/churn/0") == nil)
        #expect(ModelReference(parsing: "runs:/abc/model") == nil)
    }

    @Test func theAnalysisComparesCanaryWithStable() {
        let spec = AnalysisSpec(
            intervalSeconds: 1, minRequests: 10, maxErrorRate: 0.05, maxErrorRateIncrease: 0.01, maxP99LatencyMs: 100,
            maxP99LatencyRatio: 2, metrics: [MetricThreshold(name: "acc", min: 0.6)])
        let stable = VersionStatsSnapshotFixture.make(requests: 100, errors: 0, p99: 10)
        let now = Date()
        let waiting = CanaryAnalysis.analyze(spec, canary: VersionStatsSnapshotFixture.make(requests: 3, errors: 3, p99: 10), stable: stable, metrics: [0.7], at: now)
        #expect(waiting.verdict == .waiting, "three requests decide nothing")
        let failed = CanaryAnalysis.analyze(spec, canary: VersionStatsSnapshotFixture.make(requests: 20, errors: 4, p99: 10), stable: stable, metrics: [0.7], at: now)
        #expect(failed.verdict == .failed && failed.failedCheck?.name == "error_rate" && failed.failedCheck?.canary == 0.2)
        #expect(failed.failedCheck?.sentence.contains("0.05") == true)
        let slow = CanaryAnalysis.analyze(spec, canary: VersionStatsSnapshotFixture.make(requests: 20, errors: 0, p99: 30), stable: stable, metrics: [0.7], at: now)
        #expect(slow.failedCheck?.name == "p99_latency_ratio" && slow.failedCheck?.stable == 10)
        let badMetric = CanaryAnalysis.analyze(spec, canary: VersionStatsSnapshotFixture.make(requests: 20, errors: 0, p99: 10), stable: stable, metrics: [0.5], at: now)
        #expect(badMetric.failedCheck?.name == "acc (min)")
        let noMetric = CanaryAnalysis.analyze(spec, canary: VersionStatsSnapshotFixture.make(requests: 20, errors: 0, p99: 10), stable: stable, metrics: [nil], at: now)
        #expect(noMetric.verdict == .waiting)
        let good = CanaryAnalysis.analyze(spec, canary: VersionStatsSnapshotFixture.make(requests: 20, errors: 0, p99: 12), stable: stable, metrics: [0.7], at: now)
        #expect(good.verdict == .passed)
    }
}

@Suite struct ABSummaryTests {
    /// The moments of a list of values, as the store computes them.
    static func moments(_ values: [Double]) -> MetricMoments {
        MetricMoments(
            count: values.count, sum: values.reduce(0, +), sumOfSquares: values.reduce(0) { $0 + $1 * $1 },
            nonBinary: values.filter { $0 != 0 && $0 != 1 }.count)
    }

    static func number(_ value: JSONValue?) -> Double? {
        if case .number(let number)? = value { return number }
        return nil
    }

    @Test func proportionsAndMeansGetIntervalsAndOnlyAClearDifferenceNamesAWinner() throws {
        // 30 % against 60 % converted over 200 each: the difference is about six standard errors.
        let stable = (0..<200).map { $0 < 60 ? 1.0 : 0.0 }
        let candidate = (0..<200).map { $0 < 120 ? 1.0 : 0.0 }
        let converted = DeploymentManager.compare(metric: "converted", stable: ("1", Self.moments(stable)), candidate: ("2", Self.moments(candidate)))
        #expect(converted["kind"] == .string("proportion"))
        #expect(converted["variants"]?["1"]?["mean"] == .number(0.3))
        #expect(converted["variants"]?["2"]?["count"] == .number(200))
        let low = try #require(Self.number(converted["difference"]?["low"]))
        let high = try #require(Self.number(converted["difference"]?["high"]))
        #expect(low > 0.2 && low < 0.3 && high > 0.3 && high < 0.4, "\(low)...\(high)")
        #expect(converted["significant"] == .bool(true))
        #expect(converted["higher"] == .string("2"))
        // Wilson's interval stays inside 0...1.
        #expect((Self.number(converted["variants"]?["1"]?["low"]) ?? -1) >= 0)

        // Two means a little apart with much noise: an interval around 0, no winner.
        let noisyA = (0..<50).map { Double($0 % 10) * 10 }
        let noisyB = (0..<50).map { Double($0 % 10) * 10 + 1 }
        let revenue = DeploymentManager.compare(metric: "revenue", stable: ("1", Self.moments(noisyA)), candidate: ("2", Self.moments(noisyB)))
        #expect(revenue["kind"] == .string("mean"))
        #expect(revenue["difference"]?["value"] == .number(1))
        #expect(revenue["significant"] == .bool(false))
        #expect(revenue["higher"] == .null)

        // One side without reports is never a winner.
        let lonely = DeploymentManager.compare(metric: "x", stable: ("1", Self.moments([])), candidate: ("2", Self.moments([5, 6, 7])))
        #expect(lonely["significant"] == .bool(false))
        #expect(lonely["variants"]?["1"]?["count"] == .number(0))
    }
}
