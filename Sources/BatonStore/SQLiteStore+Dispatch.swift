import BatonCore
import Foundation
import GRDB

/// The work queue in SQLite. One writer at a time makes every claim atomic on its own; the
/// partial indexes keep a claim's cost independent of how many attempts ever ran.
extension SQLiteStore {
    static func registerDispatchMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5_dispatch") { db in
            try db.execute(
                sql: """
                    ALTER TABLE attempts ADD COLUMN queue TEXT NOT NULL DEFAULT 'default';
                    ALTER TABLE attempts ADD COLUMN pool TEXT;
                    ALTER TABLE attempts ADD COLUMN worker_id TEXT;
                    ALTER TABLE attempts ADD COLUMN lease_expires REAL;
                    ALTER TABLE attempts ADD COLUMN queued_at REAL;
                    ALTER TABLE attempts ADD COLUMN payload TEXT;
                    ALTER TABLE attempts ADD COLUMN output TEXT;
                    CREATE INDEX attempts_queued ON attempts (queue) WHERE state = 'queued';
                    CREATE INDEX attempts_open ON attempts (state) WHERE state IN ('queued', 'running');
                    CREATE TABLE attempt_logs (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        task TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        position INTEGER NOT NULL,
                        data BLOB NOT NULL,
                        PRIMARY KEY (run_id, task, attempt, position)
                    );
                    """)
        }
    }

    public func claimAttempts(_ request: ClaimRequest) async throws -> [AttemptRecord] {
        guard request.limit > 0, !request.queues.isEmpty else { return [] }
        return try syncWrite { db in
            var used: [String: Int] = [:]
            if !request.pools.isEmpty {
                for row in try Row.fetchAll(
                    db, sql: "SELECT pool, count(*) AS n FROM attempts WHERE state = 'running' AND pool IS NOT NULL GROUP BY pool")
                {
                    used[row["pool"]] = row["n"]
                }
            }
            let full = request.pools.filter { used[$0.key, default: 0] >= $0.value }.map(\.key)
            var sql = "SELECT * FROM attempts WHERE state = 'queued' AND queue IN (\(Self.placeholders(request.queues.count)))"
            var arguments = StatementArguments(request.queues)
            if !full.isEmpty {
                sql += " AND (pool IS NULL OR pool NOT IN (\(Self.placeholders(full.count))))"
                arguments += StatementArguments(full)
            }
            // Candidates beyond the limit let a batch skip attempts of a pool it fills up.
            sql += " ORDER BY rowid LIMIT ?"
            arguments += [request.limit * 4]
            var claimed: [AttemptRecord] = []
            let leaseExpires = request.now.addingTimeInterval(request.leaseSeconds)
            for row in try Row.fetchAll(db, sql: sql, arguments: arguments) where claimed.count < request.limit {
                var attempt = try Self.attempt(from: row)
                if let pool = attempt.pool, let size = request.pools[pool] {
                    guard used[pool, default: 0] < size else { continue }
                    used[pool, default: 0] += 1
                }
                try db.cachedStatement(
                    sql: """
                        UPDATE attempts SET state = 'running', worker_id = ?, lease_expires = ?, started_at = ?
                        WHERE run_id = ? AND task = ? AND attempt = ? AND state = 'queued'
                        """
                ).execute(arguments: [
                    request.workerID, leaseExpires.timeIntervalSince1970, request.now.timeIntervalSince1970,
                    attempt.runID, attempt.task, attempt.attempt,
                ])
                try db.cachedStatement(
                    sql: """
                        UPDATE task_instances SET state = 'running', started_at = coalesce(started_at, ?)
                        WHERE run_id = ? AND task = ? AND state = 'queued'
                        """
                ).execute(arguments: [request.now.timeIntervalSince1970, attempt.runID, attempt.task])
                attempt.state = .running
                attempt.workerID = request.workerID
                attempt.leaseExpires = leaseExpires
                attempt.startedAt = request.now
                claimed.append(attempt)
            }
            return claimed
        }
    }

    public func renewLeases(workerID: String, attempts: [AttemptKey], until: Date) async throws -> Set<AttemptKey> {
        guard !attempts.isEmpty else { return [] }
        return try syncWrite { db in
            var held: Set<AttemptKey> = []
            for key in attempts {
                try db.cachedStatement(
                    sql: """
                        UPDATE attempts SET lease_expires = ?
                        WHERE run_id = ? AND task = ? AND attempt = ? AND state = 'running' AND worker_id = ?
                        """
                ).execute(arguments: [until.timeIntervalSince1970, key.runID, key.task, key.attempt, workerID])
                if db.changesCount > 0 { held.insert(key) }
            }
            return held
        }
    }

    public func finishAttempt(_ key: AttemptKey, workerID: String?, result: AttemptResult) async throws -> Bool {
        try syncWrite { db in
            var sql = """
                UPDATE attempts SET state = ?, exit_code = ?, reason = ?, output = ?, ended_at = ?, payload = NULL
                WHERE run_id = ? AND task = ? AND attempt = ?
                """
            var arguments: StatementArguments = [
                result.state.rawValue, result.exitCode, result.reason, result.output.map(Self.encode),
                result.at.timeIntervalSince1970, key.runID, key.task, key.attempt,
            ]
            if let workerID {
                sql += " AND state = 'running' AND worker_id = ?"
                arguments += [workerID]
            } else {
                sql += " AND state IN ('queued', 'running')"
            }
            try db.execute(sql: sql, arguments: arguments)
            return db.changesCount > 0
        }
    }

    public func expiredAttempts(now: Date) async throws -> [AttemptRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM attempts WHERE state = 'running' AND lease_expires < ? ORDER BY rowid",
                arguments: [now.timeIntervalSince1970]
            ).map(Self.attempt(from:))
        }
    }

    public func unappliedAttempts() async throws -> [AttemptRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT a.* FROM attempts a
                    JOIN task_instances t ON t.run_id = a.run_id AND t.task = a.task AND t.attempts = a.attempt
                    JOIN runs r ON r.id = a.run_id
                    WHERE r.state IN ('queued', 'running') AND t.state IN ('queued', 'running')
                        AND a.state NOT IN ('queued', 'running')
                    ORDER BY a.rowid
                    """
            ).map(Self.attempt(from:))
        }
    }

    public func attempt(_ key: AttemptKey) async throws -> AttemptRecord? {
        try syncRead { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM attempts WHERE run_id = ? AND task = ? AND attempt = ?",
                arguments: [key.runID, key.task, key.attempt]
            ).map(Self.attempt(from:))
        }
    }

    public func appendAttemptLog(_ key: AttemptKey, _ chunk: Data, maxBytes: Int) async throws -> Int {
        try syncWrite { db in
            let size =
                try Int.fetchOne(
                    db,
                    sql: """
                        SELECT coalesce(sum(length(data)), 0) FROM attempt_logs WHERE run_id = ? AND task = ? AND attempt = ?
                        """, arguments: [key.runID, key.task, key.attempt]) ?? 0
            let room = max(0, maxBytes - size)
            guard room > 0, !chunk.isEmpty else { return size }
            let kept = chunk.count > room ? chunk.prefix(room) : chunk
            try db.execute(
                sql: "INSERT INTO attempt_logs (run_id, task, attempt, position, data) VALUES (?, ?, ?, ?, ?)",
                arguments: [key.runID, key.task, key.attempt, size, Data(kept)])
            return size + kept.count
        }
    }

    public func attemptLog(_ key: AttemptKey, from offset: Int, limit: Int) async throws -> Data? {
        try syncRead { db in
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT position, data FROM attempt_logs WHERE run_id = ? AND task = ? AND attempt = ?
                        AND position + length(data) > ? ORDER BY position
                    """, arguments: [key.runID, key.task, key.attempt, offset])
            if rows.isEmpty {
                let any = try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM attempt_logs WHERE run_id = ? AND task = ? AND attempt = ?)",
                    arguments: [key.runID, key.task, key.attempt]) ?? false
                return any ? Data() : nil
            }
            return Self.slice(rows.map { (Int($0["position"] as Int64), $0["data"] as Data) }, from: offset, limit: limit)
        }
    }

    public func queuedAttemptCounts() async throws -> [String: Int] {
        try syncRead { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT queue, count(*) AS n FROM attempts WHERE state = 'queued' GROUP BY queue")
            {
                counts[row["queue"]] = row["n"]
            }
            return counts
        }
    }

    /// One process holds the SQLite file (the engine lock), so it always leads.
    public func tryLead() async throws -> Bool { true }

    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ",")
    }
}

extension DispatchStore {
    /// Cuts `[offset, offset + limit)` out of stored chunks (sorted by offset, each `(offset, bytes)`).
    static func slice(_ chunks: [(offset: Int, data: Data)], from offset: Int, limit: Int) -> Data {
        var result = Data()
        for (start, data) in chunks where result.count < limit {
            let skip = max(0, offset - start)
            guard skip < data.count else { continue }
            let piece = data.dropFirst(skip)
            result.append(piece.prefix(limit - result.count))
        }
        return result
    }
}
