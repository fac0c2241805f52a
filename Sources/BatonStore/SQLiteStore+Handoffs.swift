import BatonCore
import Foundation
import GRDB

extension SQLiteStore {
    /// Schema for events, dataset updates and lineage.
    static func registerHandoffMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v3_handoffs") { db in
            try db.execute(
                sql: """
                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        id TEXT NOT NULL UNIQUE,
                        name TEXT NOT NULL,
                        payload TEXT NOT NULL,
                        source TEXT,
                        created_at REAL NOT NULL
                    );
                    CREATE INDEX events_by_name ON events (name, seq);
                    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    ALTER TABLE runs ADD COLUMN event TEXT;
                    CREATE TABLE dataset_updates (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        dataset TEXT NOT NULL,
                        run_id INTEGER,
                        pipeline TEXT,
                        task TEXT,
                        schema_version TEXT,
                        metadata TEXT NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE INDEX dataset_updates_by_dataset ON dataset_updates (dataset, id);
                    CREATE TABLE run_datasets (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        task TEXT NOT NULL,
                        dataset TEXT NOT NULL,
                        direction TEXT NOT NULL,
                        update_id INTEGER,
                        PRIMARY KEY (run_id, task, dataset, direction)
                    );
                    CREATE TABLE sla_misses (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        dataset TEXT NOT NULL,
                        detected_at REAL NOT NULL,
                        last_update_at REAL,
                        freshness REAL NOT NULL,
                        resolved_at REAL
                    );
                    """)
        }
    }
}

extension SQLiteStore {
    static func event(from row: Row) throws -> EventRecord {
        EventRecord(
            seq: row["seq"], id: row["id"], name: row["name"],
            payload: try decode(JSONValue.self, row["payload"], table: "events"), source: row["source"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]))
    }

    public func publishEvent(_ event: EventRecord) async throws -> (event: EventRecord, created: Bool) {
        try syncWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO events (id, name, payload, source, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO NOTHING
                    """,
                arguments: [event.id, event.name, Self.encode(event.payload), event.source, event.createdAt.timeIntervalSince1970])
            let created = db.changesCount > 0
            let row = try Row.fetchOne(db, sql: "SELECT * FROM events WHERE id = ?", arguments: [event.id])!
            return (try Self.event(from: row), created)
        }
    }

    public func events(_ query: EventQuery) async throws -> [EventRecord] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let name = query.name {
            conditions.append("name = ?")
            arguments += [name]
        }
        if let from = query.from {
            conditions.append("created_at >= ?")
            arguments += [from.timeIntervalSince1970]
        }
        if let to = query.to {
            conditions.append("created_at < ?")
            arguments += [to.timeIntervalSince1970]
        }
        if let before = query.beforeSeq {
            conditions.append("seq < ?")
            arguments += [before]
        }
        arguments += [query.limit]
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM events \(whereClause) ORDER BY seq DESC LIMIT ?"
        let finalArguments = arguments
        return try syncRead { db in try Row.fetchAll(db, sql: sql, arguments: finalArguments).map(Self.event(from:)) }
    }

    public func event(id: String) async throws -> EventRecord? {
        try syncRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM events WHERE id = ?", arguments: [id]).map(Self.event(from:))
        }
    }

    public func events(after seq: Int64, limit: Int) async throws -> [EventRecord] {
        try syncRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [seq, limit])
                .map(Self.event(from:))
        }
    }

    public func meta(_ key: String) async throws -> String? {
        try syncRead { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ key: String, _ value: String) async throws {
        try syncWrite { db in
            try db.execute(
                sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
    }

    static func datasetUpdate(from row: Row) throws -> DatasetUpdateRecord {
        DatasetUpdateRecord(
            id: row["id"], dataset: row["dataset"], runID: row["run_id"], pipeline: row["pipeline"], task: row["task"],
            schemaVersion: row["schema_version"],
            metadata: try decode([String: JSONValue].self, row["metadata"], table: "dataset_updates"),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    public func recordDatasetUpdate(_ update: DatasetUpdateRecord) async throws -> DatasetUpdateRecord {
        try syncWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO dataset_updates (dataset, run_id, pipeline, task, schema_version, metadata, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    update.dataset, update.runID, update.pipeline, update.task, update.schemaVersion,
                    Self.encode(update.metadata), update.updatedAt.timeIntervalSince1970,
                ])
            var stored = update
            stored.id = db.lastInsertedRowID
            return stored
        }
    }

    public func latestDatasetUpdate(_ dataset: String) async throws -> DatasetUpdateRecord? {
        try syncRead { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM dataset_updates WHERE dataset = ? ORDER BY id DESC LIMIT 1", arguments: [dataset]
            ).map(Self.datasetUpdate(from:))
        }
    }

    public func datasetUpdates(_ dataset: String, limit: Int) async throws -> [DatasetUpdateRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM dataset_updates WHERE dataset = ? ORDER BY id DESC LIMIT ?",
                arguments: [dataset, limit]
            ).map(Self.datasetUpdate(from:))
        }
    }

    public func recordRunDataset(_ record: RunDatasetRecord) async throws {
        try syncWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO run_datasets (run_id, task, dataset, direction, update_id) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (run_id, task, dataset, direction) DO UPDATE SET update_id = excluded.update_id
                    """,
                arguments: [record.runID, record.task, record.dataset, record.direction.rawValue, record.updateID])
        }
    }

    public func runDatasets(runID: Int64) async throws -> [RunDatasetRecord] {
        try syncRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run_datasets WHERE run_id = ? ORDER BY task, dataset", arguments: [runID])
                .map { row in
                    RunDatasetRecord(
                        runID: row["run_id"], task: row["task"], dataset: row["dataset"],
                        direction: RunDatasetRecord.Direction(rawValue: row["direction"]) ?? .read,
                        updateID: row["update_id"])
                }
        }
    }
}

extension SQLiteStore {
    public func datasetRuns(_ dataset: String, limit: Int) async throws -> [RunDatasetRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM run_datasets WHERE dataset = ? ORDER BY run_id DESC LIMIT ?", arguments: [dataset, limit]
            ).map { row in
                RunDatasetRecord(
                    runID: row["run_id"], task: row["task"], dataset: row["dataset"],
                    direction: RunDatasetRecord.Direction(rawValue: row["direction"]) ?? .read, updateID: row["update_id"])
            }
        }
    }

    static func slaMiss(from row: Row) -> SLAMissRecord {
        SLAMissRecord(
            id: row["id"], dataset: row["dataset"], detectedAt: Date(timeIntervalSince1970: row["detected_at"]),
            lastUpdateAt: date(row["last_update_at"]), freshness: row["freshness"], resolvedAt: date(row["resolved_at"]))
    }

    public func openSLAMiss(_ miss: SLAMissRecord) async throws -> SLAMissRecord? {
        try syncWrite { db in
            let open = try Int64.fetchOne(
                db, sql: "SELECT id FROM sla_misses WHERE dataset = ? AND resolved_at IS NULL", arguments: [miss.dataset])
            guard open == nil else { return nil }
            try db.execute(
                sql: "INSERT INTO sla_misses (dataset, detected_at, last_update_at, freshness) VALUES (?, ?, ?, ?)",
                arguments: [
                    miss.dataset, miss.detectedAt.timeIntervalSince1970, miss.lastUpdateAt?.timeIntervalSince1970,
                    miss.freshness,
                ])
            var stored = miss
            stored.id = db.lastInsertedRowID
            return stored
        }
    }

    public func resolveSLAMiss(dataset: String, at: Date) async throws -> Bool {
        try syncWrite { db in
            try db.execute(
                sql: "UPDATE sla_misses SET resolved_at = ? WHERE dataset = ? AND resolved_at IS NULL",
                arguments: [at.timeIntervalSince1970, dataset])
            return db.changesCount > 0
        }
    }

    public func slaMisses(dataset: String?, limit: Int) async throws -> [SLAMissRecord] {
        try syncRead { db in
            if let dataset {
                return try Row.fetchAll(
                    db, sql: "SELECT * FROM sla_misses WHERE dataset = ? ORDER BY id DESC LIMIT ?", arguments: [dataset, limit]
                ).map(Self.slaMiss(from:))
            }
            return try Row.fetchAll(db, sql: "SELECT * FROM sla_misses ORDER BY id DESC LIMIT ?", arguments: [limit])
                .map(Self.slaMiss(from:))
        }
    }
}
