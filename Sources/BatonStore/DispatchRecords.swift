import BatonCore
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

/// A worker asking for work.
public struct ClaimRequest: Sendable, Hashable {
    public var workerID: String
    /// Queues the worker serves; an attempt is claimable only from one of them.
    public var queues: [String]
    /// At most this many attempts (the worker's free slots).
    public var limit: Int
    public var leaseSeconds: Double
    /// Slot limits of named pools, across all workers. A pool not listed is unlimited.
    public var pools: [String: Int]
    public var now: Date

    public init(
        workerID: String, queues: [String], limit: Int, leaseSeconds: Double, pools: [String: Int] = [:], now: Date
    ) {
        self.workerID = workerID
        self.queues = queues
        self.limit = limit
        self.leaseSeconds = leaseSeconds
        self.pools = pools
        self.now = now
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

/// The durable work queue between the engine and workers, local or remote.
///
/// The engine queues an attempt (an `attempts` row in state `queued` carrying its payload);
/// workers claim attempts atomically, hold them with a lease they renew, and report the end.
/// Every step is guarded by state and worker id, so a worker that lost its lease cannot
/// overwrite what the engine decided after declaring the attempt lost.
public protocol DispatchStore: Sendable {
    /// Atomically moves up to `limit` queued attempts of the given queues to `running` for this
    /// worker, oldest first, never exceeding a pool's slots, and marks their tasks running.
    func claimAttempts(_ request: ClaimRequest) async throws -> [AttemptRecord]
    /// Extends the leases this worker still holds; returns the keys it still holds (the others
    /// were declared lost or ended: the worker must stop them).
    func renewLeases(workerID: String, attempts: [AttemptKey], until: Date) async throws -> Set<AttemptKey>
    /// Records the end of an attempt held by `workerID` (or, with nil, of any open attempt:
    /// the engine's own decisions, such as stopping a queued one). False when the attempt was
    /// no longer that worker's, or had already ended.
    func finishAttempt(_ key: AttemptKey, workerID: String?, result: AttemptResult) async throws -> Bool
    /// Running attempts whose lease ran out before `now`.
    func expiredAttempts(now: Date) async throws -> [AttemptRecord]
    /// Ended attempts whose task instance still shows them running: reported by a worker but not
    /// yet applied by the engine (a crash in between, or another server took the report).
    func unappliedAttempts() async throws -> [AttemptRecord]
    func attempt(_ key: AttemptKey) async throws -> AttemptRecord?
    /// Appends to an attempt's log kept in the store (for attempts run on remote workers),
    /// stopping at `maxBytes` in all. Returns the log's size afterwards.
    @discardableResult
    func appendAttemptLog(_ key: AttemptKey, _ chunk: Data, maxBytes: Int) async throws -> Int
    /// The stored log of an attempt from `offset`, or nil when the store holds none for it.
    func attemptLog(_ key: AttemptKey, from offset: Int, limit: Int) async throws -> Data?
    /// How many attempts wait in each queue.
    func queuedAttemptCounts() async throws -> [String: Int]

    /// Tries to become the one engine that schedules; true while this store holds leadership.
    /// Cheap to call again: it re-checks that the hold is still alive.
    func tryLead() async throws -> Bool
}
