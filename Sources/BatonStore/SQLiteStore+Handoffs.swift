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
