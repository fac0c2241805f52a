import BatonCore
import Foundation

/// How a run came to exist.
public enum RunTrigger: String, Sendable, Hashable, Codable {
    case schedule, manual, backfill, event
}

/// A pipeline as last loaded from its file, with its scheduling bookkeeping.
public struct PipelineRecord: Sendable, Hashable {
    public var name: String
    public var file: String
    public var spec: PipelineSpec
    public var paused: Bool
    public var firstSeen: Date
    /// The end of the latest interval a scheduled run was created for.
    public var lastScheduledEnd: Date?
    public var updatedAt: Date

    public init(
        name: String, file: String, spec: PipelineSpec, paused: Bool = false, firstSeen: Date,
        lastScheduledEnd: Date? = nil, updatedAt: Date
    ) {
        self.name = name
        self.file = file
        self.spec = spec
        self.paused = paused
        self.firstSeen = firstSeen
        self.lastScheduledEnd = lastScheduledEnd
        self.updatedAt = updatedAt
    }
}

/// One run of a pipeline. `(pipeline, runKey)` is unique: an interval can only get one run.
public struct RunRecord: Sendable, Hashable {
    public var id: Int64
    public var pipeline: String
    /// For scheduled and backfill runs the ISO logical date; unique per pipeline.
    public var runKey: String
    public var logicalDate: Date
    public var intervalStart: Date
    public var intervalEnd: Date
    public var trigger: RunTrigger
    public var params: [String: JSONValue]
    /// The pipeline definition the run executes, frozen when the run was created.
    public var spec: PipelineSpec
    public var state: RunState
    public var createdAt: Date
    public var startedAt: Date?
    public var endedAt: Date?
    public var cancelRequested: Bool
    /// The event that started the run (its `document`), for event-triggered runs.
    public var event: JSONValue?
    public var owner: String? { spec.owner }

    public init(
        id: Int64 = 0, pipeline: String, runKey: String, logicalDate: Date, intervalStart: Date, intervalEnd: Date,
        trigger: RunTrigger, params: [String: JSONValue], spec: PipelineSpec, state: RunState = .queued,
        createdAt: Date, startedAt: Date? = nil, endedAt: Date? = nil, cancelRequested: Bool = false,
        event: JSONValue? = nil
    ) {
        self.event = event
        self.id = id
        self.pipeline = pipeline
        self.runKey = runKey
        self.logicalDate = logicalDate
        self.intervalStart = intervalStart
        self.intervalEnd = intervalEnd
        self.trigger = trigger
        self.params = params
        self.spec = spec
        self.state = state
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.cancelRequested = cancelRequested
    }
}

/// One task of one run.
public struct TaskInstanceRecord: Sendable, Hashable {
    public var runID: Int64
    public var task: String
    public var state: TaskState
    public var attempts: Int
    public var output: JSONValue?
    public var reason: String?
    public var startedAt: Date?
    public var endedAt: Date?
    /// When an `up_for_retry` task's next attempt may start.
    public var retryAt: Date?
    public var interruptions: Int

    public init(
        runID: Int64, task: String, state: TaskState = .pending, attempts: Int = 0, output: JSONValue? = nil,
        reason: String? = nil, startedAt: Date? = nil, endedAt: Date? = nil, retryAt: Date? = nil,
        interruptions: Int = 0
    ) {
        self.interruptions = interruptions
        self.runID = runID
        self.task = task
        self.state = state
        self.attempts = attempts
        self.output = output
        self.reason = reason
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.retryAt = retryAt
    }

    public var progress: TaskProgress {
        TaskProgress(state: state, attempts: attempts, output: output, reason: reason, interruptions: interruptions)
    }
}

/// One attempt at running a task: one process, one log.
public struct AttemptRecord: Sendable, Hashable {
    public var runID: Int64
    public var task: String
    public var attempt: Int
    public var state: AttemptState
    public var pid: Int32?
    /// The process start time (clock ticks since boot), to tell a reused pid from ours.
    public var processStartTicks: Int64?
    public var startedAt: Date
    public var endedAt: Date?
    public var exitCode: Int32?
    public var reason: String?
    public var logPath: String
    /// Which workers may run it (`queue:` in the task; `default` otherwise).
    public var queue: String
    /// The slot pool it counts against, if any (`pool:` in the task).
    public var pool: String?
    /// The worker that claimed it, and until when its claim holds without a heartbeat.
    public var workerID: String?
    public var leaseExpires: Date?
    /// When the engine handed it to the queue; `startedAt` is when a worker claimed it.
    public var queuedAt: Date?
    /// What a worker needs to run it; present while it is queued or running.
    public var payload: DispatchPayload?
    /// The JSON output the worker reported, kept until the engine has applied it.
    public var output: JSONValue?

    public var key: AttemptKey { AttemptKey(runID: runID, task: task, attempt: attempt) }

    public init(
        runID: Int64, task: String, attempt: Int, state: AttemptState = .running, pid: Int32? = nil,
        processStartTicks: Int64? = nil, startedAt: Date, endedAt: Date? = nil, exitCode: Int32? = nil,
        reason: String? = nil, logPath: String, queue: String = "default", pool: String? = nil,
        workerID: String? = nil, leaseExpires: Date? = nil, queuedAt: Date? = nil, payload: DispatchPayload? = nil,
        output: JSONValue? = nil
    ) {
        self.queue = queue
        self.pool = pool
        self.workerID = workerID
        self.leaseExpires = leaseExpires
        self.queuedAt = queuedAt
        self.payload = payload
        self.output = output
        self.runID = runID
        self.task = task
        self.attempt = attempt
        self.state = state
        self.pid = pid
        self.processStartTicks = processStartTicks
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.exitCode = exitCode
        self.reason = reason
        self.logPath = logPath
    }

    public var duration: Double? { endedAt.map { $0.timeIntervalSince(startedAt) } }
}

/// A state change to commit atomically with others.
public enum StoreChange: Sendable, Hashable {
    case runState(runID: Int64, state: RunState, at: Date)
    case taskState(
        runID: Int64, task: String, state: TaskState, attempts: Int, interruptions: Int = 0, output: JSONValue?,
        reason: String?, retryAt: Date?, at: Date)
    /// A producing task's success updated a dataset: the update and the run's lineage row.
    case datasetUpdate(DatasetUpdateRecord)
    /// An event published as part of a transition (such as `dataset.NAME.updated`).
    case event(EventRecord)
    /// Forget an earlier cancellation request: the run was cleared to run again.
    case runCleared(runID: Int64)
    /// Creates an attempt row: usually `queued` with its payload, for a worker to claim.
    case attemptStarted(AttemptRecord)
    case attemptProcess(runID: Int64, task: String, attempt: Int, pid: Int32, startTicks: Int64?)
    case attemptFinished(
        runID: Int64, task: String, attempt: Int, state: AttemptState, exitCode: Int32?, reason: String?, at: Date)
}

/// Filters for listing runs.
public struct RunQuery: Sendable, Hashable {
    public var pipeline: String?
    public var states: [RunState]?
    public var limit: Int
    /// Only runs with an id below this one (cursor pagination, newest first).
    public var beforeID: Int64?

    public init(pipeline: String? = nil, states: [RunState]? = nil, limit: Int = 50, beforeID: Int64? = nil) {
        self.pipeline = pipeline
        self.states = states
        self.limit = limit
        self.beforeID = beforeID
    }
}

/// Persistence for pipelines, runs, task instances and attempts. The store is the single
/// source of truth: the engine's memory is a cache of it, rebuilt from it after a restart.
public protocol Store: TokenStore, MetricStore, HandoffStore, DispatchStore, RegistryStore, FeatureStore, DeploymentStore {
    func upsertPipeline(name: String, file: String, spec: PipelineSpec, now: Date) async throws -> PipelineRecord
    func pipelines() async throws -> [PipelineRecord]
    func pipeline(named name: String) async throws -> PipelineRecord?
    func setPaused(_ paused: Bool, pipeline: String) async throws
    func setLastScheduledEnd(_ end: Date, pipeline: String) async throws

    /// Inserts the run and its pending task instances unless `(pipeline, runKey)` exists.
    /// Returns the run and whether this call created it.
    func createRun(_ run: RunRecord) async throws -> (run: RunRecord, created: Bool)
    func run(id: Int64) async throws -> RunRecord?
    func runs(_ query: RunQuery) async throws -> [RunRecord]
    /// Runs that are not finished, oldest first.
    func unfinishedRuns() async throws -> [RunRecord]
    func taskInstances(runID: Int64) async throws -> [TaskInstanceRecord]
    func attempts(runID: Int64, task: String?) async throws -> [AttemptRecord]
    /// Attempts queued for a worker or running: what a restarted engine must wait for.
    func openAttempts() async throws -> [AttemptRecord]
    func requestCancel(runID: Int64) async throws -> Bool
    func cancelRequestedRunIDs() async throws -> [Int64]

    /// Applies all changes in one transaction.
    func commit(_ changes: [StoreChange]) async throws
    /// A token that changes when another process commits, so the engine notices runs and
    /// cancellations written by the CLI without scanning tables.
    func externalChangeToken() async throws -> Int64
    /// Hints that another process may have changed the token, as they happen (SQLite's
    /// `ChangeBell`, PostgreSQL's `LISTEN`), or nil where the store has none; either way the token is also polled. A hint is not a
    /// change; the token says. Throws when the store has hints but cannot give them here.
    func externalChangeHints() throws -> AsyncStream<Void>?
    /// Reachability check for readiness probes.
    func ping() async throws
}

extension Store {
    public func externalChangeHints() throws -> AsyncStream<Void>? { nil }
}

/// What an API token may do. Each role includes the ones before it.
public enum TokenRole: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Read pipelines, runs, logs and metrics.
    case viewer
    /// Also trigger, cancel and retry runs, pause pipelines, publish events.
    case `operator`
    /// Also manage tokens.
    case admin

    private var rank: Int {
        switch self {
        case .viewer: return 0
        case .operator: return 1
        case .admin: return 2
        }
    }

    public static func < (lhs: TokenRole, rhs: TokenRole) -> Bool { lhs.rank < rhs.rank }
}

/// An API token. Only a hash of its secret is stored; the secret is shown once, at creation.
public struct TokenRecord: Sendable, Hashable {
    /// Public identifier, also the token's prefix.
    public var id: String
    public var team: String
    public var role: TokenRole
    public var description: String?
    /// Hex SHA-256 of the secret part.
    public var secretHash: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var lastUsedAt: Date?

    public init(
        id: String, team: String, role: TokenRole, description: String?, secretHash: String, createdAt: Date,
        revokedAt: Date? = nil, lastUsedAt: Date? = nil
    ) {
        self.id = id
        self.team = team
        self.role = role
        self.description = description
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.lastUsedAt = lastUsedAt
    }
}

/// Token persistence; part of every store.
public protocol TokenStore: Sendable {
    func createToken(_ token: TokenRecord) async throws
    func tokens() async throws -> [TokenRecord]
    func token(id: String) async throws -> TokenRecord?
    /// Returns false when no active token has this id.
    func revokeToken(id: String, at: Date) async throws -> Bool
    func markTokenUsed(id: String, at: Date) async throws
}
