import BatonCore
import Foundation
import Logging
import PostgresNIO

/// The work queue in PostgreSQL, for many workers behind several servers.
///
/// A claim locks its candidate rows with `FOR UPDATE SKIP LOCKED`, so concurrent claimers
/// take disjoint attempts without waiting for each other. Pool limits need more than row
/// locks (two claimers could each see one free slot): a claimer that takes attempts of a
/// limited pool holds that pool's advisory lock until it commits, and counts the pool's
/// running attempts only once it holds it.
extension PostgresStore {
    public func claimAttempts(_ request: ClaimRequest) async throws -> [AttemptRecord] {
        guard request.limit > 0, !request.queues.isEmpty else { return [] }
        let limitedPools = Array(request.pools.keys)
        let claimed = try await transaction { connection -> [AttemptRecord] in
            var used = try await runningCounts(pools: limitedPools, on: connection)
            // Pools already full are left out of the candidates (rechecked under the lock below);
            // candidates beyond the limit let a batch skip attempts of a pool it fills up.
            let full = request.pools.filter { used[$0.key, default: 0] >= $0.value }.map(\.key)
            // One statement locks the candidates and, with them, their tasks' rows. A candidate
            // whose task row the engine holds right now (it is changing that task) is left for the
            // next claim: claimers thereby never wait on a row, so they cannot deadlock with the
            // engine, which locks task rows before attempt rows.
            var candidates: [AttemptRecord] = []
            var blocked: Set<AttemptKey> = []
            for row in try await fetch(
                """
                WITH c AS (
                    SELECT * FROM attempts
                    WHERE state = 'queued' AND queue = ANY(\(request.queues)) AND (pool IS NULL OR NOT pool = ANY(\(full)))
                    ORDER BY seq LIMIT \(request.limit * 4)
                    FOR UPDATE SKIP LOCKED
                )
                SELECT c.*, (mine.run_id IS NULL AND EXISTS (
                        SELECT 1 FROM task_instances t WHERE t.run_id = c.run_id AND t.task = c.task)) AS blocked
                FROM c LEFT JOIN LATERAL (
                    SELECT t.run_id FROM task_instances t WHERE t.run_id = c.run_id AND t.task = c.task
                    FOR UPDATE SKIP LOCKED
                ) AS mine ON true
                ORDER BY c.seq
                """, on: connection)
            {
                let attempt = try Self.attempt(from: row)
                candidates.append(attempt)
                if try PostgresColumns(row, table: "attempts")["blocked"] { blocked.insert(attempt.key) }
            }
            guard !candidates.isEmpty else { return [] }
            let pools = Set(candidates.compactMap(\.pool)).filter { request.pools[$0] != nil }.sorted()
            if !pools.isEmpty {
                // Taken in key order, so claimers needing several pools cannot deadlock.
                try await fetch(
                    """
                    SELECT pg_advisory_xact_lock(\(PostgresLockKey.pools), key)
                    FROM (SELECT DISTINCT hashtext(name) AS key FROM unnest(\(pools)::text[]) AS p(name) ORDER BY key) AS k
                    """, on: connection)
                used = try await runningCounts(pools: pools, on: connection)
            }
            var chosen: [AttemptRecord] = []
            for attempt in candidates where chosen.count < request.limit && !blocked.contains(attempt.key) {
                if let pool = attempt.pool, let size = request.pools[pool] {
                    guard used[pool, default: 0] < size else { continue }
                    used[pool, default: 0] += 1
                }
                chosen.append(attempt)
            }
            guard !chosen.isEmpty else { return [] }
            let now = request.now.timeIntervalSince1970
            let leaseExpires = request.now.addingTimeInterval(request.leaseSeconds)
            let runIDs = chosen.map(\.runID)
            let tasks = chosen.map(\.task)
            // Both updates in one statement: one round trip less per claim.
            try await fetch(
                """
                WITH claimed AS (
                    UPDATE attempts SET state = 'running', worker_id = \(request.workerID),
                        lease_expires = \(leaseExpires.timeIntervalSince1970), started_at = \(now)
                    WHERE (run_id, task, attempt) IN (
                        SELECT * FROM unnest(\(runIDs)::int8[], \(tasks)::text[], \(chosen.map(\.attempt))::int8[]))
                        AND state = 'queued'
                    RETURNING run_id, task
                )
                UPDATE task_instances t SET state = 'running', started_at = coalesce(t.started_at, \(now))
                FROM claimed c WHERE t.run_id = c.run_id AND t.task = c.task AND t.state = 'queued'
                """, on: connection)
            return chosen.map { attempt in
                var attempt = attempt
                attempt.state = .running
                attempt.workerID = request.workerID
                attempt.leaseExpires = leaseExpires
                attempt.startedAt = request.now
                return attempt
            }
        }
        return claimed
    }

    /// Running attempts per pool, among `pools`.
    func runningCounts(pools: [String], on connection: PostgresConnection) async throws -> [String: Int] {
        guard !pools.isEmpty else { return [:] }
        var used: [String: Int] = [:]
        for row in try await fetch(
            "SELECT pool, count(*) FROM attempts WHERE state = 'running' AND pool = ANY(\(pools)) GROUP BY pool", on: connection)
        {
            let (pool, count) = try row.decode((String, Int).self)
            used[pool] = count
        }
        return used
    }

    public func renewLeases(workerID: String, attempts: [AttemptKey], until: Date) async throws -> Set<AttemptKey> {
        guard !attempts.isEmpty else { return [] }
        let rows = try await fetch(
            """
            UPDATE attempts SET lease_expires = \(until.timeIntervalSince1970)
            WHERE (run_id, task, attempt) IN (
                SELECT * FROM unnest(\(attempts.map(\.runID))::int8[], \(attempts.map(\.task))::text[], \(attempts.map(\.attempt))::int8[]))
                AND state = 'running' AND worker_id = \(workerID)
            RETURNING run_id, task, attempt
            """)
        return Set(
            try rows.map { row in
                let (runID, task, attempt) = try row.decode((Int64, String, Int).self)
                return AttemptKey(runID: runID, task: task, attempt: attempt)
            })
    }

    public func finishAttempt(_ key: AttemptKey, workerID: String?, result: AttemptResult) async throws -> Bool {
        let output = result.output.map { Self.encode($0) }
        // A nil worker is the engine itself, which may end any open attempt.
        let rows = try await fetch(
            """
            UPDATE attempts SET state = \(result.state.rawValue), exit_code = \(result.exitCode), reason = \(result.reason),
                output = \(output), ended_at = \(result.at.timeIntervalSince1970), payload = NULL
            WHERE run_id = \(key.runID) AND task = \(key.task) AND attempt = \(key.attempt)
                AND (CASE WHEN \(workerID == nil) THEN state IN ('queued', 'running')
                    ELSE state = 'running' AND worker_id = \(workerID) END)
            RETURNING attempt
            """)
        // No change-counter bump: reports reach the leading engine directly (followers forward
        // them), and what other processes rescan on a bump does not include attempts.
        return !rows.isEmpty
    }

    public func expiredAttempts(now: Date) async throws -> [AttemptRecord] {
        try await fetch(
            "SELECT * FROM attempts WHERE state = 'running' AND lease_expires < \(now.timeIntervalSince1970) ORDER BY seq"
        ).map(Self.attempt(from:))
    }

    public func unappliedAttempts() async throws -> [AttemptRecord] {
        try await fetch(
            """
            SELECT a.* FROM attempts a
            JOIN task_instances t ON t.run_id = a.run_id AND t.task = a.task AND t.attempts = a.attempt
            JOIN runs r ON r.id = a.run_id
            WHERE r.state IN ('queued', 'running') AND t.state IN ('queued', 'running')
                AND a.state NOT IN ('queued', 'running')
            ORDER BY a.seq
            """
        ).map(Self.attempt(from:))
    }

    public func attempt(_ key: AttemptKey) async throws -> AttemptRecord? {
        try await fetch(
            "SELECT * FROM attempts WHERE run_id = \(key.runID) AND task = \(key.task) AND attempt = \(key.attempt)"
        ).first.map(Self.attempt(from:))
    }

    public func appendAttemptLog(_ key: AttemptKey, _ chunk: Data, maxBytes: Int) async throws -> Int {
        try await transaction { connection in
            // Two appends to one log (a retried request beside the next one) must not both
            // take the same position.
            try await fetch(
                "SELECT pg_advisory_xact_lock(\(PostgresLockKey.logs), hashtext(\("\(key.runID)/\(key.task)/\(key.attempt)")))",
                on: connection)
            let size = try await fetch(
                """
                SELECT coalesce(sum(length(data)), 0)::int8 FROM attempt_logs
                WHERE run_id = \(key.runID) AND task = \(key.task) AND attempt = \(key.attempt)
                """, on: connection
            ).first?.decode(Int.self) ?? 0
            let room = max(0, maxBytes - size)
            guard room > 0, !chunk.isEmpty else { return size }
            let kept = Data(chunk.count > room ? chunk.prefix(room) : chunk)
            try await fetch(
                """
                INSERT INTO attempt_logs (run_id, task, attempt, position, data)
                VALUES (\(key.runID), \(key.task), \(key.attempt), \(size), \(kept))
                """, on: connection)
            return size + kept.count
        }
    }

    public func attemptLog(_ key: AttemptKey, from offset: Int, limit: Int) async throws -> Data? {
        let rows = try await fetch(
            """
            SELECT position, data FROM attempt_logs
            WHERE run_id = \(key.runID) AND task = \(key.task) AND attempt = \(key.attempt) AND position + length(data) > \(offset)
            ORDER BY position
            """)
        if rows.isEmpty {
            let any = try await fetch(
                """
                SELECT 1 FROM attempt_logs WHERE run_id = \(key.runID) AND task = \(key.task) AND attempt = \(key.attempt) LIMIT 1
                """)
            return any.isEmpty ? nil : Data()
        }
        let chunks = try rows.map { row in
            let (position, data) = try row.decode((Int, Data).self)
            return (offset: position, data: data)
        }
        return Self.slice(chunks, from: offset, limit: limit)
    }

    public func queuedAttemptCounts() async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for row in try await fetch("SELECT queue, count(*) FROM attempts WHERE state = 'queued' GROUP BY queue") {
            let (queue, count) = try row.decode((String, Int).self)
            counts[queue] = count
        }
        return counts
    }

    /// Leadership is a session advisory lock held on a connection of its own: PostgreSQL
    /// releases it the moment that connection ends, so when the leader dies another server's
    /// next try succeeds.
    public func tryLead() async throws -> Bool {
        try await leaderLock.tryLead(self)
    }
}

/// The connection that holds (or tries for) the leader lock.
actor PostgresLeaderLock {
    private var connection: PostgresConnection?
    private var holding = false
    /// Once a hold is lost it is not silently taken again: another server may have led since.
    private var lost = false

    /// How long a check may take before the hold counts as lost: a leader that cannot reach the
    /// database must stop scheduling before another server starts.
    static let checkTimeout: Duration = .seconds(5)
    static let applicationName = "baton leader lock"

    func tryLead(_ store: PostgresStore) async throws -> Bool {
        if lost { return false }
        do {
            let connection: PostgresConnection
            if let open = self.connection { connection = open } else { connection = try await open(store) }
            // A query written to a connection already closed is never answered (postgres-nio
            // drops the write), so a closed connection is a lost hold without asking.
            if connection.isClosed { return drop(lost: holding) }
            // Alive connection, held lock: the session still has it.
            let query: PostgresQuery = holding ? "SELECT true" : "SELECT pg_try_advisory_lock(\(PostgresLockKey.leader))"
            guard let answer = try await Self.run(query, on: connection, store) else {
                return drop(lost: holding)
            }
            holding = answer
            return holding
        } catch {
            if holding { return drop(lost: true) }
            // A server that does not lead keeps serving and tries again on its next check.
            store.logger.warning("cannot try for the leader lock: \(error)")
            return drop(lost: false)
        }
    }

    func close() async {
        if let connection {
            // Released at once for the next leader, rather than when the server notices the
            // connection is gone.
            if holding { _ = try? await Self.run("SELECT pg_advisory_unlock(\(PostgresLockKey.leader))", on: connection, nil) }
            try? await connection.close()
        }
        connection = nil
        holding = false
    }

    /// A one-boolean query, or nil when the connection does not answer in time. A connection the
    /// server ended can leave a query waiting for good, so the wait has a deadline.
    private static func run(_ query: PostgresQuery, on connection: PostgresConnection, _ store: PostgresStore?) async throws -> Bool? {
        let logger = store?.queryLogger ?? Logger(label: "baton.postgres")
        return try await withDeadline(checkTimeout) {
            do {
                return try await connection.query(query, logger: logger).collect().first?.decode(Bool.self) ?? false
            } catch {
                throw store?.queryError(error, query) ?? error
            }
        }
    }

    private func open(_ store: PostgresStore) async throws -> PostgresConnection {
        let location = store.location
        var settings = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try PostgresStore.connectionTLS(location))
        // Shows in pg_stat_activity which connection holds the leadership.
        settings.options.additionalStartupParameters = [("application_name", Self.applicationName)]
        guard let connection = try await PostgresStore.connect(settings, within: Self.checkTimeout, logger: store.queryLogger)
        else {
            throw StoreError.postgres(statement: "(leader connection)", sqlState: nil, message: "no answer within \(Self.checkTimeout)")
        }
        self.connection = connection
        // The server notices a leader whose machine vanished (no FIN) within seconds instead of
        // the operating system's default of hours, and releases the lock for the next leader.
        for (name, value) in [("tcp_keepalives_idle", "5"), ("tcp_keepalives_interval", "2"), ("tcp_keepalives_count", "3")] {
            let query: PostgresQuery = "SELECT set_config(\(name), \(value), false) IS NOT NULL"
            guard try await Self.run(query, on: connection, store) != nil else {
                throw StoreError.postgres(statement: query.sql, sqlState: nil, message: "no answer within \(Self.checkTimeout)")
            }
        }
        return connection
    }

    private func drop(lost: Bool) -> Bool {
        if let connection { Task { try? await connection.close() } }
        connection = nil
        holding = false
        self.lost = self.lost || lost
        return false
    }
}
