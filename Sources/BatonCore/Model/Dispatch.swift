import Foundation

/// Identifies one attempt of one task of one run.
public struct AttemptKey: Sendable, Hashable, Codable, CustomStringConvertible {
    public var runID: Int64
    public var task: String
    public var attempt: Int

    public init(runID: Int64, task: String, attempt: Int) {
        self.runID = runID
        self.task = task
        self.attempt = attempt
    }

    enum CodingKeys: String, CodingKey {
        case runID = "run_id", task, attempt
    }

    public var description: String { "run \(runID) task \(task) attempt \(attempt)" }
}

/// Everything a worker needs to run an attempt, fixed when the engine queues it.
///
/// The environment holds only what Baton adds for the task (its `env:`, `BATON_*` variables);
/// each worker merges it over its own process environment, so a remote machine's `PATH` and
/// the server's own secrets never travel through the queue.
public struct DispatchPayload: Sendable, Hashable, Codable {
    public var pipeline: String
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    /// The server's pipelines folder: a worker with its own copy maps paths under it to that copy.
    public var pipelinesDirectory: String
    public var timeout: Double?
    public var maxOutputBytes: Int
    public var maxLogBytes: Int

    public init(
        pipeline: String, arguments: [String], environment: [String: String], workingDirectory: String,
        pipelinesDirectory: String, timeout: Double?, maxOutputBytes: Int, maxLogBytes: Int
    ) {
        self.pipeline = pipeline
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.pipelinesDirectory = pipelinesDirectory
        self.timeout = timeout
        self.maxOutputBytes = maxOutputBytes
        self.maxLogBytes = maxLogBytes
    }

    enum CodingKeys: String, CodingKey {
        case pipeline, arguments, environment, timeout
        case workingDirectory = "working_directory"
        case pipelinesDirectory = "pipelines_directory"
        case maxOutputBytes = "max_output_bytes"
        case maxLogBytes = "max_log_bytes"
    }
}

/// How a worker says an attempt ended.
public struct AttemptResult: Sendable, Hashable {
    public var state: AttemptState
    public var exitCode: Int32?
    public var reason: String?
    public var output: JSONValue?
    public var at: Date

    public init(state: AttemptState, exitCode: Int32? = nil, reason: String? = nil, output: JSONValue? = nil, at: Date) {
        self.state = state
        self.exitCode = exitCode
        self.reason = reason
        self.output = output
        self.at = at
    }
}

