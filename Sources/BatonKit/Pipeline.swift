@_exported import BatonCore
import Foundation

/// A pipeline written in Swift. It produces the same `PipelineSpec` a YAML or Python file
/// does, so Baton schedules, validates and shows it like any other:
///
/// ```swift
/// let customerData = Pipeline("customer_data_pipeline", schedule: .hourly, owner: "data_engineering") {
///     Command("extract", "python3 scripts/extract.py --date {{ ds }}")
///     Step("clean", needs: "extract") { context in
///         let raw = try context.input("extract", as: RawFile.self)
///         return CleanFile(path: raw.path, rows: raw.rows - 3)
///     }
/// }
/// ```
///
/// `Step` closures run in the worker executable that registers the pipeline (see `Worker`),
/// on a queue only that worker serves: by default the pipeline's name.
public struct Pipeline: Sendable {
    public var name: String { header.name }
    /// The spec without tasks: everything `Pipeline(...)` declares itself.
    let header: PipelineSpec
    let tasks: [TaskDeclaration]
    /// The queue `Step` tasks go to unless they name one.
    public let queue: String
    let location: SwiftDescribeAnswer.Location

    /// Declares a pipeline; the builder lists its tasks in order (`if`, `for` and helper
    /// functions returning tasks work inside it).
    ///
    /// - Parameters:
    ///   - queue: where `Step` tasks wait for this pipeline's worker; default: the pipeline's
    ///     name (prefixed with `swift-` when the name does not start with a letter).
    public init(
        _ name: String, schedule: Schedule = .none, owner: String? = nil, description: String? = nil,
        timezone: String = "UTC", startDate: Date? = nil, catchup: Bool = false,
        maxActiveRuns: Int = PipelineSpec.defaultMaxActiveRuns, params: [Param] = [], triggers: [EventTrigger] = [],
        queue: String? = nil, file: String = #filePath, line: Int = #line,
        @PipelineBuilder tasks: () -> [TaskDeclaration]
    ) {
        var header = PipelineSpec(
            name: name, owner: owner, description: description, schedule: schedule.spec, timezone: timezone,
            startDate: startDate, catchup: catchup, maxActiveRuns: maxActiveRuns, params: params.map(\.spec))
        header.triggers = triggers.map(\.spec)
        self.header = header
        self.tasks = tasks()
        self.queue = queue ?? Self.defaultQueue(for: name)
        self.location = .init(file: file, line: line)
    }

    /// The pipeline's name when it is a valid queue name, else a valid one derived from it.
    static func defaultQueue(for name: String) -> String {
        if PipelineParser.isValidWorkName(name) { return name }
        let allowed = name.unicodeScalars.map { scalar -> String in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "_-.".unicodeScalars.contains(scalar))
                ? String(scalar) : "_"
        }.joined()
        return String(("swift-" + allowed).prefix(64))
    }

    /// The spec Baton runs. A `Step` becomes the command `EXECUTABLE run-task PIPELINE TASK`
    /// on the pipeline's queue: its worker runs the closure in-process, and anything else that
    /// ever runs the command (a worker told to serve that queue) runs the closure too, in a
    /// fresh process of `executable`.
    public func spec(executable: String) -> PipelineSpec {
        var spec = header
        spec.tasks = tasks.map { declaration in
            var task = declaration.spec
            if declaration.body != nil {
                task.command = .argv([executable, Worker.runTaskCommand, header.name, task.name])
                if task.queue == nil { task.queue = queue }
            }
            return task
        }
        return spec
    }

    /// The spec with this process's own executable (what `describe` prints).
    public var spec: PipelineSpec { spec(executable: Worker.executablePath) }

    /// The closure of a `Step`, by task name.
    func body(of task: String) -> StepBody? {
        tasks.first { $0.spec.name == task }?.body
    }
}

/// When a pipeline runs on its own.
public struct Schedule: Sendable, Hashable, ExpressibleByStringLiteral {
    let spec: ScheduleSpec

    /// Runs start only by trigger or event.
    public static let none = Schedule(spec: .none)
    /// Exactly one run, when Baton first sees the pipeline.
    public static let once = Schedule(spec: .once)
    public static let hourly = Schedule(spec: .cron("@hourly"))
    public static let daily = Schedule(spec: .cron("@daily"))
    public static let weekly = Schedule(spec: .cron("@weekly"))
    public static let monthly = Schedule(spec: .cron("@monthly"))
    public static let yearly = Schedule(spec: .cron("@yearly"))

    /// A 5-field cron expression (`"0 6 * * 1-5"`), read in the pipeline's `timezone`.
    public static func cron(_ expression: String) -> Schedule { Schedule(stringLiteral: expression) }

    init(spec: ScheduleSpec) { self.spec = spec }

    /// Cron text or a preset, as in YAML (`"@daily"`, `"none"`).
    public init(stringLiteral value: String) {
        switch value.trimmingCharacters(in: .whitespaces).lowercased() {
        case "", "none": spec = .none
        case "@once": spec = .once
        default: spec = .cron(value)
        }
    }
}

/// A pipeline parameter: a value given to a run (`baton trigger --param`), with its default.
public struct Param: Sendable, Hashable {
    let spec: ParamSpec

    /// - Parameters:
    ///   - type: inferred from the default when not given.
    ///   - allowed: when given, the only values accepted.
    public init(
        _ name: String, default value: JSONValue? = nil, type: ParamType? = nil, description: String? = nil,
        allowed: [JSONValue]? = nil
    ) {
        spec = ParamSpec(
            name: name, defaultValue: value, type: type ?? .inferred(from: value), description: description,
            allowedValues: allowed)
    }
}

/// An event that starts a run.
public struct EventTrigger: Sendable, Hashable {
    let spec: EventTriggerSpec

    /// `filter` maps payload fields (dotted paths) to the value, or list of values, they must have.
    public static func event(_ name: String, filter: [String: JSONValue] = [:]) -> EventTrigger {
        EventTrigger(spec: EventTriggerSpec(event: name, filter: filter))
    }
}

/// Collects a pipeline's tasks.
@resultBuilder
public enum PipelineBuilder {
    public static func buildExpression(_ task: some PipelineTask) -> [TaskDeclaration] { [task.declaration] }
    public static func buildExpression(_ tasks: [any PipelineTask]) -> [TaskDeclaration] { tasks.map(\.declaration) }
    public static func buildBlock(_ parts: [TaskDeclaration]...) -> [TaskDeclaration] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [TaskDeclaration]?) -> [TaskDeclaration] { part ?? [] }
    public static func buildEither(first part: [TaskDeclaration]) -> [TaskDeclaration] { part }
    public static func buildEither(second part: [TaskDeclaration]) -> [TaskDeclaration] { part }
    public static func buildArray(_ parts: [[TaskDeclaration]]) -> [TaskDeclaration] { parts.flatMap { $0 } }
    public static func buildLimitedAvailability(_ part: [TaskDeclaration]) -> [TaskDeclaration] { part }
}
