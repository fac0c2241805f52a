import Foundation
import GRDB

extension SQLiteStore {
    /// Schema for user and built-in metric time series.
    ///
    /// `metric_points` holds every observation with its tags as canonical JSON (sorted keys), so
    /// one tag set is always the same text and a series is simply `(name, tags)`.
    /// `metric_series` keeps each series' latest value and point count up to date as points are
    /// written, so listing series (and the Prometheus export) reads one row per series instead
    /// of scanning a month of points; tag filters run against it too.
    static func registerMetricsMigrations(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4_metrics") { db in
            try db.execute(
                sql: """
                    CREATE TABLE metric_points (
                        id INTEGER PRIMARY KEY,
                        name TEXT NOT NULL,
                        tags TEXT NOT NULL,
                        value REAL NOT NULL,
                        ts REAL NOT NULL
                    );
                    CREATE INDEX metric_points_by_name_ts ON metric_points (name, ts);
                    CREATE INDEX metric_points_by_series ON metric_points (name, tags, ts);
                    CREATE INDEX metric_points_by_ts ON metric_points (ts);
                    CREATE TABLE metric_series (
                        name TEXT NOT NULL,
                        tags TEXT NOT NULL,
                        last_value REAL NOT NULL,
                        last_ts REAL NOT NULL,
                        points INTEGER NOT NULL,
                        PRIMARY KEY (name, tags)
                    ) WITHOUT ROWID;
                    """)
        }
    }

    public func recordMetrics(_ points: [MetricPoint]) async throws {
        guard !points.isEmpty else { return }
        // Every point is checked before the transaction, so a bad one rejects the whole batch.
        for point in points { try MetricLimits.validate(point) }
        let rows = points.map { ($0, Self.canonicalTags($0.tags)) }
        try syncWrite { db in
            let insert = try db.cachedStatement(
                sql: "INSERT INTO metric_points (name, tags, value, ts) VALUES (?, ?, ?, ?)")
            // Assignments in an upsert all read the row as it was, so `last_ts` in the CASE is the
            // old time: a late-arriving older point counts but does not become the latest value.
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO metric_series (name, tags, last_value, last_ts, points) VALUES (?, ?, ?, ?, 1)
                    ON CONFLICT (name, tags) DO UPDATE SET
                        points = points + 1,
                        last_value = CASE WHEN excluded.last_ts >= last_ts THEN excluded.last_value ELSE last_value END,
                        last_ts = max(last_ts, excluded.last_ts)
                    """)
            for (point, tags) in rows {
                let time = point.timestamp.timeIntervalSince1970
                try insert.execute(arguments: [point.name, tags, point.value, time])
                try upsert.execute(arguments: [point.name, tags, point.value, time])
            }
        }
    }

    public func metricPoints(name: String, tags: [String: String], from: Date, to: Date, limit: Int) async throws
        -> [MetricPoint]
    {
        guard limit > 0, from < to else { return [] }
        let filter = Self.seriesFilter(name: name, tags: tags)
        var arguments: StatementArguments = [name, from.timeIntervalSince1970, to.timeIntervalSince1970]
        arguments += filter.arguments
        arguments += [limit]
        let sql = """
            SELECT name, tags, value, ts FROM metric_points
            WHERE name = ? AND ts >= ? AND ts < ? \(filter.sql)
            ORDER BY ts, id LIMIT ?
            """
        let finalArguments = arguments
        return try syncRead { db in
            var decoded = TagCache()
            return try Row.fetchAll(db, sql: sql, arguments: finalArguments).map { row in
                MetricPoint(
                    name: row["name"], tags: try decoded.tags(row["tags"]), value: row["value"],
                    timestamp: Date(timeIntervalSince1970: row["ts"]))
            }
        }
    }

    public func metricMoments(name: String, tags: [String: String], from: Date, to: Date) async throws -> MetricMoments {
        guard from < to else { return MetricMoments() }
        let filter = Self.seriesFilter(name: name, tags: tags)
        var arguments: StatementArguments = [name, from.timeIntervalSince1970, to.timeIntervalSince1970]
        arguments += filter.arguments
        let sql = """
            SELECT count(*) AS n, total(value) AS total, total(value * value) AS squares,
                total(CASE WHEN value = 0 OR value = 1 THEN 0 ELSE 1 END) AS other
            FROM metric_points WHERE name = ? AND ts >= ? AND ts < ? \(filter.sql)
            """
        let finalArguments = arguments
        return try syncRead { db in
            guard let row = try Row.fetchOne(db, sql: sql, arguments: finalArguments) else { return MetricMoments() }
            let other: Double = row["other"]
            return MetricMoments(count: row["n"], sum: row["total"], sumOfSquares: row["squares"], nonBinary: Int(other))
        }
    }

    public func metricBuckets(name: String, tags: [String: String], from: Date, to: Date, step: Double, limit: Int)
        async throws -> [MetricBucket]
    {
        guard limit > 0, from < to, step.isFinite, step > 0 else { return [] }
        // Buckets are counted from a multiple of the step at or before `from`, so every point's
        // offset is non-negative (CAST truncates toward zero) and bucket edges do not move when
        // the same range is asked for again a little later.
        let origin = (from.timeIntervalSince1970 / step).rounded(.down) * step
        let filter = Self.seriesFilter(name: name, tags: tags)
        var arguments: StatementArguments = [name, origin, step, name, from.timeIntervalSince1970, to.timeIntervalSince1970]
        arguments += filter.arguments
        arguments += [limit]
        // The latest value is looked up by the group's max(ts): SQLite's bare-column shortcut
        // is undefined when a query has several min/max aggregates, as this one does.
        let sql = """
            SELECT g.tags, g.bucket, g.n, g.total, g.lo, g.hi, g.last_ts,
                (SELECT p.value FROM metric_points p WHERE p.name = ? AND p.tags = g.tags AND p.ts = g.last_ts
                 ORDER BY p.id DESC LIMIT 1) AS last_value
            FROM (
                SELECT tags, CAST((ts - ?) / ? AS INTEGER) AS bucket, count(*) AS n, sum(value) AS total,
                    min(value) AS lo, max(value) AS hi, max(ts) AS last_ts
                FROM metric_points
                WHERE name = ? AND ts >= ? AND ts < ? \(filter.sql)
                GROUP BY tags, bucket
                ORDER BY tags, bucket
                LIMIT ?
            ) g
            ORDER BY g.tags, g.bucket
            """
        let finalArguments = arguments
        return try syncRead { db in
            var decoded = TagCache()
            return try Row.fetchAll(db, sql: sql, arguments: finalArguments).map { row in
                let bucket: Int64 = row["bucket"]
                return MetricBucket(
                    tags: try decoded.tags(row["tags"]),
                    start: Date(timeIntervalSince1970: origin + Double(bucket) * step), count: row["n"],
                    sum: row["total"], min: row["lo"], max: row["hi"], last: row["last_value"],
                    lastTimestamp: Date(timeIntervalSince1970: row["last_ts"]))
            }
        }
    }

    public func metricSeries(name: String?) async throws -> [MetricSeries] {
        try syncRead { db in
            var decoded = TagCache()
            let rows: [Row]
            if let name {
                rows = try Row.fetchAll(
                    db, sql: "SELECT * FROM metric_series WHERE name = ? ORDER BY name, tags", arguments: [name])
            } else {
                rows = try Row.fetchAll(db, sql: "SELECT * FROM metric_series ORDER BY name, tags")
            }
            return try rows.map { row in
                MetricSeries(
                    name: row["name"], tags: try decoded.tags(row["tags"]), lastValue: row["last_value"],
                    lastTimestamp: Date(timeIntervalSince1970: row["last_ts"]), points: row["points"])
            }
        }
    }

    public func purgeMetrics(before cutoff: Date) async throws -> Int {
        let time = cutoff.timeIntervalSince1970
        return try syncWrite { db in
            let touched = try Row.fetchAll(
                db, sql: "SELECT DISTINCT name, tags FROM metric_points WHERE ts < ?", arguments: [time])
            guard !touched.isEmpty else { return 0 }
            try db.execute(sql: "DELETE FROM metric_points WHERE ts < ?", arguments: [time])
            let deleted = db.changesCount
            // A series whose latest point went has no points left at all (every other point is
            // older still); the rest only need their counts corrected.
            let recount = try db.cachedStatement(
                sql: """
                    UPDATE metric_series SET points = (
                        SELECT count(*) FROM metric_points p WHERE p.name = metric_series.name AND p.tags = metric_series.tags)
                    WHERE name = ? AND tags = ?
                    """)
            for row in touched {
                let name: String = row["name"]
                let tags: String = row["tags"]
                try recount.execute(arguments: [name, tags])
            }
            try db.execute(sql: "DELETE FROM metric_series WHERE points = 0")
            return deleted
        }
    }

    /// Restricts a points query to the series whose tags include every given key and value.
    /// `json_each` compares keys and values as bound parameters, so no key is ever spliced into
    /// a JSON path; the check runs once per series, not once per point.
    static func seriesFilter(name: String, tags: [String: String]) -> (sql: String, arguments: StatementArguments) {
        guard !tags.isEmpty else { return ("", []) }
        var conditions: [String] = []
        var arguments: StatementArguments = [name]
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
            conditions.append("EXISTS (SELECT 1 FROM json_each(s.tags) j WHERE j.key = ? AND j.value = ?)")
            arguments += [key, value]
        }
        let sql = "AND tags IN (SELECT s.tags FROM metric_series s WHERE s.name = ? AND \(conditions.joined(separator: " AND ")))"
        return (sql, arguments)
    }
}
