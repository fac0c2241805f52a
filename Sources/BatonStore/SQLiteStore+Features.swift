import BatonCore
import Foundation
import GRDB
import GRDBSQLite

extension SQLiteStore {
    /// Schema for the feature store: every row (offline) and each entity's latest (online).
    static func registerFeatureMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7_features") { db in
            try db.execute(
                sql: """
                    CREATE TABLE feature_rows (
                        view TEXT NOT NULL,
                        entity_key TEXT NOT NULL,
                        event_ts REAL NOT NULL,
                        feature_values BLOB NOT NULL,
                        written_at REAL NOT NULL,
                        PRIMARY KEY (view, entity_key, event_ts)
                    ) WITHOUT ROWID;
                    CREATE INDEX feature_rows_by_written ON feature_rows (view, written_at);
                    CREATE TABLE feature_online (
                        view TEXT NOT NULL,
                        entity_key TEXT NOT NULL,
                        event_ts REAL NOT NULL,
                        feature_values BLOB NOT NULL,
                        written_at REAL NOT NULL,
                        PRIMARY KEY (view, entity_key)
                    ) WITHOUT ROWID;
                    """)
        }
    }
}

/// The last row per (entity, event time) of a batch, in batch order, and how many earlier
/// duplicates it replaced: within a batch, as across batches, the later write wins.
func deduplicated(_ rows: [StoredFeatureRow]) -> (rows: [StoredFeatureRow], duplicates: Int) {
    struct Key: Hashable {
        var entity: String
        var time: Double
    }
    var last: [Key: Int] = [:]
    last.reserveCapacity(rows.count)
    for (index, row) in rows.enumerated() { last[Key(entity: row.entityKey, time: row.eventTime)] = index }
    guard last.count != rows.count else { return (rows, 0) }
    var kept: [StoredFeatureRow] = []
    kept.reserveCapacity(last.count)
    for (index, row) in rows.enumerated() where last[Key(entity: row.entityKey, time: row.eventTime)] == index {
        kept.append(row)
    }
    return (kept, rows.count - kept.count)
}

/// Each entity's latest row of a batch (the later one on equal times).
func latestPerEntity(_ rows: [StoredFeatureRow]) -> [StoredFeatureRow] {
    var latest: [String: StoredFeatureRow] = [:]
    for row in rows {
        if let existing = latest[row.entityKey], existing.eventTime > row.eventTime { continue }
        latest[row.entityKey] = row
    }
    // Sorted so concurrent writers touch online rows in the same order.
    return latest.values.sorted { $0.entityKey < $1.entityKey }
}

extension SQLiteStore {
    public func writeFeatureRows(view: String, rows: [StoredFeatureRow], writtenAt: Date, changes: [StoreChange]) async throws
        -> FeatureWriteResult
    {
        // A batch of 100,000 rows holds the write transaction for about a second: off the
        // caller's event loop (see `offloaded`).
        try await offloaded { try self.writeFeatureRowsNow(view: view, rows: rows, writtenAt: writtenAt, changes: changes) }
    }

    private func writeFeatureRowsNow(view: String, rows: [StoredFeatureRow], writtenAt: Date, changes: [StoreChange]) throws
        -> FeatureWriteResult
    {
        let (unique, duplicates) = deduplicated(rows)
        let latest = latestPerEntity(unique)
        let now = writtenAt.timeIntervalSince1970
        return try syncWrite { db in
            var inserted = 0
            var overwritten = duplicates
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO feature_rows (view, entity_key, event_ts, feature_values, written_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (view, entity_key, event_ts) DO NOTHING
                    """)
            let update = try db.cachedStatement(
                sql: "UPDATE feature_rows SET feature_values = ?, written_at = ? WHERE view = ? AND entity_key = ? AND event_ts = ?")
            for row in unique {
                let blob = Data(row.values)
                try insert.execute(arguments: [view, row.entityKey, row.eventTime, blob, now])
                if db.changesCount > 0 {
                    inserted += 1
                } else {
                    try update.execute(arguments: [blob, now, view, row.entityKey, row.eventTime])
                    overwritten += 1
                }
            }
            let online = try db.cachedStatement(
                sql: """
                    INSERT INTO feature_online (view, entity_key, event_ts, feature_values, written_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (view, entity_key) DO UPDATE SET
                        event_ts = excluded.event_ts, feature_values = excluded.feature_values, written_at = excluded.written_at
                    WHERE excluded.event_ts >= feature_online.event_ts
                    """)
            for row in latest {
                try online.execute(arguments: [view, row.entityKey, row.eventTime, Data(row.values), now])
            }
            for change in changes { try Self.apply(change, db) }
            return FeatureWriteResult(inserted: inserted, overwritten: overwritten)
        }
    }

    static func featureRows(_ db: Database, sql: String, arguments: StatementArguments) throws -> [StoredFeatureRow] {
        var result: [StoredFeatureRow] = []
        let cursor = try Row.fetchCursor(db, sql: sql, arguments: arguments)
        while let row = try cursor.next() {
            let blob: Data = row[2]
            result.append(StoredFeatureRow(entityKey: row[0], eventTime: row[1], values: [UInt8](blob)))
        }
        return result
    }

    public func featureHistory(view: String, from: Double?, to: Double?) async throws -> ViewHistory {
        try await BatchWork.run {
            try self.syncRead { db in
                let statement = try db.makeStatement(
                    sql: """
                        SELECT entity_key, event_ts, feature_values FROM feature_rows
                        WHERE view = ? AND event_ts >= ? AND event_ts < ? ORDER BY entity_key, event_ts
                        """)
                try statement.setArguments([view, from ?? -Double.greatestFiniteMagnitude, to ?? Double.greatestFiniteMagnitude])
                // Straight from SQLite's buffers into the columns: going through GRDB's rows made a
                // Data and an array per row, most of a join's time over a million rows.
                let raw = statement.sqliteStatement
                defer { sqlite3_reset(raw) }
                var history = ViewHistory()
                while true {
                    let code = sqlite3_step(raw)
                    if code == SQLITE_DONE { break }
                    guard code == SQLITE_ROW else {
                        throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: statement.sql)
                    }
                    let key = UnsafeRawBufferPointer(start: sqlite3_column_text(raw, 0), count: Int(sqlite3_column_bytes(raw, 0)))
                    let time = sqlite3_column_double(raw, 1)
                    let values = UnsafeRawBufferPointer(start: sqlite3_column_blob(raw, 2), count: Int(sqlite3_column_bytes(raw, 2)))
                    history.append(entityKeyUTF8: key, time: time, values: values)
                }
                history.finish()
                return history
            }
        }
    }

    public func recentFeatureRows(view: String, limit: Int) async throws -> [StoredFeatureRow] {
        try await BatchWork.run {
            try self.syncRead { db in
                try Self.featureRows(
                    db,
                    sql: """
                        SELECT entity_key, event_ts, feature_values FROM feature_rows
                        WHERE view = ? ORDER BY written_at DESC LIMIT ?
                        """, arguments: [view, limit])
            }
        }
    }

    public func onlineFeatureRows(view: String, writtenSince: Double?) async throws -> [StoredFeatureRow] {
        try await offloaded {
            try self.syncRead { db in
                try Self.featureRows(
                    db, sql: "SELECT entity_key, event_ts, feature_values FROM feature_online WHERE view = ? AND written_at >= ?",
                    arguments: [view, writtenSince ?? -Double.greatestFiniteMagnitude])
            }
        }
    }

    public func onlineFeatureRow(view: String, entityKey: String) async throws -> StoredFeatureRow? {
        try syncRead { db in
            try Self.featureRows(
                db, sql: "SELECT entity_key, event_ts, feature_values FROM feature_online WHERE view = ? AND entity_key = ?",
                arguments: [view, entityKey]
            ).first
        }
    }

    public func featureViewSummary(view: String) async throws -> FeatureViewSummary {
        try await BatchWork.run {
            try self.syncRead { db in
                let row = try Row.fetchOne(
                    db, sql: "SELECT count(*), min(event_ts), max(event_ts), max(written_at) FROM feature_rows WHERE view = ?",
                    arguments: [view])
                let entities = try Int.fetchOne(db, sql: "SELECT count(*) FROM feature_online WHERE view = ?", arguments: [view]) ?? 0
                return FeatureViewSummary(
                    view: view, rows: row?[0] ?? 0, entities: entities, firstEventTime: row?[1], lastEventTime: row?[2],
                    lastWrittenAt: row?[3])
            }
        }
    }
}
