import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Testing

@testable import BatonServer

/// Pipelines the UI tests run. `ui_etl` is a diamond with typed params whose description,
/// param default and log carry markup that must come out escaped.
enum UIFixtures {
    static let etl = """
        name: ui_etl
        owner: data_team
        description: "Loads <script>alert('desc')</script> & friends"
        schedule: "@daily"
        params:
          who: {default: "<script>alert(1)</script>", type: string, description: "Who to greet <b>bold</b>"}
          count: {default: 2, type: integer, description: "How many"}
          loud: {default: false, type: boolean}
          mode: {default: fast, type: string, enum: [fast, slow]}
        tasks:
          extract:
            run: [sh, -c, 'echo "hello from extract"; echo "<script>log()</script>"']
          transform_a:
            run: echo transform a {{ params.count }}
            needs: [extract]
          transform_b:
            run: echo transform b
            needs: [extract]
          load:
            run: echo load {{ params.who }}
            needs: [transform_a, transform_b]
        """

    static let ml = """
        name: ui_ml
        owner: ml_team
        tasks:
          train:
            run: "true"
        """

    static let slow = """
        name: ui_slow
        owner: ml_team
        tasks:
          wait:
            run: sleep 30
        """

    static let all = ["ui_etl": etl, "ui_ml": ml, "ui_slow": slow]
}

@Suite("Web UI pages")
struct UIPageTests {
    @Test("the pipelines page lists every pipeline with its owner, and filters by owner")
    func pipelinesPage() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let page = try await server.page("/")
            #expect(page.status == 200, "\(page)")
            #expect(page.contentType.hasPrefix("text/html"))
            #expect(page.body.contains("<meta name=\"viewport\""))
            #expect(page.body.contains("<title>Pipelines · Baton</title>"))
            for name in ["ui_etl", "ui_ml", "ui_slow"] { #expect(page.body.contains("href=\"/pipelines/\(name)\"")) }
            #expect(page.body.contains(">data_team</a>"))
            #expect(page.body.contains(">ml_team</a>"))
            #expect(page.body.contains("every day at 00:00"), "schedule in words")
            #expect(page.header("Content-Security-Policy")?.contains("script-src 'self'") == true)

            let filtered = try await server.page("/?owner=ml_team")
            #expect(filtered.body.contains("href=\"/pipelines/ui_ml\""))
            #expect(!filtered.body.contains("href=\"/pipelines/ui_etl\""))
        }
    }

    @Test("the pipeline page draws the DAG as SVG with one node per task and a typed trigger form")
    func pipelinePage() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let page = try await server.page("/pipelines/ui_etl")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<svg class=\"dag\""))
            #expect(page.count("<g class=\"node ") == 4)
            for task in ["extract", "transform_a", "transform_b", "load"] {
                #expect(page.body.contains("data-task=\"\(task)\""))
            }
            #expect(page.count("<path class=\"edge\"") == 4)
            #expect(page.body.contains("action=\"/pipelines/ui_etl/trigger\""))
            #expect(page.body.contains("type=\"number\" step=\"1\""))
            #expect(page.body.contains("type=\"checkbox\""))
            #expect(page.body.contains("<option value=\"slow\">slow</option>"))
            #expect(page.body.contains("<option value=\"fast\" selected>fast</option>"))
        }
    }

    @Test("triggering through the form creates a run, redirects to it, and its pages show the graph, timeline and log")
    func triggerThroughForm() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let response = try await server.submit(
                "/pipelines/ui_etl/trigger",
                [("param.who", "Ada"), ("param.count", "3"), ("param.loud", "false"), ("param.loud", "true"), ("param.mode", "slow")])
            #expect(response.status == 303, "\(response)")
            let location = try #require(response.header("Location"))
            #expect(location.hasPrefix("/runs/"))
            let id = try #require(Int64(location.dropFirst("/runs/".count).prefix { $0.isNumber }))
            let run = try #require(try await server.store.run(id: id))
            #expect(run.params["count"] == .number(3))
            #expect(run.params["loud"] == .bool(true))
            #expect(run.params["mode"] == .string("slow"))
            #expect(try await server.waitForRun(id) == .success)

            let page = try await server.page(location)
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("Run #\(id)"))
            #expect(page.body.contains("Run created."), "flash after the redirect")
            #expect(page.count("<g class=\"node st-success\"") == 4)
            #expect(page.body.contains("<svg class=\"gantt\""))
            #expect(page.count("<rect class=\"bar st-success") == 4)
            #expect(page.body.contains("data-live=\"run\" data-run=\"\(id)\""))

            let log = try await server.page("/runs/\(id)/tasks/extract")
            #expect(log.status == 200, "\(log)")
            #expect(log.body.contains("hello from extract"))
            #expect(log.body.contains("&lt;script&gt;log()&lt;/script&gt;"))
            #expect(!log.body.contains("<script>log()"))
        }
    }

    @Test("a param that does not fit its type re-renders the form with the error and creates no run")
    func invalidParams() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let response = try await server.submit("/pipelines/ui_etl/trigger", [("param.count", "many"), ("param.who", "x")])
            #expect(response.status == 422, "\(response)")
            #expect(response.contentType.hasPrefix("text/html"))
            #expect(response.body.contains("expected a whole number, got &#39;many&#39;"))
            #expect(response.body.contains("aria-invalid=\"true\""))
            #expect(response.body.contains("value=\"many\""), "what the user typed stays in the form")
            #expect(try await server.store.runs(RunQuery()).isEmpty)

            let unknown = try await server.submit("/pipelines/ui_etl/trigger", [("param.cuont", "1")])
            #expect(unknown.status == 422)
            #expect(unknown.body.contains("did you mean &#39;count&#39;?"))
        }
    }

    @Test("user-controlled text is escaped: a <script> in a description or param default never reaches the page as markup")
    func escaping() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            for path in ["/", "/pipelines/ui_etl"] {
                let page = try await server.page(path)
                #expect(page.status == 200)
                #expect(!page.body.contains("<script>alert"), "raw script on \(path)")
                #expect(!page.body.contains("<b>bold</b>"))
            }
            let page = try await server.page("/pipelines/ui_etl")
            #expect(page.body.contains("Loads &lt;script&gt;alert(&#39;desc&#39;)&lt;/script&gt; &amp; friends"))
            #expect(page.body.contains("value=\"&lt;script&gt;alert(1)&lt;/script&gt;\""))
            #expect(page.body.contains("Who to greet &lt;b&gt;bold&lt;/b&gt;"))
        }
    }

    @Test("unknown pipelines, runs and tasks get a 404 page in the site layout")
    func notFound() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let pipeline = try await server.page("/pipelines/ui_etll")
            #expect(pipeline.status == 404)
            #expect(pipeline.contentType.hasPrefix("text/html"))
            #expect(pipeline.body.contains("class=\"topbar\""))
            #expect(pipeline.body.contains("href=\"/pipelines/ui_etl\">ui_etl</a>"), "did-you-mean link")
            #expect(try await server.page("/runs/999").status == 404)
            #expect(try await server.page("/runs/abc").status == 404)

            let run = try await server.engine.trigger(pipeline: "ui_ml")
            let task = try await server.page("/runs/\(run.id)/tasks/trian")
            #expect(task.status == 404)
            #expect(task.body.contains("train"))
            #expect(try await server.page("/runs/\(run.id)/tasks/train?attempt=7").status == 404)
        }
    }

    @Test("cancel, retry and pause are POST forms answered with 303 redirects")
    func actions() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let run = try await server.engine.trigger(pipeline: "ui_slow")
            let cancel = try await server.submit("/runs/\(run.id)/cancel", [])
            #expect(cancel.status == 303, "\(cancel)")
            #expect(cancel.header("Location") == "/runs/\(run.id)?done=cancelled")
            #expect(try await server.waitForRun(run.id) == .cancelled)

            // Retry waits until the cancelled attempt's process has exited.
            let deadline = ContinuousClock.now + .seconds(20)
            var retry = try await server.submit("/runs/\(run.id)/retry", [])
            while retry.header("Location") == "/runs/\(run.id)?done=still-stopping" && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
                retry = try await server.submit("/runs/\(run.id)/retry", [])
            }
            #expect(retry.status == 303)
            #expect(retry.header("Location") == "/runs/\(run.id)?done=retried")
            #expect(try await server.store.run(id: run.id)?.state == .running)
            let again = try await server.submit("/runs/\(run.id)/cancel", [])
            #expect(again.header("Location") == "/runs/\(run.id)?done=cancelled")
            #expect(try await server.waitForRun(run.id) == .cancelled)

            let pause = try await server.submit("/pipelines/ui_ml/pause", [("next", "/")])
            #expect(pause.status == 303)
            #expect(pause.header("Location") == "/?done=paused")
            #expect(try await server.store.pipeline(named: "ui_ml")?.paused == true)
            let list = try await server.page("/")
            #expect(list.body.contains("Paused"))
        }
    }

    @Test("a form posted from another site is refused")
    func crossSitePost() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let response = try await server.submit(
                "/pipelines/ui_ml/trigger", [], headers: ["Origin": "http://evil.example"])
            #expect(response.status == 403)
            #expect(try await server.store.runs(RunQuery()).isEmpty)
            let sameSite = try await server.submit("/pipelines/ui_ml/trigger", [], headers: ["Origin": server.baseURL])
            #expect(sameSite.status == 303)
        }
    }

    @Test("static files are served with their types, and the runs list and login page render")
    func staticFilesAndOtherPages() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all) { server in
            let css = try await server.page("/static/baton.css")
            #expect(css.status == 200)
            #expect(css.contentType.hasPrefix("text/css"))
            #expect(css.body.contains("prefers-color-scheme: dark"))
            let script = try await server.page("/static/baton.js")
            #expect(script.contentType.hasPrefix("text/javascript"))
            #expect(try await server.page("/static/nope.js").status == 404)

            let run = try await server.engine.trigger(pipeline: "ui_ml")
            #expect(try await server.waitForRun(run.id) == .success)
            let runs = try await server.page("/runs?state=success")
            #expect(runs.status == 200)
            #expect(runs.body.contains("href=\"/runs/\(run.id)\""))
            #expect(try await server.page("/runs?state=failed").body.contains("No runs match."))

            let login = try await server.page("/login?next=/runs")
            #expect(login.status == 200)
            #expect(login.body.contains("type=\"password\""))
            let bad = try await server.submit("/login", [("token", "baton_nope_nope"), ("next", "//evil.example")])
            #expect(bad.status == 401)
            #expect(bad.body.contains("not valid"))
            #expect(bad.body.contains("name=\"next\" value=\"/\""), "an off-site next is replaced")
        }
    }
}

@Suite("Web UI sign-in")
struct UILoginTests {
    @Test("with auth on, pages send a browser to /login; a valid token sets an HttpOnly, SameSite=Strict cookie")
    func login() async throws {
        try await UITestServer.with(pipelines: UIFixtures.all, requireAuth: true) { server in
            let anonymous = try await server.page("/pipelines/ui_etl")
            #expect(anonymous.status == 303)
            #expect(anonymous.header("Location") == "/login?next=/pipelines/ui_etl")
            let form = try await server.page("/login?next=/pipelines/ui_etl")
            #expect(form.status == 200)
            #expect(form.body.contains("name=\"next\" value=\"/pipelines/ui_etl\""))

            let viewer = try await server.tokens.create(team: "data_team", role: .viewer, description: nil)
            let signedIn = try await server.submit("/login", [("token", viewer.token), ("next", "/pipelines/ui_etl")])
            #expect(signedIn.status == 303, "\(signedIn)")
            #expect(signedIn.header("Location") == "/pipelines/ui_etl")
            let cookie = try #require(signedIn.header("Set-Cookie"))
            #expect(cookie.hasPrefix("baton_token=\(viewer.token);"))
            #expect(cookie.contains("HttpOnly"))
            #expect(cookie.contains("SameSite=Strict"))

            let page = try await server.fetch("GET", "/pipelines/ui_etl", headers: ["Cookie": "baton_token=\(viewer.token)"])
            #expect(page.status == 200)
            #expect(page.body.contains("Sign out"))
            // A viewer sees the actions, disabled.
            #expect(page.body.contains("cannot trigger runs"))
        }
    }
}

@Suite("Web UI building blocks")
struct UIBuildingBlockTests {
    @Test("interpolated strings are escaped; HTML fragments are not")
    func htmlEscaping() {
        let name = "<script>alert(\"x\") & 'y'</script>"
        let inner: HTML = "<b>\(name)</b>"
        let html: HTML = "<p title=\"\(name)\">\(inner)</p>"
        #expect(
            html.description
                == "<p title=\"&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;\"><b>&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;</b></p>")
        let missing: String? = nil
        #expect(("<i>\(missing)</i>" as HTML).description == "<i></i>")
    }

    @Test("paths percent-encode names and refuse off-site redirects")
    func paths() {
        #expect(UIPath.pipeline("a b/c") == "/pipelines/a%20b%2Fc")
        #expect(UIPath.with("/runs", [("state", "failed"), ("owner", nil), ("pipeline", "x&y")]) == "/runs?state=failed&pipeline=x%26y")
        #expect(UIPath.safeLocal("/runs/1") == "/runs/1")
        #expect(UIPath.safeLocal("//evil.example") == "/")
        #expect(UIPath.safeLocal("/\\evil.example") == "/")
        #expect(UIPath.safeLocal("https://evil.example") == "/")
    }

    @Test("form bodies decode plus signs and escapes; the last value of a repeated name wins")
    func formDecoding() {
        let form = FormData(encoded: "a=1&b=x+y%26z%3D&a=2&empty=&flag")
        #expect(form["a"] == "2")
        #expect(form["b"] == "x y&z=")
        #expect(form["empty"] == "")
        #expect(form["flag"] == "")
        #expect(form["missing"] == nil)
    }

    @Test("layered layout: longest-path layers, no overlaps, long edges bend through virtual nodes")
    func dagLayout() {
        let layout = DAGLayout(tasks: [
            ("a", []), ("b", ["a"]), ("c", ["a"]), ("d", ["b", "c"]), ("e", ["a", "d"]),
        ])
        let layer = Dictionary(uniqueKeysWithValues: layout.nodes.map { ($0.name, $0.layer) })
        #expect(layer == ["a": 0, "b": 1, "c": 1, "d": 2, "e": 3])
        for first in layout.nodes {
            for second in layout.nodes where second.name > first.name && second.layer == first.layer {
                #expect(abs(first.y - second.y) >= DAGLayout.nodeHeight, "\(first.name) overlaps \(second.name)")
            }
        }
        let long = layout.edges.first { $0.from == "a" && $0.to == "e" }
        #expect((long?.points.count ?? 0) > 2, "a→e skips two layers and bends through them")
        #expect(layout.edges.count == 6)
        #expect(layout.nodes.allSatisfy { $0.x >= 0 && $0.y >= 0 && $0.x + $0.width <= layout.width })
    }

    @Test("barycenter ordering removes the crossing of a twisted bipartite graph")
    func crossingReduction() {
        // Declared so that the first layer's order crosses every edge of the second.
        let layout = DAGLayout(tasks: [("a", []), ("b", []), ("c", []), ("z", ["c"]), ("y", ["b"]), ("x", ["a"])])
        let y = Dictionary(uniqueKeysWithValues: layout.nodes.map { ($0.name, $0.y) })
        let parents = [("x", "a"), ("y", "b"), ("z", "c")]
        let upper = parents.sorted { y[$0.1]! < y[$1.1]! }.map(\.0)
        let lower = parents.map(\.0).sorted { y[$0]! < y[$1]! }
        #expect(upper == lower, "children are ordered like their parents")
    }

    @Test("placement keeps order and spacing while staying close to the wished positions")
    func placement() {
        let placed = DAGLayout.placeInOrder(desired: [0, 0, 0], gaps: [0, 10, 10])
        #expect(placed == [-10, 0, 10])
        let spread = DAGLayout.placeInOrder(desired: [0, 100], gaps: [0, 10])
        #expect(spread == [0, 100])
    }

    @Test("durations and states read well")
    func formatting() {
        #expect(Format.duration(0.42) == "0.4s")
        #expect(Format.duration(75) == "1m 15s")
        #expect(Format.duration(120) == "2m")
        #expect(Format.duration(3 * 3600 + 120) == "3h 02m")
        #expect(Format.stateClass("up_for_retry") == "st-up_for_retry")
        #expect(Format.stateClass("x\" onload=\"y") == "st-xonloady")
        #expect(GanttChart.niceStep(7) == 10)
    }
}
