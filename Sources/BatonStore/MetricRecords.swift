import Foundation

/// One observation of a metric, such as `pipeline.duration` = 42.5 {pipeline: etl, owner: data}.
public struct MetricPoint: Sendable, Hashable, Codable {
    public var name: String
    public var tags: [String: String]
    public var value: Double
    public var timestamp: Date

    public init(name: String, tags: [String: String] = [:], value: Double, timestamp: Date) {
        self.name = name
        self.tags = tags
        self.value = value
        self.timestamp = timestamp
    }
}

/// A metric name with one combination of tags.
public struct MetricSeries: Sendable, Hashable, Codable {
    public var name: String
    public var tags: [String: String]
    public var lastValue: Double
    public var lastTimestamp: Date
    public var points: Int

    public init(name: String, tags: [String: String], lastValue: Double, lastTimestamp: Date, points: Int) {
        self.name = name
        self.tags = tags
        self.lastValue = lastValue
        self.lastTimestamp = lastTimestamp
        self.points = points
    }
}

/// Time-series storage for user and built-in metrics; part of every store.
public protocol MetricStore: Sendable {
    func recordMetrics(_ points: [MetricPoint]) async throws
    /// Points of `name` whose tags include all of `tags`, in `[from, to)`, oldest first.
    func metricPoints(name: String, tags: [String: String], from: Date, to: Date, limit: Int) async throws -> [MetricPoint]
    /// Every series (optionally of one name) with its latest value.
    func metricSeries(name: String?) async throws -> [MetricSeries]
    /// Deletes points older than `cutoff`; returns how many.
    func purgeMetrics(before cutoff: Date) async throws -> Int
}
