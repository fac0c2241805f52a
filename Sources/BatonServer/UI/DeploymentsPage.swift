import BatonCore
import BatonDeploy
import BatonGateway
import BatonStore
import Foundation
import Hummingbird

/// `/deployments` and `/deployments/{name}`: model deployments with their versions, replicas,
/// traffic, per-version gateway figures, rollout progress and audit trail, and the rollout
/// decisions (promote, rollback, pause, resume, abort) as forms. The pages render the same
/// status document `GET /api/v1/deployments/{name}` answers, so the two always agree.
enum DeploymentsPage {
    static let actions = ["promote", "rollback", "pause", "resume", "abort"]
    static let labels = ["promote": "Promote", "rollback": "Roll back", "pause": "Pause", "resume": "Resume", "abort": "Abort"]

    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        WebUI.page(router, "/deployments", context) { _, ui in try await list(ui) }
        WebUI.page(router, "/deployments/:name", context) { request, ui in
            try await detail(request.parameter("name"), flash: request.request.query("done"), ui: ui)
        }
        for action in actions {
            WebUI.action(router, "/deployments/:name/\(action)", context) { request, form, ui in
                try await perform(action, name: request.parameter("name"), form: form, ui: ui)
            }
        }
    }

    static func path(_ name: String) -> String { "/deployments/" + UIPath.segment(name) }

    static func manager(_ ui: UIEnvironment) throws -> DeploymentManager {
        guard let manager = ui.context.deployments else {
            throw UINotFound(message: "Deployments are not enabled on this server: run `baton up` or `baton server`.")
        }
        return manager
    }

    // MARK: - Pages

    static func list(_ ui: UIEnvironment) async throws -> Page {
        guard let manager = ui.context.deployments else {
            return Page(
                title: "Deployments", section: .deployments,
                body: """
                    <div class="page-head"><div><h1>Deployments</h1></div></div>
                    \(Layout.emptyState("Deployments are not enabled on this server.", hint: "<p class=\"muted\">Run <code>baton up</code> or <code>baton server</code>, which supervise deployments.</p>"))
                    """)
        }
        try await manager.refreshFromStore()
        let statuses = await manager.statuses()
        // Replica states and traffic move without run events: the page refreshes every few seconds.
        let supervised = await manager.isSupervising() && !statuses.isEmpty
        var rows: [HTML] = []
        for status in statuses {
            let name = status["name"]?.scalarText ?? ""
            let desired = await manager.spec(name)?.replicas
            rows.append(listRow(status, desiredReplicas: desired))
        }
        let table: HTML =
            rows.isEmpty
            ? Layout.emptyState(
                "No deployments.",
                hint: "<p class=\"muted\">Declare one in a YAML file (top-level <code>deployments:</code>) in <code>\(ui.context.pipelinesDirectory)</code>, or <code>PUT /api/v1/deployments/NAME</code>.</p>")
            : """
            <div class="table-scroll"><table class="table">
            <thead><tr><th scope="col">Deployment</th><th scope="col">Owner</th><th scope="col">Stable</th><th scope="col">Canary</th>\
            <th scope="col">Traffic</th><th scope="col">Rollout</th><th scope="col">Replicas healthy / total</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
        return Page(
            title: "Deployments", section: .deployments,
            body: """
                <div class="page-head"><div><h1>Deployments</h1><p class="subtitle">\(Format.plural(statuses.count, "deployment"))</p></div></div>
                <section class="card flush" aria-label="Deployments" data-region="deployments"\(supervised ? " data-active" as HTML : .empty)>\(table)</section>
                """,
            live: .all)
    }

    static func listRow(_ status: JSONValue, desiredReplicas: Int?) -> HTML {
        let name = status["name"]?.scalarText ?? ""
        let replicas = allReplicas(status)
        let healthy = replicas.filter { $0["state"]?.scalarText == "healthy" }.count
        let total = max(replicas.count, desiredReplicas ?? 0)
        return """
            <tr><th scope="row"><a href="\(path(name))">\(name)</a><div class="note">\(status["description"]?.scalarText)</div></th>\
            <td>\(status["owner"]?.scalarText ?? "–")</td><td>\(versionText(status["stable"]))</td><td>\(versionText(status["canary"]))</td>\
            <td>\(trafficText(status))</td><td>\(rolloutBadge(status))</td><td>\(healthy) / \(total)</td></tr>
            """
    }

    static func detail(_ name: String, flash: String?, error: String? = nil, ui: UIEnvironment) async throws -> Page {
        let manager = try manager(ui)
        try await manager.refreshFromStore()
        let status = await manager.status(name)
        guard status != .null else {
            let suggestion = Suggest.closest(to: name, in: await manager.names())
            throw UINotFound(message: "There is no deployment ‘\(name)’.", suggestion: suggestion.map { ($0, path($0)) })
        }
        let events = try await manager.events(name, limit: 50, before: nil)
        let drift = try? await manager.driftJSON(name)
        let ab = try? await manager.abSummary(name)
        var page = Page(
            title: "Deployment \(name)", section: .deployments,
            breadcrumbs: [("Deployments", "/deployments"), (name, nil)],
            body: detailBody(
                status, events: events, drift: drift, ab: ab, timeline: ui.context.gateway.timeline(deployment: name), flash: flash,
                error: error, canOperate: ui.canOperate),
            live: .all, refreshURL: path(name))
        if error != nil { page.status = .conflict }
        return page
    }

    /// The detail page's content from the status document and the audit trail.
    static func detailBody(
        _ status: JSONValue, events: [DeploymentEventRecord], drift: JSONValue? = nil, ab: JSONValue? = nil,
        timeline: [String: [TimelinePoint]] = [:], flash: String?, error: String?, canOperate: Bool
    ) -> HTML
    {
        let name = status["name"]?.scalarText ?? ""
        let subtitle = [
            status["description"]?.scalarText, status["owner"]?.scalarText.map { "owner \($0)" },
            status["model"]?.scalarText.map { "model \($0)" }, status["source"]?.scalarText.map { "source \($0)" },
        ].compactMap { $0 }.joined(separator: " · ")
        var message: HTML = Layout.flash(flash.map { "deploy-" + $0 })
        if let error { message += "<div class=\"flash warn\" role=\"alert\">\(error)</div>" }
        let supervised = status["supervised"] == .bool(true)
        let note: HTML =
            supervised ? .empty : "<p class=\"muted\">This server does not supervise replicas now (it follows the leader); replicas and gateway figures are the leader's.</p>"
        return """
            <div class="page-head"><div><h1>\(name) \(rolloutBadge(status))</h1><p class="subtitle">\(subtitle)</p></div></div>
            \(message)\(note)
            <div data-region="deployment"\(supervised ? " data-active" as HTML : .empty)>
            \(Layout.card("Versions and replicas", versions(status)))
            \(Layout.card("Live figures", id: "stats", statsSection(status) + trafficCharts(timeline)))
            \(Layout.card("Rollout", id: "rollout", rollout(status)))
            </div>
            \(Layout.card("Decisions", id: "actions", actionForms(status, canOperate: canOperate)))
            \(Layout.card("Drift", id: "drift", driftSection(name, drift)))
            \(ab.map { Layout.card("A/B test", id: "ab", abSection(name, $0)) } ?? .empty)
            \(Layout.card("History", id: "history", history(events)))
            """
    }

    // MARK: - Sections

    static func versions(_ status: JSONValue) -> HTML {
        var parts: [HTML] = []
        parts.append("<p>Traffic: \(trafficText(status))</p>")
        for role in ["stable", "canary"] {
            guard let version = status[role], version != .null else {
                parts.append("<h3>\(role.capitalized)</h3><p class=\"muted\">None.</p>")
                continue
            }
            let percent = status.value(at: ["traffic", role + "_percent"])?.scalarText ?? "0"
            let replicas = (version["replicas"]?.arrayValue ?? []).map { replica -> HTML in
                let state = replica["state"]?.scalarText ?? ""
                return """
                    <tr><th scope="row"><code>\(replica["id"]?.scalarText)</code></th><td>\(replica["port"]?.scalarText)</td>\
                    <td>\(replica["pid"]?.scalarText ?? "–")</td><td>\(Format.badge(state))</td><td>\(replica["restarts"]?.scalarText)</td></tr>
                    """
            }
            let table: HTML =
                replicas.isEmpty
                ? "<p class=\"muted\">No replicas running.</p>"
                : """
                <div class="table-scroll"><table class="table compact">
                <thead><tr><th scope="col">Replica</th><th scope="col">Port</th><th scope="col">PID</th><th scope="col">State</th><th scope="col">Restarts</th></tr></thead>
                <tbody>\(replicas)</tbody></table></div>
                """
            parts.append(
                """
                <h3>\(role.capitalized): version \(version["version"]?.scalarText) <span class="muted">· \(percent)% of traffic</span></h3>
                <p class="muted"><code>\(version["model_uri"]?.scalarText)</code></p>
                \(table)
                """)
        }
        return HTML.join(parts)
    }

    static func statsSection(_ status: JSONValue) -> HTML {
        let stats = status["stats"]?.objectValue ?? [:]
        guard !stats.isEmpty else {
            return Layout.emptyState("No requests through the gateway yet.", hint: "<p class=\"muted\">Figures appear as <code>POST /serve/NAME/predict</code> is called.</p>")
        }
        let roles: [String: String] = [
            status.value(at: ["stable", "version"])?.scalarText ?? "": "stable",
            status.value(at: ["canary", "version"])?.scalarText ?? "": "canary",
        ]
        let ordered = stats.keys.sorted { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }
        let peak = max(1, ordered.compactMap { stats[$0]?["p99_ms"].flatMap(number) }.max() ?? 1)
        let rows = ordered.map { version -> HTML in
            let figures = stats[version] ?? .null
            let rate = figures["error_rate"].flatMap(number) ?? 0
            let p50 = figures["p50_ms"].flatMap(number) ?? 0
            let p99 = figures["p99_ms"].flatMap(number) ?? 0
            return """
                <tr><th scope="row">\(version)<span class="muted"> \(roles[version] ?? "")</span></th>\
                <td>\(figures["requests"]?.scalarText)</td><td>\(figures["errors"]?.scalarText)</td>\
                <td>\(String(format: "%.2f%%", rate * 100))</td><td>\(String(format: "%.1f ms", p50))</td><td>\(String(format: "%.1f ms", p99))</td>\
                <td>\(latencyBar(p50: p50, p99: p99, peak: peak, label: "version \(version)"))</td></tr>
                """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Version</th><th scope="col">Requests</th><th scope="col">Errors</th><th scope="col">Error rate</th>\
            <th scope="col">p50</th><th scope="col">p99</th><th scope="col">Latency</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            <p class="muted">Since the gateway started counting; the bars share one scale (p99 light, p50 dark).</p>
            """
    }

    /// p50 over p99 on a shared scale (SVG attributes only: the pages allow no inline style).
    /// Requests per second, error rate and p99 per version over the last ten minutes.
    static func trafficCharts(_ timeline: [String: [TimelinePoint]]) -> HTML {
        let versions = timeline.keys.sorted { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }
        guard versions.contains(where: { timeline[$0]?.contains { $0.requests > 0 } == true }),
            let first = timeline.values.compactMap(\.first?.start).min(), let last = timeline.values.compactMap(\.last?.start).max()
        else { return .empty }
        let to = last.addingTimeInterval(10)
        func series(_ value: (TimelinePoint) -> Double?) -> [LineChart.Series] {
            versions.map { version in
                LineChart.Series(
                    label: "v\(version)", href: nil,
                    points: (timeline[version] ?? []).compactMap { point in value(point).map { (point.start, $0, point.requests) } })
            }
        }
        let rate = series { Double($0.requests) / 10 }
        let errors = series { $0.requests > 0 ? Double($0.errors) / Double($0.requests) : nil }
        let p99 = series { $0.requests > 0 ? $0.p99Ms : nil }
        func chart(_ title: String, _ lines: [LineChart.Series], _ format: LineChart.ValueFormat) -> HTML {
            "<figure class=\"metric-chart\"><figcaption>\(title)</figcaption>\(LineChart.svg(series: lines, from: first, to: to, range: .day, format: format, compact: true, clockTicks: 120))</figure>"
        }
        return """
            <h3>Last ten minutes</h3>
            <div class="charts">\(chart("Requests per second", rate, .number))\(chart("Error rate", errors, .percent))\(chart("p99 latency (ms)", p99, .number))</div>
            """
    }

    static func latencyBar(p50: Double, p99: Double, peak: Double, label: String) -> HTML {
        let width = 120.0
        return """
            <svg class="histogram" role="img" aria-label="\(label): p50 \(String(format: "%.1f", p50)) ms, p99 \(String(format: "%.1f", p99)) ms" \
            viewBox="0 0 \(width) 12" width="\(width)" height="12">\
            <rect class="hist-bar" opacity="0.4" x="0" y="0" width="\(width * p99 / peak)" height="12"/>\
            <rect class="hist-bar" x="0" y="0" width="\(width * p50 / peak)" height="12"/></svg>
            """
    }

    static func rollout(_ status: JSONValue) -> HTML {
        guard let rollout = status["rollout"], rollout != .null else {
            return Layout.emptyState("No rollout yet.", hint: "<p class=\"muted\">Start a canary with <code>POST /api/v1/deployments/NAME/canary</code>.</p>")
        }
        let current = rollout["step"].flatMap(number).map { Int($0) } ?? 0
        let steps = (rollout["steps"]?.arrayValue ?? []).enumerated().map { index, step -> HTML in
            let marker: HTML = index == current ? " <strong>(current)</strong>" : (index < current ? " <span class=\"muted\">done</span>" : .empty)
            return "<li>\(step["percent"]?.scalarText ?? "?")% for \(Format.duration(step["duration_seconds"].flatMap(number)))\(marker)</li>"
        }
        var parts: [HTML] = [
            """
            <p>State \(Format.badge(rollout["state"]?.scalarText ?? "")) · step \(current + 1) of \(max(steps.count, 1))\
            \(rollout["step_started_at"]?.scalarText.map { " · step started " + time($0) } ?? .empty)</p>
            """
        ]
        if !steps.isEmpty { parts.append("<ol class=\"steps\">\(steps)</ol>") }
        if let analysis = rollout["last_analysis"], analysis != .null {
            let checks = (analysis["checks"]?.arrayValue ?? []).map { check -> HTML in
                let passed: String
                switch check["passed"] {
                case .bool(true)?: passed = "passed"
                case .bool(false)?: passed = "failed"
                default: passed = "waiting"
                }
                return """
                    <tr><th scope="row">\(check["check"]?.scalarText)</th><td>\(figure(check["canary"]))</td><td>\(figure(check["stable"]))</td>\
                    <td>\(figure(check["threshold"]))</td><td>\(Format.badge(passed))</td></tr>
                    """
            }
            parts.append(
                """
                <h3>Last analysis \(Format.badge(analysis["verdict"]?.scalarText ?? ""))</h3>
                <p class="muted">At \(time(analysis["at"]?.scalarText ?? "")) · canary \(analysis["canary_requests"]?.scalarText) requests · stable \(analysis["stable_requests"]?.scalarText) requests</p>
                <div class="table-scroll"><table class="table compact">
                <thead><tr><th scope="col">Check</th><th scope="col">Canary</th><th scope="col">Stable</th><th scope="col">Threshold</th><th scope="col">Result</th></tr></thead>
                <tbody>\(checks)</tbody></table></div>
                """)
        }
        return HTML.join(parts)
    }

    static func actionForms(_ status: JSONValue, canOperate: Bool) -> HTML {
        let name = status["name"]?.scalarText ?? ""
        let state = status.value(at: ["rollout", "state"])?.scalarText
        let hasCanary = status["canary"].map { $0 != .null } ?? false
        let open = hasCanary && (state == "progressing" || state == "paused")
        let enabled: [String: Bool] = [
            "promote": open, "rollback": open, "abort": open, "pause": hasCanary && state == "progressing",
            "resume": hasCanary && state == "paused",
        ]
        let buttons = actions.map { action -> HTML in
            let disabled: HTML = canOperate && enabled[action] == true ? .empty : " disabled"
            let label = labels[action] ?? action
            let confirm: HTML = ["promote", "rollback", "abort"].contains(action) ? " data-confirm=\"\(label) \(name)?\"" : .empty
            return """
                <button type="submit" formaction="\(path(name))/\(action)" class="button small\(action == "promote" ? " primary" as HTML : .empty)"\(confirm)\(disabled)>\(label)</button>
                """
        }
        let who: HTML = canOperate ? .empty : "<p class=\"muted\">Operators and admins can take these decisions.</p>"
        // One form so the reason goes with whichever decision is taken; the hidden disabled
        // button first keeps Enter in the reason field from submitting a decision.
        return """
            <form method="post" action="\(path(name))" class="decision-form">
            <button type="submit" disabled hidden aria-hidden="true" tabindex="-1"></button>
            <div class="field"><label class="field-label" for="decision-reason">Reason <span class="muted">(optional, kept in the history)</span></label>\
            <input type="text" id="decision-reason" name="reason" maxlength="200"></div>
            <div class="form-actions">\(buttons)</div>
            </form>\(who)
            <p class="muted">The same as <code>POST /api/v1/deployments/\(name)/ACTION</code>; each decision lands in the history below.</p>
            """
    }

    /// PSI per feature and of the predictions, per version, against the version's baseline.
    static func driftSection(_ name: String, _ drift: JSONValue?) -> HTML {
        let api = "/api/v1/deployments/" + UIPath.segment(name) + "/drift"
        guard let drift, let versions = drift["versions"]?.objectValue, !versions.isEmpty else {
            return "<p class=\"muted\">No drift figures yet (no version serving). The API: <a href=\"\(api)\"><code>GET \(api)</code></a>.</p>"
        }
        let limit = drift["max_psi"]?.scalarText
        let window = drift["window_seconds"]?.scalarText ?? "?"
        let alertNote = limit.map { ", alert above \($0)" } ?? ""
        var parts: [HTML] = [
            "<p class=\"muted\">Population stability index over the last \(window) s\(alertNote); under 0.1 is stable, over 0.25 a shift (<a href=\"\(api)\">JSON</a>).</p>"
        ]
        for version in versions.keys.sorted() {
            let entry = versions[version] ?? .null
            guard entry["baseline"]?.scalarText == "found" else {
                parts.append("<h3>v\(version)</h3><p class=\"muted\">No baseline.json recorded with this version.</p>")
                continue
            }
            var rows: [HTML] = []
            let features = entry["features"]?.objectValue ?? [:]
            var named = features.keys.sorted().map { ($0, features[$0] ?? .null) }
            if let prediction = entry["prediction"], prediction != .null { named.append(("(prediction)", prediction)) }
            for (feature, figures) in named {
                rows.append("<tr><th scope=\"row\">\(feature)</th><td>\(figures["psi"]?.scalarText ?? "–")</td><td>\(figures["live_count"]?.scalarText ?? "0")</td></tr>")
            }
            parts.append("""
                <h3>v\(version)</h3><div class="table-scroll"><table class="table compact">
                <thead><tr><th scope="col">Feature</th><th scope="col">PSI</th><th scope="col">Live values</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """)
        }
        return "\(parts)"
    }

    /// The latest A/B test: per metric each variant's mean and interval, and the difference.
    static func abSection(_ name: String, _ summary: JSONValue) -> HTML {
        let api = "/api/v1/deployments/" + UIPath.segment(name) + "/ab"
        let stable = summary["stable"]?.scalarText ?? "?"
        let candidate = summary["candidate"]?.scalarText ?? "?"
        let ended = summary["ended_at"]?.scalarText.map { ", ended \(time($0))" as HTML } ?? .empty
        let head: HTML = """
            <p class="muted">v\(candidate) at \(summary["percent"]?.scalarText ?? "?") % against v\(stable), \(summary["state"]?.scalarText ?? ""), \
            started \(time(summary["started_at"]?.scalarText ?? ""))\(ended). Intervals are 95 %; a difference counts when its interval \
            leaves out 0 (<a href="\(api)">JSON</a>).</p>
            """
        let metrics = summary["metrics"]?.arrayValue ?? []
        guard !metrics.isEmpty else {
            return head + "<p class=\"muted\">No outcomes reported yet: applications send <code>POST /serve/\(name)/feedback</code> with the request id of each prediction.</p>"
        }
        var rows: [HTML] = []
        for metric in metrics {
            let difference = metric["difference"]
            let verdict: HTML = metric["significant"] == .bool(true)
                ? "<span class=\"badge st-success\">v\(metric["higher"]?.scalarText ?? "?") higher</span>"
                : "<span class=\"badge st-none\">no clear difference</span>"
            func cell(_ version: String) -> HTML {
                let variant = metric["variants"]?[version]
                return "<td>\(figure(variant?["mean"])) <span class=\"muted\">[\(figure(variant?["low"])), \(figure(variant?["high"]))] n=\(variant?["count"]?.scalarText ?? "0")</span></td>"
            }
            rows.append("""
                <tr><th scope="row">\(metric["name"]?.scalarText ?? "")</th>\(cell(stable))\(cell(candidate))\
                <td>\(figure(difference?["value"])) <span class="muted">[\(figure(difference?["low"])), \(figure(difference?["high"]))]</span></td>\
                <td>\(verdict)</td></tr>
                """)
        }
        return head + """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Metric</th><th scope="col">v\(stable) (stable)</th><th scope="col">v\(candidate) (candidate)</th>\
            <th scope="col">Difference</th><th scope="col">Verdict</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }

    static func history(_ events: [DeploymentEventRecord]) -> HTML {
        guard !events.isEmpty else { return Layout.emptyState("No decisions recorded yet.") }
        let rows = events.map { event -> HTML in
            """
            <tr><td>\(Format.time(event.at))</td><td>\(event.actor)</td><td>\(event.action)</td><td>\(event.version ?? "–")</td><td>\(event.reason ?? "")</td></tr>
            """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">At</th><th scope="col">Actor</th><th scope="col">Action</th><th scope="col">Version</th><th scope="col">Reason</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }

    // MARK: - Actions

    static func perform(_ action: String, name: String, form: FormData, ui: UIEnvironment) async throws -> WebUI.ActionResult {
        let manager = try manager(ui)
        guard await manager.spec(name) != nil else {
            throw UINotFound(message: "There is no deployment ‘\(name)’.")
        }
        guard ui.canOperate else {
            return .page(try await detail(name, flash: nil, error: "Only operators and admins can \(action) a rollout.", ui: ui))
        }
        // Recorded as the API records it: the token's team, else its id, else `local`.
        let who = ui.identity.team ?? ui.identity.tokenID ?? "local"
        let reason = form["reason"].flatMap { $0.isEmpty ? nil : $0 }
        do {
            switch action {
            case "promote": _ = try await manager.promote(name, actor: who, reason: reason)
            case "rollback": _ = try await manager.rollback(name, actor: who, reason: reason ?? "rolled back by \(who)")
            case "pause": _ = try await manager.pause(name, actor: who, reason: reason)
            case "resume": _ = try await manager.resume(name, actor: who, reason: reason)
            default: _ = try await manager.abort(name, actor: who, reason: reason ?? "aborted by \(who)")
            }
        } catch let failure as DeploymentError {
            var text = failure.description
            if let fix = failure.fix { text += " (\(fix))" }
            var page = try await detail(name, flash: nil, error: text, ui: ui)
            page.refreshURL = path(name)
            return .page(page)
        }
        return .redirect(WebUI.flash(path(name), action))
    }

    // MARK: - Helpers

    static func allReplicas(_ status: JSONValue) -> [JSONValue] {
        ["stable", "canary"].flatMap { status[$0]?["replicas"]?.arrayValue ?? [] }
    }

    static func versionText(_ version: JSONValue?) -> HTML {
        guard let version, version != .null else { return "<span class=\"muted\">–</span>" }
        return "<code>\(version["version"]?.scalarText)</code>"
    }

    static func trafficText(_ status: JSONValue) -> String {
        let traffic = status["traffic"]
        let stable = traffic?["stable_percent"]?.scalarText ?? "0"
        let canary = traffic?["canary_percent"]?.scalarText ?? "0"
        let mode = traffic?["mode"]?.scalarText ?? ""
        if status["canary"] == nil || status["canary"] == .null { return status["stable"] == .null ? "–" : "stable \(stable)%" }
        return "stable \(stable)% · canary \(canary)%" + (mode == "shadow" ? " (shadow)" : "")
    }

    static func rolloutBadge(_ status: JSONValue) -> HTML {
        guard let state = status.value(at: ["rollout", "state"])?.scalarText else { return "<span class=\"muted\">–</span>" }
        return Format.badge(state)
    }

    /// An ISO 8601 instant of the status document as the other pages show times.
    static func time(_ text: String) -> HTML {
        guard let date = try? Date(text, strategy: .iso8601) else { return "\(text)" }
        return Format.time(date)
    }

    static func number(_ value: JSONValue) -> Double? {
        if case .number(let number) = value { return number }
        return nil
    }

    static func figure(_ value: JSONValue?) -> String {
        guard let value, let number = number(value) else { return "n/a" }
        return String(format: "%.4g", number)
    }
}
