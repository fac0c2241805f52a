import Foundation

/// A closure task's body as the worker calls it: the context in, the output (already JSON) out.
typealias StepBody = @Sendable (TaskContext) async throws -> JSONValue?

/// One task as declared: its spec, its closure when it is a `Step`, and where it was written.
public struct TaskDeclaration: Sendable {
    var spec: TaskSpec
    var body: StepBody?
    var location: SwiftDescribeAnswer.Location
}

/// A task of a `Pipeline`: a `Command` or a `Step`. The modifiers (`needs`, `retries`,
/// `timeout`, ...) set what a YAML task's keys of the same names set.
public protocol PipelineTask: Sendable {
    var declaration: TaskDeclaration { get set }
}

/// A task that runs a command, like `run:` in YAML: a string goes through `/bin/sh -c` (values
/// from templates are quoted as one shell word), an argument list runs without a shell.
public struct Command: PipelineTask {
    public var declaration: TaskDeclaration

    /// `Command("extract", "python3 extract.py --date {{ ds }}")`
    public init(_ name: String, _ shell: String, needs: String..., file: String = #filePath, line: Int = #line) {
        declaration = TaskDeclaration(
            spec: TaskSpec(name: name, command: .shell(shell), needs: needs), body: nil,
            location: .init(file: file, line: line))
    }

    /// `Command("train", arguments: ["python3", "train.py", "{{ params.metric }}"])`
    public init(_ name: String, arguments: [String], needs: String..., file: String = #filePath, line: Int = #line) {
        declaration = TaskDeclaration(
            spec: TaskSpec(name: name, command: .argv(arguments), needs: needs), body: nil,
            location: .init(file: file, line: line))
    }
}

/// A task that runs a Swift closure in the pipeline's worker (see `Worker`).
///
/// The closure gets a `TaskContext` (params, the direct upstreams' outputs, run details, a
/// log) and returns an `Encodable` value: the task's output, handed to downstream tasks and
/// shown in the UI. A struct or dictionary is the output as it is; any other value is stored
/// as `{"value": ...}` and handed on unwrapped, as the Python SDK does. A thrown error fails
/// the attempt (and is retried per `retries`), with the error in the log and the reason.
///
/// The closure runs inside the worker process: it is stopped by cancellation (timeouts,
/// cancelled runs), so long loops should check `Task.isCancelled`.
public struct Step: PipelineTask {
    public var declaration: TaskDeclaration

    /// A step whose return value is its output.
    public init<Output: Encodable & SendableMetatype>(
        _ name: String, needs: String..., file: String = #filePath, line: Int = #line,
        _ body: @escaping @Sendable (TaskContext) async throws -> Output
    ) {
        declaration = TaskDeclaration(
            spec: TaskSpec(name: name, command: .argv([]), needs: needs),
            body: { context in try TaskOutput.encode(try await body(context), task: name) },
            location: .init(file: file, line: line))
    }

    /// A step without output.
    public init(
        _ name: String, needs: String..., file: String = #filePath, line: Int = #line,
        _ body: @escaping @Sendable (TaskContext) async throws -> Void
    ) {
        declaration = TaskDeclaration(
            spec: TaskSpec(name: name, command: .argv([]), needs: needs),
            body: { context in
                try await body(context)
                return nil
            },
            location: .init(file: file, line: line))
    }
}

extension PipelineTask {
    private func with(_ change: (inout TaskSpec) -> Void) -> Self {
        var copy = self
        change(&copy.declaration.spec)
        return copy
    }

    /// Runs after these tasks (adding to those given at creation); a `Step` receives their outputs.
    public func needs(_ tasks: String...) -> Self { with { $0.needs += tasks } }

    /// Retries a failed attempt `count` times, waiting `delay` (10 s) before the first retry and
    /// `backoff` (2) times longer before each next one, at most `maxDelay` (1 h).
    public func retries(_ count: Int, delay: Duration? = nil, backoff: Double? = nil, maxDelay: Duration? = nil) -> Self {
        with { task in
            task.retries = count
            if let delay { task.retryDelay = delay.seconds }
            if let backoff { task.retryBackoff = backoff }
            if let maxDelay { task.maxRetryDelay = maxDelay.seconds }
        }
    }

    /// Stops an attempt running longer than `limit` (a command's whole process group is killed;
    /// a step is cancelled).
    public func timeout(_ limit: Duration) -> Self { with { $0.timeout = limit.seconds } }

    /// How the upstreams' outcomes decide whether the task runs (default `.allSuccess`).
    public func triggerRule(_ rule: TriggerRule) -> Self { with { $0.triggerRule = rule } }

    /// Runs only when the condition holds, such as `"tasks.validate.output.value == true"`
    /// (the syntax of YAML's `when:`); otherwise the task is skipped.
    public func when(_ condition: String) -> Self { with { $0.when = condition } }

    /// Datasets the task writes: its success records an update of each.
    public func produces(_ datasets: String...) -> Self { with { $0.produces += datasets } }

    /// A dataset the task reads, with the contract it must meet before the task starts.
    public func requires(
        _ dataset: String, maxStaleness: Duration? = nil, schema: String? = nil, onViolation: ViolationPolicy = .fail,
        waitTimeout: Duration? = nil
    ) -> Self {
        with {
            $0.requires.append(
                DatasetRequirement(
                    dataset: dataset, maxStaleness: maxStaleness?.seconds, schema: schema, onViolation: onViolation,
                    waitTimeout: waitTimeout?.seconds ?? DatasetRequirement.defaultWaitTimeout))
        }
    }

    /// An environment variable for the task; the value may hold templates.
    public func env(_ name: String, _ value: String) -> Self { with { $0.env.append(EnvEntry(name: name, value: value)) } }

    /// The working directory, relative to the pipelines folder. A step runs in the worker's
    /// process, whose directory stays as it is; it finds this one in `TaskContext.workingDirectory`.
    public func workdir(_ path: String) -> Self { with { $0.workdir = path } }

    /// Only workers serving this queue run the task. For a `Step`, that must be a worker
    /// registering its pipeline.
    public func queue(_ name: String) -> Self { with { $0.queue = name } }

    /// Counts against a named pool's slots across all workers.
    public func pool(_ name: String) -> Self { with { $0.pool = name } }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// `minutes` minutes, for timeouts and retry delays.
    public static func minutes(_ minutes: Double) -> Duration { .milliseconds(Int64((minutes * 60_000).rounded())) }

    /// `hours` hours, for timeouts and retry delays.
    public static func hours(_ hours: Double) -> Duration { .milliseconds(Int64((hours * 3_600_000).rounded())) }
}
