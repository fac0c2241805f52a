import BatonAPI
import BatonCore
import BatonStore
import Foundation
import BatonEngine

/// `/`: every loaded pipeline with its owner, schedule, next run, paused state and recent
/// runs; a filter by owning team; how many runs ended in each state over the last day.
enum PipelinesPage {
    static let recentRunCount = 14
    static let noOwner = "(none)"

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let now = Date()
        let owner = request.request.query("owner").flatMap { $0.isEmpty ? nil : $0 }
        let records = try await PipelineRoutes.loadedPipelines(ui.context)
        var owners: [String: Int] = [:]
        for record in records { owners[record.spec.owner ?? noOwner, default: 0] += 1 }
        let shown = records.filter { owner == nil || ($0.spec.owner ?? noOwner) == owner }

        var rows: [HTML] = []
        for record in shown {
            let recent = try await ui.store.runs(RunQuery(pipeline: record.name, limit: recentRunCount))
            rows.append(row(APIPipeline(record, recentRuns: recent, now: now), ui: ui, now: now))
        }

        let names = Set(shown.map(\.name))
        let dayAgo = now.addingTimeInterval(-86400)
        let latest = try await ui.store.runs(RunQuery(limit: 500))
        var counts: [String: Int] = [:]
        for run in latest where names.contains(run.pipeline) && (run.createdAt >= dayAgo || !run.state.isTerminal) {
            counts[run.state.rawValue, default: 0] += 1
        }

        var filter: [HTML] = []
        let allCurrent: HTML = owner == nil ? " aria-current=\"true\"" : ""
        filter.append("<a href=\"/\"\(allCurrent)>All teams <span class=\"count\">\(records.count)</span></a>")
        for (name, count) in owners.sorted(by: { $0.key < $1.key }) {
            let current: HTML = name == owner ? " aria-current=\"true\"" : ""
            filter.append(
                "<a href=\"\(UIPath.with("/", [("owner", name)]))\"\(current)>\(name) <span class=\"count\">\(count)</span></a>")
        }

        var stats: [HTML] = []
        for state in StateOrder.run {
            let count = counts[state] ?? 0
            let href = UIPath.with("/runs", [("state", state), ("owner", owner)])
            stats.append(
                """
                <a class="stat \(Format.stateClass(state))\(count == 0 ? " zero" : "")" href="\(href)">\
                <span class="stat-num">\(count)</span><span class="stat-label"><span class="dot" aria-hidden="true"></span>\(Format.stateWords(state))</span></a>
                """)
        }

        var problems: HTML = .empty
        let issues = await ui.engine.issues().filter { $0.severity == .error }
        if !issues.isEmpty {
            let files = Set(issues.map(\.file)).count
            let items = issues.prefix(6).map { "<li><code>\($0.description)</code></li>" as HTML }
            problems = """
                <details class="flash warn"><summary>\(Format.plural(files, "pipeline file")) \(files == 1 ? "has" : "have") errors \
                and \(files == 1 ? "is" : "are") not loaded (or keep \(files == 1 ? "its" : "their") last good version).</summary>\
                <ul class="issues">\(items)</ul><p class="muted">Run <code>baton validate</code> for every problem with a fix.</p></details>
                """
        }

        let table: HTML
        if rows.isEmpty {
            table = Layout.emptyState(
                records.isEmpty ? "No pipelines loaded." : "No pipelines owned by \(owner ?? "")",
                hint: records.isEmpty
                    ? "<p class=\"muted\">Add a YAML file to <code>\(ui.context.pipelinesDirectory)</code>; it is picked up within seconds.</p>"
                    : "<p><a href=\"/\">Show all teams</a></p>")
        } else {
            table = """
                <div class="table-scroll"><table class="table pipelines">
                <thead><tr><th scope="col">Pipeline</th><th scope="col">Owner</th><th scope="col">Schedule</th>\
                <th scope="col">Next run</th><th scope="col">Recent runs</th><th scope="col">Status</th>\
                <th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
                <tbody>\(rows)</tbody>
                </table></div>
                """
        }

        let teams = owners.count
        return Page(
            title: owner.map { "Pipelines of \($0)" } ?? "Pipelines",
            section: .pipelines,
            body: """
                \(Layout.flash(request.request.query("done")))
                <div class="page-head">
                <div><h1>Pipelines</h1><p class="subtitle">\(Format.plural(records.count, "pipeline")) · \(Format.plural(teams, "team"))</p></div>
                <div class="stats" data-region="stats" aria-label="Runs in the last 24 hours by state">\
                <span class="stats-caption">Runs, last 24 h</span>\(stats)</div>
                </div>
                \(problems)
                <nav class="segmented" aria-label="Filter by owner">\(filter)</nav>
                <section class="card flush" aria-label="Pipelines" data-region="pipelines">\(table)</section>
                """,
            live: .all,
            refreshURL: UIPath.with("/", [("owner", owner)]))
    }

    static func row(_ pipeline: APIPipeline, ui: UIEnvironment, now: Date) -> HTML {
        let href = UIPath.pipeline(pipeline.name)
        var description: HTML = .empty
        if let text = pipeline.description, !text.isEmpty {
            description = "<div class=\"sub\" title=\"\(text)\">\(Format.truncated(text, 110))</div>"
        }
        let owner: HTML = pipeline.owner.map {
            "<a class=\"tag\" href=\"\(UIPath.with("/", [("owner", $0)]))\" title=\"Show only \($0)'s pipelines\">\($0)</a>"
        } ?? "<span class=\"muted\">—</span>"
        var next: HTML = "<span class=\"muted\">—</span>"
        if let date = pipeline.next_run {
            next = "\(Format.time(date, seconds: false))<div class=\"sub\">\(Format.relative(date, now: now))</div>"
        } else if pipeline.paused && pipeline.schedule != "none" {
            next = "<span class=\"muted\">paused</span>"
        }
        let timezone: HTML = pipeline.timezone == "UTC" ? .empty : " <span class=\"muted\">\(pipeline.timezone)</span>"
        let status: HTML = pipeline.paused
            ? "<span class=\"pill paused\">Paused</span>" : "<span class=\"pill active\">Active</span>"
        let toggle = pauseForm(pipeline.name, paused: pipeline.paused, next: "/", ui: ui, compact: true)
        return """
            <tr\(pipeline.paused ? " class=\"is-paused\"" : "")>
            <td><a class="strong" href="\(href)">\(pipeline.name)</a>\(description)</td>
            <td>\(owner)</td>
            <td><div>\(pipeline.schedule_description)</div><code class="sub">\(pipeline.schedule)</code>\(timezone)</td>
            <td>\(next)</td>
            <td>\(squares(pipeline.recent_runs, pipeline: pipeline.name))</td>
            <td>\(status)</td>
            <td class="actions">\(toggle)<a class="button small ghost" href="\(href)#trigger" title="Trigger \(pipeline.name)">Trigger</a></td>
            </tr>
            """
    }

    /// Recent runs as squares, oldest left, each linking to its run.
    static func squares(_ runs: [APIRunBrief], pipeline: String) -> HTML {
        guard !runs.isEmpty else { return "<span class=\"muted\">no runs yet</span>" }
        let items = runs.reversed().map { run -> HTML in
            let title = "Run #\(run.id) · \(Format.stateWords(run.state)) · \(Format.dateText(run.logical_date)) UTC"
            return "<a class=\"sq \(Format.stateClass(run.state))\" href=\"\(UIPath.run(run.id))\" title=\"\(title)\" aria-label=\"\(title)\"></a>"
        }
        return "<div class=\"squares\" aria-label=\"Recent runs of \(pipeline), oldest first\">\(items)</div>"
    }

    /// The pause or resume button, a POST form.
    static func pauseForm(_ name: String, paused: Bool, next: String, ui: UIEnvironment, compact: Bool = false) -> HTML {
        let action = UIPath.pipeline(name) + (paused ? "/unpause" : "/pause")
        let label = paused ? "Resume" : "Pause"
        let title = !ui.canOperate ? "Your token's role cannot change pipelines"
            : paused ? "Resume scheduling \(name)" : "Stop scheduling \(name); running runs continue"
        let disabled: HTML = ui.canOperate ? .empty : " disabled"
        return """
            <form method="post" action="\(action)" class="inline"><input type="hidden" name="next" value="\(next)">\
            <button type="submit" class="button \(compact ? "small " : "")\(paused ? "primary" : "ghost")" title="\(title)"\(disabled)>\(label)</button></form>
            """
    }
}
