import Foundation
import Testing

/// The registry hand-off through the real binary: a task logs an experiment run and registers a
/// model through its own `MLFLOW_TRACKING_URI` (so both are linked to its pipeline run),
/// `baton models approve` approves it, and a pipeline reads the approved version through
/// `{{ models.NAME.ALIAS.FIELD }}` when its task starts.
@Suite struct ModelsCLITests {
    /// Creates an experiment run and a model version with nothing but urllib, as any HTTP client
    /// inside a task could, through the URL Baton gives the task.
    static let trainer = """
        import json, os, urllib.request
        base = os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/"
        def call(path, body):
            request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read() or b"{}")
        run = call("runs/create", {"experiment_id": "0", "run_name": "fit"})["run"]["info"]["run_id"]
        call("runs/log-metric", {"run_id": run, "key": "f1", "value": 0.81, "timestamp": 1, "step": 0})
        try:
            call("registered-models/create", {"name": "churn"})
        except urllib.error.HTTPError:
            pass
        version = call("model-versions/create", {"name": "churn", "source": "runs:/" + run + "/model", "run_id": run})
        print("registered", version["model_version"]["version"], "from", run)
        """

    @Test func aTaskRegistersAModelAndAnotherDeploysTheApprovedVersion() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.write("pipelines/trainer.py", Self.trainer)
        try sandbox.writePipeline(
            "train",
            """
            name: train
            tasks:
              fit:
                run: python3 trainer.py
            """)
        try sandbox.writePipeline(
            "deploy",
            """
            name: deploy
            tasks:
              ship:
                run: echo deploying v{{ models.churn.champion.version }} of {{ models.churn.champion.model }} from {{ models.churn.champion.run_id }}
            """)
        let server = try await sandbox.startUpAndWait(["--slots", "2"])
        _ = try await RemoteWorkerCLITests.url(of: server)

        let train = try await sandbox.trigger("train")
        let trained = try await sandbox.waitForRuns([train])
        #expect(trained.first?.state == "success", "\(trained.map(\.summary))")
        let log = try await sandbox.logs(train, "fit")
        let runID = try #require(log.firstMatch(of: /registered 1 from ([0-9a-f]{32})/).map { String($0.1) }, "\(log)")

        // Nothing approved yet: the deploy task cannot start and says how to fix it.
        let early = try await sandbox.trigger("deploy")
        let failed = try await sandbox.waitForRuns([early])
        #expect(failed.first?.state == "failed")
        #expect(try await sandbox.logs(early, "ship").contains("baton models approve churn VERSION"))

        let approve = try await sandbox.baton("models", "approve", "churn", "1", "--note", "f1 0.81", "--by", "alice")
        #expect(approve.exitCode == 0, "\(approve)")
        let deploy = try await sandbox.trigger("deploy")
        let deployed = try await sandbox.waitForRuns([deploy])
        #expect(deployed.first?.state == "success", "\(deployed.map(\.summary))")
        #expect(try await sandbox.logs(deploy, "ship").contains("deploying v1 of churn from \(runID)"))

        // The version knows the pipeline run and task that made it; the approval who and why.
        let show = try await sandbox.baton("models", "show", "churn", "--json")
        #expect(show.exitCode == 0, "\(show)")
        let model = try #require(try JSONSerialization.jsonObject(with: Data(show.stdout.utf8)) as? [String: Any])
        let version = try #require((model["versions"] as? [[String: Any]])?.first)
        #expect((version["pipeline_run_id"] as? NSNumber)?.int64Value == train)
        #expect(version["pipeline"] as? String == "train" && version["task"] as? String == "fit")
        #expect(model["approved_version"] as? String == "1")
        let history = try #require(model["history"] as? [[String: Any]])
        #expect(history.first?["actor"] as? String == "alice" && history.first?["note"] as? String == "f1 0.81")
        let table = try await sandbox.baton("models")
        #expect(table.stdout.contains("churn") && table.stdout.contains("champion=v1"), "\(table)")
        let unknown = try await sandbox.baton("models", "approve", "nosuch", "1")
        #expect(unknown.exitCode != 0 && unknown.stderr.contains("nosuch"), "\(unknown)")
    }

    @Test func validateNamesABadModelField() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "deploy",
            """
            name: deploy
            tasks:
              ship:
                run: echo {{ models.churn.champion.verison }}
            """)
        let result = try await sandbox.baton("validate", sandbox.root + "/pipelines")
        #expect(result.exitCode != 0)
        #expect(result.stdout.contains("deploy.yaml:4") && result.stdout.contains("did you mean 'version'"), "\(result)")
    }
}
