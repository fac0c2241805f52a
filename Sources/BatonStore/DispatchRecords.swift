import BatonCore
import Foundation

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

extension AttemptRecord {
    /// The attempt as its report leaves it in the store: state, exit code, reason, output and
    /// end time from `result`, the payload dropped.
    public func ended(with result: AttemptResult) -> AttemptRecord {
        var ended = self
        ended.state = result.state
        ended.exitCode = result.exitCode
        ended.reason = result.reason
        ended.output = result.output
        ended.endedAt = result.at
        ended.payload = nil
        return ended
    }
}
