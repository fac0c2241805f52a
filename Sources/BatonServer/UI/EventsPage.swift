import BatonCore
import BatonEngine
import BatonStore
import Foundation

/// `/events`: recent published events, newest first, each with the runs it started; filter by
/// name, fifty to a page.
enum EventsPage {
    static let pageSize = 50
    /// How many recent runs are searched for the runs each event started. The store keeps no
    /// index from event to run, and older events mostly have older runs, so a bounded scan
    /// of the newest runs answers for the pages people look at.
    static let runScan = 500

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let now = Date()
        func query(_ name: String) -> String? {
            request.request.query(name).map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        }
        let name = query("name")
        let before = query("before").flatMap(Int64.init)

        var events = try await ui.store.events(EventQuery(name: name, limit: pageSize + 1, beforeSeq: before))
        let hasMore = events.count > pageSize
        if hasMore { events.removeLast() }

        var started: [String: [RunRecord]] = [:]
        if !events.isEmpty {
            for run in try await ui.store.runs(RunQuery(limit: runScan)) where run.trigger == .event {
                guard case .string(let id)? = run.event?["id"] else { continue }
                started[id, default: []].append(run)
            }
        }

        let rows = events.map { row($0, runs: (started[$0.id] ?? []).reversed(), now: now) }
        let table: HTML = rows.isEmpty
            ? Layout.emptyState(
                name == nil ? "No events published yet." : "No events named ‘\(name ?? "")’.",
                hint: name == nil
                    ? """
                    <p class="muted">Publish one with <code>baton events publish NAME --data '{...}'</code> or \
                    <code>POST /api/v1/events</code>; producing tasks publish <code>dataset.NAME.updated</code>.</p>
                    """
                    : "<p><a href=\"/events\">Show all events</a></p>")
            : """
                <div class="table-scroll"><table class="table events">
                <colgroup><col class="c-event"><col class="c-id"><col class="c-source"><col class="c-time"><col class="c-payload">\
                <col class="c-runs"></colgroup>
                <thead><tr><th scope="col">Event</th><th scope="col">Id</th><th scope="col">Source</th>\
                <th scope="col">Published</th><th scope="col">Payload</th><th scope="col">Runs started</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """

        // Names to pick from: what pipelines subscribe to, and what was published lately.
        var names = Set(await ui.engine.loadedPipelines().flatMap { $0.spec.triggers.map(\.event) })
        for event in try await ui.store.events(EventQuery(limit: 200)) { names.insert(event.name) }
        let options = names.sorted().map { "<option value=\"\($0)\"></option>" as HTML }

        var pages: [HTML] = []
        if before != nil {
            pages.append("<a class=\"button ghost\" href=\"\(UIPath.events(name: name))\">← Newest</a>")
        }
        if hasMore, let last = events.last {
            pages.append(
                "<a class=\"button ghost\" href=\"\(UIPath.with("/events", [("name", name), ("before", String(last.seq))]))\">Older events →</a>")
        }
        let pager: HTML = pages.isEmpty ? .empty : "<p class=\"pager\">\(pages)</p>"
        let clear: HTML = name == nil ? .empty : "<a class=\"button small ghost\" href=\"/events\">Clear</a>"

        return Page(
            title: name.map { "Events \($0)" } ?? "Events",
            section: .events,
            body: """
                <div class="page-head"><div><h1>Events</h1>\
                <p class="subtitle">\(name.map { "Events named \($0)" } ?? "All events"), newest first, with the runs they started</p></div></div>
                <div class="toolbar">
                <form method="get" action="/events" class="inline-form" role="search">\
                <label class="sr-only" for="event-name">Event name</label>\
                <input type="text" id="event-name" name="name" list="event-names" placeholder="Event name, e.g. dataset.clean_customers.updated" \
                value="\(name ?? "")" spellcheck="false" autocomplete="off">\
                <datalist id="event-names">\(options)</datalist>\
                <button type="submit" class="button small ghost">Filter</button>\(clear)</form>
                </div>
                <section class="card flush" aria-label="Events" data-region="events">\(table)</section>
                \(pager)
                """,
            live: before == nil ? .all : nil,
            refreshURL: UIPath.events(name: name))
    }

    static func row(_ event: EventRecord, runs: [RunRecord], now: Date) -> HTML {
        var name: HTML = "<a class=\"strong\" href=\"\(UIPath.events(name: event.name))\" title=\"Only events named \(event.name)\">\(event.name)</a>"
        if let dataset = HandoffUI.datasetOfUpdateEvent(event.name) {
            name += "<div class=\"sub\">update of <a href=\"\(UIPath.dataset(dataset))\">\(dataset)</a></div>"
        } else if event.name == "sla.missed", case .string(let dataset)? = event.payload["dataset"] {
            name += "<div class=\"sub\">SLA of <a href=\"\(UIPath.dataset(dataset))#sla\">\(dataset)</a></div>"
        }
        let started: HTML
        if runs.isEmpty {
            started = "<span class=\"muted\">none</span>"
        } else {
            let items = runs.map { run -> HTML in
                """
                <li><a class="strong" href="\(UIPath.run(run.id))">#\(run.id)</a> \(Format.badge(run.state.rawValue))\
                <div class="sub"><a class="muted" href="\(UIPath.pipeline(run.pipeline))">\(run.pipeline)</a></div></li>
                """
            }
            started = "<ul class=\"refs\">\(items)</ul>"
        }
        return """
            <tr id="event-\(event.seq)"><td>\(name)</td>\
            <td><code class="event-id" title="\(event.id)">\(event.id)</code></td>\
            <td>\(event.source.map { "\($0)" as HTML } ?? "<span class=\"muted\">—</span>")</td>\
            <td>\(Format.time(event.createdAt))<div class="sub">\(Format.relative(event.createdAt, now: now))</div></td>\
            <td class="payload-cell">\(HandoffUI.payload(event.payload))</td>\
            <td>\(started)</td></tr>
            """
    }
}
