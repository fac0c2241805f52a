import BatonCore
import BatonEngine
import BatonStore
import Foundation

/// `/datasets`: the catalog of hand-off datasets with their owner, contract, freshness,
/// measured availability against the target, producers and consumers, and open SLA misses;
/// filters by owning team and by freshness.
enum DatasetsPage {
    static let noOwner = "(none)"

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let now = Date()
        func query(_ name: String) -> String? { request.request.query(name).flatMap { $0.isEmpty ? nil : $0 } }
        let owner = query("owner")
        let freshness = query("status").flatMap(DatasetStatus.Freshness.init(rawValue:))
        let statuses = await ui.engine.datasetStatuses()
        let uses = HandoffUI.uses(await ui.engine.loadedPipelines())

        var owners: [String: Int] = [:]
        for status in statuses { owners[status.dataset.owner ?? noOwner, default: 0] += 1 }
        let ofOwner = statuses.filter { owner == nil || ($0.dataset.owner ?? noOwner) == owner }
        let shown = ofOwner.filter { freshness == nil || $0.freshness == freshness }

        var openMisses: [String: SLAMissRecord] = [:]
        for status in ofOwner {
            // Misses are newest first and at most one is open, so the latest tells.
            if let miss = try await ui.store.slaMisses(dataset: status.dataset.name, limit: 1).first, miss.resolvedAt == nil {
                openMisses[status.dataset.name] = miss
            }
        }

        let rows = shown.map { row($0, uses: uses[$0.dataset.name] ?? [], openMiss: openMisses[$0.dataset.name], now: now) }

        var filter: [HTML] = []
        let status = freshness?.rawValue
        let allCurrent: HTML = owner == nil ? " aria-current=\"true\"" : ""
        filter.append(
            "<a href=\"\(UIPath.with("/datasets", [("status", status)]))\"\(allCurrent)>All teams <span class=\"count\">\(statuses.count)</span></a>")
        for (name, count) in owners.sorted(by: { $0.key < $1.key }) {
            let current: HTML = name == owner ? " aria-current=\"true\"" : ""
            filter.append(
                "<a href=\"\(UIPath.with("/datasets", [("owner", name), ("status", status)]))\"\(current)>\(name) <span class=\"count\">\(count)</span></a>")
        }

        // Tiles that count, and filter by, freshness within the chosen team.
        var stats: [HTML] = []
        for state in [DatasetStatus.Freshness.fresh, .stale, .unknown] {
            let count = ofOwner.filter { $0.freshness == state }.count
            let current: HTML = state == freshness ? " aria-current=\"true\"" : ""
            let href = UIPath.with("/datasets", [("owner", owner), ("status", state == freshness ? nil : state.rawValue)])
            stats.append(
                """
                <a class="stat \(Format.stateClass(state.rawValue))\(count == 0 ? " zero" : "")" href="\(href)"\(current)>\
                <span class="stat-num">\(count)</span><span class="stat-label"><span class="dot" aria-hidden="true"></span>\(state.rawValue)</span></a>
                """)
        }
        stats.append(
            """
            <span class="stat st-failed\(openMisses.isEmpty ? " zero" : "")"><span class="stat-num">\(openMisses.count)</span>\
            <span class="stat-label">open SLA \(openMisses.count == 1 ? "miss" : "misses")</span></span>
            """)

        let table: HTML
        if rows.isEmpty {
            table = Layout.emptyState(
                statuses.isEmpty ? "No datasets in the catalog." : "No datasets match.",
                hint: statuses.isEmpty
                    ? """
                    <p class="muted">Declare the datasets teams hand to each other in a catalog file (top-level <code>datasets:</code>) \
                    in <code>\(ui.context.pipelinesDirectory)</code>, then name them in tasks' <code>produces:</code> and <code>requires:</code>.</p>
                    """
                    : "<p><a href=\"/datasets\">Show all datasets</a></p>")
        } else {
            table = """
                <div class="table-scroll"><table class="table datasets">
                <thead><tr><th scope="col">Dataset</th><th scope="col">Owner</th><th scope="col">Contract</th>\
                <th scope="col">Status</th><th scope="col">Last update</th><th scope="col">Availability</th>\
                <th scope="col">Producers</th><th scope="col">Consumers</th></tr></thead>
                <tbody>\(rows)</tbody>
                </table></div>
                """
        }

        var subtitle = Format.plural(statuses.count, "dataset") + " · " + Format.plural(owners.count, "team")
        if let freshness { subtitle += " · showing \(freshness.rawValue) only" }
        return Page(
            title: owner.map { "Datasets of \($0)" } ?? "Datasets",
            section: .datasets,
            body: """
                <div class="page-head">
                <div><h1>Datasets</h1><p class="subtitle">\(subtitle)</p></div>
                <div class="stats" data-region="stats" aria-label="Datasets by freshness">\(stats)</div>
                </div>
                <div class="toolbar">
                <nav class="segmented" aria-label="Filter by owner">\(filter)</nav>
                <a class="button small ghost" href="/lineage">Lineage graph</a>
                </div>
                <section class="card flush" aria-label="Datasets" data-region="datasets">\(table)</section>
                """,
            live: .all,
            refreshURL: UIPath.with("/datasets", [("owner", owner), ("status", freshness?.rawValue)]))
    }

    static func row(_ status: DatasetStatus, uses: [HandoffUI.Use], openMiss: SLAMissRecord?, now: Date) -> HTML {
        let spec = status.dataset
        let href = UIPath.dataset(spec.name)
        var description: HTML = .empty
        if let text = spec.description, !text.isEmpty {
            description = "<div class=\"sub\" title=\"\(text)\">\(Format.truncated(text, 90))</div>"
        }
        let owner: HTML = spec.owner.map {
            "<a class=\"tag\" href=\"\(UIPath.with("/datasets", [("owner", $0)]))\" title=\"Show only \($0)'s datasets\">\($0)</a>"
        } ?? "<span class=\"muted\">—</span>"
        var miss: HTML = .empty
        if let openMiss {
            miss = """
                <div><a class="pill miss" href="\(href)#sla" title="Detected \(Format.dateText(openMiss.detectedAt)) UTC">\
                SLA miss open</a></div>
                """
        }
        var update: HTML = "<span class=\"muted\">never</span>"
        if let latest = status.latest {
            let run: HTML = latest.runID.map { "<a href=\"\(UIPath.run($0))\">run #\($0)</a>" } ?? "outside a run"
            let iso = Format.isoString(latest.updatedAt)
            update = """
                <time datetime="\(iso)" title="\(Format.dateText(latest.updatedAt)) UTC">\(Format.relative(latest.updatedAt, now: now))</time>\
                <div class="sub">\(run)</div>
                """
        }
        return """
            <tr>
            <td><a class="strong" href="\(href)">\(spec.name)</a>\(description)</td>
            <td>\(owner)</td>
            <td class="contract">\(HandoffUI.contract(spec))</td>
            <td>\(HandoffUI.badge(status.freshness))<div class="sub nowrap">\(HandoffUI.staleNote(status, now: now))</div>\(miss)</td>
            <td>\(update)</td>
            <td class="num">\(HandoffUI.availability(status))</td>
            <td>\(HandoffUI.referenceList(uses.filter(HandoffUI.isProducer)))</td>
            <td>\(HandoffUI.referenceList(uses.filter { !HandoffUI.isProducer($0) }))</td>
            </tr>
            """
    }
}

/// `/datasets/{name}`: one dataset's contract and freshness, who produces and reads it, its
/// update and schema history, SLA misses, and the runs that read or wrote it.
enum DatasetPage {
    static let updateLimit = 50
    static let missLimit = 20
    static let runLimit = 50

    static func page(name: String, ui: UIEnvironment) async throws -> Page {
        let now = Date()
        let statuses = await ui.engine.datasetStatuses()
        guard let status = statuses.first(where: { $0.dataset.name == name }) else {
            let suggestion = Suggest.closest(to: name, in: statuses.map(\.dataset.name))
            throw UINotFound(
                message: "There is no dataset named ‘\(name)’ in the catalog.",
                suggestion: suggestion.map { ($0, UIPath.dataset($0)) })
        }
        let spec = status.dataset
        let uses = HandoffUI.uses(await ui.engine.loadedPipelines())[name] ?? []
        let updates = try await ui.store.datasetUpdates(name, limit: updateLimit)
        let misses = try await ui.store.slaMisses(dataset: name, limit: missLimit)
        let links = try await ui.store.datasetRuns(name, limit: runLimit)
        var runs: [Int64: RunRecord] = [:]
        for id in Set(links.map(\.runID)) { runs[id] = try await ui.store.run(id: id) }

        var facts: [(String, HTML)] = [
            ("Owner", spec.owner.map { "<a class=\"tag\" href=\"\(UIPath.with("/datasets", [("owner", $0)]))\">\($0)</a>" } ?? "—"),
            ("Schema version", spec.schemaVersion.map { "<code>\($0)</code>" } ?? "—"),
            ("Freshness SLA", spec.freshness.map { "updated at least every \(Format.duration($0))" } ?? "none"),
            ("Availability", HandoffUI.availability(status) + "<div class=\"sub\">measured / target, last 30 days</div>"),
            ("Last update", status.latest.map { "\(Format.time($0.updatedAt))<div class=\"sub\">\(Format.relative($0.updatedAt, now: now))</div>" } ?? "never"),
        ]
        if let staleAt = status.staleAt {
            facts.append((status.freshness == .stale ? "Stale since" : "Goes stale", "\(Format.time(staleAt))<div class=\"sub\">\(HandoffUI.staleNote(status, now: now))</div>"))
        } else {
            facts.append(("Freshness", HandoffUI.staleNote(status, now: now)))
        }

        var alert: HTML = .empty
        if let open = misses.first(where: { $0.resolvedAt == nil }) {
            alert = """
                <div class="flash error" role="status"><strong>SLA missed.</strong> Detected \(Format.time(open.detectedAt)) \
                (\(Format.relative(open.detectedAt, now: now))): no update within \(Format.duration(open.freshness)). \
                It resolves with the next update.</div>
                """
        }

        let description: HTML = spec.description.map { "<p class=\"lead\">\($0)</p>" } ?? .empty
        return Page(
            title: name,
            section: .datasets,
            breadcrumbs: [("Datasets", "/datasets"), (name, nil)],
            body: """
                <div data-region="head">
                <div class="page-head">
                <div><p class="eyebrow">dataset\(spec.owner.map { " · owned by \($0)" } ?? "")\
                \(spec.sourceFile.map { " · declared in \(($0 as NSString).lastPathComponent)" } ?? "")</p>\
                <h1>\(name) \(HandoffUI.badge(status.freshness))</h1>\(description)</div>
                <div class="head-actions"><a class="button ghost" href="/lineage">Lineage</a>\
                <a class="button ghost" href="\(UIPath.events(name: DatasetSpec.updateEventName(for: name)))">Update events</a></div>
                </div>
                \(alert)
                \(PipelinePage.factList(facts))
                </div>
                \(Layout.card("Producers and consumers", id: "uses", usesTable(uses, spec: spec)))
                \(Layout.card("Updates", id: "updates", region: "updates", updatesTable(updates, name: name, now: now)))
                <div class="columns">
                \(Layout.card("Schema versions", id: "schema", schemaTable(updates)))
                \(Layout.card("SLA misses", id: "sla", region: "sla", missesTable(misses, now: now)))
                </div>
                \(Layout.card("Runs", id: "runs", region: "runs", runsTable(links, runs: runs, dataset: name)))
                """,
            live: .all,
            refreshURL: UIPath.dataset(name))
    }

    static func usesTable(_ uses: [HandoffUI.Use], spec: DatasetSpec) -> HTML {
        guard !uses.isEmpty else {
            return Layout.emptyState(
                "No loaded pipeline produces or requires this dataset.",
                hint: "<p class=\"muted\">Name it in a task's <code>produces:</code> or <code>requires:</code>.</p>")
        }
        let rows = uses.map { use -> HTML in
            let relation: HTML
            let contract: HTML
            switch use.kind {
            case .produces:
                relation = "<span class=\"tag\">produces</span>"
                contract = spec.schemaVersion.map { "writes schema <code>\($0)</code>" } ?? "<span class=\"muted\">—</span>"
            case .requires(let requirement):
                relation = "<span class=\"tag subtle\">requires</span>"
                contract = HandoffUI.requirement(requirement, dataset: spec)
            case .triggers(let trigger):
                relation = "<span class=\"tag subtle\">triggered by updates</span>"
                let filter = trigger.filter.sorted { $0.key < $1.key }.map { "\($0.key)=\(Format.value($0.value))" }
                contract = filter.isEmpty ? "<span class=\"muted\">every update</span>" : "when <code>\(filter.joined(separator: " "))</code>"
            }
            return """
                <tr><th scope="row">\(HandoffUI.taskReference(pipeline: use.pipeline, task: use.task))</th>\
                <td>\(relation)</td><td>\(contract)</td></tr>
                """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Pipeline.task</th><th scope="col">Relation</th><th scope="col">Contract</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }

    static func updatesTable(_ updates: [DatasetUpdateRecord], name: String, now: Date) -> HTML {
        guard !updates.isEmpty else {
            return Layout.emptyState(
                "No updates yet.", hint: "<p class=\"muted\">A producing task's success records one.</p>")
        }
        let rows = updates.map { update -> HTML in
            let run: HTML = update.runID.map { "<a href=\"\(UIPath.run($0))\">#\($0)</a>" } ?? "<span class=\"muted\">—</span>"
            let producer: HTML = update.pipeline.map { HandoffUI.taskReference(pipeline: $0, task: update.task) }
                ?? "<span class=\"muted\">outside Baton</span>"
            return """
                <tr id="update-\(update.id)"><td>\(Format.time(update.updatedAt))<div class="sub">\(Format.relative(update.updatedAt, now: now))</div></td>\
                <td>\(run)</td><td>\(producer)</td><td>\(update.schemaVersion.map { "<code>\($0)</code>" as HTML } ?? "—")</td>\
                <td>\(HandoffUI.metadata(update.metadata))</td><td class="num muted">\(update.id)</td></tr>
                """
        }
        let more: HTML = updates.count >= updateLimit
            ? "<p class=\"muted\">The latest \(updateLimit) updates; <code>GET /api/v1/datasets/\(name)</code> has the same.</p>" : .empty
        return """
            <div class="table-scroll"><table class="table compact updates">
            <thead><tr><th scope="col">Updated</th><th scope="col">Run</th><th scope="col">Pipeline.task</th>\
            <th scope="col">Schema</th><th scope="col">Metadata</th><th scope="col" class="num">Update</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>\(more)
            """
    }

    /// Each schema version with the update that first carried it, newest first.
    static func schemaTable(_ updates: [DatasetUpdateRecord]) -> HTML {
        var versions: [(version: String, first: DatasetUpdateRecord, last: DatasetUpdateRecord)] = []
        for update in updates.reversed() {
            guard let version = update.schemaVersion else { continue }
            if versions.last?.version == version {
                versions[versions.count - 1].last = update
            } else {
                versions.append((version, update, update))
            }
        }
        guard !versions.isEmpty else { return Layout.emptyState("No schema versions recorded yet.") }
        let rows = versions.reversed().map { entry -> HTML in
            """
            <tr><th scope="row"><code>\(entry.version)</code></th>\
            <td>\(Format.time(entry.first.updatedAt, seconds: false))</td>\
            <td><a href="#update-\(entry.first.id)">update \(entry.first.id)</a>\
            \(entry.last.id == entry.first.id ? HTML.empty : " <span class=\"muted\">to \(entry.last.id)</span>")</td></tr>
            """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Version</th><th scope="col">First seen</th><th scope="col">Updates</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }

    static func missesTable(_ misses: [SLAMissRecord], now: Date) -> HTML {
        guard !misses.isEmpty else { return Layout.emptyState("No SLA misses.") }
        let rows = misses.map { miss -> HTML in
            let resolved: HTML = miss.resolvedAt.map { Format.time($0, seconds: false) } ?? Format.badge("stale")
            let duration = (miss.resolvedAt ?? now).timeIntervalSince(miss.detectedAt)
            return """
                <tr\(miss.resolvedAt == nil ? " class=\"open\"" : HTML.empty)><td>\(Format.time(miss.detectedAt, seconds: false))</td>\
                <td>\(resolved)</td><td class="num">\(Format.duration(duration))\(miss.resolvedAt == nil ? " so far" : "")</td>\
                <td class="num">\(Format.duration(miss.freshness))</td></tr>
                """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Detected</th><th scope="col">Resolved</th><th scope="col" class="num">Duration</th>\
            <th scope="col" class="num">SLA</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }

    static func runsTable(_ links: [RunDatasetRecord], runs: [Int64: RunRecord], dataset: String) -> HTML {
        guard !links.isEmpty else {
            return Layout.emptyState("No run has read or written this dataset yet.")
        }
        let rows = links.map { link -> HTML in
            let run = runs[link.runID]
            let state: HTML = run.map { Format.badge($0.state.rawValue) } ?? "<span class=\"muted\">deleted</span>"
            let task: HTML = run != nil
                ? "<a href=\"\(UIPath.task(run: link.runID, task: link.task))\">\(link.task)</a>" : "\(link.task)"
            let update: HTML = link.updateID.map { "<a href=\"\(UIPath.update(dataset: dataset, id: $0))\">\($0)</a>" }
                ?? "<span class=\"muted\">—</span>"
            return """
                <tr><th scope="row"><a href="\(UIPath.run(link.runID))">#\(link.runID)</a></th>\
                <td>\(run.map { "<a href=\"\(UIPath.pipeline($0.pipeline))\">\($0.pipeline)</a>" as HTML } ?? "—")</td>\
                <td>\(task)</td><td>\(link.direction == .write ? "wrote" : "read")</td><td class="num">\(update)</td>\
                <td>\(state)</td></tr>
                """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Run</th><th scope="col">Pipeline</th><th scope="col">Task</th><th scope="col">Access</th>\
            <th scope="col" class="num">Update</th><th scope="col">Run state</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }
}
