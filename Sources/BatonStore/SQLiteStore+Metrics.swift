import Foundation
import GRDB

extension SQLiteStore {
    /// Schema for user and built-in metric time series.
    static func registerMetricsMigrations(_ migrator: inout DatabaseMigrator) {
    }

    public func recordMetrics(_ points: [MetricPoint]) async throws {}

    public func metricPoints(name: String, tags: [String: String], from: Date, to: Date, limit: Int) async throws
        -> [MetricPoint]
    { [] }

    public func metricSeries(name: String?) async throws -> [MetricSeries] { [] }

    public func purgeMetrics(before cutoff: Date) async throws -> Int { 0 }
}
