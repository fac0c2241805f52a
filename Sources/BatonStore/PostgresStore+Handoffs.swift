import BatonCore
import Foundation
import PostgresNIO

// Events, dataset updates, lineage and SLA misses; each method mirrors its `SQLiteStore` namesake.
extension PostgresStore {
    static func event(from row: PostgresRow) throws -> EventRecord {
        let row = PostgresColumns(row, table: "events")
        return EventRecord(
            seq: try row["seq"], id: try row["id"], name: try row["name"],
            payload: try decode(JSONValue.self, try row["payload"], table: "events"), source: try row["source"],
            createdAt: Date(timeIntervalSince1970: try row["created_at"]))
    }

    /// Inserts the event unless its id exists; returns the new row, or nil for a duplicate.
    ///
    /// Identity values are handed out in insert order but become visible in commit order, so
    /// without the lock a reader could see event 6 before event 5 commits, move its cursor past
    /// 5 and never start 5's runs. The lock (held to commit) makes the two orders the same.
    func insertEvent(_ event: EventRecord, on connection: PostgresConnection) async throws -> EventRecord? {
        try await fetch("SELECT pg_advisory_xact_lock(\(PostgresLockKey.events))", on: connection)
        let rows = try await fetch(
            """
            INSERT INTO events (id, name, payload, source, created_at)
            VALUES (\(event.id), \(event.name), \(Self.encode(event.payload)), \(event.source), \(event.createdAt.timeIntervalSince1970))
            ON CONFLICT (id) DO NOTHING
            RETURNING *
            """, on: connection)
        return try rows.first.map(Self.event(from:))
    }

    public func publishEvent(_ event: EventRecord) async throws -> (event: EventRecord, created: Bool) {
        let result = try await transaction { connection -> (event: EventRecord, created: Bool) in
            if let stored = try await insertEvent(event, on: connection) { return (stored, true) }
            guard let row = try await fetch("SELECT * FROM events WHERE id = \(event.id)", on: connection).first else {
                throw StoreError.corruptRow(table: "events", detail: "event \(event.id) neither inserted nor found")
            }
            return (try Self.event(from: row), false)
        }
        if result.created { await bumpChangeCounter() }
        return result
    }

    public func events(_ query: EventQuery) async throws -> [EventRecord] {
        var conditions: [String] = []
        var binds = PostgresBindings()
        if let name = query.name {
            binds.append(name)
            conditions.append("name = $\(binds.count)")
        }
        if let from = query.from {
            binds.append(from.timeIntervalSince1970)
            conditions.append("created_at >= $\(binds.count)")
        }
        if let to = query.to {
            binds.append(to.timeIntervalSince1970)
            conditions.append("created_at < $\(binds.count)")
        }
        if let before = query.beforeSeq {
            binds.append(before)
            conditions.append("seq < $\(binds.count)")
        }
        binds.append(query.limit)
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM events \(whereClause) ORDER BY seq DESC LIMIT $\(binds.count)"
        return try await fetch(PostgresQuery(unsafeSQL: sql, binds: binds)).map(Self.event(from:))
    }

    public func event(id: String) async throws -> EventRecord? {
        try await fetch("SELECT * FROM events WHERE id = \(id)").first.map(Self.event(from:))
    }

    public func events(after seq: Int64, limit: Int) async throws -> [EventRecord] {
        try await fetch("SELECT * FROM events WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)").map(Self.event(from:))
    }

    public func meta(_ key: String) async throws -> String? {
        try await fetch("SELECT value FROM meta WHERE key = \(key)").first.map { try $0.decode(String.self) }
    }

    public func setMeta(_ key: String, _ value: String) async throws {
        try await fetch(
            "INSERT INTO meta (key, value) VALUES (\(key), \(value)) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    }

    // MARK: - Datasets

    static func datasetUpdate(from row: PostgresRow) throws -> DatasetUpdateRecord {
        let row = PostgresColumns(row, table: "dataset_updates")
        return DatasetUpdateRecord(
            id: try row["id"], dataset: try row["dataset"], runID: try row["run_id"], pipeline: try row["pipeline"],
            task: try row["task"], schemaVersion: try row["schema_version"],
            metadata: try decode([String: JSONValue].self, try row["metadata"], table: "dataset_updates"),
            updatedAt: Date(timeIntervalSince1970: try row["updated_at"]))
    }

    static func runDataset(from row: PostgresRow) throws -> RunDatasetRecord {
        let row = PostgresColumns(row, table: "run_datasets")
        return RunDatasetRecord(
            runID: try row["run_id"], task: try row["task"], dataset: try row["dataset"],
            direction: RunDatasetRecord.Direction(rawValue: try row["direction"]) ?? .read, updateID: try row["update_id"])
    }

    static func insertion(of update: DatasetUpdateRecord) -> PostgresQuery {
        """
        INSERT INTO dataset_updates (dataset, run_id, pipeline, task, schema_version, metadata, updated_at)
        VALUES (\(update.dataset), \(update.runID), \(update.pipeline), \(update.task), \(update.schemaVersion),
            \(encode(update.metadata)), \(update.updatedAt.timeIntervalSince1970))
        RETURNING id
        """
    }

    static func insertedID(_ rows: [PostgresRow], table: String) throws -> Int64 {
        guard let id = try rows.first?.decode(Int64.self) else {
            throw StoreError.corruptRow(table: table, detail: "insert returned no id")
        }
        return id
    }

    public func recordDatasetUpdate(_ update: DatasetUpdateRecord) async throws -> DatasetUpdateRecord {
        let id = try Self.insertedID(try await fetch(Self.insertion(of: update)), table: "dataset_updates")
        await bumpChangeCounter()
        var stored = update
        stored.id = id
        return stored
    }

    public func latestDatasetUpdate(_ dataset: String) async throws -> DatasetUpdateRecord? {
        try await fetch("SELECT * FROM dataset_updates WHERE dataset = \(dataset) ORDER BY id DESC LIMIT 1").first
            .map(Self.datasetUpdate(from:))
    }

    public func datasetUpdates(_ dataset: String, limit: Int) async throws -> [DatasetUpdateRecord] {
        try await fetch("SELECT * FROM dataset_updates WHERE dataset = \(dataset) ORDER BY id DESC LIMIT \(limit)")
            .map(Self.datasetUpdate(from:))
    }

    public func recordRunDataset(_ record: RunDatasetRecord) async throws {
        try await fetch(
            """
            INSERT INTO run_datasets (run_id, task, dataset, direction, update_id)
            VALUES (\(record.runID), \(record.task), \(record.dataset), \(record.direction.rawValue), \(record.updateID))
            ON CONFLICT (run_id, task, dataset, direction) DO UPDATE SET update_id = excluded.update_id
            """)
    }

    public func runDatasets(runID: Int64) async throws -> [RunDatasetRecord] {
        try await fetch("SELECT * FROM run_datasets WHERE run_id = \(runID) ORDER BY task, dataset").map(Self.runDataset(from:))
    }

    public func datasetRuns(_ dataset: String, limit: Int) async throws -> [RunDatasetRecord] {
        try await fetch("SELECT * FROM run_datasets WHERE dataset = \(dataset) ORDER BY run_id DESC LIMIT \(limit)")
            .map(Self.runDataset(from:))
    }

    // MARK: - SLA misses

    static func slaMiss(from row: PostgresRow) throws -> SLAMissRecord {
        let row = PostgresColumns(row, table: "sla_misses")
        return SLAMissRecord(
            id: try row["id"], dataset: try row["dataset"], detectedAt: Date(timeIntervalSince1970: try row["detected_at"]),
            lastUpdateAt: date(try row["last_update_at"]), freshness: try row["freshness"], resolvedAt: date(try row["resolved_at"]))
    }

    public func openSLAMiss(_ miss: SLAMissRecord) async throws -> SLAMissRecord? {
        // The partial unique index on open misses turns a second open miss into "nothing inserted".
        let rows = try await fetch(
            """
            INSERT INTO sla_misses (dataset, detected_at, last_update_at, freshness)
            VALUES (\(miss.dataset), \(miss.detectedAt.timeIntervalSince1970), \(miss.lastUpdateAt?.timeIntervalSince1970),
                \(miss.freshness))
            ON CONFLICT (dataset) WHERE resolved_at IS NULL DO NOTHING
            RETURNING id
            """)
        guard let id = try rows.first?.decode(Int64.self) else { return nil }
        var stored = miss
        stored.id = id
        return stored
    }

    public func resolveSLAMiss(dataset: String, at: Date) async throws -> Bool {
        let rows = try await fetch(
            """
            UPDATE sla_misses SET resolved_at = \(at.timeIntervalSince1970) WHERE dataset = \(dataset) AND resolved_at IS NULL
            RETURNING id
            """)
        return !rows.isEmpty
    }

    public func slaMisses(dataset: String?, limit: Int) async throws -> [SLAMissRecord] {
        if let dataset {
            return try await fetch("SELECT * FROM sla_misses WHERE dataset = \(dataset) ORDER BY id DESC LIMIT \(limit)")
                .map(Self.slaMiss(from:))
        }
        return try await fetch("SELECT * FROM sla_misses ORDER BY id DESC LIMIT \(limit)").map(Self.slaMiss(from:))
    }
}
