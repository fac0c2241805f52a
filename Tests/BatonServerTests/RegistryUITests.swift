import BatonCore
import BatonEngine
import BatonRegistry
import BatonStore
import Foundation
import Testing

@testable import BatonServer

/// Tracked runs and models set up through the server's own registry, as the MLflow client's
/// requests would leave them.
enum RegistryUIFixtures {
    static let pipeline = """
        name: ui_trainer
        owner: ml_team
        tasks:
          train:
            run: "true"
        """

    /// Creates a run with params, tags and metric histories (`key: [values by step]`); answers its id.
    @discardableResult
    static func run(
        _ registry: Registry, experiment: String, name: String, params: [String: String] = [:],
        metrics: [String: [Double]] = [:], tags: [String: String] = [:], origin: TaskOrigin? = nil, finished: Bool = true
    ) async throws -> String {
        let json = try await registry.createRun(
            experimentID: experiment, userID: "alice", runName: name, startTime: nil, tags: tags.map { ($0.key, $0.value) },
            origin: origin)
        let id = TrackedRun(json).id
        let stamp = Int64(Date().timeIntervalSince1970 * 1000)
        var points: [TrackedMetric] = []
        for (key, values) in metrics {
            for (step, value) in values.enumerated() {
                points.append(TrackedMetric(key: key, value: value, timestamp: stamp + Int64(step), step: Int64(step)))
            }
        }
        try await registry.logRunData(RunDataBatch(runID: id, metrics: points, params: params.map { ($0.key, $0.value) }))
        if finished { _ = try await registry.updateRun(id: id, status: "FINISHED", endTime: stamp + 1000, runName: nil) }
        return id
    }

    /// The names of the runs in the order the runs table lists them.
    static func runOrder(_ body: String, among names: [String]) -> [String] {
        names.compactMap { name in body.range(of: ">\(name)</a></th>").map { (name, $0.lowerBound) } }
            .sorted { $0.1 < $1.1 }.map(\.0)
    }
}

@Suite("Web UI experiment and model pages")
struct RegistryUITests {
    @Test("the experiments page lists experiments with their run counts and hides deleted ones until asked")
    func experimentsPage() async throws {
        try await UITestServer.with(pipelines: [:]) { server in
            let registry = server.context.registry
            let churn = try await registry.createExperiment(name: "churn <b>model</b>", artifactLocation: nil, tags: [])
            let old = try await registry.createExperiment(name: "old-experiment", artifactLocation: nil, tags: [])
            for index in 0..<3 { try await RegistryUIFixtures.run(registry, experiment: churn, name: "r\(index)") }
            try await registry.setExperimentLifecycle(id: old, deleted: true)

            let page = try await server.page("/experiments")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<a href=\"/experiments\" aria-current=\"page\">Experiments</a>"), "nav marks the section")
            #expect(page.body.contains("<a href=\"/models\">Models</a>"), "nav links the models")
            #expect(page.body.contains("href=\"/experiments/\(churn)\">churn &lt;b&gt;model&lt;/b&gt;</a>"), "escaped name, linked")
            #expect(!page.body.contains("<b>model</b>"))
            #expect(page.body.contains("<td><code>\(churn)</code></td><td class=\"num\">3</td>"), "id and run count")
            #expect(!page.body.contains("old-experiment"), "deleted experiments are hidden by default")
            #expect(page.body.contains("href=\"/experiments/0\">Default</a>"), "MLflow's default experiment")

            let all = try await server.page("/experiments?deleted=1")
            #expect(all.body.contains("old-experiment</a> <span class=\"tag subtle\">deleted</span>"))

            let searched = try await server.page("/experiments?q=CHURN")
            #expect(searched.body.contains("href=\"/experiments/\(churn)\""), "names match regardless of case")
            #expect(!searched.body.contains("href=\"/experiments/0\""), "the Default experiment does not match")
            let none = try await server.page("/experiments?q=%27%3Cx%3E")
            #expect(none.status == 200)
            #expect(none.body.contains("No experiment matches ‘&#39;&lt;x&gt;’."))
        }
    }

    @Test("an experiment's runs table shows params, latest metrics and the pipeline run, filters, sorts and pages")
    func runsTable() async throws {
        try await UITestServer.with(pipelines: ["ui_trainer": RegistryUIFixtures.pipeline]) { server in
            let registry = server.context.registry
            // Lineage links only to pipeline runs that exist.
            let pipelineRun = try await server.engine.trigger(pipeline: "ui_trainer").id
            let experiment = try await registry.createExperiment(name: "churn", artifactLocation: nil, tags: [])
            try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "run-low", params: ["lr": "0.1", "model": "<xgb>"],
                metrics: ["acc": [0.5, 0.7]])
            try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "run-high", params: ["lr": "0.01", "model": "lgbm"],
                metrics: ["acc": [0.6, 0.93]], origin: TaskOrigin(runID: pipelineRun, pipeline: "ui_trainer", task: "train", attempt: 1))
            try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "run-mid", params: ["lr": "0.05"], metrics: ["acc": [0.81]])

            let page = try await server.page("/experiments/\(experiment)")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<span class=\"col-kind\">param</span> lr</th>"), "params become columns")
            #expect(page.body.contains("<code class=\"value\">&lt;xgb&gt;</code>"), "param values escaped")
            #expect(page.body.contains("<td class=\"num\" title=\"0.93 at step 1\">0.93</td>"), "the latest metric value")
            #expect(page.body.contains("<a class=\"nowrap\" href=\"/runs/\(pipelineRun)\">#\(pipelineRun)</a>"), "the Baton pipeline run")
            #expect(page.body.contains("<input type=\"checkbox\" name=\"runs\""), "runs can be picked to compare")
            #expect(page.body.contains("action=\"/experiments/\(experiment)/compare\""))
            #expect(page.body.contains("<span class=\"label\">finished</span>"))
            let sortLink = "/experiments/\(experiment)?order=metrics.%60acc%60%20DESC"
            #expect(page.body.contains("href=\"\(sortLink)\""), "a metric header sorts by it")

            let names = ["run-low", "run-high", "run-mid"]
            let sorted = try await server.page(sortLink)
            #expect(RegistryUIFixtures.runOrder(sorted.body, among: names) == ["run-high", "run-mid", "run-low"])
            #expect(sorted.body.contains("aria-sort=\"descending\""))
            let ascending = try await server.page("/experiments/\(experiment)?order=metrics.%60acc%60+ASC")
            #expect(RegistryUIFixtures.runOrder(ascending.body, among: names) == ["run-low", "run-mid", "run-high"])

            // A browser's GET form sends spaces as `+`.
            let filtered = try await server.page("/experiments/\(experiment)?filter=metrics.acc+%3E+0.8+and+params.lr+%21%3D+%270.01%27")
            #expect(filtered.status == 200, "\(filtered)")
            #expect(RegistryUIFixtures.runOrder(filtered.body, among: names) == ["run-mid"])
            #expect(filtered.body.contains("value=\"metrics.acc &gt; 0.8 and params.lr != &#39;0.01&#39;\""), "the filter stays in the box")

            let bad = try await server.page("/experiments/\(experiment)?filter=metrics.acc+%3E%3E+%3Cscript%3E")
            #expect(bad.status == 400, "a bad filter is the user's error, not a 500: \(bad)")
            #expect(bad.body.contains("The filter was not understood:"))
            #expect(bad.body.contains("aria-invalid=\"true\""))
            #expect(!bad.body.contains("<script>"), "the filter is escaped in the message and the box")
            #expect(bad.body.contains("<title>churn · Baton</title>"), "the page itself still renders")
        }
    }

    @Test("runs are paged fifty at a time and the columns are capped at the most common keys")
    func pagination() async throws {
        try await UITestServer.with(pipelines: [:]) { server in
            let registry = server.context.registry
            let experiment = try await registry.createExperiment(name: "many", artifactLocation: nil, tags: [])
            for index in 0..<60 {
                try await RegistryUIFixtures.run(
                    registry, experiment: experiment, name: "many-\(index)", metrics: ["loss": [Double(index)]], finished: false)
            }
            // One wide run: more metrics and params than the table has columns for.
            try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "wide",
                params: Dictionary(uniqueKeysWithValues: (0..<9).map { ("p\($0)", "v") }),
                metrics: Dictionary(uniqueKeysWithValues: (0..<12).map { ("m\($0)", [1.0]) }))
            let first = try await server.page("/experiments/\(experiment)")
            #expect(first.status == 200)
            #expect(first.count("name=\"runs\"") == ExperimentPage.pageSize)
            #expect(first.count("<span class=\"col-kind\">param</span>") == ExperimentPage.maxParamColumns)
            #expect(first.count("<th scope=\"col\" class=\"num key-col\">") == ExperimentPage.maxMetricColumns)
            #expect(first.body.contains(">loss</a></th>"), "the metric every run has is among the columns")
            #expect(first.body.contains("5 metrics and 3 params more on each run's page"))
            let next = try #require(
                first.body.range(of: "href=\"(/experiments/[^\"]*page=[^\"]*)\">Next page", options: .regularExpression)
                    .map { String(first.body[$0]).dropFirst("href=\"".count).prefix { $0 != "\"" } })
            let second = try await server.page(String(next).replacingOccurrences(of: "&amp;", with: "&"))
            #expect(second.status == 200, "\(second)")
            #expect(second.count("name=\"runs\"") == 11)
            #expect(second.body.contains("Page 2"))
            #expect(!second.body.contains("Next page"))
        }
    }

    @Test("a run's page shows params, tags, a chart per metric, artifacts to download and its pipeline run")
    func runPage() async throws {
        try await UITestServer.with(pipelines: ["ui_trainer": RegistryUIFixtures.pipeline]) { server in
            let registry = server.context.registry
            // Lineage links only to pipeline runs that exist.
            let pipelineRun = try await server.engine.trigger(pipeline: "ui_trainer").id
            let experiment = try await registry.createExperiment(name: "churn", artifactLocation: nil, tags: [])
            let other = try await registry.createExperiment(name: "other", artifactLocation: nil, tags: [])
            let id = try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "good-run", params: ["depth": "6"],
                metrics: ["loss": [0.9, 0.5, 0.3, 0.2], "auc": [0.8]], tags: ["team": "<ml>"],
                origin: TaskOrigin(runID: pipelineRun, pipeline: "ui_trainer", task: "train", attempt: 2))
            let folder = server.root + "/artifacts/\(experiment)/\(id)/artifacts/model"
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data("weights-bytes".utf8).write(to: URL(fileURLWithPath: folder + "/weights.bin"))

            let page = try await server.page("/experiments/\(experiment)/runs/\(id)")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<h1>good-run <span class=\"badge st-success\">"))
            #expect(page.body.contains("<tr><th scope=\"row\">depth</th><td><code class=\"value\">6</code></td></tr>"))
            #expect(page.body.contains("<th scope=\"row\">team</th><td><span class=\"value\">&lt;ml&gt;</span></td>"), "tags, escaped")
            #expect(page.body.contains("id=\"metric-loss\""), "a chart for the metric with a history")
            #expect(page.body.contains("4 values"), "the chart reads the whole history")
            #expect(page.count("</title></circle>") == 4, "one dot per value of the loss")
            #expect(page.count("stroke-linejoin=\"round\"") == 1, "a line for the loss")
            #expect(!page.body.contains("id=\"metric-auc\""), "a single value is not drawn")
            #expect(page.body.contains("Not drawn, one value each: auc."))
            #expect(page.body.contains("href=\"/runs/\(pipelineRun)\""), "the Baton pipeline run")
            #expect(page.body.contains("<a class=\"muted\" href=\"/runs/\(pipelineRun)/tasks/train?attempt=2\">ui_trainer.train</a>"), "and its task attempt")
            let download = "/api/2.0/mlflow-artifacts/artifacts/\(experiment)/\(id)/artifacts/model/weights.bin"
            #expect(page.body.contains("<a href=\"\(download)\" download=\"weights.bin\""), "\(page.body)")
            #expect(page.body.contains(">model/</th>"), "folders are listed")
            let file = try await server.page(download)
            #expect(file.status == 200)
            #expect(file.body == "weights-bytes", "the link downloads the artifact")

            let unknown = try await server.page("/experiments/\(experiment)/runs/nope")
            #expect(unknown.status == 404)
            #expect(unknown.body.contains("Run &#39;nope&#39; not found"), "\(unknown)")
            let elsewhere = try await server.page("/experiments/\(other)/runs/\(id)")
            #expect(elsewhere.status == 404, "a run is shown under its own experiment only")
            #expect(elsewhere.body.contains("href=\"/experiments/\(experiment)/runs/\(id)\""), "the 404 points at the right page")
            let noExperiment = try await server.page("/experiments/999")
            #expect(noExperiment.status == 404)
        }
    }

    @Test("comparing runs marks differing params and metrics and overlays shared metrics")
    func compare() async throws {
        try await UITestServer.with(pipelines: [:]) { server in
            let registry = server.context.registry
            let experiment = try await registry.createExperiment(name: "churn", artifactLocation: nil, tags: [])
            let a = try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "alpha", params: ["lr": "0.1", "seed": "1"],
                metrics: ["acc": [0.5, 0.8], "final": [0.7]])
            let b = try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "beta", params: ["lr": "0.2", "seed": "1"],
                metrics: ["acc": [0.4, 0.9], "only_b": [1], "final": [-0.25]])

            let page = try await server.page("/experiments/\(experiment)/compare?runs=\(a),\(b)")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<tr class=\"diff\"><th scope=\"row\">lr <span class=\"tag subtle\">differs</span></th>"))
            #expect(page.body.contains("<tr><th scope=\"row\">seed</th>"), "equal params are not marked")
            #expect(page.body.contains("<td class=\"num\">0.8</td><td class=\"num\">0.9</td>"), "latest values side by side")
            #expect(page.body.contains("<figcaption>acc</figcaption>"), "a chart for the shared metric")
            #expect(!page.body.contains("<figcaption>only_b</figcaption>"), "no chart for a metric one run has")
            #expect(page.count("stroke-linejoin=\"round\"") == 2, "one line per run")
            #expect(page.body.contains("<figcaption>final</figcaption><div class=\"chart-scroll\"><svg class=\"bar-chart\""), "one value per run: bars")
            #expect(page.count("</title></rect>") == 2, "a bar per run")
            #expect(page.body.contains(">-0.25</text>"), "labelled with its value")

            // The runs table's boxes send the runs as repeated fields.
            let boxes = try await server.page("/experiments/\(experiment)/compare?runs=\(a)&runs=\(b)")
            #expect(boxes.status == 200)
            #expect(boxes.body.contains("Compare 2 runs"))
            let one = try await server.page("/experiments/\(experiment)/compare?runs=\(a)")
            #expect(one.status == 400)
            #expect(one.body.contains("Pick at least two runs"))
            let missing = try await server.page("/experiments/\(experiment)/compare?runs=\(a),nope")
            #expect(missing.status == 404)
        }
    }

    @Test("approving from the model page moves the champion alias and records who, why and when; revoking removes it")
    func approvalFlow() async throws {
        try await UITestServer.with(pipelines: ["ui_trainer": RegistryUIFixtures.pipeline]) { server in
            let registry = server.context.registry
            // Lineage links only to pipeline runs that exist.
            let pipelineRun = try await server.engine.trigger(pipeline: "ui_trainer").id
            let experiment = try await registry.createExperiment(name: "churn", artifactLocation: nil, tags: [])
            let run = try await RegistryUIFixtures.run(
                registry, experiment: experiment, name: "trainer", metrics: ["acc": [0.9]],
                origin: TaskOrigin(runID: pipelineRun, pipeline: "ui_trainer", task: "train", attempt: 1))
            _ = try await registry.createRegisteredModel(name: "churn-model", description: "Predicts <churn>", tags: [], actor: "alice")
            for _ in 0..<2 {
                _ = try await registry.createModelVersion(
                    name: "churn-model", source: "runs:/\(run)/model", runID: run, runLink: nil, description: nil, modelID: nil,
                    tags: [], actor: "alice", origin: nil)
            }

            let before = try await server.page("/models/churn-model")
            #expect(before.status == 200, "\(before)")
            #expect(before.body.contains("<tr id=\"v2\"><th scope=\"row\">v2</th>"))
            #expect(before.body.contains("href=\"/experiments/\(experiment)/runs/\(run)\""), "the source run")
            #expect(before.body.contains("<a class=\"nowrap\" href=\"/runs/\(pipelineRun)\">#\(pipelineRun)</a>"), "lineage: the pipeline run behind the run")
            #expect(before.body.contains("href=\"/runs/\(pipelineRun)/tasks/train?attempt=1\">ui_trainer.train</a>"), "and the task attempt")
            #expect(before.body.contains("Predicts &lt;churn&gt;"))
            #expect(before.body.contains("action=\"/models/churn-model/approve\""))

            let approved = try await server.submit(
                "/models/churn-model/approve", [("version", "2"), ("alias", "champion"), ("note", "beats v1 <by far>")])
            #expect(approved.status == 303, "\(approved)")
            #expect(approved.header("Location") == "/models/churn-model?done=approved")
            #expect(try await registry.version(model: "churn-model").version == 2, "the alias moved")

            let after = try await server.page("/models/churn-model?done=approved")
            #expect(after.body.contains("Approved: the alias now points at this version."))
            #expect(after.body.contains("<tr id=\"v2\" class=\"approved\">"))
            #expect(after.body.contains("<td><span class=\"tag\">approved</span></td><td><a href=\"#v2\">v2</a></td>"), "the audit entry")
            #expect(after.body.contains("<td>local</td>"), "who approved")
            #expect(after.body.contains("beats v1 &lt;by far&gt;"), "the note, escaped")

            let runPage = try await server.page("/experiments/\(experiment)/runs/\(run)")
            #expect(runPage.body.contains("<a href=\"/models/churn-model#v2\">churn-model v2</a> <span class=\"alias champion\">champion</span>"),
                "the run's page names the versions registered from it")

            let list = try await server.page("/models")
            #expect(list.status == 200)
            #expect(list.body.contains("<a href=\"/models\" aria-current=\"page\">Models</a>"))
            #expect(list.body.contains("<td><a class=\"alias champion\" href=\"/models/churn-model#v2\">v2</a></td>"), "the approved version")
            #expect(list.body.contains("champion → v2"))

            let revoked = try await server.submit("/models/churn-model/revoke", [("alias", "champion"), ("note", "rollback")])
            #expect(revoked.status == 303, "\(revoked)")
            let final = try await server.page("/models/churn-model")
            #expect(!final.body.contains("class=\"approved\""))
            #expect(final.body.contains("<span class=\"tag subtle\">approval revoked</span>"))
            #expect(try await server.page("/models").body.contains("<span class=\"muted\">none</span>"))
        }
    }

    @Test("a refused approval shows its reason on the page; other sites cannot post the form")
    func approvalErrors() async throws {
        try await UITestServer.with(pipelines: [:]) { server in
            let registry = server.context.registry
            _ = try await registry.createRegisteredModel(name: "m", description: nil, tags: [], actor: "alice")
            _ = try await registry.createModelVersion(
                name: "m", source: "s3://bucket/m", runID: nil, runLink: nil, description: nil, modelID: nil, tags: [], actor: "alice",
                origin: nil)

            let missing = try await server.submit("/models/m/approve", [("version", "9"), ("alias", "champion"), ("note", "")])
            #expect(missing.status == 400, "\(missing)")
            #expect(missing.body.contains("<div class=\"flash error\" role=\"alert\">Model Version (name=m, version=9) not found</div>"))
            let reserved = try await server.submit("/models/m/approve", [("version", "1"), ("alias", "latest")])
            #expect(reserved.status == 400)
            #expect(reserved.body.contains("&#39;latest&#39; is reserved"))
            #expect(reserved.body.contains("value=\"latest\""), "the form keeps what was typed")
            let nothing = try await server.submit("/models/m/revoke", [("alias", "champion")])
            #expect(nothing.status == 400)
            #expect(nothing.body.contains("Registered model alias champion not found."))

            let crossSite = try await server.submit(
                "/models/m/approve", [("version", "1"), ("alias", "champion")], headers: ["Sec-Fetch-Site": "cross-site"])
            #expect(crossSite.status == 403)
            #expect(try await registry.model(named: "m").aliases.isEmpty, "nothing changed")

            let unknown = try await server.page("/models/nope")
            #expect(unknown.status == 404)
            #expect(unknown.body.contains("Registered Model with name=nope not found"))
            let unknownPost = try await server.submit("/models/nope/approve", [("version", "1")])
            #expect(unknownPost.status == 404)
        }
    }

    @Test("names with spaces, slashes and markup work in links and forms")
    func oddNames() async throws {
        try await UITestServer.with(pipelines: [:]) { server in
            let registry = server.context.registry
            let name = "team/churn <v2> model"
            _ = try await registry.createRegisteredModel(name: name, description: nil, tags: [], actor: "alice")
            _ = try await registry.createModelVersion(
                name: name, source: "s3://b/m", runID: nil, runLink: nil, description: nil, modelID: nil, tags: [], actor: "alice",
                origin: nil)
            let path = "/models/team%2Fchurn%20%3Cv2%3E%20model"
            let list = try await server.page("/models")
            #expect(list.body.contains("href=\"\(path)\">team/churn &lt;v2&gt; model</a>"))
            let page = try await server.page(path)
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<h1>team/churn &lt;v2&gt; model</h1>"))
            #expect(page.body.contains("action=\"\(path)/approve\""))
            let approved = try await server.submit(path + "/approve", [("version", "1"), ("alias", "champion")])
            #expect(approved.status == 303, "\(approved)")
            #expect(try await registry.version(model: name).version == 1)
        }
    }

    @Test("a viewer sees the approval forms disabled and cannot post them")
    func viewer() async throws {
        try await UITestServer.with(pipelines: [:], requireAuth: true) { server in
            let registry = server.context.registry
            _ = try await registry.createRegisteredModel(name: "m", description: nil, tags: [], actor: "alice")
            _ = try await registry.createModelVersion(
                name: "m", source: "s3://b/m", runID: nil, runLink: nil, description: nil, modelID: nil, tags: [], actor: "alice",
                origin: nil)
            let viewer = try await server.tokens.create(team: "data_team", role: .viewer, description: nil)
            let cookie = ["Cookie": "baton_token=\(viewer.token)"]
            let page = try await server.fetch("GET", "/models/m", headers: cookie)
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<button type=\"submit\" class=\"button primary\" disabled"))
            let refused = try await server.fetch("POST", "/models/m/approve", form: [("version", "1"), ("alias", "champion")], headers: cookie)
            #expect(refused.status == 403, "\(refused)")
            #expect(try await registry.model(named: "m").aliases.isEmpty)

            let operatorToken = try await server.tokens.create(team: "ml_team", role: .operator, description: nil)
            let approved = try await server.fetch(
                "POST", "/models/m/approve", form: [("version", "1"), ("alias", "champion"), ("note", "ok")],
                headers: ["Cookie": "baton_token=\(operatorToken.token)"])
            #expect(approved.status == 303, "\(approved)")
            let trail = try await registry.history(model: "m")
            #expect(trail.first?.action == "approved")
            #expect(trail.first?.actor == "ml_team", "the token's team is recorded as who approved")
        }
    }

    @Test("the pipeline run page lists the tracked runs and model versions its tasks made")
    func pipelineRunLineage() async throws {
        try await UITestServer.with(pipelines: ["ui_trainer": RegistryUIFixtures.pipeline]) { server in
            let registry = server.context.registry
            let pipelineRun = try await server.engine.trigger(pipeline: "ui_trainer")
            #expect(try await server.waitForRun(pipelineRun.id) == .success)
            let plain = try await server.page("/runs/\(pipelineRun.id)")
            #expect(!plain.body.contains("Models and experiment runs"), "nothing to show, no section")

            let experiment = try await registry.createExperiment(name: "churn", artifactLocation: nil, tags: [])
            let origin = TaskOrigin(runID: pipelineRun.id, pipeline: "ui_trainer", task: "train", attempt: 1)
            let run = try await RegistryUIFixtures.run(registry, experiment: experiment, name: "from-baton", origin: origin)
            _ = try await registry.createRegisteredModel(name: "churn-model", description: nil, tags: [], actor: "alice")
            _ = try await registry.createModelVersion(
                name: "churn-model", source: "runs:/\(run)/model", runID: run, runLink: nil, description: nil, modelID: nil, tags: [],
                actor: "alice", origin: nil)

            let page = try await server.page("/runs/\(pipelineRun.id)")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("Models and experiment runs"))
            #expect(page.body.contains("<a href=\"/experiments/\(experiment)/runs/\(run)\">from-baton</a>"))
            #expect(page.body.contains("<a href=\"/models/churn-model#v1\">churn-model v1</a>"))
            #expect(page.body.contains("<a href=\"/runs/\(pipelineRun.id)/tasks/train\">train</a>"))
        }
    }
}
