import BatonCore
import BatonRegistry
import BatonStore
import Foundation
import HTTPTypes

/// `/experiments/{id}/runs/{run}`: one tracked run: its facts, params, metrics with a chart of
/// each over its steps, tags, artifacts with download links, and the Baton pipeline run that
/// made it.
enum TrackedRunPage {
    /// Charts beyond these are not drawn (each reads a metric's history); the table lists all.
    static let maxCharts = 12
    /// Artifact entries listed, walking folders depth first.
    static let maxArtifacts = 300

    static func run(_ id: String, experiment: String, _ ui: UIEnvironment) async throws -> TrackedRun {
        let run = TrackedRun(
            try await RegistryUI.found(
                { try await ui.context.registry.run(id: id) },
                suggestion: ("the experiment's runs", UIPath.experiment(experiment))))
        // A run reached through another experiment's address is the wrong page to show it on.
        guard run.experimentID == experiment else {
            throw UINotFound(
                message: "Run '\(id)' is not in experiment \(experiment).", suggestion: ("the run in its experiment", run.href))
        }
        return run
    }

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let experimentID = request.decodedParameter("experiment")
        let runID = request.decodedParameter("tracked")
        let experiment = try await ExperimentPage.experiment(experimentID, ui)
        let run = try await run(runID, experiment: experimentID, ui)
        let registry = ui.context.registry
        let now = Date()

        var facts: [(String, HTML)] = [
            ("Run id", "<code>\(run.id)</code>"),
            ("Experiment", "<a href=\"\(UIPath.experiment(experiment.id))\">\(experiment.name)</a>"),
            ("User", run.user.isEmpty ? RegistryUI.dash() : "\(run.user)"),
            ("Started", Format.time(run.start)),
            ("Ended", Format.time(run.end)),
            ("Duration", "\(Format.duration(run.duration(now: now)))\(run.end == nil && run.status == "RUNNING" ? " so far" : "")"),
            ("Pipeline run", RegistryUI.pipelineRunLink(tags: run.tags)),
        ]
        if run.lifecycle == "deleted" { facts.append(("State", "<span class=\"tag subtle\">deleted</span>")) }
        let registered = try await registry.searchModelVersions(
            filter: "run_id = '\(run.id.replacingOccurrences(of: "'", with: ""))'", orderBy: [], maxResults: 20, pageToken: nil
        ).versions
        if !registered.isEmpty {
            let links = registered.compactMap { version -> HTML? in
                guard let name = version["name"]?.scalarText, let number = version["version"]?.scalarText else { return nil }
                let aliases = version["aliases"]?.arrayValue?.compactMap(\.scalarText) ?? []
                let chips = aliases.map { "<span class=\"alias\($0 == Registry.approvalAlias ? " champion" : "")\">\($0)</span>" as HTML }
                return "<a href=\"\(UIPath.model(name))#v\(number)\">\(name) v\(number)</a>\(chips.isEmpty ? HTML.empty : " " + HTML.join(chips, separator: " "))"
            }
            facts.append(("Registered as", HTML.join(links, separator: "<br>")))
        }

        let params: HTML = run.params.isEmpty
            ? "<p class=\"muted\">No params.</p>"
            : keyValueTable(run.params, code: true)

        let metricKeys = run.metrics.keys.sorted()
        let metricsTable: HTML
        if metricKeys.isEmpty {
            metricsTable = "<p class=\"muted\">No metrics.</p>"
        } else {
            let rows = metricKeys.map { key -> HTML in
                let metric = run.metrics[key]
                return """
                    <tr><th scope="row"><a href="#metric-\(anchor(key))">\(key)</a></th>\
                    <td class="num">\(RegistryUI.metricText(metric?.value))</td><td class="num">\(metric?.step ?? 0)</td></tr>
                    """
            }
            metricsTable = """
                <table class="table compact"><thead><tr><th scope="col">Metric</th><th scope="col" class="num">Latest</th>\
                <th scope="col" class="num">Step</th></tr></thead><tbody>\(rows)</tbody></table>
                """
        }

        var charts: [HTML] = []
        var single: [String] = []
        for key in metricKeys.prefix(maxCharts) {
            let history = try await MetricHistory.read(registry, runID: run.id, key: key)
            // One value is a number, not a curve: the table has it.
            guard history.points.count > 1 else {
                single.append(key)
                continue
            }
            let note: HTML = history.truncated ? "<p class=\"muted\">The first \(MetricHistory.limit) values.</p>" : .empty
            charts.append(
                """
                <figure class="metric-chart" id="metric-\(anchor(key))"><figcaption>\(key) \
                <span class="muted">\(Format.plural(history.points.count, "value"))</span></figcaption>\
                \(StepChart.svg(series: [.init(label: run.displayName, points: history.points)], metric: key))\(note)</figure>
                """)
        }
        if !single.isEmpty, !charts.isEmpty {
            charts.append("<p class=\"muted\">Not drawn, one value each: \(single.joined(separator: ", ")).</p>")
        }
        if metricKeys.count > maxCharts {
            charts.append("<p class=\"muted\">\(metricKeys.count - maxCharts) more metrics are in the table but not drawn.</p>")
        }
        let chartCard: HTML = charts.isEmpty ? .empty : Layout.card("Metric charts", id: "charts", "<div class=\"charts\">\(charts)</div>")

        let tags = run.tags.filter { !$0.key.hasPrefix("mlflow.") && !$0.key.hasPrefix("baton.") }
        let systemTags = run.tags.filter { $0.key.hasPrefix("mlflow.") || $0.key.hasPrefix("baton.") }
        var tagBody: HTML = tags.isEmpty ? "<p class=\"muted\">No tags.</p>" : keyValueTable(tags, code: false)
        if !systemTags.isEmpty {
            tagBody += """
                <details class="system-tags"><summary>\(Format.plural(systemTags.count, "system tag"))</summary>\
                \(keyValueTable(systemTags, code: false))</details>
                """
        }

        let artifacts = artifactSection(run, registry.artifacts)
        let headActions: HTML = run.tags["baton.run_id"].flatMap(Int64.init).map {
            "<a class=\"button ghost\" href=\"\(UIPath.run($0))\">Pipeline run #\($0)</a>"
        } ?? .empty
        return Page(
            title: "\(run.displayName) · \(experiment.name)",
            section: .experiments,
            breadcrumbs: [("Experiments", "/experiments"), (experiment.name, UIPath.experiment(experiment.id)), (run.displayName, nil)],
            body: """
                <div class="page-head"><div><p class="eyebrow"><a href="\(UIPath.experiment(experiment.id))">\(experiment.name)</a> · tracked run</p>\
                <h1>\(run.displayName) \(RegistryUI.statusBadge(run.status))</h1></div>\
                <div class="head-actions">\(headActions)</div></div>
                \(PipelinePage.factList(facts))
                <div class="columns">
                \(Layout.card("Params", id: "params", params))
                \(Layout.card("Metrics", id: "metrics", metricsTable))
                </div>
                \(chartCard)
                <div class="columns">
                \(Layout.card("Artifacts", id: "artifacts", artifacts))
                \(Layout.card("Tags", id: "tags", tagBody))
                </div>
                """)
    }

    static func keyValueTable(_ values: [String: String], code: Bool) -> HTML {
        let rows = values.sorted { $0.key < $1.key }.map { key, value -> HTML in
            let shown: HTML = code ? "<code class=\"value\">\(value)</code>" : "<span class=\"value\">\(value)</span>"
            return "<tr><th scope=\"row\">\(key)</th><td>\(shown)</td></tr>"
        }
        // Not in a scrolling wrapper: values wrap instead (`code.value`), as on the pipeline run page.
        return "<table class=\"table compact kv\"><tbody>\(rows)</tbody></table>"
    }

    /// An id for a metric's chart: letters and digits kept, everything else a dash.
    static func anchor(_ key: String) -> String {
        String(key.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
    }

    static func artifactSection(_ run: TrackedRun, _ store: ArtifactStore) -> HTML {
        guard let root = ArtifactStore.relativePath(ofURI: run.artifactURI) else {
            return "<p class=\"muted\">Stored outside this server at <code class=\"value\">\(run.artifactURI)</code>.</p>"
        }
        let (entries, truncated) = listArtifacts(store, root: root)
        guard !entries.isEmpty else {
            return "<p class=\"muted\">No artifacts. <code class=\"value\">\(run.artifactURI)</code></p>"
        }
        let prefix = root.split(separator: "/").joined(separator: "/")
        let rows = entries.map { entry -> HTML in
            let relative = entry.path.count > prefix.count ? String(entry.path.dropFirst(prefix.count + 1)) : entry.path
            let depth = relative.split(separator: "/").count - 1
            let name = relative.split(separator: "/").last.map(String.init) ?? relative
            if entry.isDirectory {
                return "<tr><th scope=\"row\" class=\"artifact depth-\(min(depth, 6))\">\(name)/</th><td class=\"num muted\">folder</td></tr>"
            }
            return """
                <tr><th scope="row" class="artifact depth-\(min(depth, 6))"><a href="\(UIPath.artifact(entry.path))" download="\(name)" \
                title="\(relative)">\(name)</a></th><td class="num">\(entry.size.map(byteText) ?? "")</td></tr>
                """
        }
        let more: HTML = truncated ? "<p class=\"muted\">Only the first \(maxArtifacts) entries are listed.</p>" : .empty
        return """
            <div class="table-scroll"><table class="table compact artifacts"><thead><tr><th scope="col">Path</th>\
            <th scope="col" class="num">Size</th></tr></thead><tbody>\(rows)</tbody></table></div>\(more)
            <p class="muted small"><code class="value">\(run.artifactURI)</code></p>
            """
    }

    /// Files and folders under the run's artifact folder, depth first, folders before their
    /// contents; at most `maxArtifacts`.
    static func listArtifacts(_ store: ArtifactStore, root: String) -> (entries: [ArtifactStore.Entry], truncated: Bool) {
        var result: [ArtifactStore.Entry] = []
        var pending: [(path: String, depth: Int)] = [(root, 0)]
        while let next = pending.popLast() {
            let (path, depth) = (next.path, next.depth)
            let entries = (try? store.list(path)) ?? []
            var folders: [(path: String, depth: Int)] = []
            for entry in entries {
                guard result.count < maxArtifacts else { return (result, true) }
                result.append(entry)
                // Deep trees are listed to a sane depth; their files stay downloadable by path.
                if entry.isDirectory, depth < 8 { folders.append((entry.path, depth + 1)) }
            }
            pending += folders.reversed()
        }
        // Depth-first order with folders' contents right after them.
        return (ordered(result), false)
    }

    static func ordered(_ entries: [ArtifactStore.Entry]) -> [ArtifactStore.Entry] {
        entries.sorted { a, b in
            a.path.split(separator: "/").lexicographicallyPrecedes(b.path.split(separator: "/"))
        }
    }

    static func byteText(_ bytes: Int64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : String(format: value < 10 ? "%.1f" : "%.0f", value) + " " + units[unit]
    }
}

/// `/experiments/{id}/compare?runs=a,b,c`: runs side by side, params and latest metrics with
/// the rows that differ marked, and one chart per metric with a line per run.
enum CompareRunsPage {
    static let maxRuns = 10
    static let maxCharts = 12

    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let experimentID = request.decodedParameter("experiment")
        let experiment = try await ExperimentPage.experiment(experimentID, ui)
        // `runs=a,b` from a link and `runs=a&runs=b` from the table's boxes alike.
        var ids: [String] = []
        for (name, value) in RegistryUI.formQuery(request.request) where name == "runs" {
            for id in value.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !id.isEmpty && !ids.contains(id) {
                ids.append(id)
            }
        }
        let back = UIPath.experiment(experiment.id)
        guard ids.count >= 2 else {
            return Page(
                title: "Compare runs",
                section: .experiments,
                breadcrumbs: [("Experiments", "/experiments"), (experiment.name, back), ("Compare", nil)],
                body: """
                    <div class="page-head"><div><h1>Compare runs</h1></div></div>
                    \(Layout.emptyState("Pick at least two runs to compare.", hint: "<p><a class=\"button\" href=\"\(back)\">Back to the runs</a></p>"))
                    """,
                status: .badRequest)
        }
        let dropped = ids.count > maxRuns ? ids.count - maxRuns : 0
        ids = Array(ids.prefix(maxRuns))
        var runs: [TrackedRun] = []
        for id in ids { runs.append(try await TrackedRunPage.run(id, experiment: experiment.id, ui)) }

        let now = Date()
        let header = runs.map { run -> HTML in
            "<th scope=\"col\"><a href=\"\(run.href)\">\(Format.truncated(run.displayName, 40))</a></th>"
        }
        func row(_ label: HTML, _ values: [String?], numeric: Bool = false, code: Bool = false) -> HTML {
            let distinct = Set(values.map { $0 ?? "\u{0}" })
            let differs = distinct.count > 1
            let cells = values.map { value -> HTML in
                guard let value else { return "<td\(numeric ? " class=\"num\"" : HTML.empty)>\(RegistryUI.dash())</td>" }
                let shown: HTML = code ? "<code class=\"value\">\(Format.truncated(value, 200))</code>" : "\(value)"
                return "<td\(numeric ? " class=\"num\"" : HTML.empty)>\(shown)</td>"
            }
            let mark: HTML = differs ? " <span class=\"tag subtle\">differs</span>" : .empty
            return "<tr\(differs ? " class=\"diff\"" : HTML.empty)><th scope=\"row\">\(label)\(mark)</th>\(cells)</tr>"
        }
        var infoRows: [HTML] = [
            "<tr><th scope=\"row\">Status</th>\(runs.map { "<td>\(RegistryUI.statusBadge($0.status))</td>" as HTML })</tr>",
            "<tr><th scope=\"row\">Started</th>\(runs.map { "<td>\(Format.time($0.start))</td>" as HTML })</tr>",
            "<tr><th scope=\"row\">Duration</th>\(runs.map { "<td>\(Format.duration($0.duration(now: now)))</td>" as HTML })</tr>",
        ]
        if runs.contains(where: { $0.tags["baton.run_id"] != nil }) {
            infoRows.append(
                "<tr><th scope=\"row\">Pipeline run</th>\(runs.map { "<td>\(RegistryUI.pipelineRunLink(tags: $0.tags, compact: true))</td>" as HTML })</tr>")
        }
        let paramKeys = Set(runs.flatMap(\.params.keys)).sorted()
        let metricKeys = Set(runs.flatMap(\.metrics.keys)).sorted()
        let paramRows = paramKeys.map { key in row("\(key)", runs.map { $0.params[key] }, code: true) }
        let metricRows = metricKeys.map { key in
            row("\(key)", runs.map { run in run.metrics[key].map { RegistryUI.metricText($0.value) } }, numeric: true)
        }
        let differingParams = paramKeys.filter { key in Set(runs.map { $0.params[key] ?? "\u{0}" }).count > 1 }.count
        let differingMetrics = metricKeys.filter { key in
            Set(runs.map { run in run.metrics[key].map { RegistryUI.metricText($0.value) } ?? "\u{0}" }).count > 1
        }.count
        let differing = differingParams + differingMetrics
        func section(_ title: String, _ rows: [HTML]) -> HTML {
            guard !rows.isEmpty else { return .empty }
            return "<tr class=\"group\"><th scope=\"colgroup\" colspan=\"\(runs.count + 1)\">\(title)</th></tr>\(rows)"
        }
        let table: HTML = """
            <div class="table-scroll"><table class="table compact compare">
            <thead><tr><th scope="col"><span class="sr-only">Field</span></th>\(header)</tr></thead>
            <tbody>\(infoRows)\(section("Params", paramRows))\(section("Metrics (latest)", metricRows))</tbody></table></div>
            """

        // Shared metrics are the ones worth overlaying; a metric only one run has is in the table.
        let shared = metricKeys.filter { key in runs.filter { $0.metrics[key] != nil }.count >= 2 }
        var charts: [HTML] = []
        for key in shared.prefix(maxCharts) {
            var series: [StepChart.Series] = []
            for run in runs where run.metrics[key] != nil {
                let history = try await MetricHistory.read(ui.context.registry, runID: run.id, key: key)
                series.append(.init(label: run.displayName, href: run.href, points: history.points))
            }
            charts.append(
                "<figure class=\"metric-chart\"><figcaption>\(key)</figcaption>\(StepChart.svg(series: series, metric: key))</figure>")
        }
        if shared.count > maxCharts {
            charts.append("<p class=\"muted\">\(shared.count - maxCharts) more shared metrics are in the table but not drawn.</p>")
        }
        let chartCard: HTML = charts.isEmpty
            ? .empty : Layout.card("Shared metrics", id: "charts", "<div class=\"charts\">\(charts)</div>")
        let droppedNote: HTML = dropped > 0
            ? "<div class=\"flash warn\" role=\"status\">Only the first \(maxRuns) runs are compared; \(dropped) more were left out.</div>" : .empty
        return Page(
            title: "Compare \(runs.count) runs · \(experiment.name)",
            section: .experiments,
            breadcrumbs: [("Experiments", "/experiments"), (experiment.name, back), ("Compare", nil)],
            body: """
                <div class="page-head"><div><p class="eyebrow"><a href="\(back)">\(experiment.name)</a></p>\
                <h1>Compare \(runs.count) runs</h1>\
                <p class="subtitle">\(Format.plural(differing, "param or metric", "params and metrics")) differ\(differing == 1 ? "s" : "")</p></div></div>
                \(droppedNote)
                \(Layout.card("Side by side", id: "compare", table))
                \(chartCard)
                """)
    }
}
