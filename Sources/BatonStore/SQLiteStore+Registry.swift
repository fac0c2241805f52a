import Foundation
import GRDB

extension SQLiteStore {
    /// Schema for experiment tracking and the model registry.
    ///
    /// Experiments, runs, logged models, registered models and versions share `registry_objects`
    /// (indexed columns plus a JSON document); a run's params, tags and metrics have tables of
    /// their own because they are written many times per run, often concurrently, and searched on.
    /// A metric value of NULL is NaN (SQLite turns NaN into NULL anyway).
    static func registerRegistryMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6_registry") { db in
            try db.execute(
                sql: """
                    CREATE TABLE registry_objects (
                        kind TEXT NOT NULL,
                        id TEXT NOT NULL,
                        parent TEXT,
                        name TEXT,
                        lifecycle TEXT NOT NULL,
                        pipeline_run_id INTEGER,
                        created_at INTEGER NOT NULL,
                        updated_at INTEGER NOT NULL,
                        document TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        PRIMARY KEY (kind, id)
                    ) WITHOUT ROWID;
                    CREATE UNIQUE INDEX registry_objects_by_name ON registry_objects (kind, name) WHERE name IS NOT NULL;
                    CREATE INDEX registry_objects_by_parent ON registry_objects (kind, parent, created_at);
                    CREATE INDEX registry_objects_by_pipeline_run ON registry_objects (pipeline_run_id)
                        WHERE pipeline_run_id IS NOT NULL;
                    CREATE TABLE registry_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
                    CREATE TABLE tracking_params (
                        run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key)
                    ) WITHOUT ROWID;
                    CREATE TABLE tracking_tags (
                        run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (run_id, key)
                    ) WITHOUT ROWID;
                    CREATE TABLE tracking_metrics (
                        run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, timestamp INTEGER NOT NULL, step INTEGER NOT NULL
                    );
                    CREATE INDEX tracking_metrics_by_key ON tracking_metrics (run_id, key, step, timestamp);
                    CREATE TABLE tracking_latest_metrics (
                        run_id TEXT NOT NULL, key TEXT NOT NULL, value REAL, timestamp INTEGER NOT NULL, step INTEGER NOT NULL,
                        PRIMARY KEY (run_id, key)
                    ) WITHOUT ROWID;
                    CREATE TABLE model_events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        model_id TEXT NOT NULL,
                        version TEXT,
                        action TEXT NOT NULL,
                        alias TEXT,
                        detail TEXT,
                        actor TEXT NOT NULL,
                        at REAL NOT NULL
                    );
                    CREATE INDEX model_events_by_model ON model_events (model_id, id);
                    """)
        }
    }

    static func registryObject(from row: Row) throws -> RegistryObject {
        let kindText: String = row["kind"]
        guard let kind = RegistryKind(rawValue: kindText) else {
            throw StoreError.corruptRow(table: "registry_objects", detail: "unknown kind \(kindText)")
        }
        return RegistryObject(
            kind: kind, id: row["id"], parent: row["parent"], name: row["name"], lifecycle: row["lifecycle"],
            pipelineRunID: row["pipeline_run_id"], createdAt: row["created_at"], updatedAt: row["updated_at"],
            document: row["document"], revision: row["revision"])
    }

    public func insertRegistryObject(_ object: RegistryObject) async throws -> RegistryInsertOutcome {
        try syncWrite { db in
            if try Bool.fetchOne(
                db, sql: "SELECT 1 FROM registry_objects WHERE kind = ? AND id = ?", arguments: [object.kind.rawValue, object.id])
                != nil
            {
                return .idTaken
            }
            if let name = object.name,
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM registry_objects WHERE kind = ? AND name = ?", arguments: [object.kind.rawValue, name])
                    != nil
            {
                return .nameTaken
            }
            try db.execute(
                sql: """
                    INSERT INTO registry_objects
                        (kind, id, parent, name, lifecycle, pipeline_run_id, created_at, updated_at, document, revision)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    object.kind.rawValue, object.id, object.parent, object.name, object.lifecycle, object.pipelineRunID,
                    object.createdAt, object.updatedAt, object.document, object.revision,
                ])
            return .inserted
        }
    }

    public func registryObject(_ kind: RegistryKind, id: String) async throws -> RegistryObject? {
        try syncRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM registry_objects WHERE kind = ? AND id = ?", arguments: [kind.rawValue, id])
                .map(Self.registryObject(from:))
        }
    }

    public func registryObject(_ kind: RegistryKind, name: String) async throws -> RegistryObject? {
        try syncRead { db in
            try Row.fetchOne(
                db, sql: "SELECT * FROM registry_objects WHERE kind = ? AND name = ?", arguments: [kind.rawValue, name]
            ).map(Self.registryObject(from:))
        }
    }

    public func registryObjects(_ kind: RegistryKind, parents: [String]?) async throws -> [RegistryObject] {
        try syncRead { db in
            var sql = "SELECT * FROM registry_objects WHERE kind = ?"
            var arguments: StatementArguments = [kind.rawValue]
            if let parents {
                guard !parents.isEmpty else { return [] }
                sql += " AND parent IN (\(databaseQuestionMarks(count: parents.count)))"
                arguments += StatementArguments(parents)
            }
            sql += " ORDER BY created_at, id"
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.registryObject(from:))
        }
    }

    public func registryObjects(pipelineRunID: Int64) async throws -> [RegistryObject] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM registry_objects WHERE pipeline_run_id = ? ORDER BY created_at, kind, id",
                arguments: [pipelineRunID]
            ).map(Self.registryObject(from:))
        }
    }

    public func updateRegistryObject(_ object: RegistryObject) async throws -> RegistryUpdateOutcome {
        try syncWrite { db in
            guard
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM registry_objects WHERE kind = ? AND id = ?", arguments: [object.kind.rawValue, object.id])
                    != nil
            else { return .missing }
            if let name = object.name,
                try Bool.fetchOne(
                    db, sql: "SELECT 1 FROM registry_objects WHERE kind = ? AND name = ? AND id != ?",
                    arguments: [object.kind.rawValue, name, object.id]) != nil
            {
                return .nameTaken
            }
            try db.execute(
                sql: """
                    UPDATE registry_objects
                    SET parent = ?, name = ?, lifecycle = ?, pipeline_run_id = ?, updated_at = ?, document = ?,
                        revision = revision + 1
                    WHERE kind = ? AND id = ? AND revision = ?
                    """,
                arguments: [
                    object.parent, object.name, object.lifecycle, object.pipelineRunID, object.updatedAt, object.document,
                    object.kind.rawValue, object.id, object.revision,
                ])
            return db.changesCount == 1 ? .updated(revision: object.revision + 1) : .stale
        }
    }

    public func deleteRegistryObject(_ kind: RegistryKind, id: String) async throws -> Bool {
        try syncWrite { db in
            try db.execute(sql: "DELETE FROM registry_objects WHERE kind = ? AND id = ?", arguments: [kind.rawValue, id])
            let deleted = db.changesCount == 1
            if kind == .run {
                for table in ["tracking_params", "tracking_tags", "tracking_metrics", "tracking_latest_metrics"] {
                    try db.execute(sql: "DELETE FROM \(table) WHERE run_id = ?", arguments: [id])
                }
            }
            return deleted
        }
    }

    public func nextRegistryNumber(_ counter: String) async throws -> Int64 {
        try syncWrite { db in
            try Int64.fetchOne(
                db,
                sql: """
                    INSERT INTO registry_counters (name, value) VALUES (?, 1)
                    ON CONFLICT (name) DO UPDATE SET value = value + 1
                    RETURNING value
                    """, arguments: [counter]) ?? 1
        }
    }

    public func logRunData(_ batches: [RunDataBatch]) async throws -> [RunDataRefusal?] {
        guard !batches.isEmpty else { return [] }
        return try syncWrite { db in
            let lifecycle = try db.cachedStatement(sql: "SELECT lifecycle FROM registry_objects WHERE kind = 'run' AND id = ?")
            let storedParam = try db.cachedStatement(sql: "SELECT value FROM tracking_params WHERE run_id = ? AND key = ?")
            let insertParam = try db.cachedStatement(
                sql: "INSERT INTO tracking_params (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            let upsertTag = try db.cachedStatement(
                sql: "INSERT INTO tracking_tags (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value")
            let insertMetric = try db.cachedStatement(
                sql: "INSERT INTO tracking_metrics (run_id, key, value, timestamp, step) VALUES (?, ?, ?, ?, ?)")
            // The latest value is the one at the highest step, then the latest timestamp, then the
            // highest value, whatever order the observations arrive in.
            let upsertLatest = try db.cachedStatement(
                sql: """
                    INSERT INTO tracking_latest_metrics (run_id, key, value, timestamp, step) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (run_id, key) DO UPDATE SET
                        value = excluded.value, timestamp = excluded.timestamp, step = excluded.step
                    WHERE excluded.step > step
                        OR (excluded.step = step AND excluded.timestamp > timestamp)
                        OR (excluded.step = step AND excluded.timestamp = timestamp
                            AND coalesce(excluded.value, -1e308) > coalesce(value, -1e308))
                    """)
            var refusals: [RunDataRefusal?] = []
            refusals.reserveCapacity(batches.count)
            for batch in batches {
                // Every check comes before the batch's first write, and SQLite has one writer,
                // so a refused batch leaves nothing behind without a savepoint.
                guard let state = try String.fetchOne(lifecycle, arguments: [batch.runID]) else {
                    refusals.append(.runMissing)
                    continue
                }
                guard state == "active" else {
                    refusals.append(.runDeleted)
                    continue
                }
                var refusal: RunDataRefusal?
                var seen: [String: String] = [:]
                for param in batch.params {
                    let stored = try seen[param.key] ?? String.fetchOne(storedParam, arguments: [batch.runID, param.key])
                    if let stored, stored != param.value {
                        refusal = .paramChanged(key: param.key, stored: stored, given: param.value)
                        break
                    }
                    seen[param.key] = param.value
                }
                if let refusal {
                    refusals.append(refusal)
                    continue
                }
                for param in batch.params { try insertParam.execute(arguments: [batch.runID, param.key, param.value]) }
                for tag in batch.tags { try upsertTag.execute(arguments: [batch.runID, tag.key, tag.value]) }
                for metric in batch.metrics {
                    let arguments: StatementArguments = [batch.runID, metric.key, metric.value, metric.timestamp, metric.step]
                    try insertMetric.execute(arguments: arguments)
                    try upsertLatest.execute(arguments: arguments)
                }
                refusals.append(nil)
            }
            return refusals
        }
    }

    public func runData(runIDs: [String]) async throws -> [String: RunData] {
        guard !runIDs.isEmpty else { return [:] }
        return try syncRead { db in
            var result: [String: RunData] = [:]
            for id in runIDs { result[id] = RunData() }
            // Chunks keep each statement under SQLite's limit on bound values.
            for start in stride(from: 0, to: runIDs.count, by: 500) {
                let chunk = Array(runIDs[start..<min(start + 500, runIDs.count)])
                let marks = databaseQuestionMarks(count: chunk.count)
                let arguments = StatementArguments(chunk)
                for row in try Row.fetchAll(db, sql: "SELECT * FROM tracking_params WHERE run_id IN (\(marks))", arguments: arguments) {
                    result[row["run_id"] as String, default: RunData()].params[row["key"]] = row["value"]
                }
                for row in try Row.fetchAll(db, sql: "SELECT * FROM tracking_tags WHERE run_id IN (\(marks))", arguments: arguments) {
                    result[row["run_id"] as String, default: RunData()].tags[row["key"]] = row["value"]
                }
                for row in try Row.fetchAll(
                    db, sql: "SELECT * FROM tracking_latest_metrics WHERE run_id IN (\(marks))", arguments: arguments)
                {
                    let metric = TrackedMetric(key: row["key"], value: row["value"], timestamp: row["timestamp"], step: row["step"])
                    result[row["run_id"] as String, default: RunData()].latestMetrics[metric.key] = metric
                }
            }
            return result
        }
    }

    public func metricHistory(runID: String, key: String, limit: Int, offset: Int) async throws -> [TrackedMetric] {
        try syncRead { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT value, timestamp, step FROM tracking_metrics WHERE run_id = ? AND key = ?
                    ORDER BY step, timestamp, rowid LIMIT ? OFFSET ?
                    """, arguments: [runID, key, limit, offset]
            ).map { TrackedMetric(key: key, value: $0["value"], timestamp: $0["timestamp"], step: $0["step"]) }
        }
    }

    public func deleteRunTag(runID: String, key: String) async throws -> Bool {
        try syncWrite { db in
            try db.execute(sql: "DELETE FROM tracking_tags WHERE run_id = ? AND key = ?", arguments: [runID, key])
            return db.changesCount == 1
        }
    }

    public func recordModelEvent(_ event: ModelEventRecord) async throws {
        try syncWrite { db in
            try db.execute(
                sql: "INSERT INTO model_events (model_id, version, action, alias, detail, actor, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                arguments: [
                    event.modelID, event.version, event.action, event.alias, event.detail, event.actor,
                    event.at.timeIntervalSince1970,
                ])
        }
    }

    public func modelEvents(modelID: String, limit: Int) async throws -> [ModelEventRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM model_events WHERE model_id = ? ORDER BY id DESC LIMIT ?", arguments: [modelID, limit]
            ).map {
                ModelEventRecord(
                    id: $0["id"], modelID: $0["model_id"], version: $0["version"], action: $0["action"], alias: $0["alias"],
                    detail: $0["detail"], actor: $0["actor"], at: Date(timeIntervalSince1970: $0["at"]))
            }
        }
    }
}
