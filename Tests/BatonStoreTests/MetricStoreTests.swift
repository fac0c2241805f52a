import Foundation
import Testing

@testable import BatonStore

/// The metric store: points, tag filters, buckets, series and retention, on every backend.
@Suite struct MetricStoreTests {
    /// 2026-01-01T00:00:00Z, a whole number of minutes and hours since 1970.
    static let base = Date(timeIntervalSince1970: 1_767_225_600)

    static func at(_ seconds: Double) -> Date { base.addingTimeInterval(seconds) }

    static func point(_ value: Double, at seconds: Double, _ tags: [String: String] = [:], name: String = "pipeline.duration")
        -> MetricPoint
    {
        MetricPoint(name: name, tags: tags, value: value, timestamp: at(seconds))
    }

    @Test(arguments: Backend.allCases) func pointsComeBackOldestFirstWithinTheHalfOpenRange(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.recordMetrics([
                Self.point(3, at: 120), Self.point(1, at: 0), Self.point(2, at: 60), Self.point(4, at: 180),
                Self.point(9, at: 60, name: "other"),
            ])
            let all = try await store.metricPoints(name: "pipeline.duration", tags: [:], from: Self.at(0), to: Self.at(180), limit: 100)
            #expect(all.map(\.value) == [1, 2, 3], "to is exclusive and other names are left out")
            #expect(all.map(\.timestamp) == [Self.at(0), Self.at(60), Self.at(120)])
            let limited = try await store.metricPoints(name: "pipeline.duration", tags: [:], from: Self.at(0), to: Self.at(999), limit: 2)
            #expect(limited.map(\.value) == [1, 2])
            #expect(try await store.metricPoints(name: "nothing", tags: [:], from: Self.at(0), to: Self.at(999), limit: 10).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func aTagFilterMatchesPointsWhoseTagsIncludeAllGivenPairs(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.recordMetrics([
                Self.point(1, at: 0, ["pipeline": "etl", "owner": "data", "state": "success"]),
                Self.point(2, at: 1, ["pipeline": "train", "owner": "data"]),
                Self.point(3, at: 2, ["pipeline": "etl", "owner": "ml"]),
                Self.point(4, at: 3, [:]),
                // Keys and values that would break a JSON path or SQL if they were spliced in.
                Self.point(5, at: 4, ["we\"ird.key'": "va'l\"ue", "$.x": "1"]),
            ])
            func values(_ tags: [String: String]) async throws -> [Double] {
                try await store.metricPoints(name: "pipeline.duration", tags: tags, from: Self.at(0), to: Self.at(10), limit: 100)
                    .map(\.value)
            }
            #expect(try await values([:]) == [1, 2, 3, 4, 5])
            #expect(try await values(["owner": "data"]) == [1, 2])
            #expect(try await values(["pipeline": "etl"]) == [1, 3])
            #expect(try await values(["pipeline": "etl", "owner": "data"]) == [1])
            #expect(try await values(["pipeline": "etl", "owner": "nobody"]) == [])
            #expect(try await values(["missing": "x"]) == [])
            #expect(try await values(["we\"ird.key'": "va'l\"ue"]) == [5])
            #expect(try await values(["$.x": "1"]) == [5])
            let tagged = try await store.metricPoints(
                name: "pipeline.duration", tags: ["owner": "ml"], from: Self.at(0), to: Self.at(10), limit: 10)
            #expect(tagged.first?.tags == ["pipeline": "etl", "owner": "ml"])
        }
    }

    @Test(arguments: Backend.allCases) func seriesKeepTheLatestValueAndCountTheirPoints(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let etl = ["pipeline": "etl", "owner": "data"]
            try await store.recordMetrics([Self.point(10, at: 100, etl), Self.point(20, at: 200, etl)])
            // Tags in another order are the same series; an older point arriving late is counted
            // but does not become the latest value.
            try await store.recordMetrics([Self.point(5, at: 50, ["owner": "data", "pipeline": "etl"])])
            try await store.recordMetrics([Self.point(7, at: 10, ["pipeline": "ml"]), Self.point(3, at: 300, name: "rows")])
            let series = try await store.metricSeries(name: nil)
            #expect(series.map(\.name) == ["pipeline.duration", "pipeline.duration", "rows"])
            let first = try #require(series.first { $0.tags == etl })
            #expect(first.lastValue == 20)
            #expect(first.lastTimestamp == Self.at(200))
            #expect(first.points == 3)
            #expect(try await store.metricSeries(name: "rows").map(\.lastValue) == [3])
            #expect(try await store.metricSeries(name: "nope").isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func bucketsAggregateEachSeriesOnStepAlignedWindows(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let a = ["p": "a"]
            let b = ["p": "b"]
            try await store.recordMetrics([
                Self.point(1, at: 0, a), Self.point(3, at: 30, a), Self.point(5, at: 60, a), Self.point(7, at: 150, a),
                Self.point(100, at: 10, b), Self.point(0, at: 400, a),
            ])
            // From 00:00:20: buckets still start on whole minutes, so the first one (00:00) holds only
            // the point at 00:00:30.
            let buckets = try await store.metricBuckets(
                name: "pipeline.duration", tags: [:], from: Self.at(20), to: Self.at(300), step: 60, limit: 100)
            #expect(buckets.map(\.tags) == [a, a, a])
            #expect(buckets.map(\.start) == [Self.at(0), Self.at(60), Self.at(120)])
            #expect(buckets.map(\.count) == [1, 1, 1])
            let whole = try await store.metricBuckets(
                name: "pipeline.duration", tags: [:], from: Self.at(0), to: Self.at(300), step: 60, limit: 100)
            #expect(whole.count == 4)
            let first = try #require(whole.first)
            #expect(first.tags == a && first.start == Self.at(0))
            #expect(first.count == 2 && first.sum == 4 && first.min == 1 && first.max == 3)
            #expect(first.last == 3 && first.lastTimestamp == Self.at(30))
            #expect(whole.last?.tags == b && whole.last?.sum == 100)
            let filtered = try await store.metricBuckets(
                name: "pipeline.duration", tags: b, from: Self.at(0), to: Self.at(300), step: 60, limit: 100)
            #expect(filtered.map(\.sum) == [100])
            let limited = try await store.metricBuckets(
                name: "pipeline.duration", tags: [:], from: Self.at(0), to: Self.at(300), step: 60, limit: 2)
            #expect(limited.count == 2)
        }
    }

    @Test(arguments: Backend.allCases) func momentsSumTheMatchingPointsInTheRange(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let a = ["p": "a", "v": "1"]
            let b = ["p": "b"]
            try await store.recordMetrics([
                Self.point(1, at: 0, a), Self.point(0, at: 10, a), Self.point(1, at: 20, a), Self.point(1, at: 300, a),
                Self.point(2.5, at: 10, b), Self.point(-1, at: 20, b),
            ])
            let binary = try await store.metricMoments(name: "pipeline.duration", tags: ["p": "a"], from: Self.at(0), to: Self.at(300))
            #expect(binary == MetricMoments(count: 3, sum: 2, sumOfSquares: 2, nonBinary: 0), "the point at the range's end is out")
            let other = try await store.metricMoments(name: "pipeline.duration", tags: b, from: Self.at(0), to: Self.at(300))
            #expect(other == MetricMoments(count: 2, sum: 1.5, sumOfSquares: 7.25, nonBinary: 2))
            let none = try await store.metricMoments(name: "nothing", tags: [:], from: Self.at(0), to: Self.at(300))
            #expect(none == MetricMoments())
        }
    }

    @Test(arguments: Backend.allCases) func theLastValueOfABucketIsTheLatestWrittenWhenTimesTie(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.recordMetrics([Self.point(1, at: 5), Self.point(2, at: 5)])
            try await store.recordMetrics([Self.point(3, at: 5)])
            let bucket = try #require(
                try await store.metricBuckets(
                    name: "pipeline.duration", tags: [:], from: Self.at(0), to: Self.at(60), step: 60, limit: 10
                ).first)
            #expect(bucket.last == 3)
            #expect(try await store.metricSeries(name: nil).first?.lastValue == 3)
        }
    }

    @Test(arguments: Backend.allCases) func purgeDeletesOldPointsAndKeepsSeriesConsistent(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            try await store.recordMetrics([
                Self.point(1, at: 0, ["p": "old"]), Self.point(2, at: 10, ["p": "old"]),
                Self.point(3, at: 0, ["p": "mixed"]), Self.point(4, at: 1000, ["p": "mixed"]),
                Self.point(5, at: 2000, ["p": "new"]),
            ])
            #expect(try await store.purgeMetrics(before: Self.at(500)) == 3)
            let series = try await store.metricSeries(name: nil)
            #expect(series.map { $0.tags["p"] ?? "" }.sorted() == ["mixed", "new"], "a series without points is gone")
            #expect(series.first { $0.tags["p"] == "mixed" }?.points == 1)
            #expect(series.first { $0.tags["p"] == "mixed" }?.lastValue == 4)
            let left = try await store.metricPoints(name: "pipeline.duration", tags: [:], from: Self.at(0), to: Self.at(9999), limit: 10)
            #expect(left.map(\.value) == [4, 5])
            #expect(try await store.purgeMetrics(before: Self.at(500)) == 0)
        }
    }

    @Test(arguments: Backend.allCases) func badPointsAreRejectedWithTheFieldAndNothingIsWritten(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let cases: [(MetricPoint, String)] = [
                (MetricPoint(name: "", value: 1, timestamp: Self.base), "name"),
                (MetricPoint(name: "1abc", value: 1, timestamp: Self.base), "name"),
                (MetricPoint(name: "has space", value: 1, timestamp: Self.base), "name"),
                (MetricPoint(name: "ünïcode", value: 1, timestamp: Self.base), "name"),
                (MetricPoint(name: String(repeating: "a", count: 201), value: 1, timestamp: Self.base), "name"),
                (MetricPoint(name: "x", value: .nan, timestamp: Self.base), "value"),
                (MetricPoint(name: "x", value: .infinity, timestamp: Self.base), "value"),
                (MetricPoint(name: "x", value: 1e101, timestamp: Self.base), "value"),
                (
                    MetricPoint(
                        name: "x", tags: Dictionary(uniqueKeysWithValues: (0..<21).map { ("k\($0)", "v") }), value: 1,
                        timestamp: Self.base), "tags"
                ),
                (MetricPoint(name: "x", tags: ["": "v"], value: 1, timestamp: Self.base), "tags"),
                (MetricPoint(name: "x", tags: [String(repeating: "k", count: 201): "v"], value: 1, timestamp: Self.base), "tags." + String(repeating: "k", count: 77) + "..."),
                (MetricPoint(name: "x", tags: ["k": String(repeating: "v", count: 201)], value: 1, timestamp: Self.base), "tags.k"),
                (MetricPoint(name: "x", tags: ["k": "line\nbreak"], value: 1, timestamp: Self.base), "tags.k"),
            ]
            for (point, field) in cases {
                do {
                    try await store.recordMetrics([Self.point(1, at: 0), point])
                    Issue.record("accepted \(point)")
                } catch let error as MetricValidationError {
                    #expect(error.field == field, "\(point.name.prefix(20)): \(error)")
                    #expect(!error.description.isEmpty)
                }
            }
            #expect(try await store.metricSeries(name: nil).isEmpty, "a rejected batch writes nothing")
            // The bounds themselves are fine, and so is an empty tag value (runs of ownerless pipelines).
            let edge = MetricPoint(
                name: "a" + String(repeating: "b", count: 199),
                tags: Dictionary(uniqueKeysWithValues: (0..<20).map { ("k\($0)", $0 == 0 ? "" : String(repeating: "v", count: 200)) }),
                value: -1e100, timestamp: Self.base)
            try await store.recordMetrics([edge, MetricPoint(name: "_a.b:c-d", value: 0, timestamp: Self.base)])
            #expect(try await store.metricSeries(name: nil).count == 2)
        }
    }

    @Test func errorMessagesNameTheValue() {
        #expect(MetricValidationError.invalidName("bad name").description.contains("'bad name'"))
        #expect(MetricValidationError.invalidTagValue(key: "owner", value: "x\ny").description.contains("'owner'"))
        #expect(MetricValidationError.tooManyTags(count: 21).description.contains("21"))
        #expect(MetricValidationError.invalidValue(.nan).field == "value")
    }

    @Test(arguments: Backend.allCases) func metricsSurviveReopeningTheDatabase(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            try await store.recordMetrics([Self.point(42, at: 0, ["p": "x"])])
            let reopened = try await database.open()
            #expect(try await reopened.metricSeries(name: "pipeline.duration").map(\.lastValue) == [42])
        }
    }
}
