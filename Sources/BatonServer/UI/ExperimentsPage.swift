import BatonCore
import BatonRegistry
import BatonStore
import Foundation
import HTTPTypes

/// `/experiments`: every experiment with its number of runs and latest activity, most recently
/// active first. Deleted experiments are hidden unless asked for (`?deleted=1`).
enum ExperimentsPage {
    /// More experiments than this are not listed; the page says so.
    static let limit = 1000

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let query = RegistryUI.formQuery(request.request)
        let showDeleted = RegistryUI.formValue(query, "deleted") == "1"
        let search = RegistryUI.formValue(query, "q")
        let found = try await ui.context.registry.searchExperiments(
            filter: nil, viewType: showDeleted ? "ALL" : "ACTIVE_ONLY", orderBy: [], maxResults: limit, pageToken: nil)
        // Matched here rather than with an MLflow `LIKE` filter: case-insensitive, and any text
        // typed (quotes included) is fine.
        let experiments = found.experiments.map(TrackedExperiment.init).filter { experiment in
            search.map { experiment.name.localizedCaseInsensitiveContains($0) || experiment.id == $0 } ?? true
        }

        // Counted from the run rows alone: reading every run's params and metrics here would
        // make this page as slow as all the experiments' run tables together.
        var counts: [String: Int] = [:]
        var latest: [String: Int64] = [:]
        if !experiments.isEmpty {
            for run in try await ui.store.registryObjects(.run, parents: experiments.map(\.id)) {
                guard let parent = run.parent, run.lifecycle == "active" else { continue }
                counts[parent, default: 0] += 1
                latest[parent] = max(latest[parent] ?? 0, run.updatedAt, run.createdAt)
            }
        }
        func lastActivity(_ experiment: TrackedExperiment) -> Date? {
            let runs = latest[experiment.id].map { Date(timeIntervalSince1970: Double($0) / 1000) }
            return [experiment.updated, runs].compactMap { $0 }.max()
        }
        let sorted = experiments.sorted { (lastActivity($0) ?? .distantPast) > (lastActivity($1) ?? .distantPast) }

        let rows = sorted.map { experiment -> HTML in
            let deleted: HTML = experiment.lifecycle == "deleted" ? " <span class=\"tag subtle\">deleted</span>" : .empty
            let description: HTML = experiment.tags["mlflow.note.content"].map {
                "<div class=\"sub\">\(Format.truncated($0, 140))</div>"
            } ?? .empty
            return """
                <tr><th scope="row"><a class="strong" href="\(UIPath.experiment(experiment.id))">\(experiment.name)</a>\(deleted)\(description)</th>\
                <td><code>\(experiment.id)</code></td><td class="num">\(counts[experiment.id] ?? 0)</td>\
                <td>\(Format.time(lastActivity(experiment)))</td><td>\(Format.time(experiment.created))</td></tr>
                """
        }
        let table: HTML = rows.isEmpty && search != nil
            ? Layout.emptyState("No experiment matches ‘\(search ?? "")’.", hint: "<p><a href=\"/experiments\">Show all experiments</a></p>")
            : rows.isEmpty
            ? Layout.emptyState(
                "No experiments yet.",
                hint: "<p class=\"muted\">Runs logged with the MLflow client (<code>MLFLOW_TRACKING_URI</code> set to this server) appear here.</p>")
            : """
                <div class="table-scroll"><table class="table experiments">
                <thead><tr><th scope="col">Experiment</th><th scope="col">Id</th><th scope="col" class="num">Runs</th>\
                <th scope="col">Last update</th><th scope="col">Created</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """
        let more: HTML = found.next == nil ? .empty : "<p class=\"muted\">Only the first \(limit) experiments are listed.</p>"
        let toggle: HTML = showDeleted
            ? "<a class=\"button small ghost\" href=\"\(UIPath.with("/experiments", [("q", search)]))\">Hide deleted</a>"
            : "<a class=\"button small ghost\" href=\"\(UIPath.with("/experiments", [("q", search), ("deleted", "1")]))\">Show deleted</a>"
        let deletedField: HTML = showDeleted ? "<input type=\"hidden\" name=\"deleted\" value=\"1\">" : .empty
        let searchForm: HTML = """
            <form method="get" action="/experiments" class="filter-form" role="search">\
            <label class="sr-only" for="experiment-search">Experiment name</label>\
            <input type="text" id="experiment-search" name="q" value="\(search ?? "")" placeholder="Name or id" autocomplete="off">\
            \(deletedField)<button type="submit" class="button small">Search</button>\
            \(search == nil ? HTML.empty : "<a class=\"button small ghost\" href=\"/experiments\">Clear</a>")</form>
            """
        return Page(
            title: "Experiments",
            section: .experiments,
            body: """
                <div class="page-head"><div><h1>Experiments</h1>\
                <p class="subtitle">\(Format.plural(experiments.count, "experiment"))\(showDeleted ? ", deleted ones included" : ""), most recently active first</p></div>\
                <div class="head-actions">\(toggle)<a class="button small ghost" href="/models">Models</a></div></div>
                <div class="toolbar">\(searchForm)</div>
                <section class="card flush" aria-label="Experiments">\(table)</section>
                \(more)
                """)
    }
}

/// `/experiments/{id}`: the experiment's runs, fifty to a page, filtered with an MLflow search
/// filter and sorted by a column, with their params and latest metrics as columns and boxes to
/// pick runs to compare.
enum ExperimentPage {
    static let pageSize = 50
    /// Columns beyond these would make the table unreadable; the most common keys are shown.
    static let maxMetricColumns = 8
    static let maxParamColumns = 6

    static func experiment(_ id: String, _ ui: UIEnvironment) async throws -> TrackedExperiment {
        TrackedExperiment(
            try await RegistryUI.found(
                { try await ui.context.registry.experiment(id: id) }, suggestion: ("all experiments", "/experiments")))
    }

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let id = request.decodedParameter("experiment")
        let experiment = try await experiment(id, ui)
        let query = RegistryUI.formQuery(request.request)
        let filter = RegistryUI.formValue(query, "filter")
        let order = RegistryUI.formValue(query, "order")
        let token = RegistryUI.formValue(query, "page")
        let pageNumber = RegistryUI.formValue(query, "n").flatMap(Int.init).map { max($0, 1) } ?? 1

        var runs: [TrackedRun] = []
        var next: String?
        var failure: String?
        // A deleted experiment's runs were deleted with it; its page still shows them.
        let viewType = experiment.lifecycle == "deleted" ? "ALL" : "ACTIVE_ONLY"
        do {
            let found = try await ui.context.registry.searchRuns(
                experimentIDs: [id], filter: filter, viewType: viewType, orderBy: order.map { [$0] } ?? [], maxResults: pageSize,
                pageToken: token)
            runs = found.runs.map(TrackedRun.init)
            next = found.next
        } catch let error as MLflowError where error.status == 400 {
            // A filter, sort or page token the registry cannot read: the page explains it next to
            // the box, as the MLflow client would get it.
            failure = error.message
        }
        let total = try await ui.store.registryObjects(.run, parents: [id]).filter {
            $0.lifecycle == "active" || experiment.lifecycle == "deleted"
        }.count

        let metricKeys = commonKeys(runs.map { Array($0.metrics.keys) }, limit: maxMetricColumns)
        let paramKeys = commonKeys(runs.map { Array($0.params.keys) }, limit: maxParamColumns)
        let allMetrics = Set(runs.flatMap(\.metrics.keys)).count
        let allParams = Set(runs.flatMap(\.params.keys)).count
        let base: [(String, String?)] = [("filter", filter)]
        let path = UIPath.experiment(id)

        func sortHeader(_ label: String, key: String, numeric: Bool = false, name: Bool = false) -> HTML {
            let descending = "\(key) DESC"
            let ascending = "\(key) ASC"
            let current: String? = order == descending ? "descending" : order == ascending ? "ascending" : nil
            let target = order == descending ? ascending : descending
            let arrow = current == "descending" ? " ▼" : current == "ascending" ? " ▲" : ""
            let sortAttribute: HTML = current.map { " aria-sort=\"\($0)\"" } ?? .empty
            let classes = [numeric ? "num" : nil, name ? "key-col" : nil].compactMap { $0 }.joined(separator: " ")
            return """
                <th scope="col"\(sortAttribute)\(classes.isEmpty ? HTML.empty : " class=\"\(classes)\"")><a class="sort" href="\(UIPath.with(path, base + [("order", target)]))" \
                title="Sort by \(label)">\(label)\(arrow)</a></th>
                """
        }
        var header: [HTML] = [
            "<th scope=\"col\"><span class=\"sr-only\">Compare</span></th>",
            sortHeader("Run", key: "attributes.run_name"),
            "<th scope=\"col\">Status</th>",
            sortHeader("Started", key: "attributes.start_time"),
            "<th scope=\"col\" class=\"num\">Duration</th>",
            "<th scope=\"col\">User</th>",
            "<th scope=\"col\">Pipeline run</th>",
        ]
        // Metrics first: they are what runs are compared and sorted by.
        header += metricKeys.map { sortHeader($0, key: "metrics.`\($0)`", numeric: true, name: true) }
        header += paramKeys.map { key -> HTML in
            "<th scope=\"col\" class=\"key-col\" title=\"param \(key)\"><span class=\"col-kind\">param</span> \(key)</th>"
        }

        let now = Date()
        let rows = runs.map { run -> HTML in
            var cells: [HTML] = [
                "<td><input type=\"checkbox\" name=\"runs\" value=\"\(run.id)\" aria-label=\"Compare \(run.displayName)\"></td>",
                "<th scope=\"row\"><a class=\"strong\" href=\"\(run.href)\">\(Format.truncated(run.displayName, 60))</a></th>",
                "<td>\(RegistryUI.statusBadge(run.status))</td>",
                "<td>\(Format.time(run.start, seconds: false))</td>",
                "<td class=\"num\">\(Format.duration(run.duration(now: now)))</td>",
                "<td>\(run.user.isEmpty ? RegistryUI.dash() : "\(run.user)")</td>",
                "<td>\(RegistryUI.pipelineRunLink(tags: run.tags, compact: true))</td>",
            ]
            cells += metricKeys.map { key -> HTML in
                guard let metric = run.metrics[key] else { return "<td class=\"num\">\(RegistryUI.dash())</td>" }
                let full = RegistryUI.metricText(metric.value)
                return "<td class=\"num\" title=\"\(full) at step \(metric.step)\">\(RegistryUI.metricText(metric.value, digits: 4))</td>"
            }
            cells += paramKeys.map { key -> HTML in
                guard let value = run.params[key] else { return "<td>\(RegistryUI.dash())</td>" }
                return "<td title=\"\(Format.truncated(value, 500))\"><code class=\"value\">\(Format.truncated(value, 40))</code></td>"
            }
            return "<tr>\(cells)</tr>"
        }

        let body: HTML
        if failure != nil {
            body = Layout.emptyState("No runs shown: fix the filter above.")
        } else if runs.isEmpty {
            body = filter == nil
                ? Layout.emptyState("No runs in this experiment yet.")
                : Layout.emptyState("No runs match the filter.", hint: "<p><a href=\"\(path)\">Show all runs</a></p>")
        } else {
            body = """
                <form method="get" action="\(path)/compare" id="compare-form">
                <div class="table-scroll"><table class="table compact tracking">
                <thead><tr>\(header)</tr></thead>
                <tbody>\(rows)</tbody></table></div>
                <div class="table-foot"><button type="submit" class="button small primary">Compare selected</button>\
                <span class="muted">Tick two or more runs.</span></div>
                </form>
                """
        }

        var hidden: [String] = []
        if allMetrics > metricKeys.count { hidden.append(Format.plural(allMetrics - metricKeys.count, "metric")) }
        if allParams > paramKeys.count { hidden.append(Format.plural(allParams - paramKeys.count, "param")) }
        let hiddenNote: HTML = hidden.isEmpty
            ? .empty : "<p class=\"muted\">Columns show the most common keys; \(hidden.joined(separator: " and ")) more on each run's page.</p>"

        var pages: [HTML] = []
        if token != nil {
            pages.append("<a class=\"button ghost\" href=\"\(UIPath.with(path, base + [("order", order)]))\">← First page</a>")
        }
        if let next {
            let href = UIPath.with(path, base + [("order", order), ("page", next), ("n", String(pageNumber + 1))])
            pages.append("<a class=\"button ghost\" href=\"\(href)\">Next page →</a>")
        }
        let pager: HTML = pages.isEmpty ? .empty : "<p class=\"pager\"><span class=\"muted\">Page \(pageNumber)</span>\(pages)</p>"

        let error: HTML = failure.map {
            """
            <div class="flash error" role="alert" id="filter-error"><strong>The filter was not understood:</strong> \($0)\
            <p class="help">Write clauses such as <code>metrics.accuracy &gt; 0.9</code>, <code>params.model = 'xgb'</code>, \
            <code>tags.team LIKE 'ml%'</code> or <code>attributes.status = 'FINISHED'</code>, joined with <code>and</code>; quote keys \
            with odd characters in backticks: <code>metrics.`val loss` &lt; 0.2</code>.</p></div>
            """
        } ?? .empty
        let orderField: HTML = order.map { "<input type=\"hidden\" name=\"order\" value=\"\($0)\">" } ?? .empty
        let clear: HTML = filter == nil && order == nil ? .empty : "<a class=\"button small ghost\" href=\"\(path)\">Clear</a>"
        let filterForm: HTML = """
            <form method="get" action="\(path)" class="filter-form\(failure == nil ? "" : " has-error")" role="search">\
            <label class="sr-only" for="run-filter">MLflow search filter</label>\
            <input type="text" id="run-filter" name="filter" value="\(filter ?? "")" spellcheck="false" autocomplete="off" \
            placeholder="metrics.accuracy &gt; 0.9 and params.model = 'xgb'"\(failure == nil ? HTML.empty : " aria-invalid=\"true\" aria-describedby=\"filter-error\"")>\
            \(orderField)<button type="submit" class="button small">Filter</button>\(clear)</form>
            """

        var facts: [(String, HTML)] = [
            ("Id", "<code>\(experiment.id)</code>"),
            ("Runs", "\(total)"),
            ("Artifacts", "<code class=\"value\">\(experiment.artifactLocation)</code>"),
            ("Created", Format.time(experiment.created)),
        ]
        if experiment.lifecycle == "deleted" { facts.append(("State", "<span class=\"tag subtle\">deleted</span>")) }
        return Page(
            title: experiment.name,
            section: .experiments,
            breadcrumbs: [("Experiments", "/experiments"), (experiment.name, nil)],
            body: """
                <div class="page-head"><div><p class="eyebrow">Experiment</p><h1>\(experiment.name)</h1></div></div>
                \(PipelinePage.factList(facts))
                <div class="toolbar">\(filterForm)</div>
                \(error)
                <section class="card flush" aria-label="Runs">\(body)</section>
                \(hiddenNote)
                \(pager)
                """,
            status: failure == nil ? .ok : .badRequest)
    }

    /// The keys most runs have, at most `limit`, in name order.
    static func commonKeys(_ keys: [[String]], limit: Int) -> [String] {
        var counts: [String: Int] = [:]
        for list in keys { for key in list { counts[key, default: 0] += 1 } }
        let chosen = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(limit).map(\.key)
        return chosen.sorted()
    }
}
