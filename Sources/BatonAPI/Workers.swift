import BatonCore
import Foundation

/// The remote-worker protocol: a worker long-polls for attempts, renews its leases with
/// heartbeats, streams logs and reports each attempt's end. Workers never see the database.
public enum WorkerProtocol {
    /// The longest a claim waits for work before answering with none.
    public static let maxWaitSeconds: Double = 30
    /// The largest log chunk a worker sends in one request.
    public static let maxLogChunkBytes = 1 << 20
}

/// `POST /api/v1/workers/claim`
public struct APIClaimRequest: Codable, Sendable, Hashable {
    /// The worker's id: stable for its lifetime, unique among workers (host and pid by default).
    public var worker: String
    public var queues: [String]
    /// Free slots: at most this many attempts come back.
    public var slots: Int
    /// How long to wait for work when none is queued (long poll), at most 30 s.
    public var wait_seconds: Double?

    public init(worker: String, queues: [String], slots: Int, wait_seconds: Double?) {
        self.worker = worker
        self.queues = queues
        self.slots = slots
        self.wait_seconds = wait_seconds
    }
}

/// An attempt handed to a worker.
public struct APIClaimedAttempt: Codable, Sendable, Hashable {
    public var run_id: Int64
    public var task: String
    public var attempt: Int
    public var payload: DispatchPayload

    public init(run_id: Int64, task: String, attempt: Int, payload: DispatchPayload) {
        self.run_id = run_id
        self.task = task
        self.attempt = attempt
        self.payload = payload
    }

    public var key: AttemptKey { AttemptKey(runID: run_id, task: task, attempt: attempt) }
}

public struct APIClaimResponse: Codable, Sendable, Hashable {
    public var attempts: [APIClaimedAttempt]
    /// Renew within this many seconds or the attempts are declared lost.
    public var lease_seconds: Double

    public init(attempts: [APIClaimedAttempt], lease_seconds: Double) {
        self.attempts = attempts
        self.lease_seconds = lease_seconds
    }
}

/// `POST /api/v1/workers/heartbeat`
public struct APIHeartbeatRequest: Codable, Sendable, Hashable {
    public var worker: String
    public var attempts: [AttemptKey]

    public init(worker: String, attempts: [AttemptKey]) {
        self.worker = worker
        self.attempts = attempts
    }
}

public struct APIHeartbeatResponse: Codable, Sendable, Hashable {
    /// Attempts this worker no longer holds (declared lost, or stopped because their run was
    /// cancelled): the worker stops them and drops their reports.
    public var revoked: [AttemptKey]
    public var lease_seconds: Double

    public init(revoked: [AttemptKey], lease_seconds: Double) {
        self.revoked = revoked
        self.lease_seconds = lease_seconds
    }
}

/// `POST /api/v1/workers/attempts/{run}/{task}/{attempt}/finish`
public struct APIFinishRequest: Codable, Sendable, Hashable {
    public var worker: String
    public var state: AttemptState
    public var exit_code: Int32?
    public var reason: String?
    public var output: JSONValue?
    /// Queues to claim the slot's next attempt from, in the same round trip (no waiting):
    /// a busy worker then needs one request per task instead of two.
    public var claim_from: [String]?

    public init(
        worker: String, state: AttemptState, exit_code: Int32?, reason: String?, output: JSONValue?,
        claim_from: [String]? = nil
    ) {
        self.worker = worker
        self.state = state
        self.exit_code = exit_code
        self.reason = reason
        self.output = output
        self.claim_from = claim_from
    }
}

public struct APIFinishResponse: Codable, Sendable, Hashable {
    /// False when the attempt was no longer this worker's (declared lost, or already ended).
    public var accepted: Bool
    /// The slot's next attempt, when `claim_from` asked for one and one was queued.
    public var next: APIClaimedAttempt?

    public init(accepted: Bool, next: APIClaimedAttempt? = nil) {
        self.accepted = accepted
        self.next = next
    }
}

/// `POST /api/v1/workers/attempts/{run}/{task}/{attempt}/log?worker=ID&offset=N`, raw bytes.
public struct APILogAppendResponse: Codable, Sendable, Hashable {
    /// The stored log's size: the next chunk's offset.
    public var size: Int

    public init(size: Int) { self.size = size }
}
