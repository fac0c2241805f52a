import BatonCore
import BatonRegistry
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird

/// The experiment tracking and model registry pages: routes, and the pieces they share (how a
/// tracked run reads from the registry's MLflow-shaped JSON, status badges, links to the Baton
/// pipeline run behind a tracked run or a model version, and step charts of metrics).
enum RegistryUI {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        WebUI.page(router, "/experiments", context) { request, ui in try await ExperimentsPage.page(request, ui) }
        WebUI.page(router, "/experiments/:experiment", context) { request, ui in try await ExperimentPage.page(request, ui) }
        WebUI.page(router, "/experiments/:experiment/compare", context) { request, ui in
            try await CompareRunsPage.page(request, ui)
        }
        WebUI.page(router, "/experiments/:experiment/runs/:tracked", context) { request, ui in
            try await TrackedRunPage.page(request, ui)
        }
        WebUI.page(router, "/models", context) { request, ui in try await ModelsPage.page(request, ui) }
        WebUI.page(router, "/models/:model", context) { request, ui in
            try await ModelPage.page(name: request.decodedParameter("model"), flash: request.request.query("done"), ui: ui)
        }
        WebUI.action(router, "/models/:model/approve", context) { request, form, ui in
            try await ModelPage.approve(name: request.decodedParameter("model"), form: form, request: request, ui: ui)
        }
        WebUI.action(router, "/models/:model/revoke", context) { request, form, ui in
            try await ModelPage.revoke(name: request.decodedParameter("model"), form: form, request: request, ui: ui)
        }
    }

    /// Runs a registry read, turning its "does not exist" into the 404 page.
    static func found<T>(_ read: () async throws -> T, suggestion: (label: String, href: String)? = nil) async throws -> T {
        do {
            return try await read()
        } catch let error as MLflowError where error.status == 404 {
            throw UINotFound(message: error.message, suggestion: suggestion)
        }
    }

    /// An MLflow run status as the state badge the rest of the UI uses.
    static func statusBadge(_ status: String) -> HTML {
        let state: String
        switch status {
        case "FINISHED": state = "success"
        case "FAILED": state = "failed"
        case "RUNNING": state = "running"
        case "KILLED": state = "cancelled"
        case "SCHEDULED": state = "queued"
        default: state = "none"
        }
        return """
            <span class="badge \(Format.stateClass(state))"><span class="dot" aria-hidden="true"></span>\
            <span class="label">\(status.lowercased())</span></span>
            """
    }

    /// Metric values as people read them: six significant digits, NaN and infinities spelled out.
    static func metricText(_ value: Double?, digits: Int = 6) -> String {
        guard let value else { return "NaN" }
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "∞" : "−∞" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.\(digits)g", value)
    }

    static func dash() -> HTML { "<span class=\"muted\">—</span>" }

    /// The Baton pipeline run (and task) a tracked run came from, from its `baton.*` tags.
    static func pipelineRunLink(tags: [String: String], compact: Bool = false) -> HTML {
        guard let id = tags["baton.run_id"].flatMap(Int64.init) else { return dash() }
        return pipelineRunLink(
            TaskOrigin(
                runID: id, pipeline: tags["baton.pipeline"], task: tags["baton.task"] ?? "",
                attempt: tags["baton.attempt"].flatMap { Int($0) } ?? 0), compact: compact)
    }

    /// `#12` linked to the pipeline run, then `pipeline.task` linked to the task's page.
    static func pipelineRunLink(_ origin: TaskOrigin, compact: Bool = false) -> HTML {
        var html: HTML = "<a class=\"nowrap\" href=\"\(UIPath.run(origin.runID))\">#\(origin.runID)</a>"
        guard !origin.task.isEmpty else { return html }
        let label = (origin.pipeline.map { $0 + "." } ?? "") + origin.task
        let task = UIPath.task(run: origin.runID, task: origin.task, attempt: origin.attempt > 0 ? origin.attempt : nil)
        html += compact
            ? " <a class=\"muted\" href=\"\(task)\" title=\"\(label)\">\(Format.truncated(origin.task, 24))</a>"
            : " <a class=\"muted\" href=\"\(task)\">\(label)</a>"
        return html
    }

    /// Query items as a browser's GET form sends them: `+` is a space (the router's own query
    /// reading keeps it as `+`, which would turn `a > 1` into `a+>+1`). Repeated names keep
    /// every value in order.
    static func formQuery(_ request: Request) -> [(String, String)] {
        MLflowRoutes.formQuery(request.uri.query)
    }

    static func formValue(_ items: [(String, String)], _ name: String) -> String? {
        items.last { $0.0 == name }.map { $0.1.trimmingCharacters(in: .whitespacesAndNewlines) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Short messages after an approval form, in the shape of `Layout.flash`: only known codes.
    static func flash(_ code: String?) -> HTML {
        let messages: [String: String] = [
            "approved": "Approved: the alias now points at this version.",
            "revoked": "Approval revoked: the alias no longer points at any version.",
        ]
        guard let code, let text = messages[code] else { return Layout.flash(code) }
        return "<div class=\"flash ok\" role=\"status\">\(text)</div>"
    }
}

extension WebUI.PageRequest {
    /// A path parameter with its percent-encoding undone: the router hands segments over raw,
    /// and names of experiments and models may hold spaces or other encoded characters.
    func decodedParameter(_ name: String) -> String {
        let raw = parameter(name)
        return raw.removingPercentEncoding ?? raw
    }
}

extension UIPath {
    static func experiment(_ id: String) -> String { "/experiments/" + segment(id) }
    static func trackedRun(experiment: String, run: String) -> String { Self.experiment(experiment) + "/runs/" + segment(run) }
    static func compare(experiment: String, runs: [String]) -> String {
        Self.experiment(experiment) + "/compare?runs=" + runs.map(segment).joined(separator: ",")
    }
    static func model(_ name: String) -> String { "/models/" + segment(name) }
    /// A file of the artifact store, served by the MLflow artifact API.
    static func artifact(_ relative: String) -> String {
        "/api/2.0/mlflow-artifacts/artifacts/" + relative.split(separator: "/").map { segment(String($0)) }.joined(separator: "/")
    }
}

extension JSONValue {
    /// Numbers, and the strings MLflow's JSON uses for values JSON cannot hold.
    var uiDouble: Double? {
        switch self {
        case .number(let number): return number
        case .string("NaN"): return .nan
        case .string("Infinity"): return .infinity
        case .string("-Infinity"): return -.infinity
        case .string(let text): return Double(text)
        default: return nil
        }
    }

    /// `[{"key", "value"}]` lists (params, tags) as a dictionary.
    var uiKeyValues: [String: String] {
        var result: [String: String] = [:]
        for item in arrayValue ?? [] {
            guard let key = item["key"]?.scalarText else { continue }
            result[key] = item["value"]?.scalarText ?? ""
        }
        return result
    }
}

/// An experiment as the registry answers it.
struct TrackedExperiment: Sendable {
    var id: String
    var name: String
    var lifecycle: String
    var artifactLocation: String
    var created: Date?
    var updated: Date?
    var tags: [String: String]

    init(_ json: JSONValue) {
        id = json["experiment_id"]?.scalarText ?? ""
        name = json["name"]?.scalarText ?? ""
        lifecycle = json["lifecycle_stage"]?.scalarText ?? "active"
        artifactLocation = json["artifact_location"]?.scalarText ?? ""
        created = json["creation_time"]?.uiDouble.map { Date(timeIntervalSince1970: $0 / 1000) }
        updated = json["last_update_time"]?.uiDouble.map { Date(timeIntervalSince1970: $0 / 1000) }
        tags = json["tags"]?.uiKeyValues ?? [:]
    }
}

/// A tracked run as the registry answers it (`{"info", "data"}`).
struct TrackedRun: Sendable {
    struct Metric: Sendable, Hashable {
        /// Nil for NaN.
        var value: Double?
        var step: Int64
        var timestamp: Int64
    }

    var id: String
    var experimentID: String
    var name: String
    var user: String
    var status: String
    var lifecycle: String
    var artifactURI: String
    var start: Date?
    var end: Date?
    var params: [String: String]
    var tags: [String: String]
    var metrics: [String: Metric]

    init(_ json: JSONValue) {
        let info = json["info"] ?? .object([:])
        func date(_ key: String) -> Date? { info[key]?.uiDouble.map { Date(timeIntervalSince1970: $0 / 1000) } }
        id = info["run_id"]?.scalarText ?? ""
        experimentID = info["experiment_id"]?.scalarText ?? ""
        name = info["run_name"]?.scalarText ?? ""
        user = info["user_id"]?.scalarText ?? ""
        status = info["status"]?.scalarText ?? ""
        lifecycle = info["lifecycle_stage"]?.scalarText ?? "active"
        artifactURI = info["artifact_uri"]?.scalarText ?? ""
        start = date("start_time")
        end = date("end_time")
        let data = json["data"] ?? .object([:])
        params = data["params"]?.uiKeyValues ?? [:]
        tags = data["tags"]?.uiKeyValues ?? [:]
        var metrics: [String: Metric] = [:]
        for item in data["metrics"]?.arrayValue ?? [] {
            guard let key = item["key"]?.scalarText else { continue }
            let value = item["value"]?.uiDouble
            metrics[key] = Metric(
                value: value.flatMap { $0.isNaN ? nil : $0 }, step: Int64(item["step"]?.uiDouble ?? 0),
                timestamp: Int64(item["timestamp"]?.uiDouble ?? 0))
        }
        self.metrics = metrics
    }

    var displayName: String { name.isEmpty ? id : name }

    /// Seconds from start to end, or to now while the run is going.
    func duration(now: Date) -> Double? {
        guard let start else { return nil }
        if let end { return end.timeIntervalSince(start) }
        return status == "RUNNING" ? now.timeIntervalSince(start) : nil
    }

    var href: String { UIPath.trackedRun(experiment: experimentID, run: id) }
}

/// The points of one metric of one run, read from its history.
struct MetricHistory: Sendable {
    var points: [TrackedRun.Metric]
    /// The history had more points than were read.
    var truncated: Bool

    /// Histories longer than this are cut: a chart cannot show more, and the page stays fast.
    static let limit = 5000

    static func read(_ registry: Registry, runID: String, key: String) async throws -> MetricHistory {
        let found = try await registry.metricHistory(runID: runID, key: key, maxResults: limit, pageToken: nil)
        let points = found.metrics.map { item in
            TrackedRun.Metric(
                value: item["value"]?.uiDouble.flatMap { $0.isNaN ? nil : $0 }, step: Int64(item["step"]?.uiDouble ?? 0),
                timestamp: Int64(item["timestamp"]?.uiDouble ?? 0))
        }
        return MetricHistory(points: points, truncated: found.next != nil)
    }
}

/// A server-rendered SVG line chart of metric values over steps, one line per run, in the
/// dashboard charts' colours. When every point has the same step (a client that logs without
/// steps) the x axis is the seconds since the first point instead, so the line still shows
/// the order the values came in.
enum StepChart {
    struct Series: Sendable {
        var label: String
        var href: String?
        var points: [TrackedRun.Metric]
    }

    /// More points than a chart can show are thinned evenly, keeping the first and last.
    static let maxPoints = 600

    static func svg(series all: [Series], metric: String) -> HTML {
        let series = Array(all.prefix(LineChart.maxLines))
        let allPoints = series.flatMap(\.points)
        let byTime = Set(allPoints.map(\.step)).count <= 1 && allPoints.count > series.count
        let origin = allPoints.map(\.timestamp).min() ?? 0
        func xValue(_ point: TrackedRun.Metric) -> Double {
            byTime ? Double(point.timestamp - origin) / 1000 : Double(point.step)
        }
        let finite = allPoints.compactMap { point -> (Double, Double)? in
            guard let value = point.value, value.isFinite else { return nil }
            return (xValue(point), value)
        }
        guard !finite.isEmpty else {
            return "<p class=\"muted\">No finite values of <code>\(metric)</code> to draw.</p>"
        }
        // One value per run (a final score) reads better as bars than as dots stacked on one step.
        if series.allSatisfy({ line in line.points.filter { $0.value?.isFinite ?? false }.count <= 1 }) {
            return bars(series, metric: metric)
        }

        let width = 520.0
        let height = 200.0
        let left = 58.0
        let right = 14.0
        let top = 12.0
        let bottom = 34.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom

        var (low, high) = (finite.map(\.1).min() ?? 0, finite.map(\.1).max() ?? 1)
        if high == low { (low, high) = (low - max(abs(low) * 0.1, 0.01), high + max(abs(high) * 0.1, 0.01)) }
        let yStep = LineChart.niceStep((high - low) / 4)
        low = (low / yStep).rounded(.down) * yStep
        high = (high / yStep).rounded(.up) * yStep
        var (xLow, xHigh) = (finite.map(\.0).min() ?? 0, finite.map(\.0).max() ?? 1)
        if xHigh == xLow { (xLow, xHigh) = (xLow - 1, xHigh + 1) }
        // Steps are whole numbers: no tick between two of them.
        let xStep = byTime ? LineChart.niceStep((xHigh - xLow) / 5) : max(1, LineChart.niceStep((xHigh - xLow) / 5).rounded(.up))
        func x(_ value: Double) -> Double { left + plotWidth * (value - xLow) / (xHigh - xLow) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (value - low) / (high - low)) }

        var parts: [HTML] = []
        var tick = low
        while tick <= high + yStep / 1000 {
            parts.append(
                """
                <line x1="\(left)" y1="\(y(tick))" x2="\(width - right)" y2="\(y(tick))" stroke="currentColor" stroke-opacity="0.12"/>\
                <text x="\(left - 6)" y="\(y(tick) + 3.5)" text-anchor="end" font-size="10.5" fill="currentColor" fill-opacity="0.65">\(LineChart.label(tick, .number))</text>
                """)
            tick += yStep
        }
        var xTick = (xLow / xStep).rounded(.up) * xStep
        while xTick <= xHigh + xStep / 1000 {
            parts.append(
                """
                <text x="\(x(xTick))" y="\(height - 18)" text-anchor="middle" font-size="10.5" fill="currentColor" fill-opacity="0.65">\(LineChart.label(xTick, .number))</text>
                """)
            xTick += xStep
        }
        parts.append(
            """
            <line x1="\(left)" y1="\(top + plotHeight)" x2="\(width - right)" y2="\(top + plotHeight)" stroke="currentColor" stroke-opacity="0.35"/>\
            <text x="\(left + plotWidth / 2)" y="\(height - 3)" text-anchor="middle" font-size="10.5" fill="currentColor" fill-opacity="0.55">\(byTime ? "seconds since the first value" : "step")</text>
            """)

        var legend: [HTML] = []
        for (index, line) in series.enumerated() {
            let colour = LineChart.palette[index % LineChart.palette.count]
            var points = line.points.filter { $0.value?.isFinite ?? false }.sorted {
                (xValue($0), $0.timestamp) < (xValue($1), $1.timestamp)
            }
            if points.count > maxPoints {
                let stride = Double(points.count - 1) / Double(maxPoints - 1)
                points = (0..<maxPoints).map { points[Int((Double($0) * stride).rounded())] }
            }
            if points.count > 1 {
                let path = points.enumerated().map { offset, point in
                    (offset == 0 ? "M" : "L") + HTML.number(x(xValue(point))) + " " + HTML.number(y(point.value ?? 0))
                }.joined(separator: " ")
                parts.append(
                    "<path d=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>")
            }
            // Dots with tooltips only where they can be told apart.
            if points.count <= 60 {
                for point in points {
                    let tip = "\(line.label) · step \(point.step) · \(RegistryUI.metricText(point.value))"
                    parts.append(
                        "<circle cx=\"\(x(xValue(point)))\" cy=\"\(y(point.value ?? 0))\" r=\"3\" fill=\"\(colour)\"><title>\(tip)</title></circle>")
                }
            }
            let swatch: HTML = "<svg width=\"11\" height=\"11\" viewBox=\"0 0 11 11\" aria-hidden=\"true\"><rect width=\"11\" height=\"11\" rx=\"2\" fill=\"\(colour)\"/></svg>"
            let name: HTML = line.href.map { "<a href=\"\($0)\">\(line.label)</a>" } ?? "\(line.label)"
            let latest = line.points.last.map { " · " + RegistryUI.metricText($0.value) } ?? ""
            legend.append("<li>\(swatch)\(name)<span class=\"muted\">\(latest)</span></li>")
        }
        let summary = series.map { "\($0.label): " + ($0.points.last.map { "latest \(RegistryUI.metricText($0.value))" } ?? "no values") }
            .joined(separator: "; ")
        let more: HTML = all.count > series.count
            ? "<p class=\"muted\">\(all.count - series.count) more runs not drawn.</p>" : .empty
        return """
            <div class="chart-scroll"><svg class="line-chart" role="img" aria-label="\(metric) by \(byTime ? "time" : "step"). \(summary)" \
            viewBox="0 0 \(width) \(height)" width="100%" preserveAspectRatio="xMidYMid meet">\(parts)</svg></div>
            <ul class="legend">\(legend)</ul>\(more)
            """
    }

    /// One horizontal bar per run, from zero (or from the smallest value when all are negative),
    /// labelled with the value.
    static func bars(_ series: [Series], metric: String) -> HTML {
        let values = series.map { line in line.points.last { $0.value?.isFinite ?? false }?.value }
        let finite = values.compactMap { $0 }
        let low = min(0, finite.min() ?? 0)
        let high = max(0, finite.max() ?? 1)
        let span = high - low == 0 ? 1 : high - low
        let width = 520.0
        let labelWidth = 150.0
        let valueWidth = 80.0
        let rowHeight = 24.0
        let barWidth = width - labelWidth - valueWidth
        let height = rowHeight * Double(series.count) + 4
        var parts: [HTML] = []
        for (index, (line, value)) in zip(series, values).enumerated() {
            let colour = LineChart.palette[index % LineChart.palette.count]
            let y = 2 + rowHeight * Double(index)
            let label = Format.truncated(line.label, 22)
            let name: HTML = "<text x=\"\(labelWidth - 8)\" y=\"\(y + 15)\" text-anchor=\"end\" font-size=\"11.5\" fill=\"currentColor\">\(label)</text>"
            parts.append(line.href.map { "<a href=\"\($0)\">\(name)</a>" } ?? name)
            guard let value else {
                parts.append("<text x=\"\(labelWidth)\" y=\"\(y + 15)\" font-size=\"11.5\" fill=\"currentColor\" fill-opacity=\"0.55\">no value</text>")
                continue
            }
            let start = labelWidth + barWidth * (min(value, 0) - low) / span
            let length = max(barWidth * abs(value) / span, 1)
            parts.append(
                """
                <rect x="\(start)" y="\(y + 4)" width="\(length)" height="\(rowHeight - 8)" rx="2" fill="\(colour)"><title>\(line.label) · \(RegistryUI.metricText(value))</title></rect>\
                <text x="\(start + length + 6)" y="\(y + 15)" font-size="11.5" fill="currentColor" fill-opacity="0.8">\(RegistryUI.metricText(value, digits: 4))</text>
                """)
        }
        let summary = zip(series, values).map { "\($0.label): \(RegistryUI.metricText($1))" }.joined(separator: "; ")
        return """
            <div class="chart-scroll"><svg class="bar-chart" role="img" aria-label="\(metric), one value per run. \(summary)" \
            viewBox="0 0 \(width) \(height)" width="100%" preserveAspectRatio="xMinYMin meet">\(parts)</svg></div>
            """
    }
}

// MARK: - The pipeline run page's section

extension RegistryUI {
    /// Tracked runs and model versions a pipeline run listed at most; a run logging more is rare
    /// and its experiment page lists them all.
    static let lineageLimit = 50

    /// The run page's "Models and experiment runs" card: what the pipeline run's tasks tracked
    /// and registered. Empty when they did neither.
    static func runPageSection(runID: Int64, ui: UIEnvironment) async throws -> HTML {
        let objects = try await ui.context.registry.lineage(pipelineRunID: runID)
        let tracked = objects.filter { $0.kind == .run }.sorted { $0.createdAt < $1.createdAt }
        let versions = objects.filter { $0.kind == .modelVersion }.sorted { $0.createdAt < $1.createdAt }
        guard !tracked.isEmpty || !versions.isEmpty else { return .empty }
        var rows: [HTML] = []
        for object in tracked.prefix(lineageLimit) {
            guard let json = try? await ui.context.registry.run(id: object.id) else { continue }
            let run = TrackedRun(json)
            let task: HTML = run.tags["baton.task"].map { "<a href=\"\(UIPath.task(run: runID, task: $0))\">\($0)</a>" } ?? RegistryUI.dash()
            rows.append(
                """
                <tr><td><span class="tag subtle">tracked run</span></td><th scope="row"><a href="\(run.href)">\(run.displayName)</a></th>\
                <td>\(task)</td><td>\(statusBadge(run.status))</td></tr>
                """)
        }
        var modelNames: [String: String] = [:]
        for object in versions.prefix(lineageLimit) {
            guard let modelID = object.parent else { continue }
            if modelNames[modelID] == nil {
                modelNames[modelID] = try await ui.store.registryObject(.registeredModel, id: modelID)?.name ?? ""
            }
            guard let name = modelNames[modelID], !name.isEmpty else { continue }
            let number = object.id.split(separator: "/").last.map(String.init) ?? object.id
            let version = try? await ui.context.registry.version(model: name, number: Int(number) ?? 0)
            let task: HTML = version?.origin.map { origin in
                "<a href=\"\(UIPath.task(run: runID, task: origin.task))\">\(origin.task)</a>" as HTML
            } ?? RegistryUI.dash()
            let aliases: HTML = (version?.aliases ?? []).isEmpty
                ? .empty
                : " " + HTML.join(
                    (version?.aliases ?? []).map { "<span class=\"alias\($0 == Registry.approvalAlias ? " champion" : "")\">\($0)</span>" as HTML },
                    separator: " ")
            rows.append(
                """
                <tr><td><span class="tag">model version</span></td><th scope="row"><a href="\(UIPath.model(name))#v\(number)">\(name) v\(number)</a>\(aliases)</th>\
                <td>\(task)</td><td>\(version.map { "\($0.status.lowercased())" as HTML } ?? RegistryUI.dash())</td></tr>
                """)
        }
        let more = max(0, tracked.count - lineageLimit) + max(0, versions.count - lineageLimit)
        let moreNote: HTML = more > 0 ? "<p class=\"muted\">\(more) more not listed.</p>" : .empty
        return Layout.card(
            "Models and experiment runs", id: "registry",
            """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Task</th><th scope="col">Status</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>\(moreNote)
            """)
    }
}
