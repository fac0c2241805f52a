import BatonCore
import BatonEngine
import BatonFeatures
import BatonStore
import Foundation
import Hummingbird

/// `/features` and `/features/{view}`: the feature views with their stored rows, entities and
/// freshness, the services, per-feature statistics with histograms, and an entity lookup.
enum FeaturesPage {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        WebUI.page(router, "/features", context) { _, ui in try await list(ui) }
        WebUI.page(router, "/features/:view", context) { request, ui in
            try await view(request.parameter("view"), lookup: request.request, ui)
        }
    }

    static func path(_ view: String) -> String { "/features/" + UIPath.segment(view) }

    static func list(_ ui: UIEnvironment) async throws -> Page {
        let registry = ui.engine.features.registry
        let statuses = Dictionary((await ui.engine.datasetStatuses()).map { ($0.dataset.name, $0) }, uniquingKeysWith: { first, _ in first })
        var rows: [HTML] = []
        for view in registry.views.values.sorted(by: { $0.name < $1.name }) {
            let summary = try await ui.store.featureViewSummary(view: view.name)
            let freshness = statuses[view.name]?.freshness ?? .unknown
            let sla: HTML = view.freshness.map { "<span class=\"muted\"> · SLA \(DurationText.format($0))</span>" } ?? .empty
            rows.append(
                """
                <tr><th scope="row"><a href="\(path(view.name))">\(view.name)</a><div class="note">\(view.description ?? "")</div></th>\
                <td>\(view.entity)</td><td>\(view.features.count)</td><td>\(summary.rows)</td><td>\(summary.entities)</td>\
                <td>\(summary.lastEventTime.map { Format.time(Date(timeIntervalSince1970: $0)) } ?? "–")</td>\
                <td>\(HandoffUI.badge(freshness))\(sla)</td><td>\(view.owner ?? "–")</td></tr>
                """)
        }
        let services = registry.services.values.sorted { $0.name < $1.name }.map { service -> HTML in
            let views = service.viewsInOrder.map { "<a href=\"\(path($0.view))\">\($0.view)</a>: \($0.features.joined(separator: ", "))" as HTML }
            return """
                <tr><th scope="row">\(service.name)<div class="note">\(service.description ?? "")</div></th>\
                <td>\(HTML.join(views, separator: "<br>"))</td><td>\(service.models.joined(separator: ", "))</td></tr>
                """
        }
        let table: HTML =
            rows.isEmpty
            ? Layout.emptyState(
                "No feature views.",
                hint: "<p class=\"muted\">Declare entities, feature views and feature services in a YAML file (top-level <code>feature_views:</code>) in <code>\(ui.context.pipelinesDirectory)</code>.</p>")
            : """
            <div class="table-scroll"><table class="table">
            <thead><tr><th scope="col">Feature view</th><th scope="col">Entity</th><th scope="col">Features</th><th scope="col">Rows</th>\
            <th scope="col">Entities</th><th scope="col">Last event</th><th scope="col">Freshness</th><th scope="col">Owner</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
        let serviceTable: HTML =
            services.isEmpty
            ? Layout.emptyState("No feature services.")
            : """
            <div class="table-scroll"><table class="table">
            <thead><tr><th scope="col">Service</th><th scope="col">Features</th><th scope="col">Models</th></tr></thead>
            <tbody>\(services)</tbody></table></div>
            """
        return Page(
            title: "Features", section: .features,
            body: """
                <div class="page-head"><div><h1>Features</h1><p class="subtitle">\(Format.plural(registry.views.count, "feature view")) · \
                \(Format.plural(registry.services.count, "service")) · \(Format.plural(registry.entities.count, "entity", "entities"))</p></div></div>
                <section class="card flush" aria-label="Feature views">\(table)</section>
                \(Layout.card("Feature services", serviceTable))
                """)
    }

    static func view(_ name: String, lookup request: Request, _ ui: UIEnvironment) async throws -> Page {
        let hub = ui.engine.features
        let registry = hub.registry
        guard let view = registry.views[name], let entity = registry.entities[view.entity] else {
            let suggestion = Suggest.closest(to: name, in: registry.views.keys)
            throw UINotFound(message: "There is no feature view ‘\(name)’.", suggestion: suggestion.map { ($0, path($0)) })
        }
        let (summary, stats) = try await hub.statistics(view: name)
        let status = (await ui.engine.datasetStatuses()).first { $0.dataset.name == name }

        let definition: HTML = """
            <table class="table kv compact"><tbody>
            <tr><th scope="row">Entity</th><td>\(entity.name) (\(entity.joinKeys.map { "\($0.name): \($0.type.rawValue)" }.joined(separator: ", ")))</td></tr>
            <tr><th scope="row">TTL</th><td>\(view.ttl.map { DurationText.format($0) } ?? "none (valid forever)")</td></tr>
            <tr><th scope="row">Freshness SLA</th><td>\(view.freshness.map { DurationText.format($0) } ?? "none") \(HandoffUI.badge(status?.freshness ?? .unknown)) \
            <a href="\(UIPath.dataset(name))">dataset</a></td></tr>
            <tr><th scope="row">Rows</th><td>\(summary.rows) rows, \(summary.entities) entities</td></tr>
            <tr><th scope="row">Event times</th><td>\(summary.firstEventTime.map { Format.time(Date(timeIntervalSince1970: $0)) } ?? "–") to \
            \(summary.lastEventTime.map { Format.time(Date(timeIntervalSince1970: $0)) } ?? "–")</td></tr>
            <tr><th scope="row">Last write</th><td>\(summary.lastWrittenAt.map { Format.time(Date(timeIntervalSince1970: $0)) } ?? "never")</td></tr>
            <tr><th scope="row">Source</th><td>\(view.source.map { "\($0.table) (\($0.timestampColumn))" } ?? "pushed rows only")</td></tr>
            </tbody></table>
            """

        let statRows = stats.map { stat -> HTML in
            func number(_ value: Double?) -> String { value.map { String(format: "%.4g", $0) } ?? "–" }
            let description = view.features.first { $0.name == stat.name }?.description ?? ""
            let distribution: HTML
            if !stat.histogram.isEmpty {
                distribution = histogram(stat)
            } else if !stat.topValues.isEmpty {
                let top = stat.topValues.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(5)
                distribution = HTML.join(top.map { "<code>\($0.key)</code> \($0.value)" as HTML }, separator: " · ")
            } else {
                distribution = "–"
            }
            return """
                <tr><th scope="row">\(stat.name)<div class="note">\(description)</div></th><td>\(stat.type.rawValue)</td>\
                <td>\(String(format: "%.1f%%", stat.nullShare * 100))</td><td>\(number(stat.min))</td><td>\(number(stat.max))</td>\
                <td>\(number(stat.mean))</td><td>\(distribution)</td></tr>
                """
        }
        let statsTable: HTML = """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Feature</th><th scope="col">Type</th><th scope="col">Nulls</th><th scope="col">Min</th>\
            <th scope="col">Max</th><th scope="col">Mean</th><th scope="col">Distribution</th></tr></thead>
            <tbody>\(statRows)</tbody></table></div>
            <p class="muted">Over the \(Format.plural(min(summary.rows, 100_000), "most recently written row"))\(summary.rows > 100_000 ? " of \(summary.rows)" : "").</p>
            """

        // The lookup form: the entity's latest (online) row of this view.
        var inputs: [HTML] = []
        var values: [String: JSONValue] = [:]
        for key in entity.joinKeys {
            let given = request.query(key.name) ?? ""
            if !given.isEmpty { values[key.name] = .string(given) }
            inputs.append(
                "<label>\(key.name) <input name=\"\(key.name)\" value=\"\(given)\" required\(key.type == .int ? " inputmode=\"numeric\"" as HTML : .empty)></label>" as HTML)
        }
        var answer: HTML = .empty
        if values.count == entity.joinKeys.count {
            var parts: [String] = []
            var problem: String?
            for key in entity.joinKeys {
                if let text = EntityKey.text(of: values[key.name] ?? .null, type: key.type) { parts.append(text) } else {
                    problem = "‘\(values[key.name]?.templateText ?? "")’ is not a valid \(key.type.rawValue) for \(key.name)."
                }
            }
            if let problem {
                answer = "<p class=\"muted\">\(problem)</p>"
            } else if let entry = hub.cache.entry(view: name, entityKey: EntityKey.make(parts)) {
                let expired = view.ttl.map { Date().timeIntervalSince1970 - entry.time > $0 } ?? false
                let cells = zip(view.features, entry.values).map { feature, value -> HTML in
                    var text = ""
                    value.appendJSON(to: &text)
                    return "<tr><th scope=\"row\">\(feature.name)</th><td><code>\(text)</code></td></tr>"
                }
                answer = """
                    <p>Latest row: event time \(Format.time(Date(timeIntervalSince1970: entry.time)))\
                    \(expired ? " <strong>(older than the ttl: lookups answer OUTSIDE_MAX_AGE)</strong>" as HTML : .empty)</p>
                    <table class="table kv compact"><tbody>\(cells)</tbody></table>
                    """
            } else {
                answer = "<p class=\"muted\">No row for this entity.</p>"
            }
        }
        let lookup: HTML = """
            <form method="get" action="\(path(name))" class="inline-form">\(inputs)<button type="submit" class="button small">Look up</button></form>
            \(answer)
            """

        return Page(
            title: "Feature view \(name)", section: .features,
            breadcrumbs: [("Features", "/features"), (name, nil)],
            body: """
                <div class="page-head"><div><h1>\(name) \(HandoffUI.badge(status?.freshness ?? .unknown))</h1>\
                <p class="subtitle">\(view.description ?? "Feature view of \(view.entity)")\(view.owner.map { " · owner \($0)" } ?? "")</p></div></div>
                \(Layout.card("Definition", definition))
                \(Layout.card("Features", statsTable))
                \(Layout.card("Entity lookup", id: "lookup", lookup))
                """)
    }

    /// A small bar chart of the ten bins (SVG attributes only: the pages allow no inline style).
    static func histogram(_ stat: FeatureStatistics) -> HTML {
        let peak = max(1, stat.histogram.max() ?? 1)
        let width = 12, height = 32, gap = 2
        var bars: [HTML] = []
        for (index, count) in stat.histogram.enumerated() {
            let barHeight = max(count > 0 ? 1 : 0, Int((Double(count) / Double(peak) * Double(height)).rounded()))
            bars.append(
                "<rect class=\"hist-bar\" x=\"\(index * (width + gap))\" y=\"\(height - barHeight)\" width=\"\(width)\" height=\"\(barHeight)\"><title>\(count)</title></rect>" as HTML)
        }
        let total = stat.histogram.count * (width + gap)
        let label = "Histogram of \(stat.name) from \(String(format: "%.4g", stat.min ?? 0)) to \(String(format: "%.4g", stat.max ?? 0))"
        return "<svg class=\"histogram\" role=\"img\" aria-label=\"\(label)\" viewBox=\"0 0 \(total) \(height)\" width=\"\(total)\" height=\"\(height)\">\(bars)</svg>"
    }
}
