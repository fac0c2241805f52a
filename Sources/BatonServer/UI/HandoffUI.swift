import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Hummingbird

/// Pieces the hand-off pages share (datasets, lineage, events, and the small sections they add
/// to the pipeline, run and dashboard pages): routes, who produces and reads a dataset, and how
/// freshness and availability read.
enum HandoffUI {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        WebUI.page(router, "/datasets", context) { request, ui in try await DatasetsPage.page(request, ui) }
        WebUI.page(router, "/datasets/:dataset", context) { request, ui in
            try await DatasetPage.page(name: request.parameter("dataset"), ui: ui)
        }
        WebUI.page(router, "/lineage", context) { _, ui in try await LineagePage.page(ui) }
        WebUI.page(router, "/events", context) { request, ui in try await EventsPage.page(request, ui) }
    }

    /// One task's relation to a dataset.
    struct Use: Sendable {
        enum Kind: Sendable { case produces, requires(DatasetRequirement), triggers(EventTriggerSpec) }
        var pipeline: String
        /// Nil for an event trigger, which belongs to the whole pipeline.
        var task: String?
        var kind: Kind
    }

    /// Who produces, requires or is triggered by each dataset, from the loaded pipelines (the
    /// same reading the catalog API and the lineage graph use).
    static func uses(_ pipelines: [PipelineRecord]) -> [String: [Use]] {
        var result: [String: [Use]] = [:]
        for record in pipelines {
            for task in record.spec.tasks {
                for dataset in task.produces {
                    result[dataset, default: []].append(Use(pipeline: record.name, task: task.name, kind: .produces))
                }
                for requirement in task.requires {
                    result[requirement.dataset, default: []].append(
                        Use(pipeline: record.name, task: task.name, kind: .requires(requirement)))
                }
            }
            for trigger in record.spec.triggers {
                guard let dataset = datasetOfUpdateEvent(trigger.event) else { continue }
                result[dataset, default: []].append(Use(pipeline: record.name, task: nil, kind: .triggers(trigger)))
            }
        }
        return result
    }

    /// `clean_customers` for `dataset.clean_customers.updated`, the event a producer publishes.
    static func datasetOfUpdateEvent(_ name: String) -> String? { DatasetSpec.dataset(ofUpdateEvent: name) }

    /// `pipeline.task` with the pipeline linked; the task part is plain text because a task has
    /// no page outside a run.
    static func taskReference(pipeline: String, task: String?) -> HTML {
        let link: HTML = "<a href=\"\(UIPath.pipeline(pipeline))\">\(pipeline)</a>"
        guard let task else { return link }
        // A long pair may break before the task, never inside a name.
        return "\(link)<wbr><span class=\"muted\">.\(task)</span>"
    }

    /// Producers or consumers as a short list, one per line.
    static func referenceList(_ uses: [Use]) -> HTML {
        guard !uses.isEmpty else { return "<span class=\"muted\">—</span>" }
        let items = uses.map { use -> HTML in
            var note: HTML = .empty
            if case .triggers = use.kind { note = " <span class=\"tag subtle\" title=\"Runs on every update\">trigger</span>" }
            return "<li>\(taskReference(pipeline: use.pipeline, task: use.task))\(note)</li>"
        }
        return "<ul class=\"refs\">\(items)</ul>"
    }

    static func isProducer(_ use: Use) -> Bool {
        if case .produces = use.kind { return true }
        return false
    }

    /// The freshness badge: fresh green, stale red, unknown grey.
    static func badge(_ freshness: DatasetStatus.Freshness) -> HTML { Format.badge(freshness.rawValue) }

    /// When the dataset goes (or went) stale, in words.
    static func staleNote(_ status: DatasetStatus, now: Date) -> HTML {
        switch status.freshness {
        case .fresh:
            guard let staleAt = status.staleAt else { return .empty }
            return "<span title=\"Stale at \(Format.dateText(staleAt)) UTC\">stale \(Format.relative(staleAt, now: now))</span>"
        case .stale:
            guard let staleAt = status.staleAt else { return "no update yet" }
            return "<span title=\"Stale since \(Format.dateText(staleAt)) UTC\">stale for \(Format.duration(now.timeIntervalSince(staleAt)))</span>"
        case .unknown:
            return status.dataset.freshness == nil ? "no freshness SLA" : "no update yet"
        }
    }

    /// "99.95%": measured availability is rounded down, so a value just under the target never
    /// reads as meeting it.
    static func measuredPercent(_ fraction: Double) -> String {
        if fraction >= 1 { return "100%" }
        // The epsilon keeps binary error from turning an exact 0.9995 into 99.94%.
        let hundredths = (fraction * 10_000 + 1e-6).rounded(.down) / 100
        return trimmed(hundredths, decimals: 2) + "%"
    }

    /// "99.9%" for a target of 0.999, as the catalog file wrote it.
    static func targetPercent(_ fraction: Double) -> String { trimmed(fraction * 100, decimals: 3) + "%" }

    private static func trimmed(_ value: Double, decimals: Int) -> String {
        var text = String(format: "%.\(decimals)f", value)
        while text.contains("."), text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// "99.95% / 99.9%", the measured part red when below the target.
    static func availability(_ status: DatasetStatus) -> HTML {
        let target = status.dataset.availability
        guard let measured = status.measuredAvailability else {
            return target.map { "<span class=\"muted\">— / \(targetPercent($0))</span>" as HTML } ?? "<span class=\"muted\">—</span>"
        }
        guard let target else { return "\(measuredPercent(measured))" }
        let below = measured < target
        let title = below ? "Below the \(targetPercent(target)) target over the last 30 days" : "Meets the target over the last 30 days"
        return """
            <span class="avail\(below ? " below" : "")" title="\(title)"><span class="avail-measured">\(measuredPercent(measured))</span>\
            <span class="muted"> / \(targetPercent(target))</span></span>
            """
    }

    /// The contract a catalog entry promises: schema version, freshness, availability.
    static func contract(_ spec: DatasetSpec, separator: HTML = "<br>") -> HTML {
        var parts: [HTML] = []
        if let version = spec.schemaVersion { parts.append("schema <code>\(version)</code>") }
        if let freshness = spec.freshness { parts.append("fresh within \(Format.duration(freshness))") }
        if let availability = spec.availability { parts.append("\(targetPercent(availability)) available") }
        guard !parts.isEmpty else { return "<span class=\"muted\">no contract</span>" }
        return HTML.join(parts.map { "<span class=\"contract-part\">\($0)</span>" as HTML }, separator: separator)
    }

    /// What a consuming task asks of a dataset.
    static func requirement(_ requirement: DatasetRequirement, dataset: DatasetSpec?) -> HTML {
        var parts: [HTML] = []
        if let staleness = requirement.maxStaleness {
            parts.append("at most \(Format.duration(staleness)) old")
        } else if let freshness = dataset?.freshness {
            parts.append("at most \(Format.duration(freshness)) old <span class=\"muted\">(the SLA)</span>")
        }
        if let schema = requirement.schema { parts.append("schema <code>\(schema)</code>") }
        var policy = "on violation: \(requirement.onViolation.rawValue)"
        if requirement.onViolation == .wait { policy += " up to \(Format.duration(requirement.waitTimeout))" }
        parts.append("<span class=\"muted\">\(policy)</span>")
        return HTML.join(parts, separator: " · ")
    }

    /// An update's metadata (the producing task's output), as `key value` chips.
    static func metadata(_ metadata: [String: JSONValue], limit: Int = 8) -> HTML {
        guard !metadata.isEmpty else { return "<span class=\"muted\">—</span>" }
        let sorted = metadata.sorted { $0.key < $1.key }
        var chips = sorted.prefix(limit).map { key, value -> HTML in
            let text = Format.value(value)
            return "<span class=\"chip\" title=\"\(key): \(Format.truncated(text, 500))\"><span class=\"chip-key\">\(key)</span> \(Format.truncated(text, 60))</span>"
        }
        if sorted.count > limit { chips.append("<span class=\"muted\">+\(sorted.count - limit) more</span>") }
        return "<span class=\"chips\">\(HTML.join(chips, separator: " "))</span>"
    }

    /// A JSON payload: a one-line excerpt that opens to the whole document, without script.
    static func payload(_ value: JSONValue, excerpt: Int = 120) -> HTML {
        let compact = value.compactJSON
        if compact.count <= excerpt { return "<code class=\"value\">\(compact)</code>" }
        return """
            <details class="payload"><summary><code class="value">\(Format.truncated(compact, excerpt))</code></summary>\
            <pre class="json">\(Format.prettyJSON(value))</pre></details>
            """
    }
}

extension UIPath {
    static func dataset(_ name: String) -> String { "/datasets/" + segment(name) }
    /// An update's row on its dataset's page.
    static func update(dataset name: String, id: Int64) -> String { dataset(name) + "#update-\(id)" }
    static func events(name: String?) -> String { with("/events", [("name", name)]) }
}

// MARK: - Sections on the pipeline and run pages

extension HandoffUI {
    /// The pipeline page's "Datasets" card: what its tasks produce and require, with the
    /// contract and current freshness, and the events that trigger it. Empty when it has none.
    static func pipelineSection(_ spec: PipelineSpec, ui: UIEnvironment) async -> HTML {
        let declaresData = spec.tasks.contains { !$0.produces.isEmpty || !$0.requires.isEmpty }
        guard declaresData || !spec.triggers.isEmpty else { return .empty }
        let statuses = Dictionary(
            await ui.engine.datasetStatuses().map { ($0.dataset.name, $0) }, uniquingKeysWith: { first, _ in first })
        func dataset(_ name: String) -> HTML {
            guard let status = statuses[name] else {
                return "<code>\(name)</code> <span class=\"muted\">not in the catalog</span>"
            }
            return "<a class=\"strong\" href=\"\(UIPath.dataset(name))\">\(name)</a> \(badge(status.freshness))"
        }
        var rows: [HTML] = []
        for task in spec.tasks {
            for name in task.produces {
                let terms = statuses[name].map { contract($0.dataset, separator: " · ") } ?? "<span class=\"muted\">—</span>"
                rows.append(
                    "<tr><th scope=\"row\">\(task.name)</th><td><span class=\"tag\">produces</span></td><td>\(dataset(name))</td><td>\(terms)</td></tr>")
            }
            for requirement in task.requires {
                rows.append(
                    """
                    <tr><th scope="row">\(task.name)</th><td><span class="tag subtle">requires</span></td>\
                    <td>\(dataset(requirement.dataset))</td><td>\(HandoffUI.requirement(requirement, dataset: statuses[requirement.dataset]?.dataset))</td></tr>
                    """)
            }
        }
        for trigger in spec.triggers {
            let filter = trigger.filter.sorted { $0.key < $1.key }.map { "\($0.key)=\(Format.value($0.value))" }
            let what: HTML = datasetOfUpdateEvent(trigger.event).map { "updates of \(dataset($0))" }
                ?? "<a href=\"\(UIPath.events(name: trigger.event))\"><code>\(trigger.event)</code></a>"
            let condition: HTML = filter.isEmpty
                ? "<span class=\"muted\">every event</span>" : "when <code>\(filter.joined(separator: " "))</code>"
            rows.append(
                """
                <tr><th scope="row"><span class="muted">whole pipeline</span></th><td><span class="tag subtle">triggered by</span></td>\
                <td>\(what)</td><td>\(condition)</td></tr>
                """)
        }
        return Layout.card(
            "Datasets", id: "datasets",
            actions: "<a class=\"button small ghost\" href=\"/lineage\">Lineage</a>",
            """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Task</th><th scope="col">Relation</th><th scope="col">Dataset</th><th scope="col">Contract</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """)
    }

    /// The run page's "Trigger" fact: an event-triggered run names its event.
    static func triggerFact(_ run: RunRecord) -> HTML {
        guard run.trigger == .event, case .string(let name)? = run.event?["name"] else { return "\(run.trigger.rawValue)" }
        return "event <a href=\"#event\"><code>\(name)</code></a>"
    }

    /// The run page's "Datasets" card (what the run read and wrote) and, for an event-triggered
    /// run, the event that started it. Empty for runs without either.
    static func runSections(_ run: RunRecord, ui: UIEnvironment) async throws -> HTML {
        var result: HTML = .empty
        if run.trigger == .event, let event = run.event {
            func text(_ key: String) -> String? {
                if case .string(let value)? = event[key] { return value }
                return nil
            }
            let name = text("name") ?? "?"
            var facts: [(String, HTML)] = [
                ("Name", "<a href=\"\(UIPath.events(name: name))\"><code>\(name)</code></a>"),
                ("Id", "<code>\(text("id") ?? "—")</code>"),
                ("Source", "\(text("source") ?? "—")"),
            ]
            if let created = text("created_at") {
                let date = try? Date(created, strategy: .iso8601)
                facts.append(("Published", date.map { Format.time($0) } ?? "\(created)"))
            }
            if let dataset = datasetOfUpdateEvent(name) {
                facts.append(("Dataset", "<a href=\"\(UIPath.dataset(dataset))\">\(dataset)</a>"))
            }
            let payload: HTML = event["payload"].map { "<pre class=\"json\">\(Format.prettyJSON($0))</pre>" } ?? .empty
            result += Layout.card("Triggering event", id: "event", PipelinePage.factList(facts) + payload)
        }

        let records = try await ui.store.runDatasets(runID: run.id)
        let declares = run.spec.tasks.contains { !$0.produces.isEmpty || !$0.requires.isEmpty }
        guard !records.isEmpty || declares else { return result }
        let body: HTML
        if records.isEmpty {
            body = Layout.emptyState(
                run.state.isTerminal ? "Nothing was read or written." : "Nothing read or written yet.",
                hint: "<p class=\"muted\">Reads are recorded when a requiring task starts, writes when a producing task succeeds.</p>")
        } else {
            let order = Dictionary(run.spec.tasks.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
            let sorted = records.sorted {
                (order[$0.task] ?? .max, $0.direction == .read ? 0 : 1, $0.dataset) < (order[$1.task] ?? .max, $1.direction == .read ? 0 : 1, $1.dataset)
            }
            let rows = sorted.map { record -> HTML in
                let update: HTML = record.updateID.map {
                    "<a href=\"\(UIPath.update(dataset: record.dataset, id: $0))\">update \($0)</a>"
                } ?? "<span class=\"muted\">—</span>"
                return """
                    <tr><td>\(record.direction == .write ? "<span class=\"tag\">wrote</span>" : "<span class=\"tag subtle\">read</span>" as HTML)</td>\
                    <th scope="row"><a href="\(UIPath.dataset(record.dataset))">\(record.dataset)</a></th>\
                    <td><a href="\(UIPath.task(run: run.id, task: record.task))">\(record.task)</a></td><td>\(update)</td></tr>
                    """
            }
            body = """
                <div class="table-scroll"><table class="table compact">
                <thead><tr><th scope="col">Access</th><th scope="col">Dataset</th><th scope="col">Task</th><th scope="col">Version</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """
        }
        result += Layout.card("Datasets", id: "datasets", region: "datasets", body)
        return result
    }
}

// MARK: - Dashboard panels

extension HandoffUI {
    static let dashboardMissLimit = 10

    /// Every dataset as a tile coloured by freshness, and the SLA misses detected in the
    /// dashboard's window (plus any still open). Nothing when the catalog is empty, so a setup
    /// without hand-offs sees no empty panels.
    static func dashboardPanels(ui: UIEnvironment, since: Date, now: Date) async throws -> HTML {
        let statuses = await ui.engine.datasetStatuses()
        guard !statuses.isEmpty else { return .empty }
        let misses = try await ui.store.slaMisses(dataset: nil, limit: 200)
        let open = Set(misses.filter { $0.resolvedAt == nil }.map(\.dataset))

        let tiles = statuses.map { status -> HTML in
            let name = status.dataset.name
            let age: HTML = status.latest.map { "updated \(Format.relative($0.updatedAt, now: now))" } ?? "never updated"
            let flag: HTML = open.contains(name) ? "<span class=\"pill miss\">SLA miss</span>" : .empty
            return """
                <a class="tile \(Format.stateClass(status.freshness.rawValue))" href="\(UIPath.dataset(name))" \
                title="\(name) · \(status.freshness.rawValue)\(status.dataset.owner.map { " · owner \($0)" } ?? "")">\
                <span class="tile-name">\(name)</span>\
                <span class="tile-row">\(badge(status.freshness))\(flag)</span>\
                <span class="tile-row sub"><span>\(age)</span>\(availability(status))</span></a>
                """
        }
        var counts: [String] = []
        for state in [DatasetStatus.Freshness.fresh, .stale, .unknown] {
            let count = statuses.filter { $0.freshness == state }.count
            if count > 0 { counts.append("\(count) \(state.rawValue)") }
        }

        let recent = misses.filter { $0.detectedAt >= since || $0.resolvedAt == nil }.prefix(dashboardMissLimit)
        let missBody: HTML
        if recent.isEmpty {
            missBody = Layout.emptyState("No SLA misses in this window.")
        } else {
            // Three columns fit the narrow panel: an open miss shows its badge where a closed
            // one shows how long it lasted.
            let rows = recent.map { miss -> HTML in
                let duration = Format.duration((miss.resolvedAt ?? now).timeIntervalSince(miss.detectedAt))
                let lasted: HTML = miss.resolvedAt == nil
                    ? "\(Format.badge("stale")) <span class=\"muted nowrap\">\(duration) so far</span>"
                    : "<span title=\"Resolved \(miss.resolvedAt.map { Format.dateText($0) } ?? "") UTC\">\(duration)</span>"
                return """
                    <tr\(miss.resolvedAt == nil ? " class=\"open\"" : HTML.empty)><th scope="row"><a href="\(UIPath.dataset(miss.dataset))#sla">\(miss.dataset)</a></th>\
                    <td>\(Format.time(miss.detectedAt, seconds: false))</td><td>\(lasted)</td></tr>
                    """
            }
            missBody = """
                <div class="table-scroll"><table class="table compact">
                <thead><tr><th scope="col">Dataset</th><th scope="col">Detected</th><th scope="col">Lasted</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """
        }
        return """
            <div class="columns wide-left">
            \(Layout.card(
                "Dataset freshness", id: "dataset-freshness",
                actions: "<span class=\"muted\">\(counts.joined(separator: " · "))</span>",
                "<div class=\"tiles\">\(tiles)</div>"))
            \(Layout.card(
                "SLA misses", id: "sla-misses", actions: "<a class=\"button small ghost\" href=\"/datasets\">Catalog</a>",
                missBody))
            </div>
            """
    }
}
