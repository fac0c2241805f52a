import Foundation
import Testing

/// `baton metrics emit / query / list` through the real binary on a local database.
@Suite struct MetricsCLITests {
    @Test func emitThenQueryAndListTheLocalDatabase() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        func baton(_ args: String...) async throws -> CommandResult {
            let result = try await sandbox.baton(args + ["--db", sandbox.db])
            #expect(!result.looksLikeCrash, "\(result)")
            return result
        }

        let emitted = try await baton(
            "metrics", "emit", "pipeline.duration", "40", "--tag", "pipeline=etl", "--tag", "owner=data",
            "--timestamp", "2026-01-01T00:00:10Z")
        #expect(emitted.exitCode == 0, "\(emitted)")
        #expect(emitted.stdout.contains("recorded pipeline.duration = 40 {owner=data pipeline=etl}"), "\(emitted)")
        for (value, time, pipeline) in [("20", "2026-01-01T00:00:50Z", "etl"), ("-3.5", "2026-01-01T00:01:10Z", "etl"), ("7", "2026-01-01T00:00:20Z", "ml")] {
            let result = try await baton(
                "metrics", "emit", "pipeline.duration", value, "--tag", "pipeline=\(pipeline)", "--tag", "owner=data",
                "--timestamp", time)
            #expect(result.exitCode == 0, "\(result)")
        }

        let query = try await baton(
            "metrics", "query", "pipeline.duration", "--tag", "pipeline=etl", "--from", "2026-01-01T00:00:00Z",
            "--to", "2026-01-01T00:05:00Z", "--step", "1m", "--json")
        #expect(query.exitCode == 0, "\(query)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(query.stdout.utf8)) as? [String: Any])
        #expect(document["step_seconds"] as? Double == 60)
        #expect(document["agg"] as? String == "avg")
        let series = try #require(document["series"] as? [[String: Any]])
        #expect(series.count == 1)
        #expect(series.first?["tags"] as? [String: String] == ["pipeline": "etl", "owner": "data"])
        let points = try #require(series.first?["points"] as? [[String: Any]])
        #expect(points.map { $0["t"] as? String } == ["2026-01-01T00:00:00.000Z", "2026-01-01T00:01:00.000Z"])
        #expect(points.map { $0["value"] as? Double } == [30, -3.5])
        #expect(points.map { $0["count"] as? Int } == [2, 1])

        let grouped = try await baton(
            "metrics", "query", "pipeline.duration", "--group-by", "owner", "--agg", "count", "--from", "2026-01-01",
            "--to", "2026-01-01T00:05:00Z", "--step", "5m")
        #expect(grouped.exitCode == 0, "\(grouped)")
        #expect(grouped.stdout.contains("pipeline.duration · count per 5m"), "\(grouped)")
        #expect(grouped.stdout.contains("owner=data"), "\(grouped)")
        #expect(grouped.stdout.contains("2026-01-01 00:00:00  4"), "four points in the one bucket:\n\(grouped)")

        let text = try await baton(
            "metrics", "query", "pipeline.duration", "--tag", "pipeline=etl", "--from", "2026-01-01",
            "--to", "2026-01-01T00:05:00Z", "--step", "1m", "--agg", "max")
        #expect(text.exitCode == 0, "\(text)")
        #expect(text.stdout.contains("owner=data pipeline=etl  █▁  min -3.5  max 40  last -3.5"), "\(text)")

        let list = try await baton("metrics", "list")
        #expect(list.exitCode == 0, "\(list)")
        #expect(list.stdout.contains("pipeline.duration  owner=data pipeline=etl  -3.5"), "\(list)")
        #expect(list.stdout.contains("owner=data pipeline=ml"), "\(list)")
        let listJSON = try await baton("metrics", "list", "pipeline.duration", "--json")
        let items = try #require(try JSONSerialization.jsonObject(with: Data(listJSON.stdout.utf8)) as? [[String: Any]])
        #expect(items.count == 2)
        #expect(items.compactMap { $0["points"] as? Int }.sorted() == [1, 3])
    }

    @Test func badInputIsExplainedWithoutWritingAnything() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let cases: [([String], String)] = [
            (["metrics", "emit", "bad name", "1"], "metric name 'bad name' is not valid"),
            (["metrics", "emit", "x", "many"], "value 'many' is not a number"),
            (["metrics", "emit", "x", "nan"], "VALUE: metric value nan is not valid"),
            (["metrics", "emit", "x"], "missing the VALUE"),
            (["metrics", "emit", "x", "1", "--tag", "owner"], "--tag 'owner' must be written key=value"),
            (["metrics", "emit", "x", "1", "--timestamp", "soon"], "--timestamp 'soon' is not a date"),
            (["metrics", "query", "x", "--step", "0"], "--step: step '0' must be between 1s and 366d"),
            (["metrics", "query", "x", "--agg", "median"], "--agg: 'median' is not an aggregation"),
            (["metrics", "query", "x", "--from", "2020-01-01", "--step", "1s"], "at most 10000"),
            (["metrics", "query", "x", "--from", "whenever"], "--from 'whenever' is neither a date"),
        ]
        for (args, message) in cases {
            let result = try await sandbox.baton(args + ["--db", sandbox.db])
            #expect(result.exitCode != 0, "\(result)")
            #expect(!result.looksLikeCrash, "\(result)")
            #expect(result.stderr.contains(message), "\(result)")
        }
        let list = try await sandbox.baton(["metrics", "list", "--db", sandbox.db])
        #expect(list.stdout.contains("no metrics reported yet"), "\(list)")
    }
}
