import BatonCore
import Foundation
import PostgresNIO

// The feature store's tables; each method mirrors its `SQLiteStore` namesake.
extension PostgresStore {
    static let featureMigration = PostgresMigration(
        version: "v7_features",
        statements: [
            """
            CREATE TABLE feature_rows (
                view text COLLATE "C" NOT NULL,
                entity_key text COLLATE "C" NOT NULL,
                event_ts double precision NOT NULL,
                feature_values bytea NOT NULL,
                written_at double precision NOT NULL,
                PRIMARY KEY (view, entity_key, event_ts)
            )
            """,
            "CREATE INDEX feature_rows_by_written ON feature_rows (view, written_at)",
            """
            CREATE TABLE feature_online (
                view text COLLATE "C" NOT NULL,
                entity_key text COLLATE "C" NOT NULL,
                event_ts double precision NOT NULL,
                feature_values bytea NOT NULL,
                written_at double precision NOT NULL,
                PRIMARY KEY (view, entity_key)
            )
            """,
        ])

    static func buffers(_ rows: [StoredFeatureRow]) -> [ByteBuffer] {
        rows.map { ByteBuffer(bytes: $0.values) }
    }

    public func writeFeatureRows(view: String, rows: [StoredFeatureRow], writtenAt: Date, changes: [StoreChange]) async throws
        -> FeatureWriteResult
    {
        let (unique, duplicates) = deduplicated(rows)
        let latest = latestPerEntity(unique)
        let now = writtenAt.timeIntervalSince1970
        let keys = unique.map(\.entityKey)
        let times = unique.map(\.eventTime)
        let blobs = Self.buffers(unique)
        let latestKeys = latest.map(\.entityKey)
        let latestTimes = latest.map(\.eventTime)
        let latestBlobs = Self.buffers(latest)
        let result = try await transaction { connection -> FeatureWriteResult in
            var inserted = 0
            var overwritten = duplicates
            if !unique.isEmpty {
                // `xmax = 0` only for a row this statement inserted: the rest replaced a stored row.
                let outcome = try await fetch(
                    """
                    INSERT INTO feature_rows (view, entity_key, event_ts, feature_values, written_at)
                    SELECT \(view), k, t, v, \(now)
                    FROM unnest(\(keys)::text[], \(times)::float8[], \(blobs)::bytea[]) AS r(k, t, v)
                    ON CONFLICT (view, entity_key, event_ts) DO UPDATE SET
                        feature_values = excluded.feature_values, written_at = excluded.written_at
                    RETURNING (xmax = 0)
                    """, on: connection)
                for row in outcome {
                    if try row.decode(Bool.self) { inserted += 1 } else { overwritten += 1 }
                }
                try await fetch(
                    """
                    INSERT INTO feature_online (view, entity_key, event_ts, feature_values, written_at)
                    SELECT \(view), k, t, v, \(now)
                    FROM unnest(\(latestKeys)::text[], \(latestTimes)::float8[], \(latestBlobs)::bytea[]) AS r(k, t, v)
                    ON CONFLICT (view, entity_key) DO UPDATE SET
                        event_ts = excluded.event_ts, feature_values = excluded.feature_values, written_at = excluded.written_at
                    WHERE excluded.event_ts >= feature_online.event_ts
                    """, on: connection)
            }
            for change in changes { try await apply(change, on: connection) }
            return FeatureWriteResult(inserted: inserted, overwritten: overwritten)
        }
        if !changes.isEmpty { await bumpChangeCounter() }
        return result
    }

    static func featureRows(_ rows: PostgresRowSequence) async throws -> [StoredFeatureRow] {
        var result: [StoredFeatureRow] = []
        for try await (key, time, blob) in rows.decode((String, Double, ByteBuffer).self) {
            result.append(StoredFeatureRow(entityKey: key, eventTime: time, values: Array(blob.readableBytesView)))
        }
        return result
    }

    func streamFeatureRows(_ query: PostgresQuery) async throws -> [StoredFeatureRow] {
        do {
            return try await client.withConnection { connection in
                try await Self.featureRows(try await connection.query(query, logger: queryLogger))
            }
        } catch {
            throw queryError(error, query)
        }
    }

    public func featureHistory(view: String, from: Double?, to: Double?) async throws -> ViewHistory {
        let low = from ?? -Double.greatestFiniteMagnitude
        let high = to ?? Double.greatestFiniteMagnitude
        // COLLATE "C": the rows of one key must be adjacent, and byte order is what SQLite gives too.
        let query: PostgresQuery = """
            SELECT entity_key, event_ts, feature_values FROM feature_rows
            WHERE view = \(view) AND event_ts >= \(low) AND event_ts < \(high) ORDER BY entity_key COLLATE "C", event_ts
            """
        do {
            return try await client.withConnection { connection in
                var history = ViewHistory()
                for try await (key, time, blob) in try await connection.query(query, logger: queryLogger).decode((String, Double, ByteBuffer).self) {
                    var key = key
                    key.withUTF8 { keyBytes in
                        blob.withUnsafeReadableBytes { history.append(entityKeyUTF8: UnsafeRawBufferPointer(keyBytes), time: time, values: $0) }
                    }
                }
                history.finish()
                return history
            }
        } catch {
            throw queryError(error, query)
        }
    }

    public func recentFeatureRows(view: String, limit: Int) async throws -> [StoredFeatureRow] {
        try await streamFeatureRows(
            """
            SELECT entity_key, event_ts, feature_values FROM feature_rows
            WHERE view = \(view) ORDER BY written_at DESC LIMIT \(limit)
            """)
    }

    public func onlineFeatureRows(view: String, writtenSince: Double?) async throws -> [StoredFeatureRow] {
        let since = writtenSince ?? -Double.greatestFiniteMagnitude
        return try await streamFeatureRows(
            "SELECT entity_key, event_ts, feature_values FROM feature_online WHERE view = \(view) AND written_at >= \(since)")
    }

    public func onlineFeatureRow(view: String, entityKey: String) async throws -> StoredFeatureRow? {
        try await streamFeatureRows(
            "SELECT entity_key, event_ts, feature_values FROM feature_online WHERE view = \(view) AND entity_key = \(entityKey)"
        ).first
    }

    public func featureViewSummary(view: String) async throws -> FeatureViewSummary {
        let rows = try await fetch(
            """
            SELECT count(*), min(event_ts), max(event_ts), max(written_at),
                (SELECT count(*) FROM feature_online WHERE view = \(view))
            FROM feature_rows WHERE view = \(view)
            """)
        guard let row = rows.first else {
            return FeatureViewSummary(view: view, rows: 0, entities: 0, firstEventTime: nil, lastEventTime: nil, lastWrittenAt: nil)
        }
        let (count, first, last, written, entities) = try row.decode((Int64, Double?, Double?, Double?, Int64).self)
        return FeatureViewSummary(
            view: view, rows: Int(count), entities: Int(entities), firstEventTime: first, lastEventTime: last, lastWrittenAt: written)
    }
}
