import BatonAPI
import BatonCore
import BatonServer
import BatonStore
import Foundation
import Logging
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `/api/v1/metrics`, the `baton_user_metric` export on `/metrics`, and `/dashboard`, over real
/// HTTP against an in-process server (see `Support/APITestServer.swift`).
@Suite(.timeLimit(.minutes(5)))
struct MetricsAPITests {
    /// 2026-01-01T00:00:00Z.
    static let base = Date(timeIntervalSince1970: 1_767_225_600)
    static let baseText = "2026-01-01T00:00:00Z"

    static func iso(_ seconds: Double) -> String { APICoding.isoString(base.addingTimeInterval(seconds)) }

    static let quick = [
        "quick": """
        name: quick
        owner: data_eng
        tasks:
          only:
            run: "true"
        """
    ]

    @Test func recordsOnePointAndABatch() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let single = try await server.post(
                "/api/v1/metrics",
                json: #"{"name": "pipeline.duration", "value": 42.5, "tags": {"pipeline": "etl", "owner": "data"}, "timestamp": "\#(Self.baseText)"}"#)
            #expect(single.status == 201, "\(single)")
            #expect(try single.decode(APIMetricsRecorded.self).recorded == 1)

            // Without a timestamp the point is stamped on arrival.
            let before = Date()
            let untimed = try await server.post("/api/v1/metrics", json: #"{"name": "rows.loaded", "value": 7}"#)
            #expect(untimed.status == 201, "\(untimed)")
            let rows = try #require(try await server.store.metricSeries(name: "rows.loaded").first)
            #expect(rows.lastTimestamp >= before.addingTimeInterval(-1) && rows.lastTimestamp <= Date().addingTimeInterval(1))
            #expect(rows.tags.isEmpty)

            let points = (0..<3).map { index in
                #"{"name": "model.auc", "value": \#(Double(8 + index) / 10), "tags": {"model": "churn"}, "timestamp": "\#(Self.iso(Double(index) * 60))"}"#
            }
            let batch = try await server.post("/api/v1/metrics", json: #"{"points": [\#(points.joined(separator: ","))]}"#)
            #expect(batch.status == 201, "\(batch)")
            #expect(try batch.decode(APIMetricsRecorded.self).recorded == 3)

            let stored = try await server.store.metricPoints(
                name: "model.auc", tags: [:], from: Self.base, to: Self.base.addingTimeInterval(600), limit: 10)
            #expect(stored.map(\.value) == [0.8, 0.9, 1.0])
            #expect(stored.allSatisfy { $0.tags == ["model": "churn"] })
            let duration = try #require(try await server.store.metricSeries(name: "pipeline.duration").first)
            #expect(duration.tags == ["pipeline": "etl", "owner": "data"])
            #expect(duration.lastValue == 42.5 && duration.lastTimestamp == Self.base)
        }
    }

    @Test func badPointsAreRefusedWithTheField() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let tooManyTags = (0..<21).map { #""k\#($0)": "v""# }.joined(separator: ",")
            let onePoint = #"{"name": "x", "value": 1}"#
            let cases: [(body: String, field: String?, message: String?)] = [
                (#"{"value": 1}"#, "name", "missing field 'name'"),
                (#"{"name": "x"}"#, "value", "missing field 'value'"),
                (#"{"name": "x", "value": "abc"}"#, "value", "expected Double"),
                (#"{"name": "x", "value": "NaN"}"#, "value", nil),
                (#"{"name": "x", "value": true}"#, "value", nil),
                (#"{"name": "x", "value": NaN}"#, nil, "not valid JSON"),
                (#"{"name": "x", "value": 1e101}"#, "value", "finite number"),
                (#"{"name": "has space", "value": 1}"#, "name", "'has space'"),
                (#"{"name": "9lives", "value": 1}"#, "name", nil),
                (#"{"name": "\#(String(repeating: "a", count: 201))", "value": 1}"#, "name", nil),
                (#"{"name": "x", "value": 1, "tags": {\#(tooManyTags)}}"#, "tags", "21 tags"),
                (#"{"name": "x", "value": 1, "tags": {"owner": "\#(String(repeating: "v", count: 201))"}}"#, "tags.owner", nil),
                (#"{"name": "x", "value": 1, "tags": {"owner": 5}}"#, "tags.owner", nil),
                (#"{"name": "x", "value": 1, "timestamp": "yesterday"}"#, "timestamp", "yesterday"),
                (#"{"name": "x", "value": 1, "tag": {}}"#, "tag", "did you mean 'tags'"),
                (#"{"points": []}"#, "points", "empty"),
                (#"{"points": {}}"#, "points", nil),
                (#"{"points": [\#(onePoint)], "name": "x"}"#, "name", "not both"),
                (#"{"points": [\#(onePoint), {"name": "x", "value": "high"}]}"#, "points.1.value", nil),
                (#"{"points": [\#(onePoint), {"name": "bad name", "value": 1}]}"#, "points.1.name", "'bad name'"),
                (#"{"points": [{"value": 1}]}"#, "points.0.name", nil),
                (#"{"points": [{"name": "x", "value": 1, "tagz": {}}]}"#, "points.0.tagz", "did you mean 'tags'"),
                (#"{"points": [\#(Array(repeating: onePoint, count: 1001).joined(separator: ","))]}"#, "points", "1001 points"),
                ("[]", nil, nil),
                ("", nil, "empty"),
            ]
            for (body, field, message) in cases {
                let result = try await server.post("/api/v1/metrics", json: body)
                let detail = try result.expectError(400, code: "invalid_request", messageContains: message)
                #expect(detail.field == field, "\(body.prefix(120)) -> \(detail)")
            }
            #expect(try await server.store.metricSeries(name: nil).isEmpty, "a refused request stores nothing")
            // Exactly 1000 points is fine.
            let full = try await server.post(
                "/api/v1/metrics", json: #"{"points": [\#(Array(repeating: onePoint, count: 1000).joined(separator: ","))]}"#)
            #expect(full.status == 201, "\(full)")
            #expect(try full.decode(APIMetricsRecorded.self).recorded == 1000)
        }
    }

    @Test func queryBucketsKnownPointsPerSeries() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let a = #"{"pipeline": "a", "owner": "data"}"#
            let b = #"{"pipeline": "b", "owner": "data"}"#
            let c = #"{"pipeline": "c", "owner": "ml"}"#
            let points = [
                (1.0, 0.0, a), (3, 30, a), (5, 60, a), (7, 150, a), (100, 10, b), (50, 70, c), (999, 300, a),
            ].map { value, offset, tags in
                #"{"name": "pipeline.duration", "value": \#(value), "tags": \#(tags), "timestamp": "\#(Self.iso(offset))"}"#
            }
            let recorded = try await server.post("/api/v1/metrics", json: #"{"points": [\#(points.joined(separator: ","))]}"#)
            #expect(recorded.status == 201, "\(recorded)")

            func query(_ parameters: String) async throws -> APIMetricQueryResult {
                try await server.getOK(
                    "/api/v1/metrics/query?name=pipeline.duration&from=\(Self.baseText)&to=\(Self.iso(300))&\(parameters)",
                    as: APIMetricQueryResult.self)
            }
            func summary(_ result: APIMetricQueryResult) -> [String: [[Double]]] {
                var out: [String: [[Double]]] = [:]
                for series in result.series {
                    out[series.tags["pipeline"] ?? series.tags["owner"] ?? "-"] = series.points.map {
                        [$0.t.timeIntervalSince(Self.base), $0.value, Double($0.count)]
                    }
                }
                return out
            }

            let average = try await query("step=60s")
            #expect(average.name == "pipeline.duration" && average.agg == "avg" && average.step_seconds == 60)
            #expect(average.tags.isEmpty && average.group_by == nil)
            #expect(average.from == Self.base && average.to == Self.base.addingTimeInterval(300))
            #expect(average.series.map(\.tags) == [
                ["pipeline": "a", "owner": "data"], ["pipeline": "b", "owner": "data"], ["pipeline": "c", "owner": "ml"],
            ])
            // `to` is exclusive: the point at +300s is not in the answer.
            #expect(summary(average) == ["a": [[0, 2, 2], [60, 5, 1], [120, 7, 1]], "b": [[0, 100, 1]], "c": [[60, 50, 1]]])

            let expected: [(String, [Double])] = [
                ("sum", [4, 5, 7]), ("min", [1, 5, 7]), ("max", [3, 5, 7]), ("count", [2, 1, 1]), ("last", [3, 5, 7]),
            ]
            for (agg, values) in expected {
                let result = try await query("step=1m&agg=\(agg)&tags=pipeline:a")
                #expect(result.agg == agg)
                #expect(result.tags == ["pipeline": "a"])
                #expect(result.series.count == 1)
                #expect(result.series.first?.points.map(\.value) == values, "agg \(agg)")
            }

            let byOwner = try await query("step=120s&group_by=owner")
            #expect(byOwner.group_by == ["owner"])
            // data: a (1, 3, 5 | 7) and b (100) merged; buckets start on whole 2 minutes.
            #expect(summary(byOwner) == ["data": [[0, 109.0 / 4, 4], [120, 7, 1]], "ml": [[0, 50, 1]]])

            let filtered = try await query("step=5m&tags=owner:data,pipeline:b")
            #expect(summary(filtered) == ["b": [[0, 100, 1]]])
            let none = try await query("step=5m&tags=owner:nobody")
            #expect(none.series.isEmpty)

            // Without a step, a round one giving about 120 buckets: 300 s → 5 s.
            let automatic = try await query("agg=count")
            #expect(automatic.step_seconds == 5)
        }
    }

    @Test func badQueriesAreRefusedWithTheParameter() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let range = "from=\(Self.baseText)&to=\(Self.iso(3600))"
            let cases: [(String, String, String?)] = [
                ("", "name", "metric name"),
                ("name=&\(range)", "name", nil),
                ("name=bad%20name&\(range)", "name", "'bad name'"),
                ("name=x&\(range)&step=0", "step", "between 1s and 366d"),
                ("name=x&\(range)&step=abc", "step", "'abc' is not a duration"),
                ("name=x&\(range)&step=-5s", "step", nil),
                ("name=x&\(range)&agg=median", "agg", "avg, sum, min, max, count, last"),
                ("name=x&from=yesterday", "from", "ISO 8601"),
                ("name=x&to=2026-13-01", "to", nil),
                ("name=x&from=\(Self.iso(60))&to=\(Self.baseText)", "to", "must be after"),
                ("name=x&\(range)&tags=pipeline", "tags", "key:value"),
                ("name=x&\(range)&tags=:etl", "tags", nil),
                ("name=x&\(range)&tags=a:1,a:2", "tags", "twice"),
                ("name=x&\(range)&group_by=,", "group_by", nil),
                ("name=x&from=2025-01-01&to=2026-01-01&step=1s", "step", "at most 10000"),
            ]
            for (parameters, field, message) in cases {
                let result = try await server.get("/api/v1/metrics/query?\(parameters)")
                try result.expectError(400, code: "invalid_request", field: .some(field), messageContains: message)
            }
        }
    }

    @Test func tooManyBucketsOverAllSeriesIsRefused() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            // 120 series × 100 one-minute buckets = 12,000 buckets, over the 10,000 limit; the
            // range alone (100 buckets) is fine.
            var points: [MetricPoint] = []
            for series in 0..<120 {
                for minute in 0..<100 {
                    points.append(
                        MetricPoint(
                            name: "busy", tags: ["series": String(series)], value: Double(minute),
                            timestamp: Self.base.addingTimeInterval(Double(minute) * 60)))
                }
            }
            try await server.store.recordMetrics(points)
            let path = "/api/v1/metrics/query?name=busy&from=\(Self.baseText)&to=\(Self.iso(6000))&step=60s"
            try await server.get(path).expectError(400, field: "step", messageContains: "narrow it with tags or group_by")
            let grouped = try await server.getOK(path + "&group_by=nothing", as: APIMetricQueryResult.self)
            #expect(grouped.series.count == 1)
            #expect(grouped.series.first?.points.count == 100)
            #expect(grouped.series.first?.points.first?.count == 120)
        }
    }

    @Test func listsSeriesWithTheirLatestValues() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let body = #"""
                {"points": [
                  {"name": "pipeline.duration", "value": 1, "tags": {"pipeline": "etl"}, "timestamp": "2026-01-01T00:00:00Z"},
                  {"name": "pipeline.duration", "value": 2, "tags": {"pipeline": "etl"}, "timestamp": "2026-01-01T00:01:00Z"},
                  {"name": "pipeline.duration", "value": 9, "tags": {"pipeline": "ml"}, "timestamp": "2026-01-01T00:00:30Z"},
                  {"name": "rows", "value": 5, "timestamp": "2026-01-01T00:00:00Z"}
                ]}
                """#
            #expect(try await server.post("/api/v1/metrics", json: body).status == 201)
            let all = try await server.getOK("/api/v1/metrics", as: APIList<APIMetricSeries>.self)
            #expect(all.items.map(\.name) == ["pipeline.duration", "pipeline.duration", "rows"])
            let etl = try #require(all.items.first { $0.tags == ["pipeline": "etl"] })
            #expect(etl.last_value == 2 && etl.points == 2)
            #expect(etl.last_timestamp == Self.base.addingTimeInterval(60))
            let rows = try await server.getOK("/api/v1/metrics?name=rows", as: APIList<APIMetricSeries>.self)
            #expect(rows.items.map(\.last_value) == [5])
            #expect(rows.items.first?.tags == [:])
            let limited = try await server.getOK("/api/v1/metrics?limit=1", as: APIList<APIMetricSeries>.self)
            #expect(limited.items.count == 1)
            try await server.get("/api/v1/metrics?name=bad%20name").expectError(400, field: "name")
            try await server.get("/api/v1/metrics?limit=0").expectError(400, field: "limit")
        }
    }

    @Test func prometheusExportsTheLatestValuePerSeries() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let body = #"""
                {"points": [
                  {"name": "test.export", "value": 1, "tags": {"pipeline": "etl", "owner": "data"}, "timestamp": "2026-01-01T00:00:00Z"},
                  {"name": "test.export", "value": 42.5, "tags": {"pipeline": "etl", "owner": "data"}, "timestamp": "2026-01-01T00:01:00Z"},
                  {"name": "test.export", "value": 3, "tags": {"team.name": "a\"b\\c", "name": "n", "9x": "y", "owner": ""}}
                ]}
                """#
            #expect(try await server.post("/api/v1/metrics", json: body).status == 201)
            let metrics = try await server.get("/metrics")
            #expect(metrics.status == 200)
            let text = metrics.text
            #expect(text.contains("# HELP baton_user_metric "))
            #expect(text.contains("# TYPE baton_user_metric gauge"))
            #expect(text.contains(#"baton_user_metric{name="test.export",owner="data",pipeline="etl"} 42.5"#), "\(text.suffix(800))")
            // Label names are sanitized and kept apart from `name`; values are escaped; an empty
            // value is left out, as Prometheus reads it as absent anyway.
            #expect(text.contains(#"baton_user_metric{name="test.export",_9x="y",tag_name="n",team_name="a\"b\\c"} 3"#), "\(text.suffix(800))")
            #expect(text.components(separatedBy: "# TYPE baton_user_metric").count == 2)
        }
    }

    @Test func theDashboardDrawsRunsAndUserMetrics() async throws {
        try await APITestServer.with(pipelines: Self.quick) { server in
            let empty = try await server.get("/dashboard", headers: ["Accept": "text/html"])
            #expect(empty.status == 200, "\(empty)")
            #expect(empty.contentType.hasPrefix("text/html"))
            #expect(empty.text.contains("No finished runs in this window."))
            #expect(empty.text.contains("href=\"/dashboard\""), "the navigation links the dashboard")

            let run = try await server.trigger("quick")
            #expect(try await server.waitForRun(run.id).state == "success")
            let recent = APICoding.isoString(Date().addingTimeInterval(-3600))
            let body = #"{"name": "model.auc", "value": 0.91, "tags": {"model": "<churn>"}, "timestamp": "\#(recent)"}"#
            #expect(try await server.post("/api/v1/metrics", json: body).status == 201)

            let page = try await server.get("/dashboard?range=7d")
            #expect(page.status == 200, "\(page)")
            let html = page.text
            #expect(html.contains("<svg class=\"line-chart\""))
            #expect(html.components(separatedBy: "<svg class=\"line-chart\"").count - 1 == 5, "four run charts and model.auc")
            #expect(html.contains("Run duration by pipeline") && html.contains("Success rate by owner"))
            #expect(html.contains("href=\"/pipelines/quick\">quick</a>"))
            #expect(html.contains(">data_eng</a>"))
            #expect(html.contains("model.auc"))
            #expect(html.contains("model=&lt;churn&gt;") && !html.contains("<churn>"), "tags are escaped")
            #expect(html.contains("href=\"/dashboard?range=7d\" aria-current=\"true\""))
            #expect(html.contains("<dt>Runs finished</dt><dd>1</dd>"))
            #expect(html.contains("<dt>Success rate</dt><dd>100%</dd>"))

            // An unknown range shows the default window rather than an error.
            let fallback = try await server.get("/dashboard?range=1y")
            #expect(fallback.status == 200)
            #expect(fallback.text.contains("href=\"/dashboard?range=24h\" aria-current=\"true\""))
        }
    }

    @Test func aMetricWithTooManySeriesDoesNotBreakTheDashboardOrTheExport() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let recent = Date().addingTimeInterval(-600)
            let points = (0..<10_050).map { index in
                MetricPoint(
                    name: "wide.metric", tags: ["shard": String(index)], value: Double(index),
                    timestamp: recent.addingTimeInterval(Double(index) / 100))
            }
            try await server.store.recordMetrics(points)
            let page = try await server.get("/dashboard")
            #expect(page.status == 200, "\(page)")
            #expect(page.text.contains("Too many series to draw here."))
            #expect(page.text.contains("Run duration by pipeline"), "the other panels still render")
            let metrics = try await server.get("/metrics")
            let lines = metrics.text.split(separator: "\n").filter { $0.hasPrefix("baton_user_metric{") }
            #expect(lines.count == 10_000, "the export is capped")
            #expect(lines.contains { $0.contains(#"shard="10049""#) }, "the most recent series are kept")
            #expect(!lines.contains { $0.contains(#"shard="0""#) }, "the oldest are left out")
        }
    }

    @Test func retentionPurgesOldPointsOnly() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let now = Date()
            try await server.store.recordMetrics([
                MetricPoint(name: "old", value: 1, timestamp: now.addingTimeInterval(-31 * 86400)),
                MetricPoint(name: "kept", value: 2, timestamp: now.addingTimeInterval(-29 * 86400)),
            ])
            var logger = Logger(label: "baton-metrics-test")
            logger.logLevel = .critical
            let service = MetricsRetentionService(store: server.store, logger: logger, clock: { now })
            #expect(await service.purgeOnce() == 1)
            #expect(try await server.store.metricSeries(name: nil).map(\.name) == ["kept"])
            #expect(await service.purgeOnce() == 0)
        }
    }
}
