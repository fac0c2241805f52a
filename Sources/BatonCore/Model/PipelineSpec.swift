import Foundation

/// A pipeline as declared in a file: what runs, when, and with which parameters.
/// It is stored with every run so a run finishes with the definition it started with.
public struct PipelineSpec: Sendable, Hashable, Codable {
    public var name: String
    public var owner: String?
    public var description: String?
    public var schedule: ScheduleSpec
    /// IANA time zone name in which the schedule's wall-clock times are read.
    public var timezone: String
    /// Intervals starting before this instant are never scheduled.
    public var startDate: Date?
    public var catchup: Bool
    public var maxActiveRuns: Int
    public var params: [ParamSpec]
    /// Tasks in declaration order.
    public var tasks: [TaskSpec]
    /// Events that start runs.
    public var triggers: [EventTriggerSpec] = []
    /// The file the pipeline was read from, for messages and for resolving `workdir`.
    public var sourceFile: String?

    public static let defaultMaxActiveRuns = 16

    public init(
        name: String, owner: String? = nil, description: String? = nil, schedule: ScheduleSpec = .none,
        timezone: String = "UTC", startDate: Date? = nil, catchup: Bool = false,
        maxActiveRuns: Int = PipelineSpec.defaultMaxActiveRuns, params: [ParamSpec] = [], tasks: [TaskSpec] = [],
        sourceFile: String? = nil
    ) {
        self.name = name
        self.owner = owner
        self.description = description
        self.schedule = schedule
        self.timezone = timezone
        self.startDate = startDate
        self.catchup = catchup
        self.maxActiveRuns = maxActiveRuns
        self.params = params
        self.tasks = tasks
        self.sourceFile = sourceFile
    }

    enum CodingKeys: String, CodingKey {
        case name, owner, description, schedule, timezone, startDate, catchup, maxActiveRuns, params, tasks, triggers
        case sourceFile
    }

    // Decoded by hand so that definitions stored by earlier versions (without newer fields)
    // still load: every field added later has a default.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        owner = try container.decodeIfPresent(String.self, forKey: .owner)
        description = try container.decodeIfPresent(String.self, forKey: .description)
        schedule = try container.decodeIfPresent(ScheduleSpec.self, forKey: .schedule) ?? .none
        timezone = try container.decodeIfPresent(String.self, forKey: .timezone) ?? "UTC"
        startDate = try container.decodeIfPresent(Date.self, forKey: .startDate)
        catchup = try container.decodeIfPresent(Bool.self, forKey: .catchup) ?? false
        maxActiveRuns = try container.decodeIfPresent(Int.self, forKey: .maxActiveRuns) ?? Self.defaultMaxActiveRuns
        params = try container.decodeIfPresent([ParamSpec].self, forKey: .params) ?? []
        tasks = try container.decodeIfPresent([TaskSpec].self, forKey: .tasks) ?? []
        triggers = try container.decodeIfPresent([EventTriggerSpec].self, forKey: .triggers) ?? []
        sourceFile = try container.decodeIfPresent(String.self, forKey: .sourceFile)
    }

    public func task(named name: String) -> TaskSpec? { tasks.first { $0.name == name } }
    public func param(named name: String) -> ParamSpec? { params.first { $0.name == name } }

    /// Default values of all params, overlaid with `overrides`.
    public func resolvedParams(_ overrides: [String: JSONValue] = [:]) -> [String: JSONValue] {
        var values: [String: JSONValue] = [:]
        for param in params { values[param.name] = param.defaultValue ?? .null }
        for (key, value) in overrides { values[key] = value }
        return values
    }
}

/// When a pipeline runs on its own.
public enum ScheduleSpec: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Only manual (and later event) triggers.
    case none
    /// Exactly one run, as soon as the pipeline is first seen.
    case once
    /// A 5-field cron expression or one of the @presets it accepts.
    case cron(String)

    public var description: String {
        switch self {
        case .none: return "none"
        case .once: return "@once"
        case .cron(let expression): return expression
        }
    }
}

/// A declared pipeline parameter.
public struct ParamSpec: Sendable, Hashable, Codable {
    public var name: String
    public var defaultValue: JSONValue?
    public var type: ParamType
    public var description: String?
    /// When set, the only values accepted.
    public var allowedValues: [JSONValue]?

    public init(
        name: String, defaultValue: JSONValue?, type: ParamType, description: String? = nil,
        allowedValues: [JSONValue]? = nil
    ) {
        self.name = name
        self.defaultValue = defaultValue
        self.type = type
        self.description = description
        self.allowedValues = allowedValues
    }
}

public enum ParamType: String, Sendable, Hashable, Codable, CaseIterable {
    case string, integer, number, boolean, array, object, any

    /// The type a default value implies when none is declared.
    public static func inferred(from value: JSONValue?) -> ParamType {
        switch value {
        case .string: return .string
        case .number(let number): return number.rounded() == number ? .integer : .number
        case .bool: return .boolean
        case .array: return .array
        case .object: return .object
        case .null, .none: return .any
        }
    }
}

/// The command a task runs.
public enum TaskCommand: Sendable, Hashable, Codable {
    /// Run through `/bin/sh -c`; templated values are shell-quoted.
    case shell(String)
    /// Executed directly, no shell; each element is one argument.
    case argv([String])
}

/// How a task's upstream outcomes decide whether it runs.
public enum TriggerRule: String, Sendable, Hashable, Codable, CaseIterable {
    case allSuccess = "all_success"
    case allDone = "all_done"
    case oneFailed = "one_failed"
    case allFailed = "all_failed"
    case noneFailed = "none_failed"
    case oneSuccess = "one_success"
}

/// A task of a pipeline.
public struct TaskSpec: Sendable, Hashable, Codable {
    public var name: String
    public var command: TaskCommand
    /// Environment entries in declaration order; values may hold templates.
    public var env: [EnvEntry]
    public var workdir: String?
    public var needs: [String]
    public var retries: Int
    /// Seconds before the first retry; each later retry waits `retryBackoff` times longer.
    public var retryDelay: Double
    public var retryBackoff: Double
    public var maxRetryDelay: Double
    /// Seconds; nil means no limit.
    public var timeout: Double?
    public var triggerRule: TriggerRule
    /// A condition on params and upstream outputs; false skips the task.
    public var when: String?
    /// Datasets this task writes: its success records an update of each.
    public var produces: [String] = []
    /// Datasets this task reads, with the contract they must meet before it starts.
    public var requires: [DatasetRequirement] = []
    /// Only workers serving this queue run the task (`default` when nil).
    public var queue: String?
    /// A named pool whose slot limit the task counts against, across all workers.
    public var pool: String?

    public static let defaultQueue = "default"

    public static let defaultRetryDelay: Double = 10
    public static let defaultRetryBackoff: Double = 2
    public static let defaultMaxRetryDelay: Double = 3600

    public init(
        name: String, command: TaskCommand, env: [EnvEntry] = [], workdir: String? = nil, needs: [String] = [],
        retries: Int = 0, retryDelay: Double = TaskSpec.defaultRetryDelay,
        retryBackoff: Double = TaskSpec.defaultRetryBackoff, maxRetryDelay: Double = TaskSpec.defaultMaxRetryDelay,
        timeout: Double? = nil, triggerRule: TriggerRule = .allSuccess, when: String? = nil
    ) {
        self.name = name
        self.command = command
        self.env = env
        self.workdir = workdir
        self.needs = needs
        self.retries = retries
        self.retryDelay = retryDelay
        self.retryBackoff = retryBackoff
        self.maxRetryDelay = maxRetryDelay
        self.timeout = timeout
        self.triggerRule = triggerRule
        self.when = when
    }

    enum CodingKeys: String, CodingKey {
        case name, command, env, workdir, needs, retries, retryDelay, retryBackoff, maxRetryDelay, timeout
        case triggerRule, when, produces, requires, queue, pool
    }

    // By hand, like PipelineSpec: fields added later default when absent.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        command = try container.decode(TaskCommand.self, forKey: .command)
        env = try container.decodeIfPresent([EnvEntry].self, forKey: .env) ?? []
        workdir = try container.decodeIfPresent(String.self, forKey: .workdir)
        needs = try container.decodeIfPresent([String].self, forKey: .needs) ?? []
        retries = try container.decodeIfPresent(Int.self, forKey: .retries) ?? 0
        retryDelay = try container.decodeIfPresent(Double.self, forKey: .retryDelay) ?? Self.defaultRetryDelay
        retryBackoff = try container.decodeIfPresent(Double.self, forKey: .retryBackoff) ?? Self.defaultRetryBackoff
        maxRetryDelay = try container.decodeIfPresent(Double.self, forKey: .maxRetryDelay) ?? Self.defaultMaxRetryDelay
        timeout = try container.decodeIfPresent(Double.self, forKey: .timeout)
        triggerRule = try container.decodeIfPresent(TriggerRule.self, forKey: .triggerRule) ?? .allSuccess
        when = try container.decodeIfPresent(String.self, forKey: .when)
        produces = try container.decodeIfPresent([String].self, forKey: .produces) ?? []
        requires = try container.decodeIfPresent([DatasetRequirement].self, forKey: .requires) ?? []
        queue = try container.decodeIfPresent(String.self, forKey: .queue)
        pool = try container.decodeIfPresent(String.self, forKey: .pool)
    }

    /// Seconds to wait before attempt `nextAttempt` (2 for the first retry).
    public func retryDelay(beforeAttempt nextAttempt: Int) -> Double {
        let exponent = Double(max(0, nextAttempt - 2))
        return min(maxRetryDelay, retryDelay * pow(retryBackoff, exponent))
    }
}

public struct EnvEntry: Sendable, Hashable, Codable {
    public var name: String
    public var value: String
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}
