import BatonCore
import BatonDeploy
import BatonGateway
import BatonStore
import Foundation
import Testing

@testable import BatonServer

@Suite("Web UI deployment pages")
struct DeploymentsUITests {
    /// Resolves any reference to version 1 without a registry; the manager is not started, so
    /// no replica runs and the deployment stays as declared.
    struct FixedResolver: ModelResolving {
        func resolve(_ reference: String) async throws(DeploymentError) -> PlacedVersion {
            PlacedVersion(version: "1", modelURI: reference, modelDir: nil)
        }
    }

    static func manager(_ store: SQLiteStore, _ gateway: Gateway) -> DeploymentManager {
        DeploymentManager(
            store: store, resolver: FixedResolver(), router: gateway,
            configuration: DeploymentConfiguration(dataDirectory: FileManager.default.temporaryDirectory.path))
    }

    @Test("the list and the detail page show a deployment, its history and its actions, escaped; a refused action explains itself")
    func pages() async throws {
        try await UITestServer.with(pipelines: [:], deployments: Self.manager) { server in
            let manager = try #require(server.context.deployments)
            let spec = DeploymentSpec(
                name: "churn-ui", owner: "<b>ml</b>", description: "Churn <script>alert('d')</script>", model: "models:/churn@champion",
                command: "python serve.py", replicas: 2)
            _ = try await manager.put(spec, source: "api", actor: "<i>alice</i>")

            let list = try await server.page("/deployments")
            #expect(list.status == 200, "\(list)")
            #expect(list.body.contains("<a href=\"/deployments\" aria-current=\"page\">Deployments</a>"), "nav marks the section")
            #expect(list.body.contains("<a href=\"/deployments/churn-ui\">churn-ui</a>"))
            #expect(list.body.contains("<td>&lt;b&gt;ml&lt;/b&gt;</td>"), "owners are escaped")
            #expect(list.body.contains("<td>0 / 2</td>"), "no replica is healthy of the two declared")
            #expect(list.body.contains("&lt;script&gt;") && !list.body.contains("<script>alert"), "descriptions are escaped")

            let detail = try await server.page("/deployments/churn-ui")
            #expect(detail.status == 200, "\(detail)")
            #expect(detail.body.contains("<h2 id=\"h-history\">History</h2>"))
            #expect(detail.body.contains("<td>&lt;i&gt;alice&lt;/i&gt;</td><td>spec.created</td>"), "the audit trail, escaped")
            #expect(detail.body.contains("formaction=\"/deployments/churn-ui/promote\""))
            #expect(detail.body.contains("<input type=\"text\" id=\"decision-reason\" name=\"reason\""))
            #expect(detail.count("disabled>") == 5, "no rollout is open, so every decision is disabled")
            #expect(detail.body.contains("href=\"/api/v1/deployments/churn-ui/drift\""), "drift links to the API")
            #expect(!detail.body.contains("<script>alert"))

            let refused = try await server.submit("/deployments/churn-ui/promote", [])
            #expect(refused.status == 409, "\(refused)")
            #expect(refused.body.contains("class=\"flash warn\" role=\"alert\""))

            let unknown = try await server.page("/deployments/churn-u")
            #expect(unknown.status == 404)
            #expect(unknown.body.contains("href=\"/deployments/churn-ui\""), "did you mean")
        }
    }

    @Test("an open rollout's decisions post, redirect with a message and land in the history")
    func decisions() async throws {
        try await UITestServer.with(pipelines: [:], deployments: Self.manager) { server in
            let manager = try #require(server.context.deployments)
            let spec = DeploymentSpec(name: "churn-act", model: "models:/churn@champion", command: "python serve.py")
            _ = try await manager.put(spec, source: "api", actor: "alice")
            // A rollout in progress, as a supervising leader would have stored it; this manager
            // does not supervise, so it reads the state from the store.
            let record = try #require(try await server.store.deployment(named: "churn-act"))
            let state = DesiredState(
                stable: PlacedVersion(version: "1", modelURI: "models:/churn/1", modelDir: nil),
                canary: PlacedVersion(version: "2", modelURI: "models:/churn/2", modelDir: nil), canaryPercent: 10,
                rolloutState: .progressing, steps: [RolloutStep(percent: 10, durationSeconds: 60)], stepStartedAt: Date())
            let stored = try await server.store.updateDeploymentState(
                name: "churn-act", stateJSON: state.json(), expectedRevision: record.revision,
                event: DeploymentEventRecord(deployment: "churn-act", at: Date(), actor: "bob", action: "canary.started", version: "2"),
                now: Date())
            #expect(stored != nil)

            let page = try await server.page("/deployments/churn-act")
            #expect(page.body.contains("stable 90% · canary 10%"), "\(page)")
            #expect(page.count("disabled>") == 1, "only resume is disabled while progressing")

            let paused = try await server.submit("/deployments/churn-act/pause", [])
            #expect(paused.status == 303, "\(paused)")
            #expect(paused.header("Location") == "/deployments/churn-act?done=pause")
            let after = try await server.page("/deployments/churn-act?done=pause")
            #expect(after.body.contains("Paused: the rollout stays at its current step until resumed."))
            #expect(after.body.contains("<td>local</td><td>paused</td>"), "the decision in the history")

            let promoted = try await server.submit("/deployments/churn-act/promote", [("reason", "looks good")])
            #expect(promoted.status == 303, "\(promoted)")
            let events = try await manager.events("churn-act", limit: 10, before: nil)
            #expect(events.first?.action == "promoted" && events.first?.reason == "looks good")
            #expect(await manager.status("churn-act").value(at: ["stable", "version"]) == "2")
        }
    }

    @Test("a viewer sees the decisions disabled and cannot post them")
    func viewer() async throws {
        try await UITestServer.with(pipelines: [:], requireAuth: true, deployments: Self.manager) { server in
            let manager = try #require(server.context.deployments)
            let spec = DeploymentSpec(name: "churn-view", model: "models:/churn@champion", command: "python serve.py")
            _ = try await manager.put(spec, source: "api", actor: "alice")
            let viewer = try await server.tokens.create(team: "data_team", role: .viewer, description: nil)
            let cookie = ["Cookie": "baton_token=\(viewer.token)"]
            let page = try await server.fetch("GET", "/deployments/churn-view", headers: cookie)
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("Operators and admins can take these decisions."))
            let refused = try await server.fetch("POST", "/deployments/churn-view/abort", form: [], headers: cookie)
            #expect(refused.status == 403, "\(refused)")
            #expect(try await manager.events("churn-view", limit: 10, before: nil).map(\.action) == ["spec.created"])
        }
    }

    @Test("without a deployment manager the list says so")
    func disabled() async throws {
        try await UITestServer.with(pipelines: [:]) { server in
            let list = try await server.page("/deployments")
            #expect(list.status == 200)
            #expect(list.body.contains("Deployments are not enabled on this server."))
        }
    }

    @Test("a canary's replicas, figures, rollout steps and analysis checks render from the status document, escaped")
    func detailBody() {
        let replica: JSONValue = .object([
            "id": "churn-2-a<x>", "port": .number(9001), "pid": .number(4242), "state": "healthy", "restarts": .number(1),
        ])
        let status: JSONValue = .object([
            "name": "churn", "owner": "ml", "description": .null, "model": "models:/churn@champion", "source": "api",
            "supervised": .bool(true),
            "stable": .object(["version": "1", "model_uri": "models:/churn/1", "replicas": .array([])]),
            "canary": .object(["version": "2", "model_uri": "models:/churn/2", "replicas": .array([replica])]),
            "traffic": .object(["mode": "split", "stable_percent": .number(90), "canary_percent": .number(10)]),
            "rollout": .object([
                "state": "progressing", "step": .number(1),
                "steps": .array([
                    .object(["percent": .number(10), "duration_seconds": .number(60)]),
                    .object(["percent": .number(50), "duration_seconds": .number(600)]),
                ]),
                "step_started_at": "2026-12-05T08:00:00Z",
                "last_analysis": .object([
                    "verdict": "failed", "at": "2026-12-05T08:01:00Z", "canary_requests": .number(120), "stable_requests": .number(900),
                    "checks": .array([
                        .object([
                            "check": "error_rate <max>", "canary": .number(0.2), "stable": .number(0.01), "threshold": .number(0.05),
                            "passed": .bool(false),
                        ])
                    ]),
                ]),
            ]),
            "stats": .object([
                "1": .object(["requests": .number(900), "errors": .number(9), "error_rate": .number(0.01), "p50_ms": .number(4), "p99_ms": .number(20)]),
                "2": .object(["requests": .number(120), "errors": .number(24), "error_rate": .number(0.2), "p50_ms": .number(5), "p99_ms": .number(40)]),
            ]),
        ])
        let event = DeploymentEventRecord(deployment: "churn", at: Date(), actor: "baton", action: "rolled_back", version: "2", reason: "error <rate>")
        let drift: JSONValue = .object([
            "deployment": "churn", "window_seconds": .number(3600), "max_psi": .number(0.2),
            "versions": .object([
                "1": .object(["baseline": "missing", "features": .object([:])]),
                "2": .object([
                    "baseline": "found",
                    "features": .object(["tenure<x>": .object(["psi": .number(0.31), "live_count": .number(120)])]),
                    "prediction": .object(["psi": .number(0.04), "live_count": .number(120)]),
                ]),
            ]),
        ])
        let html = DeploymentsPage.detailBody(status, events: [event], drift: drift, flash: "pause", error: nil, canOperate: true)
            .description
        #expect(html.contains("<th scope=\"row\">tenure&lt;x&gt;</th><td>0.31</td><td>120</td>"), "drift per feature, escaped")
        #expect(html.contains("<th scope=\"row\">(prediction)</th><td>0.04</td>"))
        #expect(html.contains("No baseline.json recorded with this version."))
        #expect(html.contains("alert above 0.2"))
        #expect(html.contains("<code>churn-2-a&lt;x&gt;</code></th><td>9001</td><td>4242</td>"), "replicas, escaped")
        #expect(html.contains("stable 90% · canary 10%"))
        #expect(html.contains("<td>120</td><td>24</td><td>20.00%</td><td>5.0 ms</td><td>40.0 ms</td>"), "the canary's figures")
        #expect(html.contains("<svg class=\"histogram\""), "latency bars")
        #expect(html.contains("<li>50% for 10m <strong>(current)</strong></li>"))
        #expect(html.contains("<th scope=\"row\">error_rate &lt;max&gt;</th><td>0.2</td><td>0.01</td><td>0.05</td>"), "checks with values and thresholds")
        #expect(html.contains("<td>rolled_back</td><td>2</td><td>error &lt;rate&gt;</td>"))
        #expect(html.contains("Paused: the rollout stays"), "the flash after an action")
        #expect(html.contains("step started <time datetime=\"2026-12-05T08:00:00Z\""), "times read as on the other pages")
        #expect(html.contains("data-confirm=\"Roll back churn?\""))
        #expect(html.contains("data-active"), "a supervised deployment refreshes live")
        let disabled = html.components(separatedBy: "disabled>").count - 1
        #expect(disabled == 1, "a progressing rollout can be promoted, rolled back, paused and aborted, not resumed")
    }

    @Test("an A/B test's metrics render with each variant's interval and a verdict, escaped")
    func abSection() {
        let summary: JSONValue = .object([
            "stable": "1", "candidate": "2", "percent": .number(50), "state": "ended",
            "started_at": "2026-12-05T08:00:00Z", "ended_at": "2026-12-05T09:00:00Z",
            "metrics": .array([
                .object([
                    "name": "converted<x>", "kind": "proportion",
                    "variants": .object([
                        "1": .object(["count": .number(200), "mean": .number(0.3), "low": .number(0.24), "high": .number(0.37)]),
                        "2": .object(["count": .number(190), "mean": .number(0.6), "low": .number(0.53), "high": .number(0.67)]),
                    ]),
                    "difference": .object(["value": .number(0.3), "low": .number(0.2), "high": .number(0.4)]),
                    "significant": .bool(true), "higher": "2",
                ]),
                .object([
                    "name": "basket", "kind": "mean",
                    "variants": .object(["1": .object(["count": .number(3)]), "2": .object(["count": .number(4)])]),
                    "difference": .object(["value": .number(1)]), "significant": .bool(false), "higher": .null,
                ]),
            ]),
        ])
        let html = DeploymentsPage.abSection("churn", summary).description
        #expect(html.contains("<th scope=\"row\">converted&lt;x&gt;</th><td>0.3 <span class=\"muted\">[0.24, 0.37] n=200</span></td>"), "\(html)")
        #expect(html.contains("<td>0.6 <span class=\"muted\">[0.53, 0.67] n=190</span></td>"))
        #expect(html.contains("v2 higher"))
        #expect(html.contains("no clear difference"))
        #expect(html.contains("v2 at 50 % against v1, ended"))
        #expect(html.contains("href=\"/api/v1/deployments/churn/ab\""))
        let empty = DeploymentsPage.abSection("churn", .object(["stable": "1", "candidate": "2", "metrics": .array([])])).description
        #expect(empty.contains("No outcomes reported yet"))
    }

    @Test("the last ten minutes of traffic are charted per version")
    func trafficCharts() {
        let start = Date(timeIntervalSince1970: 1_796_000_000)
        func points(_ requests: [Int], errors: Int) -> [TimelinePoint] {
            requests.enumerated().map { index, count in
                TimelinePoint(start: start.addingTimeInterval(Double(index * 10)), requests: count, errors: min(errors, count), p99Ms: count > 0 ? 12 : 0)
            }
        }
        let html = DeploymentsPage.trafficCharts(["1": points([50, 60, 0, 70], errors: 0), "2": points([5, 6, 0, 7], errors: 1)]).description
        #expect(html.contains("Requests per second"))
        #expect(html.contains("Error rate"))
        #expect(html.contains("p99 latency (ms)"))
        #expect(html.components(separatedBy: "<svg class=\"line-chart\"").count - 1 == 3, "three charts")
        #expect(html.contains("v1") && html.contains("v2"), "a line per version")
        #expect(DeploymentsPage.trafficCharts(["1": points([0, 0], errors: 0)]).description.isEmpty, "no chart without traffic")
    }
}
