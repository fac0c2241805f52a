import BatonAPI
import BatonCore
import BatonStore
import Foundation
import Hummingbird

/// `/dashboard`: the shared monitoring page every team reports to. Run duration and success
/// rate over time per pipeline and per owning team (from the engine's `pipeline.duration` and
/// `pipeline.success` points), then every user metric as a small chart. Server-rendered SVG, so
/// it works without JavaScript; `?range=24h|7d|30d` picks the window.
enum DashboardPage {
    /// The time windows the page offers.
    enum Range: String, CaseIterable, Sendable {
        case day = "24h"
        case week = "7d"
        case month = "30d"

        var seconds: Double {
            switch self {
            case .day: return 86400
            case .week: return 7 * 86400
            case .month: return 30 * 86400
            }
        }

        /// Bucket length: a few dozen points per line, enough to see a trend without noise.
        var step: Double {
            switch self {
            case .day: return 1800
            case .week: return 3 * 3600
            case .month: return 12 * 3600
            }
        }

        var label: String {
            switch self {
            case .day: return "Last 24 hours"
            case .week: return "Last 7 days"
            case .month: return "Last 30 days"
            }
        }
    }

    /// What every panel of the page gets: who asks, and the window shown.
    struct Context: Sendable {
        let ui: UIEnvironment
        let range: Range
        let from: Date
        let to: Date
        let now: Date
    }

    static let durationMetric = "pipeline.duration"
    static let successMetric = "pipeline.success"
    /// User metrics shown as small charts; more are listed by name only.
    static let maxUserCharts = 12

    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        WebUI.page(router, "/dashboard", context) { request, ui in
            try await page(range: request.request.query("range"), ui: ui)
        }
    }

    static func page(range text: String?, ui: UIEnvironment, now: Date = Date()) async throws -> Page {
        // An unknown range falls back to the default rather than failing: the link is the only
        // way to set it, and a stale bookmark should still show a page.
        let range = text.flatMap(Range.init(rawValue:)) ?? .day
        let context = Context(ui: ui, range: range, from: now.addingTimeInterval(-range.seconds), to: now, now: now)

        var selector: [HTML] = []
        for option in Range.allCases {
            let current: HTML = option == range ? " aria-current=\"true\"" : ""
            selector.append("<a href=\"\(UIPath.with("/dashboard", [("range", option.rawValue)]))\"\(current)>\(option.rawValue)</a>")
        }

        let byPipeline = try await query(durationMetric, groupBy: "pipeline", context)
        let byOwner = try await query(durationMetric, groupBy: "owner", context)
        let successByPipeline = try await query(successMetric, groupBy: "pipeline", context)
        let successByOwner = try await query(successMetric, groupBy: "owner", context)

        let successPoints = ((try? successByPipeline.get())?.series ?? []).flatMap(\.points)
        let runs = successPoints.reduce(0) { $0 + $1.count }
        let successes = successPoints.reduce(0.0) { $0 + $1.value * Double($1.count) }
        let durationPoints = ((try? byPipeline.get())?.series ?? []).flatMap(\.points)
        let durationCount = durationPoints.reduce(0) { $0 + $1.count }
        let durationSum = durationPoints.reduce(0.0) { $0 + $1.value * Double($1.count) }
        let facts: HTML = """
            <dl class="facts">\
            <div><dt>Runs finished</dt><dd>\(runs)</dd></div>\
            <div><dt>Success rate</dt><dd>\(runs == 0 ? "—" : percent(successes / Double(runs)))</dd></div>\
            <div><dt>Average duration</dt><dd>\(durationCount == 0 ? "—" : Format.duration(durationSum / Double(durationCount)))</dd></div>\
            <div><dt>Pipelines reporting</dt><dd>\((try? byPipeline.get())?.series.count ?? 0)</dd></div>\
            </dl>
            """

        let noRuns = Layout.emptyState(
            "No finished runs in this window.",
            hint: "<p class=\"muted\">Every run reports its duration and outcome when it ends.</p>")
        func chart(_ outcome: Result<APIMetricQueryResult, MetricQueryError>, key: String, format: LineChart.ValueFormat)
            -> HTML
        {
            let result: APIMetricQueryResult
            switch outcome {
            case .success(let value): result = value
            case .failure(let error): return tooMuch(error)
            }
            let series = lineSeries(result, key: key)
            guard !series.isEmpty else { return noRuns }
            return LineChart.svg(series: series, from: context.from, to: context.to, range: range, format: format)
        }

        let userCharts = try await userMetricPanels(context)
        let datasets = try await datasetPanels(context: context)

        return Page(
            title: "Dashboard",
            section: .dashboard,
            body: """
                <div class="page-head"><div><h1>Dashboard</h1>\
                <p class="subtitle">\(range.label) · every team's pipelines and metrics in one place</p></div>\
                <nav class="segmented" aria-label="Time range">\(selector)</nav></div>
                \(facts)
                <div class="columns">
                \(Layout.card("Run duration by pipeline", id: "duration-pipeline", chart(byPipeline, key: "pipeline", format: .duration)))
                \(Layout.card("Run duration by owner", id: "duration-owner", chart(byOwner, key: "owner", format: .duration)))
                \(Layout.card("Success rate by pipeline", id: "success-pipeline", chart(successByPipeline, key: "pipeline", format: .percent)))
                \(Layout.card("Success rate by owner", id: "success-owner", chart(successByOwner, key: "owner", format: .percent)))
                </div>
                \(datasets)
                \(userCharts)
                """)
    }

    /// Dataset freshness tiles and recent SLA misses, placed between the run charts and the
    /// user metrics; built with the other hand-off pages (`HandoffUI`), empty without a catalog.
    static func datasetPanels(context: Context) async throws -> HTML {
        try await HandoffUI.dashboardPanels(ui: context.ui, since: context.from, now: context.now)
    }

    /// One small chart per user metric (anything but the engine's own two), series by tags.
    static func userMetricPanels(_ context: Context) async throws -> HTML {
        let builtIn: Set<String> = [durationMetric, successMetric]
        var names: [String] = []
        for series in try await context.ui.store.metricSeries(name: nil)
        where !builtIn.contains(series.name) && !names.contains(series.name) {
            names.append(series.name)
        }
        let hint: HTML = """
            <p class="muted">Report a metric with <code>baton metrics emit NAME VALUE --tag key=value</code> or \
            <code>POST /api/v1/metrics</code>; it appears here.</p>
            """
        guard !names.isEmpty else {
            return Layout.card("Team metrics", id: "user-metrics", Layout.emptyState("No metrics reported yet.", hint: hint))
        }
        var cards: [HTML] = []
        for name in names.prefix(maxUserCharts) {
            let query = MetricQuery(
                name: name, from: context.from, to: context.to, step: context.range.step, aggregation: .avg)
            let result: APIMetricQueryResult
            switch try await run(query, context) {
            case .success(let value): result = value
            case .failure(let error):
                cards.append(Layout.card(name, id: "metric-\(cards.count)", tooMuch(error)))
                continue
            }
            let series = result.series.map { item in
                LineChart.Series(
                    label: item.tags.isEmpty
                        ? name : item.tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
                    href: nil, points: item.points.map { ($0.t, $0.value, $0.count) })
            }
            let body = series.isEmpty
                ? Layout.emptyState("No points in this window.")
                : LineChart.svg(series: series, from: context.from, to: context.to, range: context.range, format: .number, compact: true)
            cards.append(Layout.card(name, id: "metric-\(cards.count)", body))
        }
        var more: HTML = .empty
        if names.count > maxUserCharts {
            let rest = names.dropFirst(maxUserCharts)
            let shown = rest.prefix(30).map { "<code>\($0)</code>" as HTML }
            let others: HTML = rest.count > 30 ? " and \(rest.count - 30) more" : .empty
            more = """
                <p class="muted">Also reported: \(HTML.join(shown, separator: ", "))\(others). \
                Query them with <code>baton metrics query NAME</code>.</p>
                """
        }
        return """
            <div class="page-head"><div><h2>Team metrics</h2>\(hint)</div></div>
            <div class="columns">\(cards)</div>
            \(more)
            """
    }

    static func query(_ name: String, groupBy key: String, _ context: Context) async throws
        -> Result<APIMetricQueryResult, MetricQueryError>
    {
        let query = MetricQuery(
            name: name, from: context.from, to: context.to, step: context.range.step, aggregation: .avg, groupBy: [key])
        return try await run(query, context)
    }

    /// Runs a panel's query; a query over the answer limits (too many series) comes back as a
    /// failure for that panel to explain, so one oversized panel never takes the page down.
    static func run(_ query: MetricQuery, _ context: Context) async throws -> Result<APIMetricQueryResult, MetricQueryError> {
        do {
            return .success(try await query.run(on: context.ui.store))
        } catch let error as MetricQueryError {
            return .failure(error)
        }
    }

    static func tooMuch(_ error: MetricQueryError) -> HTML {
        Layout.emptyState("Too many series to draw here.", hint: "<p class=\"muted\">\(error.message)</p>")
    }

    /// Chart lines from a grouped query: one per value of `key` (runs without one, such as
    /// pipelines without an owner, as "(none)").
    static func lineSeries(_ result: APIMetricQueryResult, key: String) -> [LineChart.Series] {
        result.series.map { item in
            let value = item.tags[key].flatMap { $0.isEmpty ? nil : $0 }
            let href = value.map { key == "pipeline" ? UIPath.pipeline($0) : UIPath.with("/", [("owner", $0)]) }
            return LineChart.Series(
                label: value ?? "(none)", href: href, points: item.points.map { ($0.t, $0.value, $0.count) })
        }
    }

    static func percent(_ fraction: Double) -> String {
        let value = fraction * 100
        return value == value.rounded() ? "\(Int(value))%" : String(format: "%.1f%%", value)
    }
}

/// A server-rendered SVG line chart over a time window: one coloured line per series, a dot
/// with a tooltip per bucket, axes in the page's text colour (so it follows dark mode), and a
/// legend. Colours are SVG presentation attributes, which the page's style policy allows.
enum LineChart {
    struct Series: Sendable {
        var label: String
        /// Where the legend entry links, if anywhere.
        var href: String?
        /// Bucket start, value and how many points the bucket had.
        var points: [(Date, Double, Int)]
    }

    enum ValueFormat: Sendable {
        case duration, percent, number
    }

    /// Distinct on light and dark backgrounds alike.
    static let palette = ["#4c6ef5", "#f08c00", "#2f9e44", "#e03131", "#ae3ec9", "#1098ad", "#d6336c", "#74b816"]
    /// More lines than this make a chart unreadable; the rest are named below it.
    static let maxLines = 8

    static func svg(
        series all: [Series], from: Date, to: Date, range: DashboardPage.Range, format: ValueFormat, compact: Bool = false,
        clockTicks: Double? = nil
    ) -> HTML {
        // The busiest series are drawn; quieter ones are only named.
        let ranked = all.enumerated().sorted {
            let left = $0.element.points.reduce(0) { $0 + $1.2 }
            let right = $1.element.points.reduce(0) { $0 + $1.2 }
            return left != right ? left > right : $0.offset < $1.offset
        }.map(\.element)
        let series = Array(ranked.prefix(maxLines)).sorted { $0.label < $1.label }
        let hidden = ranked.dropFirst(maxLines).map(\.label).sorted()

        let width = 560.0
        let height = compact ? 180.0 : 220.0
        let left = 58.0
        let right = 14.0
        let top = 12.0
        let bottom = 26.0
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom

        let values = series.flatMap { $0.points.map(\.1) }
        var low: Double
        var high: Double
        switch format {
        case .percent:
            (low, high) = (0, 1)
        case .duration:
            (low, high) = (0, values.max() ?? 1)
        case .number:
            // A model's AUC moving between 0.81 and 0.93 should not be drawn as a flat line near
            // the top of a 0-to-1 axis: numbers get an axis around their own range.
            (low, high) = (values.min() ?? 0, values.max() ?? 1)
            if high == low { (low, high) = (low - max(abs(low) * 0.1, 1), high + max(abs(high) * 0.1, 1)) }
        }
        if high <= low { high = low + 1 }
        // Durations step in clock units (5m, 15m, 1h) rather than decimal ones (16m 40s).
        let yStep = format == .duration ? GanttChart.niceStep((high - low) / 4) : niceStep((high - low) / 4)
        low = (low / yStep).rounded(.down) * yStep
        high = (high / yStep).rounded(.up) * yStep
        let span = max(to.timeIntervalSince(from), 1)
        func x(_ date: Date) -> Double { left + plotWidth * min(max(date.timeIntervalSince(from) / span, 0), 1) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (value - low) / (high - low)) }

        var parts: [HTML] = []
        var tick = low
        while tick <= high + yStep / 1000 {
            let tickY = y(tick)
            parts.append(
                """
                <line x1="\(left)" y1="\(tickY)" x2="\(width - right)" y2="\(tickY)" stroke="currentColor" stroke-opacity="0.12"/>\
                <text x="\(left - 6)" y="\(tickY + 3.5)" text-anchor="end" font-size="10.5" fill="currentColor" fill-opacity="0.65">\(label(tick, format))</text>
                """)
            tick += yStep
        }
        // `clockTicks`: a chart of the last minutes labels its time axis by the clock every so many seconds.
        let xStep = clockTicks ?? timeTickStep(range, compact: compact)
        var xTick = (from.timeIntervalSince1970 / xStep).rounded(.up) * xStep
        while xTick <= to.timeIntervalSince1970 {
            let date = Date(timeIntervalSince1970: xTick)
            let tickX = x(date)
            parts.append(
                """
                <line x1="\(tickX)" y1="\(top)" x2="\(tickX)" y2="\(top + plotHeight)" stroke="currentColor" stroke-opacity="0.07"/>\
                <text x="\(tickX)" y="\(height - 8)" text-anchor="middle" font-size="10.5" fill="currentColor" fill-opacity="0.65">\(clockTicks == nil ? timeLabel(date, range) : String(Format.dateText(date, seconds: false).suffix(5)))</text>
                """)
            xTick += xStep
        }
        parts.append(
            """
            <line x1="\(left)" y1="\(top + plotHeight)" x2="\(width - right)" y2="\(top + plotHeight)" stroke="currentColor" stroke-opacity="0.35"/>
            """)

        var legend: [HTML] = []
        for (index, line) in series.enumerated() {
            let colour = palette[index % palette.count]
            let points = line.points.sorted { $0.0 < $1.0 }
            if points.count > 1 {
                let path = points.enumerated().map { offset, point in
                    (offset == 0 ? "M" : "L") + HTML.number(x(point.0)) + " " + HTML.number(y(point.1))
                }.joined(separator: " ")
                parts.append(
                    "<path d=\"\(path)\" fill=\"none\" stroke=\"\(colour)\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"/>")
            }
            for point in points {
                let tip = "\(line.label) · \(Format.dateText(point.0, seconds: false)) UTC · \(label(point.1, format)) (\(Format.plural(point.2, "point")))"
                parts.append(
                    "<circle cx=\"\(x(point.0))\" cy=\"\(y(point.1))\" r=\"\(points.count > 40 ? 2.0 : 3.0)\" fill=\"\(colour)\"><title>\(tip)</title></circle>")
            }
            let swatch: HTML = "<svg width=\"11\" height=\"11\" viewBox=\"0 0 11 11\" aria-hidden=\"true\"><rect width=\"11\" height=\"11\" rx=\"2\" fill=\"\(colour)\"/></svg>"
            let latest = points.last.map { " · " + label($0.1, format) } ?? ""
            let name: HTML = line.href.map { "<a href=\"\($0)\">\(line.label)</a>" } ?? "\(line.label)"
            legend.append("<li>\(swatch)\(name)<span class=\"muted\">\(latest)</span></li>")
        }
        let summary = series.map { line -> String in
            "\(line.label): " + (line.points.last.map { "latest \(label($0.1, format))" } ?? "no points")
        }.joined(separator: "; ")
        var foot: HTML = "<ul class=\"legend\">\(legend)</ul>"
        if !hidden.isEmpty {
            let named = hidden.prefix(20).joined(separator: ", ") + (hidden.count > 20 ? " and \(hidden.count - 20) more" : "")
            foot += "<p class=\"muted\">Not drawn (fewer points): \(named)</p>"
        }
        return """
            <div class="chart-scroll"><svg class="line-chart" role="img" aria-label="\(Format.plural(series.count, "series", "series")) \
            from \(Format.dateText(from, seconds: false)) to \(Format.dateText(to, seconds: false)) UTC. \(summary)" \
            viewBox="0 0 \(width) \(height)" width="100%" preserveAspectRatio="xMidYMid meet">\(parts)</svg></div>
            \(foot)
            """
    }

    /// The smallest 1, 2 or 5 times a power of ten that is at least `value`.
    static func niceStep(_ value: Double) -> Double {
        guard value > 0, value.isFinite else { return 1 }
        let magnitude = pow(10, (log10(value)).rounded(.down))
        for factor in [1.0, 2, 2.5, 5, 10] where factor * magnitude >= value { return factor * magnitude }
        return 10 * magnitude
    }

    static func timeTickStep(_ range: DashboardPage.Range, compact: Bool) -> Double {
        switch range {
        case .day: return (compact ? 6 : 4) * 3600
        case .week: return 86400
        case .month: return (compact ? 7 : 5) * 86400
        }
    }

    static func timeLabel(_ date: Date, _ range: DashboardPage.Range) -> String {
        let text = Format.dateText(date, seconds: false)
        // "2026-11-25 14:00": the clock within a day, the date across days.
        return range == .day ? String(text.suffix(5)) : String(text.dropFirst(5).prefix(5))
    }

    static func label(_ value: Double, _ format: ValueFormat) -> String {
        switch format {
        case .duration: return value == 0 ? "0" : Format.duration(value)
        case .percent: return DashboardPage.percent(value)
        case .number:
            let magnitude = abs(value)
            if magnitude >= 1e9 { return String(format: "%.3gG", value / 1e9) }
            if magnitude >= 1e6 { return String(format: "%.3gM", value / 1e6) }
            if magnitude >= 1e4 { return String(format: "%.3gk", value / 1e3) }
            if value == value.rounded() { return String(Int(value)) }
            return String(format: "%.3g", value)
        }
    }
}
