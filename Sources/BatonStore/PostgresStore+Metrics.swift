import Foundation
import PostgresNIO

// Metric time series; each method mirrors its `SQLiteStore` namesake (see its notes on the
// `metric_points`/`metric_series` split).
extension PostgresStore {
    public func recordMetrics(_ points: [MetricPoint]) async throws {
        guard !points.isEmpty else { return }
        // Every point is checked before the transaction, so a bad one rejects the whole batch.
        for point in points { try MetricLimits.validate(point) }
        let names = points.map(\.name)
        let tags = points.map { Self.canonicalTags($0.tags) }
        let values = points.map(\.value)
        let times = points.map(\.timestamp.timeIntervalSince1970)
        try await transaction { connection in
            // One statement per batch instead of one per point; ORDER BY keeps ids in the
            // caller's order, which decides the latest value when times tie.
            try await fetch(
                """
                INSERT INTO metric_points (name, tags, value, ts)
                SELECT name, tags, value, ts
                FROM unnest(\(names)::text[], \(tags)::text[], \(values)::float8[], \(times)::float8[])
                    WITH ORDINALITY AS p(name, tags, value, ts, position)
                ORDER BY position
                """, on: connection)
            // One row per series of the batch: its point count and its latest point (the last
            // given when times tie), merged as SQLite's point-by-point upsert would: an older
            // point counts but does not become the latest value. Rows are upserted in key order
            // so concurrent batches lock series in the same order and cannot deadlock.
            try await fetch(
                """
                INSERT INTO metric_series (name, tags, last_value, last_ts, points)
                SELECT DISTINCT ON (name, tags) name, tags, value, ts, count(*) OVER (PARTITION BY name, tags)
                FROM unnest(\(names)::text[], \(tags)::text[], \(values)::float8[], \(times)::float8[])
                    WITH ORDINALITY AS p(name, tags, value, ts, position)
                ORDER BY name, tags, ts DESC, position DESC
                ON CONFLICT (name, tags) DO UPDATE SET
                    points = metric_series.points + excluded.points,
                    last_value = CASE WHEN excluded.last_ts >= metric_series.last_ts
                        THEN excluded.last_value ELSE metric_series.last_value END,
                    last_ts = greatest(metric_series.last_ts, excluded.last_ts)
                """, on: connection)
        }
    }

    public func metricPoints(name: String, tags: [String: String], from: Date, to: Date, limit: Int) async throws
        -> [MetricPoint]
    {
        guard limit > 0, from < to else { return [] }
        var binds = PostgresBindings()
        binds.append(name)
        binds.append(from.timeIntervalSince1970)
        binds.append(to.timeIntervalSince1970)
        let filter = Self.seriesFilter(name: name, tags: tags, binds: &binds)
        binds.append(limit)
        let sql = """
            SELECT name, tags, value, ts FROM metric_points
            WHERE name = $1 AND ts >= $2 AND ts < $3 \(filter)
            ORDER BY ts, id LIMIT $\(binds.count)
            """
        var decoded = TagCache()
        return try await fetch(PostgresQuery(unsafeSQL: sql, binds: binds)).map { row in
            let columns = PostgresColumns(row, table: "metric_points")
            return MetricPoint(
                name: try columns["name"], tags: try decoded.tags(try columns["tags"]), value: try columns["value"],
                timestamp: Date(timeIntervalSince1970: try columns["ts"]))
        }
    }

    public func metricMoments(name: String, tags: [String: String], from: Date, to: Date) async throws -> MetricMoments {
        guard from < to else { return MetricMoments() }
        var binds = PostgresBindings()
        binds.append(name)
        binds.append(from.timeIntervalSince1970)
        binds.append(to.timeIntervalSince1970)
        let filter = Self.seriesFilter(name: name, tags: tags, binds: &binds)
        let sql = """
            SELECT count(*)::bigint AS n, coalesce(sum(value), 0)::float8 AS total,
                coalesce(sum(value * value), 0)::float8 AS squares,
                count(*) FILTER (WHERE value <> 0 AND value <> 1)::bigint AS other
            FROM metric_points WHERE name = $1 AND ts >= $2 AND ts < $3 \(filter)
            """
        guard let row = try await fetch(PostgresQuery(unsafeSQL: sql, binds: binds)).first else { return MetricMoments() }
        let columns = PostgresColumns(row, table: "metric_points")
        let count: Int64 = try columns["n"]
        let other: Int64 = try columns["other"]
        return MetricMoments(count: Int(count), sum: try columns["total"], sumOfSquares: try columns["squares"], nonBinary: Int(other))
    }

    public func metricBuckets(name: String, tags: [String: String], from: Date, to: Date, step: Double, limit: Int)
        async throws -> [MetricBucket]
    {
        guard limit > 0, from < to, step.isFinite, step > 0 else { return [] }
        // Buckets count from a multiple of the step at or before `from` (see SQLiteStore); every
        // offset is non-negative, so floor() truncates as SQLite's CAST does (a plain cast to
        // bigint would round here).
        let origin = (from.timeIntervalSince1970 / step).rounded(.down) * step
        var binds = PostgresBindings()
        binds.append(name)
        binds.append(origin)
        binds.append(step)
        binds.append(from.timeIntervalSince1970)
        binds.append(to.timeIntervalSince1970)
        let filter = Self.seriesFilter(name: name, tags: tags, binds: &binds)
        binds.append(limit)
        let sql = """
            SELECT g.tags, g.bucket, g.n, g.total, g.lo, g.hi, g.last_ts,
                (SELECT p.value FROM metric_points p WHERE p.name = $1 AND p.tags = g.tags AND p.ts = g.last_ts
                 ORDER BY p.id DESC LIMIT 1) AS last_value
            FROM (
                SELECT tags, floor((ts - $2) / $3)::bigint AS bucket, count(*) AS n, sum(value) AS total,
                    min(value) AS lo, max(value) AS hi, max(ts) AS last_ts
                FROM metric_points
                WHERE name = $1 AND ts >= $4 AND ts < $5 \(filter)
                GROUP BY tags, bucket
                ORDER BY tags, bucket
                LIMIT $\(binds.count)
            ) g
            ORDER BY g.tags, g.bucket
            """
        var decoded = TagCache()
        return try await fetch(PostgresQuery(unsafeSQL: sql, binds: binds)).map { row in
            let columns = PostgresColumns(row, table: "metric_points")
            let bucket: Int64 = try columns["bucket"]
            return MetricBucket(
                tags: try decoded.tags(try columns["tags"]), start: Date(timeIntervalSince1970: origin + Double(bucket) * step),
                count: try columns["n"], sum: try columns["total"], min: try columns["lo"], max: try columns["hi"],
                last: try columns["last_value"], lastTimestamp: Date(timeIntervalSince1970: try columns["last_ts"]))
        }
    }

    public func metricSeries(name: String?) async throws -> [MetricSeries] {
        let rows: [PostgresRow]
        if let name {
            rows = try await fetch("SELECT * FROM metric_series WHERE name = \(name) ORDER BY name, tags")
        } else {
            rows = try await fetch("SELECT * FROM metric_series ORDER BY name, tags")
        }
        var decoded = TagCache()
        return try rows.map { row in
            let columns = PostgresColumns(row, table: "metric_series")
            return MetricSeries(
                name: try columns["name"], tags: try decoded.tags(try columns["tags"]), lastValue: try columns["last_value"],
                lastTimestamp: Date(timeIntervalSince1970: try columns["last_ts"]), points: try columns["points"])
        }
    }

    public func purgeMetrics(before cutoff: Date) async throws -> Int {
        let time = cutoff.timeIntervalSince1970
        return try await transaction { connection in
            let deleted = try await fetch(
                """
                WITH gone AS (DELETE FROM metric_points WHERE ts < \(time) RETURNING name, tags)
                SELECT name, tags, count(*) AS n FROM gone GROUP BY name, tags ORDER BY name, tags
                """, on: connection)
            guard !deleted.isEmpty else { return 0 }
            var total = 0
            var names: [String] = []
            var tags: [String] = []
            for row in deleted {
                let columns = PostgresColumns(row, table: "metric_points")
                names.append(try columns["name"])
                tags.append(try columns["tags"])
                total += try columns["n"] as Int
            }
            // Recounted rather than decremented, as SQLite does: a series whose latest point
            // went has no points left at all (every other point is older still).
            try await fetch(
                """
                UPDATE metric_series s SET points = (
                    SELECT count(*) FROM metric_points p WHERE p.name = s.name AND p.tags = s.tags)
                FROM unnest(\(names)::text[], \(tags)::text[]) AS t(name, tags)
                WHERE s.name = t.name AND s.tags = t.tags
                """, on: connection)
            try await fetch("DELETE FROM metric_series WHERE points = 0", on: connection)
            return total
        }
    }

    /// Restricts a points query to the series whose tags include every given key and value,
    /// appending its values to `binds`. Keys and values are bound parameters read with `->>`,
    /// never spliced into the text; the check runs once per series, not once per point.
    static func seriesFilter(name: String, tags: [String: String], binds: inout PostgresBindings) -> String {
        guard !tags.isEmpty else { return "" }
        binds.append(name)
        var conditions = ["s.name = $\(binds.count)"]
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) {
            binds.append(key)
            let keyIndex = binds.count
            binds.append(value)
            conditions.append("(s.tags::jsonb ->> $\(keyIndex)) = $\(binds.count)")
        }
        return "AND tags IN (SELECT s.tags FROM metric_series s WHERE \(conditions.joined(separator: " AND ")))"
    }
}
