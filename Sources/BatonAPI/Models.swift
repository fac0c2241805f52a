import BatonCore
import BatonStore
import Foundation


// Field names are snake_case on the wire and spelled that way here, rather than through a key
// strategy, because a key strategy would also rewrite user data such as param names.

/// A run, optionally with its task instances.
public struct APIRun: Codable, Sendable, Hashable {
    public var id: Int64
    public var pipeline: String
    public var owner: String?
    public var state: String
    public var trigger: String
    public var logical_date: Date
    public var data_interval_start: Date
    public var data_interval_end: Date
    public var params: [String: JSONValue]
    public var created_at: Date
    public var started_at: Date?
    public var ended_at: Date?
    public var duration_seconds: Double?
    public var cancel_requested: Bool
    public var tasks: [APITask]?

    public init(_ run: RunRecord, tasks: [TaskInstanceRecord]? = nil) {
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
        duration_seconds = run.startedAt.map { (run.endedAt ?? Date()).timeIntervalSince($0) }
        cancel_requested = run.cancelRequested
        if let tasks {
            let order = TaskGraph(tasks: run.spec.tasks).topologicalOrder()
            let rank = Dictionary(uniqueKeysWithValues: order.enumerated().map { ($1, $0) })
            self.tasks = tasks.sorted { (rank[$0.task] ?? 0) < (rank[$1.task] ?? 0) }.map(APITask.init)
        }
    }
}

/// One task of a run.
public struct APITask: Codable, Sendable, Hashable {
    public var task: String
    public var state: String
    public var attempts: Int
    public var output: JSONValue?
    public var reason: String?
    public var started_at: Date?
    public var ended_at: Date?
    public var retry_at: Date?
    public var duration_seconds: Double?

    public init(_ instance: TaskInstanceRecord) {
        task = instance.task
        state = instance.state.rawValue
        attempts = instance.attempts
        output = instance.output
        reason = instance.reason
        started_at = instance.startedAt
        ended_at = instance.endedAt
        retry_at = instance.retryAt
        duration_seconds = instance.startedAt.map { (instance.endedAt ?? Date()).timeIntervalSince($0) }
    }
}

/// One attempt of a task.
public struct APIAttempt: Codable, Sendable, Hashable {
    public var attempt: Int
    public var state: String
    public var started_at: Date
    public var ended_at: Date?
    public var duration_seconds: Double?
    public var exit_code: Int32?
    public var reason: String?
    public var queue: String?
    public var pool: String?
    public var worker: String?

    public init(_ attempt: AttemptRecord) {
        self.attempt = attempt.attempt
        state = attempt.state.rawValue
        queue = attempt.queue
        pool = attempt.pool
        worker = attempt.workerID
        started_at = attempt.startedAt
        ended_at = attempt.endedAt
        duration_seconds = (attempt.endedAt ?? Date()).timeIntervalSince(attempt.startedAt)
        exit_code = attempt.exitCode
        reason = attempt.reason
    }
}

/// A declared param, for trigger forms and validation.
public struct APIParam: Codable, Sendable, Hashable {
    public var name: String
    public var type: String
    public var default_value: JSONValue?
    public var description: String?
    public var allowed_values: [JSONValue]?

    public init(_ param: ParamSpec) {
        name = param.name
        type = param.type.rawValue
        default_value = param.defaultValue
        description = param.description
        allowed_values = param.allowedValues
    }
}

/// A pipeline as listed.
public struct APIPipeline: Codable, Sendable, Hashable {
    public var name: String
    public var owner: String?
    public var description: String?
    public var schedule: String
    public var schedule_description: String
    public var timezone: String
    public var paused: Bool
    public var next_run: Date?
    public var file: String?
    public var task_count: Int
    public var params: [APIParam]
    /// States of the most recent runs, newest first.
    public var recent_runs: [APIRunBrief]

    public init(_ record: PipelineRecord, recentRuns: [RunRecord], now: Date = Date()) {
        let spec = record.spec
        name = spec.name
        owner = spec.owner
        description = spec.description
        schedule = spec.schedule.description
        timezone = spec.timezone
        paused = record.paused
        file = record.file
        task_count = spec.tasks.count
        params = spec.params.map(APIParam.init)
        recent_runs = recentRuns.map(APIRunBrief.init)
        switch spec.schedule {
        case .none:
            schedule_description = "manual only"
        case .once:
            schedule_description = "once"
        case .cron(let expression):
            let cron = try? CronSchedule.parse(expression)
            schedule_description = cron?.humanDescription ?? expression
            if !record.paused, let cron, let zone = TimeZone(identifier: spec.timezone) {
                next_run = cron.nextFire(after: now, in: zone)
            }
        }
    }
}

public struct APIRunBrief: Codable, Sendable, Hashable {
    public var id: Int64
    public var state: String
    public var logical_date: Date

    public init(_ run: RunRecord) {
        id = run.id
        state = run.state.rawValue
        logical_date = run.logicalDate
    }
}

/// A pipeline's DAG: tasks and their dependencies.
public struct APIGraph: Codable, Sendable, Hashable {
    public struct Node: Codable, Sendable, Hashable {
        public var id: String
        public var command: String
        public var trigger_rule: String
        public var when: String?
        public var retries: Int
        public var timeout_seconds: Double?
    }

    public struct Edge: Codable, Sendable, Hashable {
        public var from: String
        public var to: String
    }

    public var nodes: [Node]
    public var edges: [Edge]

    public init(_ spec: PipelineSpec) {
        nodes = spec.tasks.map { task in
            let command: String
            switch task.command {
            case .shell(let text): command = text
            case .argv(let items): command = items.joined(separator: " ")
            }
            return Node(
                id: task.name, command: command, trigger_rule: task.triggerRule.rawValue, when: task.when,
                retries: task.retries, timeout_seconds: task.timeout)
        }
        edges = spec.tasks.flatMap { task in task.needs.map { Edge(from: $0, to: task.name) } }
    }
}

/// A pipeline with its DAG.
public struct APIPipelineDetail: Codable, Sendable, Hashable {
    public var pipeline: APIPipeline
    public var graph: APIGraph
    public var catchup: Bool
    public var max_active_runs: Int
    public var start_date: Date?

    public init(_ record: PipelineRecord, recentRuns: [RunRecord]) {
        pipeline = APIPipeline(record, recentRuns: recentRuns)
        graph = APIGraph(record.spec)
        catchup = record.spec.catchup
        max_active_runs = record.spec.maxActiveRuns
        start_date = record.spec.startDate
    }
}

/// Lists come wrapped, so fields such as a cursor can be added without breaking clients.
public struct APIList<Item: Codable & Sendable & Hashable>: Codable, Sendable, Hashable {
    public var items: [Item]
    /// Pass as `cursor` to get the next page; absent on the last page.
    public var next_cursor: String?

    public init(items: [Item], next_cursor: String? = nil) {
        self.items = items
        self.next_cursor = next_cursor
    }
}

/// The body of every error response.
public struct APIErrorBody: Codable, Sendable, Hashable {
    public struct Detail: Codable, Sendable, Hashable {
        public var code: String
        public var message: String
        public var field: String?
        /// How to fix it, when the message alone does not say.
        public var fix: String?
    }

    public var error: Detail

    public init(code: String, message: String, field: String? = nil, fix: String? = nil) {
        error = Detail(code: code, message: message, field: field, fix: fix)
    }
}

/// `POST /api/v1/runs`.
public struct APITriggerRequest: Codable, Sendable, Hashable {
    public var pipeline: String
    public var params: [String: JSONValue]?

    public init(pipeline: String, params: [String: JSONValue]? = nil) {
        self.pipeline = pipeline
        self.params = params
    }
}

/// JSON coding shared by server, client and CLI: ISO 8601 dates, sorted keys.
public enum APICoding {
    /// One compact encoder for every response: its settings never change after creation, and
    /// building one per response showed on the request path.
    public static let sharedEncoder = encoder()
    /// One decoder for every request body, for the same reason.
    public static let sharedDecoder = decoder()

    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(isoString(date))
        }
        return encoder
    }

    /// `2026-11-25T10:00:00.000Z`. Written by hand because Foundation's ISO 8601 format style
    /// costs microseconds per date, which dominated encoding a page of runs.
    public static func isoString(_ date: Date) -> String { UTCTimestamp.iso(date, milliseconds: true) }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            if let date = formatter.date(from: text) { return date }
            formatter.formatOptions = [.withInternetDateTime]
            if let date = formatter.date(from: text) { return date }
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
        }
        return decoder
    }
}
