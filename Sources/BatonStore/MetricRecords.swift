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

/// The aggregates of one series (one exact tag set) over one time bucket.
public struct MetricBucket: Sendable, Hashable {
    public var tags: [String: String]
    /// The bucket's start; buckets are `step` long and aligned to multiples of `step` since 1970.
    public var start: Date
    public var count: Int
    public var sum: Double
    public var min: Double
    public var max: Double
    /// The value of the bucket's latest point (the last written one when times tie).
    public var last: Double
    public var lastTimestamp: Date

    public init(
        tags: [String: String], start: Date, count: Int, sum: Double, min: Double, max: Double, last: Double,
        lastTimestamp: Date
    ) {
        self.tags = tags
        self.start = start
        self.count = count
        self.sum = sum
        self.min = min
        self.max = max
        self.last = last
        self.lastTimestamp = lastTimestamp
    }
}

/// Count, sum and sum of squares of a set of points: enough for a mean, its variance and a
/// confidence interval, aggregated where the points are.
public struct MetricMoments: Sendable, Hashable {
    public var count: Int
    public var sum: Double
    public var sumOfSquares: Double
    /// Points whose value is neither 0 nor 1 (none: the metric is a proportion).
    public var nonBinary: Int

    public init(count: Int = 0, sum: Double = 0, sumOfSquares: Double = 0, nonBinary: Int = 0) {
        self.count = count
        self.sum = sum
        self.sumOfSquares = sumOfSquares
        self.nonBinary = nonBinary
    }
}

/// Time-series storage for user and built-in metrics; part of every store.
public protocol MetricStore: Sendable {
    /// Stores the points all together or none of them; a point outside `MetricLimits` throws
    /// `MetricValidationError` before anything is written.
    func recordMetrics(_ points: [MetricPoint]) async throws
    /// Points of `name` whose tags include all of `tags`, in `[from, to)`, oldest first.
    func metricPoints(name: String, tags: [String: String], from: Date, to: Date, limit: Int) async throws -> [MetricPoint]
    /// Aggregates of the points of `name` whose tags include all of `tags`, in `[from, to)`, per
    /// series and per `step`-second bucket, ordered by series then time; at most `limit` buckets.
    /// Aggregating where the points are keeps a month of points from ever being loaded at once.
    func metricBuckets(name: String, tags: [String: String], from: Date, to: Date, step: Double, limit: Int)
        async throws -> [MetricBucket]
    /// The moments of the points of `name` whose tags include all of `tags`, in `[from, to)`.
    func metricMoments(name: String, tags: [String: String], from: Date, to: Date) async throws -> MetricMoments
    /// Every series (optionally of one name) with its latest value.
    func metricSeries(name: String?) async throws -> [MetricSeries]
    /// Deletes points older than `cutoff`; returns how many.
    func purgeMetrics(before cutoff: Date) async throws -> Int
}
