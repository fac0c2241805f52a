import BatonCore
import BatonStore
import Foundation

/// Aligned text tables for people.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

enum Format {
    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return date.formatted(.iso8601.year().month().day().dateSeparator(.dash).dateTimeSeparator(.space).time(includingFractionalSeconds: false).timeSeparator(.colon))
    }

    static func duration(_ start: Date?, _ end: Date?) -> String {
        guard let start else { return "-" }
        return DurationText.format((end ?? Date()).timeIntervalSince(start))
    }
}

/// JSON shapes for `--json` output; field names match the REST API.
struct RunJSON: Encodable {
    var id: Int64
    var pipeline: String
    var owner: String?
    var state: String
    var trigger: String
    var logical_date: Date
    var data_interval_start: Date
    var data_interval_end: Date
    var params: [String: JSONValue]
    var created_at: Date
    var started_at: Date?
    var ended_at: Date?
    var tasks: [TaskJSON]?

    init(_ run: RunRecord, tasks: [TaskInstanceRecord]? = nil) {
        id = run.id
        pipeline = run.pipeline
        owner = run.owner
        state = run.state.rawValue
        trigger = run.trigger.rawValue
        logical_date = run.logicalDate
        data_interval_start = run.intervalStart
        data_interval_end = run.intervalEnd
        params = run.params
        created_at = run.createdAt
        started_at = run.startedAt
        ended_at = run.endedAt
        self.tasks = tasks?.map(TaskJSON.init)
    }
}

struct TaskJSON: Encodable {
    var task: String
    var state: String
    var attempts: Int
    var output: JSONValue?
    var reason: String?
    var started_at: Date?
    var ended_at: Date?

    init(_ instance: TaskInstanceRecord) {
        task = instance.task
        state = instance.state.rawValue
        attempts = instance.attempts
        output = instance.output
        reason = instance.reason
        started_at = instance.startedAt
        ended_at = instance.endedAt
    }
}
