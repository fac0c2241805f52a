import BatonCore
import BatonStore
import Foundation

// The metrics part of the REST API (`/api/v1/metrics`): request and response documents, and
// the bucketed query itself, shared by the server, the dashboard and `baton metrics query` on
// a local database, so all three answer alike.

/// One point of `POST /api/v1/metrics`.
public struct APIMetricPointInput: Codable, Sendable, Hashable {
    public var name: String
    public var value: Double
    public var tags: [String: String]?
    /// When the value was observed; the time of arrival when absent.
    public var timestamp: Date?

    public init(name: String, value: Double, tags: [String: String]? = nil, timestamp: Date? = nil) {
        self.name = name
        self.value = value
        self.tags = tags
        self.timestamp = timestamp
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case name, value, tags, timestamp }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        // A misspelled optional field (`tag` for `tags`) would otherwise be dropped silently and
        // the point stored without its tags; inside `points` the body-level check cannot see it.
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = CodingKeys.allCases.map(\.rawValue)
        if let unknown = any.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw DecodingError.dataCorrupted(
                DecodingError.Context(
                    codingPath: decoder.codingPath + [AnyKey(stringValue: unknown)],
                    debugDescription: "unknown field '\(unknown)'; \(Suggest.hint(for: unknown, in: known))"))
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        value = try container.decode(Double.self, forKey: .value)
        tags = try container.decodeIfPresent([String: String].self, forKey: .tags)
        timestamp = try container.decodeIfPresent(Date.self, forKey: .timestamp)
    }
}

/// `POST /api/v1/metrics`: one point (`name`, `value`, `tags`, `timestamp`) or a batch in
/// `points`, never both.
public struct APIMetricEmitRequest: Codable, Sendable, Hashable {
    public var name: String?
    public var value: Double?
    public var tags: [String: String]?
    public var timestamp: Date?
    public var points: [APIMetricPointInput]?

    /// The fields the body may have.
    public static let fields = ["name", "value", "tags", "timestamp", "points"]
    /// Most points in one request.
    public static let maxPoints = 1000

    public init(point: APIMetricPointInput) {
        name = point.name
        value = point.value
        tags = point.tags
        timestamp = point.timestamp
    }

    public init(points: [APIMetricPointInput]) {
        self.points = points
    }
}

/// The answer to `POST /api/v1/metrics`.
public struct APIMetricsRecorded: Codable, Sendable, Hashable {
    public var recorded: Int

    public init(recorded: Int) { self.recorded = recorded }
}

/// A metric name with one tag set and its latest value (`GET /api/v1/metrics`).
public struct APIMetricSeries: Codable, Sendable, Hashable {
    public var name: String
    public var tags: [String: String]
    public var last_value: Double
    public var last_timestamp: Date
    /// Points kept for the series (older ones are purged after the retention period).
    public var points: Int

    public init(_ series: MetricSeries) {
        name = series.name
        tags = series.tags
        last_value = series.lastValue
        last_timestamp = series.lastTimestamp
        points = series.points
    }
}

/// The answer to `GET /api/v1/metrics/query`.
public struct APIMetricQueryResult: Codable, Sendable, Hashable {
    public struct Point: Codable, Sendable, Hashable {
        /// The bucket's start.
        public var t: Date
        public var value: Double
        /// Points in the bucket.
        public var count: Int
    }

    public struct Series: Codable, Sendable, Hashable {
        /// The series' tags, or only the `group_by` keys when grouping.
        public var tags: [String: String]
        /// Buckets with at least one point, oldest first.
        public var points: [Point]
    }

    public var name: String
    /// The tag filter.
    public var tags: [String: String]
    public var group_by: [String]?
    public var agg: String
    public var step_seconds: Double
    public var from: Date
    public var to: Date
    public var series: [Series]
}

/// A problem with a metrics query, naming the parameter at fault.
public struct MetricQueryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The query parameter: `name`, `tags`, `from`, `to`, `step`, `agg` or `group_by`.
    public var field: String
    public var message: String

    public init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { message }
}

/// A bucketed query over one metric: which points (name, tag filter, time range) and how each
/// bucket is summarised.
public struct MetricQuery: Sendable, Hashable {
    /// How the points of one bucket become its value.
    public enum Aggregation: String, Sendable, CaseIterable {
        case avg, sum, min, max, count, last
    }

    public var name: String
    /// Only points whose tags include all of these.
    public var tags: [String: String]
    public var from: Date
    public var to: Date
    /// Bucket length in seconds.
    public var step: Double
    public var aggregation: Aggregation
    /// When set, series that agree on these tag keys are merged into one, tagged with just them.
    public var groupBy: [String]?

    /// Most buckets in one answer, over all series.
    public static let maxBuckets = 10_000
    /// The steps picked when none is given: the smallest that gives at most `autoBuckets`.
    public static let niceSteps: [Double] = [
        1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604_800,
    ]
    public static let autoBuckets = 120.0

    public init(
        name: String, tags: [String: String] = [:], from: Date, to: Date, step: Double? = nil,
        aggregation: Aggregation = .avg, groupBy: [String]? = nil
    ) {
        self.name = name
        self.tags = tags
        self.from = from
        self.to = to
        self.step = step ?? Self.autoStep(span: to.timeIntervalSince(from))
        self.aggregation = aggregation
        self.groupBy = groupBy
    }

    /// A round step giving at most about `autoBuckets` buckets over `span` seconds.
    public static func autoStep(span: Double) -> Double {
        let wanted = max(span, 1) / autoBuckets
        return niceSteps.first { $0 >= wanted } ?? (wanted / 604_800).rounded(.up) * 604_800
    }

    /// Buckets the range is cut into (aligned to multiples of the step since 1970).
    public var bucketCount: Int {
        guard step > 0, to > from else { return 0 }
        let first = (from.timeIntervalSince1970 / step).rounded(.down)
        let last = ((to.timeIntervalSince1970 / step).rounded(.up))
        return Int(min(max(last - first, 1), Double(Int.max / 2)))
    }

    // MARK: Parsing

    /// `pipeline:etl,owner:data` as a tag filter (or `pipeline=etl`; the first `:` or `=` splits).
    public static func parseTags(_ text: String, field: String = "tags") throws(MetricQueryError) -> [String: String] {
        var tags: [String: String] = [:]
        for part in text.split(separator: ",", omittingEmptySubsequences: true) {
            guard let split = part.firstIndex(where: { $0 == ":" || $0 == "=" }) else {
                throw MetricQueryError(field: field, "'\(part)' is not a tag filter; write key:value, like pipeline:etl")
            }
            let key = String(part[..<split]).trimmingCharacters(in: .whitespaces)
            let value = String(part[part.index(after: split)...]).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else {
                throw MetricQueryError(field: field, "'\(part)' has no tag key; write key:value, like pipeline:etl")
            }
            if let previous = tags[key], previous != value {
                throw MetricQueryError(field: field, "tag '\(key)' is given twice ('\(previous)' and '\(value)')")
            }
            tags[key] = value
        }
        return tags
    }

    /// A step such as `60s`, `5m`, `1h` or a number of seconds; at least one second.
    public static func parseStep(_ text: String) throws(MetricQueryError) -> Double {
        let seconds: Double
        do {
            seconds = try DurationText.seconds(text)
        } catch {
            throw MetricQueryError(field: "step", error.description)
        }
        guard seconds >= 1, seconds <= 366 * 86400 else {
            throw MetricQueryError(field: "step", "step '\(text)' must be between 1s and 366d")
        }
        return seconds
    }

    public static func parseAggregation(_ text: String) throws(MetricQueryError) -> Aggregation {
        guard let aggregation = Aggregation(rawValue: text.lowercased()) else {
            throw MetricQueryError(
                field: "agg",
                "'\(text)' is not an aggregation; use one of \(Aggregation.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return aggregation
    }

    /// `pipeline,owner` as group-by keys.
    public static func parseGroupBy(_ text: String) throws(MetricQueryError) -> [String] {
        let keys = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !keys.isEmpty else { throw MetricQueryError(field: "group_by", "group_by needs at least one tag key") }
        guard keys.count <= MetricLimits.maxTags else {
            throw MetricQueryError(field: "group_by", "group_by has \(keys.count) keys; at most \(MetricLimits.maxTags)")
        }
        var seen: [String] = []
        for key in keys where !seen.contains(key) { seen.append(key) }
        return seen
    }

    /// Checks every bound: name, tags, range, step and the number of buckets.
    public func validate() throws(MetricQueryError) {
        do {
            try MetricLimits.validateName(name)
        } catch {
            throw MetricQueryError(field: "name", error.description)
        }
        do {
            try MetricLimits.validateTags(tags)
        } catch {
            throw MetricQueryError(field: "tags", error.description)
        }
        for key in groupBy ?? [] {
            do {
                try MetricLimits.validateTagKey(key)
            } catch {
                throw MetricQueryError(field: "group_by", error.description)
            }
        }
        guard from < to else {
            throw MetricQueryError(
                field: "to", "to (\(APICoding.isoString(to))) must be after from (\(APICoding.isoString(from)))")
        }
        guard step.isFinite, step >= 1 else { throw MetricQueryError(field: "step", "the step must be at least 1s") }
        let buckets = bucketCount
        guard buckets <= Self.maxBuckets else {
            let smallest = Self.niceSteps.first { to.timeIntervalSince(from) / $0 < Double(Self.maxBuckets) - 1 }
            throw MetricQueryError(
                field: "step",
                "steps of \(DurationText.format(step)) cut the range into \(buckets) buckets; at most \(Self.maxBuckets) "
                    + "are answered: use a larger step"
                    + (smallest.map { " (\(DurationText.format($0)) or more)" } ?? "") + " or a shorter range")
        }
    }

    // MARK: Running

    /// Validates the query, aggregates in the store and shapes the answer.
    public func run(on store: any MetricStore) async throws -> APIMetricQueryResult {
        try validate()
        // Grouping merges store series after the fact, so more rows than answered buckets may be
        // needed; the limit still bounds what one query reads.
        let rowLimit = groupBy == nil ? Self.maxBuckets : Self.maxBuckets * 10
        let buckets = try await store.metricBuckets(
            name: name, tags: tags, from: from, to: to, step: step, limit: rowLimit + 1)
        guard buckets.count <= rowLimit else { throw tooManyBuckets(found: "more than \(rowLimit)") }
        let series = merge(buckets)
        let total = series.reduce(0) { $0 + $1.points.count }
        guard total <= Self.maxBuckets else { throw tooManyBuckets(found: "\(total)") }
        return APIMetricQueryResult(
            name: name, tags: tags, group_by: groupBy, agg: aggregation.rawValue, step_seconds: step, from: from, to: to,
            series: series)
    }

    func tooManyBuckets(found: String) -> MetricQueryError {
        MetricQueryError(
            field: "step",
            "the query matches \(found) buckets over all series; at most \(Self.maxBuckets) are answered: narrow it with "
                + "tags or group_by, use a larger step, or a shorter range")
    }

    /// Folds store buckets into answer series: one per tag set, or per `groupBy` values.
    func merge(_ buckets: [MetricBucket]) -> [APIMetricQueryResult.Series] {
        struct Accumulator {
            var count = 0
            var sum = 0.0
            var min = Double.infinity
            var max = -Double.infinity
            var last = 0.0
            var lastTimestamp = Date.distantPast
        }
        var grouped: [[String: String]: [Date: Accumulator]] = [:]
        for bucket in buckets {
            let key = groupBy.map { keys in bucket.tags.filter { keys.contains($0.key) } } ?? bucket.tags
            var accumulator = grouped[key, default: [:]][bucket.start, default: Accumulator()]
            accumulator.count += bucket.count
            accumulator.sum += bucket.sum
            accumulator.min = Swift.min(accumulator.min, bucket.min)
            accumulator.max = Swift.max(accumulator.max, bucket.max)
            if bucket.lastTimestamp >= accumulator.lastTimestamp {
                accumulator.last = bucket.last
                accumulator.lastTimestamp = bucket.lastTimestamp
            }
            grouped[key, default: [:]][bucket.start] = accumulator
        }
        let ordered = grouped.map { tags, byStart in
            let points = byStart.sorted { $0.key < $1.key }.map { start, accumulator -> APIMetricQueryResult.Point in
                let value: Double
                switch aggregation {
                case .avg: value = accumulator.sum / Double(accumulator.count)
                case .sum: value = accumulator.sum
                case .min: value = accumulator.min
                case .max: value = accumulator.max
                case .count: value = Double(accumulator.count)
                case .last: value = accumulator.last
                }
                return APIMetricQueryResult.Point(t: start, value: value, count: accumulator.count)
            }
            return (Self.sortKey(tags), APIMetricQueryResult.Series(tags: tags, points: points))
        }
        return ordered.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Orders series by their tags, key by key, so answers are stable.
    static func sortKey(_ tags: [String: String]) -> String {
        tags.sorted { $0.key < $1.key }.map { "\($0.key)\u{1}\($0.value)" }.joined(separator: "\u{2}")
    }
}
