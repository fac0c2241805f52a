import Foundation
import Testing

/// The bundled examples are what newcomers run first: on a fresh start every one of them, YAML
/// and Python, must succeed within about a minute (the later pipelines wait for the datasets
/// they require, and the data pipelines' events start the triggered trainings), the hand-offs
/// must be visible as events and metrics, and the deployment pipelines' rollback branches must
/// work.
@Suite struct ExamplesCLITests {
    static let yamlPipelines: Set<String> = [
        "customer_data_pipeline", "feature_pipeline", "model_training_flow", "model_deployment_pipeline",
        "training_triggered_by_data_update",
    ]
    /// The same pipelines written with the Python SDK (examples/pipelines/*_py.py).
    static let pythonPipelines = Set(yamlPipelines.map { $0 + "_py" })
    static let pipelines = yamlPipelines.union(pythonPipelines)

    /// Copies `examples/` into the sandbox, so the scripts write their `var/` there. Not its
    /// `var/`, nor the Swift example package, whose `.build` may hold a gigabyte.
    func copyExamples(into sandbox: Sandbox) throws -> String {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let source = repository.path + "/examples"
        let target = sandbox.root + "/examples"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        for entry in try FileManager.default.contentsOfDirectory(atPath: source) where !["var", "swift-dsl"].contains(entry) {
            try FileManager.default.copyItem(atPath: source + "/" + entry, toPath: target + "/" + entry)
        }
        return target
    }

    /// `baton ARGS --db DB --json`, decoded as JSON (for commands the sandbox adds no --db to).
    func json(_ sandbox: Sandbox, _ args: [String]) async throws -> Any {
        let result = try await sandbox.baton(args + ["--db", sandbox.db, "--json"])
        guard result.exitCode == 0 else { throw TestFailure("\(result)") }
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8))
    }

    @Test func everyExamplePipelineSucceedsOnAFreshStart() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let examples = try copyExamples(into: sandbox)
        let validation = try await sandbox.baton("validate", examples + "/pipelines")
        #expect(validation.exitCode == 0, "\(validation)")
        #expect(validation.stdout.contains("10 pipelines valid, 2 deployments valid, 0 errors"), "\(validation)")
        _ = try await sandbox.startUpAndWait(["--pipelines", examples + "/pipelines", "--slots", "2", "--pool", "warehouse=1"])

        // Eight scheduled runs plus the two started by the data pipelines' events. (An hour
        // boundary passed during the test may add more; every first run must still succeed.)
        let runs = try await sandbox.waitForRuns(count: 10, timeout: .seconds(150))
        #expect(Set(runs.map(\.pipeline)) == Self.pipelines, "\(runs.map(\.summary))")
        for pipeline in Self.pipelines {
            guard let first = runs.filter({ $0.pipeline == pipeline }).min(by: { $0.id < $1.id }) else { continue }
            #expect(first.state == "success", "\(first.summary)")
        }

        // The event-triggered training saw the event's payload.
        let triggered = try #require(runs.filter { $0.pipeline == "training_triggered_by_data_update" }.min { $0.id < $1.id })
        #expect(triggered.trigger == "event", "\(triggered.summary)")
        let log = try await sandbox.logs(triggered.id, "get_training_data")
        #expect(log.contains("New data available: 400 records"), "\(log)")
        let pythonTriggered = try #require(
            runs.filter { $0.pipeline == "training_triggered_by_data_update_py" }.min { $0.id < $1.id })
        #expect(pythonTriggered.trigger == "event", "\(pythonTriggered.summary)")
        let pythonLog = try await sandbox.logs(pythonTriggered.id, "train_model")
        #expect(pythonLog.contains("run started by data.customers_py.updated"), "\(pythonLog)")
        #expect(pythonLog.contains("with 400 records"), "\(pythonLog)")

        // The hand-offs are events: Baton's dataset updates and the pipeline's own event.
        let events = try await json(sandbox, ["events", "list", "--limit", "100"]) as? [[String: Any]] ?? []
        let names = Set(events.compactMap { $0["name"] as? String })
        #expect(
            names.isSuperset(of: [
                "data.customers.updated", "dataset.clean_customers.updated", "dataset.customer_features.updated",
                "data.customers_py.updated", "dataset.clean_customers_py.updated",
                "dataset.customer_features_py.updated",
            ]), "\(names)")
        let published = try #require(events.first { $0["name"] as? String == "data.customers.updated" })
        let id = try #require(published["id"] as? String)
        #expect(id.hasPrefix("customers-"), "\(published)")
        #expect(((published["payload"] as? [String: Any])?["record_count"] as? NSNumber)?.intValue == 400, "\(published)")

        // The event id is per interval: publishing it again starts nothing.
        let again = try await sandbox.baton(
            "events", "publish", "data.customers.updated", "--data", #"{"record_count": 1}"#, "--id", id, "--db", sandbox.db)
        #expect(again.exitCode == 0 && again.stdout.contains("already published"), "\(again)")

        // Shared monitoring: the task's pipeline.duration (tags pipeline and owner) next to Baton's
        // own (which adds state).
        let series = try await json(sandbox, ["metrics", "list", "pipeline.duration"]) as? [[String: Any]] ?? []
        let tagSets = series.compactMap { $0["tags"] as? [String: String] }
        #expect(tagSets.contains(["pipeline": "customer_data_pipeline", "owner": "data_engineering"]), "\(tagSets)")
        #expect(
            tagSets.contains(["pipeline": "customer_data_pipeline", "owner": "data_engineering", "state": "success"]),
            "\(tagSets)")
        // The Python versions report through the SDK's emit_metric.
        #expect(tagSets.contains(["pipeline": "customer_data_pipeline_py", "owner": "data_engineering"]), "\(tagSets)")
        #expect(tagSets.contains(["pipeline": "feature_pipeline_py", "owner": "ml_engineering"]), "\(tagSets)")

        let (rollback, result) = try await sandbox.triggerAndWait(
            "model_deployment_pipeline", params: ["force_rollback=true"], timeout: .seconds(90))
        #expect(result.exitCode == 0, "\(result)")
        #expect(rollback.task("rollback")?.state == "success", "\(rollback.summary)")
        #expect(rollback.task("deploy_full")?.state == "skipped", "\(rollback.summary)")

        // The Python version's `if validate_metrics(metrics): ... else: rollback()`.
        let (pythonRollback, pythonResult) = try await sandbox.triggerAndWait(
            "model_deployment_pipeline_py", params: ["force_rollback=true"], timeout: .seconds(90))
        #expect(pythonResult.exitCode == 0, "\(pythonResult)")
        #expect(pythonRollback.task("rollback")?.state == "success", "\(pythonRollback.summary)")
        #expect(pythonRollback.task("deploy_full")?.state == "skipped", "\(pythonRollback.summary)")
    }

    /// The lecture's DataSLAViolation: training on clean_customers before Data Engineering has
    /// ever loaded it fails before its script runs, naming the dataset and its owner.
    @Test func triggeredTrainingRefusesDataThatWasNeverLoaded() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let examples = try copyExamples(into: sandbox)
        // No `baton up`: the CLI runs the pipeline itself.
        let result = try await sandbox.baton(
            ["trigger", "training_triggered_by_data_update", "--wait", "--json", "--pipelines", examples + "/pipelines"],
            timeout: .seconds(60))
        let run = try RunInfo.decoder.decode(RunInfo.self, from: Data(result.stdout.utf8))
        #expect(result.exitCode != 0, "\(result)")
        #expect(run.state == "failed", "\(run.summary)")
        let task = try #require(run.task("get_training_data"))
        #expect(task.state == "failed", "\(run.summary)")
        #expect(
            task.reason == "DataSLAViolation: dataset clean_customers has never been updated (owner data_engineering)",
            "\(run.summary)")
        #expect(run.task("train_model")?.state == "upstream_failed", "\(run.summary)")
    }
}
