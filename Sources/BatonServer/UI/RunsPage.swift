import BatonCore
import BatonStore
import Foundation
import BatonEngine

/// `/runs`: recent runs of every pipeline, filtered by state, pipeline or owner, newest first,
/// fifty to a page.
enum RunsPage {
    static let pageSize = 50

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let now = Date()
        func query(_ name: String) -> String? { request.request.query(name).flatMap { $0.isEmpty ? nil : $0 } }
        let state = query("state").flatMap(RunState.init(rawValue:))
        let pipeline = query("pipeline")
        let owner = query("owner")
        let before = query("before").flatMap(Int64.init)

        // The owner filter applies after the store query, so read ahead in pages.
        var runs: [RunRecord] = []
        var cursor = before
        var exhausted = false
        var reads = 0
        while runs.count <= pageSize && !exhausted && reads < 20 {
            let batch = try await ui.store.runs(
                RunQuery(pipeline: pipeline, states: state.map { [$0] }, limit: 200, beforeID: cursor))
            reads += 1
            exhausted = batch.count < 200
            for run in batch {
                cursor = run.id
                if let owner, run.owner != owner { continue }
                runs.append(run)
                if runs.count > pageSize { break }
            }
        }
        let hasMore = runs.count > pageSize
        if hasMore { runs.removeLast() }

        var filters: [HTML] = []
        let base: [(String, String?)] = [("pipeline", pipeline), ("owner", owner)]
        let allCurrent: HTML = state == nil ? " aria-current=\"true\"" : ""
        filters.append("<a href=\"\(UIPath.with("/runs", base))\"\(allCurrent)>All states</a>")
        for name in StateOrder.run {
            let current: HTML = state?.rawValue == name ? " aria-current=\"true\"" : ""
            filters.append(
                """
                <a href="\(UIPath.with("/runs", base + [("state", name)]))"\(current)><span class="dot \(Format.stateClass(name))" \
                aria-hidden="true"></span>\(Format.stateWords(name))</a>
                """)
        }

        let names = await ui.engine.loadedPipelines().map(\.name)
        let options = ([""] + names).map { name -> HTML in
            "<option value=\"\(name)\"\(name == (pipeline ?? "") ? " selected" : "")>\(name.isEmpty ? "All pipelines" : name)</option>"
        }
        let hidden: HTML = [("state", state?.rawValue), ("owner", owner)].compactMap { key, value -> HTML? in
            value.map { "<input type=\"hidden\" name=\"\(key)\" value=\"\($0)\">" }
        }.reduce(HTML.empty, +)

        let rows = runs.map { run -> HTML in
            let duration = run.startedAt.map { (run.endedAt ?? now).timeIntervalSince($0) }
            return """
                <tr><th scope="row"><a class="strong" href="\(UIPath.run(run.id))">#\(run.id)</a></th>\
                <td><a href="\(UIPath.pipeline(run.pipeline))">\(run.pipeline)</a></td>\
                <td>\(run.owner.map { "<a class=\"tag\" href=\"\(UIPath.with("/runs", [("owner", $0)]))\">\($0)</a>" as HTML } ?? "—")</td>\
                <td>\(Format.badge(run.state.rawValue))</td><td>\(run.trigger.rawValue)</td>\
                <td>\(Format.time(run.logicalDate, seconds: false))</td><td>\(Format.time(run.startedAt))</td>\
                <td class="num">\(Format.duration(duration))</td></tr>
                """
        }
        let table: HTML = runs.isEmpty
            ? Layout.emptyState("No runs match.", hint: "<p><a href=\"/runs\">Show all runs</a></p>")
            : """
                <div class="table-scroll"><table class="table runs">
                <thead><tr><th scope="col">Run</th><th scope="col">Pipeline</th><th scope="col">Owner</th>\
                <th scope="col">State</th><th scope="col">Trigger</th><th scope="col">Logical date</th>\
                <th scope="col">Started</th><th scope="col" class="num">Duration</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """
        var pages: [HTML] = []
        if before != nil {
            pages.append("<a class=\"button ghost\" href=\"\(UIPath.with("/runs", base + [("state", state?.rawValue)]))\">← Newest</a>")
        }
        if hasMore, let last = runs.last {
            let next = UIPath.with("/runs", base + [("state", state?.rawValue), ("before", String(last.id))])
            pages.append("<a class=\"button ghost\" href=\"\(next)\">Older runs →</a>")
        }
        let pager: HTML = pages.isEmpty ? .empty : "<p class=\"pager\">\(pages)</p>"
        var subtitle = state.map { "\(Format.stateWords($0.rawValue)) runs" } ?? "All runs"
        if let pipeline { subtitle += " of \(pipeline)" }
        if let owner { subtitle += " owned by \(owner)" }

        return Page(
            title: "Runs",
            section: .runs,
            body: """
                <div class="page-head"><div><h1>Runs</h1><p class="subtitle">\(subtitle), newest first</p></div></div>
                <div class="toolbar">
                <nav class="segmented" aria-label="Filter by state">\(filters)</nav>
                <form method="get" action="/runs" class="inline-form">\(hidden)<label class="sr-only" for="run-pipeline">Pipeline</label>\
                <select id="run-pipeline" name="pipeline" data-autosubmit>\(options)</select>\
                <button type="submit" class="button small ghost">Filter</button></form>
                </div>
                <section class="card flush" aria-label="Runs" data-region="runs">\(table)</section>
                \(pager)
                """,
            live: before == nil ? .all : nil,
            refreshURL: UIPath.with("/runs", base + [("state", state?.rawValue)]))
    }
}
