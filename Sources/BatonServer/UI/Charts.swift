import BatonCore
import BatonStore
import Foundation

/// The Gantt chart of a run: one row per task, one bar per attempt on a shared time axis.
enum GanttChart {
    static let labelWidth = 190.0
    static let chartWidth = 760.0
    static let rowHeight = 26.0
    static let barHeight = 14.0
    static let axisHeight = 26.0

    static func svg(run: RunRecord, order: [String], attempts: [AttemptRecord], now: Date = Date()) -> HTML {
        guard !attempts.isEmpty else {
            return Layout.emptyState("No attempts yet: bars appear here as tasks start.")
        }
        let byTask = Dictionary(grouping: attempts, by: \.task)
        let rows = order.filter { byTask[$0] != nil } + byTask.keys.filter { !order.contains($0) }.sorted()
        let start = min(attempts.map(\.startedAt).min() ?? now, run.startedAt ?? now)
        let ends = attempts.map { $0.endedAt ?? now } + [run.endedAt ?? start]
        let end = max(ends.max() ?? now, start.addingTimeInterval(1))
        let span = end.timeIntervalSince(start)
        let scale = chartWidth / span
        func x(_ date: Date) -> Double { labelWidth + date.timeIntervalSince(start) * scale }

        let height = axisHeight + Double(rows.count) * rowHeight + 6
        let width = labelWidth + chartWidth + 16
        var parts: [HTML] = []

        // Axis: a "nice" step giving at most about eight ticks.
        let step = niceStep(span / 8)
        var tick = 0.0
        while tick <= span + 0.001 {
            let tickX = labelWidth + tick * scale
            parts.append(
                """
                <line class="grid-line" x1="\(tickX)" y1="\(axisHeight - 6)" x2="\(tickX)" y2="\(height - 4)"/>\
                <text class="axis-label" x="\(tickX)" y="\(axisHeight - 10)" text-anchor="middle">\(axisLabel(tick))</text>
                """)
            tick += step
        }
        for (row, task) in rows.enumerated() {
            let top = axisHeight + Double(row) * rowHeight
            if row % 2 == 1 {
                parts.append("<rect class=\"row-band\" x=\"0\" y=\"\(top)\" width=\"\(width)\" height=\"\(rowHeight)\"/>")
            }
            let maxCharacters = Int((labelWidth - 16) / 7.0)
            parts.append(
                """
                <a href="\(UIPath.task(run: run.id, task: task))"><text class="row-label" x="\(labelWidth - 10)" \
                y="\(top + rowHeight / 2 + 4)" text-anchor="end">\(Format.truncated(task, maxCharacters))<title>\(task)</title></text></a>
                """)
            for attempt in (byTask[task] ?? []).sorted(by: { $0.attempt < $1.attempt }) {
                let barX = x(attempt.startedAt)
                let barEnd = x(attempt.endedAt ?? now)
                let barWidth = max(3, barEnd - barX)
                let duration = (attempt.endedAt ?? now).timeIntervalSince(attempt.startedAt)
                var tooltip = "\(task) · attempt \(attempt.attempt) · \(Format.stateWords(attempt.state.rawValue))"
                tooltip += " · \(Format.duration(duration))\n\(Format.clockText(attempt.startedAt))"
                tooltip += " → " + (attempt.endedAt.map(Format.clockText) ?? "now")
                if let code = attempt.exitCode { tooltip += " · exit \(code)" }
                if let reason = attempt.reason { tooltip += "\n" + Format.truncated(reason, 300) }
                let live: HTML = attempt.state == .running ? " bar-live" : ""
                var label: HTML = .empty
                if barWidth > 34 {
                    label = "<text class=\"bar-label\" x=\"\(barX + 6)\" y=\"\(top + rowHeight / 2 + 3.5)\">#\(attempt.attempt)</text>"
                }
                parts.append(
                    """
                    <a href="\(UIPath.task(run: run.id, task: task, attempt: attempt.attempt))">\
                    <rect class="bar \(Format.stateClass(attempt.state.rawValue))\(live)" x="\(barX)" \
                    y="\(top + (rowHeight - barHeight) / 2)" width="\(barWidth)" height="\(barHeight)" rx="3">\
                    <title>\(tooltip)</title></rect>\(label)</a>
                    """)
            }
        }
        if !run.state.isTerminal {
            let nowX = x(now)
            parts.append("<line class=\"now-line\" x1=\"\(nowX)\" y1=\"\(axisHeight - 4)\" x2=\"\(nowX)\" y2=\"\(height - 4)\"/>")
        }
        let states = Set(attempts.map(\.state.rawValue))
        let legend = DAGView.legend(StateOrder.attempt.filter { states.contains($0) })
        return """
            <div class="chart-scroll"><svg class="gantt" role="group" \
            aria-label="Gantt chart: \(Format.plural(attempts.count, "attempt")) over \(Format.duration(span)) starting \(Format.dateText(start)) UTC" \
            viewBox="0 0 \(width) \(height)" width="\(width)" height="\(height)">\(parts)</svg></div>
            <div class="chart-foot"><span class="muted">Starts \(Format.time(start)) · spans \(Format.duration(span))</span>\(legend)</div>
            """
    }

    /// The smallest round step of at least `seconds`.
    static func niceStep(_ seconds: Double) -> Double {
        let steps: [Double] = [
            0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
        ]
        return steps.first { $0 >= seconds } ?? (seconds / 86400).rounded(.up) * 86400
    }

    static func axisLabel(_ offset: Double) -> String {
        if offset == 0 { return "0" }
        if offset < 60 { return offset == offset.rounded() ? "\(Int(offset))s" : String(format: "%.1fs", offset) }
        let whole = Int(offset.rounded())
        if whole < 3600 { return whole % 60 == 0 ? "\(whole / 60)m" : "\(whole / 60)m\(whole % 60)s" }
        return whole % 3600 == 0 ? "\(whole / 3600)h" : "\(whole / 3600)h\((whole % 3600) / 60)m"
    }
}

/// Airflow's grid view: runs as columns (oldest left), tasks as rows, a square per task instance.
enum HistoryGrid {
    struct Column {
        var run: RunRecord
        var states: [String: String]
    }

    static func html(tasks: [String], columns: [Column], now: Date = Date()) -> HTML {
        guard !columns.isEmpty else {
            return Layout.emptyState("No runs yet.", hint: "<p class=\"muted\">Trigger one below, or wait for the schedule.</p>")
        }
        let durations = columns.map { column -> Double in
            guard let started = column.run.startedAt else { return 0 }
            return (column.run.endedAt ?? now).timeIntervalSince(started)
        }
        let longest = max(durations.max() ?? 0, 0.001)
        var head: [HTML] = []
        for (column, duration) in zip(columns, durations) {
            let run = column.run
            let barHeight = 4 + 34 * (duration / longest)
            let title = "Run #\(run.id) · \(Format.stateWords(run.state.rawValue)) · \(Format.dateText(run.logicalDate)) · \(Format.duration(duration))"
            head.append(
                """
                <th scope="col"><a class="grid-run \(Format.stateClass(run.state.rawValue))" href="\(UIPath.run(run.id))" \
                title="\(title)" aria-label="\(title)"><svg width="14" height="40" viewBox="0 0 14 40" aria-hidden="true">\
                <rect class="fill-state" x="1" y="\(40 - barHeight)" width="12" height="\(barHeight)" rx="2"/></svg></a></th>
                """)
        }
        var body: [HTML] = []
        for task in tasks {
            var cells: [HTML] = []
            for column in columns {
                guard let state = column.states[task] else {
                    cells.append("<td><span class=\"sq st-none\" title=\"not in run #\(column.run.id)\"></span></td>")
                    continue
                }
                let title = "\(task) · \(Format.stateWords(state)) · run #\(column.run.id) (\(Format.dateText(column.run.logicalDate)))"
                cells.append(
                    """
                    <td><a class="sq \(Format.stateClass(state))" href="\(UIPath.task(run: column.run.id, task: task))" \
                    title="\(title)" aria-label="\(title)"></a></td>
                    """)
            }
            body.append("<tr><th scope=\"row\" class=\"grid-task\" title=\"\(task)\">\(task)</th>\(cells)</tr>")
        }
        let first = columns.first.map { Format.dateText($0.run.logicalDate, seconds: false) } ?? ""
        let last = columns.last.map { Format.dateText($0.run.logicalDate, seconds: false) } ?? ""
        return """
            <div class="grid-scroll"><table class="grid">
            <caption class="sr-only">Task states of the last \(columns.count) runs, oldest first</caption>
            <thead><tr><th scope="col" class="grid-task grid-corner"><span class="muted">Duration →</span></th>\(head)</tr></thead>
            <tbody>\(body)</tbody>
            </table></div>
            <div class="chart-foot"><span class="muted">\(Format.plural(columns.count, "run")), oldest (\(first)) to newest (\(last)); bar height is the run's duration</span></div>
            """
    }
}

/// A horizontal stacked bar of how many tasks are in each state.
enum StateBar {
    static func html(_ counts: [(state: String, count: Int)], label: String) -> HTML {
        let total = counts.map(\.count).reduce(0, +)
        guard total > 0 else { return .empty }
        var x = 0.0
        var segments: [HTML] = []
        for (state, count) in counts where count > 0 {
            let width = 100.0 * Double(count) / Double(total)
            segments.append(
                "<rect class=\"fill-state \(Format.stateClass(state))\" x=\"\(x)\" y=\"0\" width=\"\(width)\" height=\"8\"><title>\(count) \(Format.stateWords(state))</title></rect>")
            x += width
        }
        let summary = counts.filter { $0.count > 0 }.map { "\($0.count) \(Format.stateWords($0.state))" }.joined(separator: ", ")
        return """
            <svg class="statebar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" aria-label="\(label): \(summary)">\(segments)</svg>
            """
    }
}
