import Foundation
import GRDB

extension SQLiteStore {
    /// Schema for model deployments: the desired state per deployment and the audit trail.
    static func registerDeploymentMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v8_deployments") { db in
            try db.execute(
                sql: """
                    CREATE TABLE deployments (
                        name TEXT PRIMARY KEY,
                        spec TEXT NOT NULL,
                        source TEXT NOT NULL,
                        state TEXT NOT NULL,
                        revision INTEGER NOT NULL,
                        created_at REAL NOT NULL,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE deployment_events (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        deployment TEXT NOT NULL,
                        at REAL NOT NULL,
                        actor TEXT NOT NULL,
                        action TEXT NOT NULL,
                        version TEXT,
                        reason TEXT,
                        detail TEXT
                    );
                    CREATE INDEX deployment_events_by_deployment ON deployment_events (deployment, id);
                    """)
        }
    }

    static func deploymentRecord(_ row: Row) -> DeploymentRecord {
        DeploymentRecord(
            name: row["name"], specJSON: row["spec"], source: row["source"], stateJSON: row["state"], revision: row["revision"],
            createdAt: Date(timeIntervalSince1970: row["created_at"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    static func insertDeploymentEvent(_ event: DeploymentEventRecord, _ db: Database) throws -> Int64 {
        try db.execute(
            sql: "INSERT INTO deployment_events (deployment, at, actor, action, version, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            arguments: [
                event.deployment, event.at.timeIntervalSince1970, event.actor, event.action, event.version, event.reason,
                event.detailJSON,
            ])
        return db.lastInsertedRowID
    }

    public func putDeployment(name: String, specJSON: String, source: String, now: Date) async throws -> DeploymentRecord {
        try syncWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO deployments (name, spec, source, state, revision, created_at, updated_at) VALUES (?, ?, ?, '{}', 0, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET spec = excluded.spec, source = excluded.source, updated_at = excluded.updated_at
                    """,
                arguments: [name, specJSON, source, now.timeIntervalSince1970, now.timeIntervalSince1970])
            return Self.deploymentRecord(try Row.fetchOne(db, sql: "SELECT * FROM deployments WHERE name = ?", arguments: [name])!)
        }
    }

    public func deployment(named name: String) async throws -> DeploymentRecord? {
        try syncRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM deployments WHERE name = ?", arguments: [name]).map(Self.deploymentRecord)
        }
    }

    public func deployments() async throws -> [DeploymentRecord] {
        try syncRead { db in try Row.fetchAll(db, sql: "SELECT * FROM deployments ORDER BY name").map(Self.deploymentRecord) }
    }

    public func updateDeploymentState(
        name: String, stateJSON: String, expectedRevision: Int64, event: DeploymentEventRecord?, now: Date
    ) async throws -> DeploymentRecord? {
        try syncWrite { db in
            try db.execute(
                sql: "UPDATE deployments SET state = ?, revision = revision + 1, updated_at = ? WHERE name = ? AND revision = ?",
                arguments: [stateJSON, now.timeIntervalSince1970, name, expectedRevision])
            guard db.changesCount == 1 else { return nil }
            if let event { _ = try Self.insertDeploymentEvent(event, db) }
            return try Row.fetchOne(db, sql: "SELECT * FROM deployments WHERE name = ?", arguments: [name]).map(Self.deploymentRecord)
        }
    }

    @discardableResult
    public func recordDeploymentEvent(_ event: DeploymentEventRecord) async throws -> Int64 {
        try syncWrite { db in try Self.insertDeploymentEvent(event, db) }
    }

    public func deploymentEvents(deployment: String, limit: Int, beforeID: Int64?) async throws -> [DeploymentEventRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM deployment_events WHERE deployment = ? AND id < ? ORDER BY id DESC LIMIT ?",
                arguments: [deployment, beforeID ?? Int64.max, limit]
            ).map {
                DeploymentEventRecord(
                    id: $0["id"], deployment: $0["deployment"], at: Date(timeIntervalSince1970: $0["at"]), actor: $0["actor"],
                    action: $0["action"], version: $0["version"], reason: $0["reason"], detailJSON: $0["detail"])
            }
        }
    }
}
