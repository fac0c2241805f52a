import ArgumentParser
import BatonAPI
import BatonCore
import BatonStore
import Foundation

struct MetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics",
        abstract: "Report and read shared metrics: every team's numbers on one dashboard.",
        discussion: """
            Every run already reports pipeline.duration and pipeline.success,
            tagged with its pipeline, owner and state. Add your own with `emit`;
            read them with `query`, on the web UI's /dashboard, and as
            baton_user_metric gauges on /metrics. Points are kept for
            `baton up --metrics-retention` (30 days by default). Without
            --server (or BATON_SERVER) the commands use the local database.

            Examples:
              baton metrics emit pipeline.duration 42.5 \\
                --tag pipeline=customer_features --tag owner=data_engineering
              baton metrics emit model.auc 0.91 --tag model=churn \\
                --server http://baton:8080 --token "$TOKEN"
              baton metrics query pipeline.duration --tag owner=ml_engineering \\
                --from 7d --step 1d
              baton metrics query pipeline.success --group-by owner --json
              baton metrics list
            """,
        subcommands: [EmitMetricCommand.self, QueryMetricCommand.self, ListMetricsCommand.self])
}

/// `--tag key=value`, repeatable.
struct MetricTagOptions: ParsableArguments {
    @Option(
        name: .customLong("tag"),
        help: ArgumentHelp("A tag as key=value; repeat for more (like --tag pipeline=etl --tag owner=data).", valueName: "key=value"))
    var items: [String] = []

    func tags() throws -> [String: String] {
        var tags: [String: String] = [:]
        for item in items {
            guard let equals = item.firstIndex(of: "="), equals != item.startIndex else {
                throw CLIError("--tag '\(item)' must be written key=value, like --tag pipeline=etl")
            }
            let key = String(item[..<equals])
            let value = String(item[item.index(after: equals)...])
            if let previous = tags[key], previous != value {
                throw CLIError("--tag \(key) is given twice ('\(previous)' and '\(value)')")
            }
            tags[key] = value
        }
        return tags
    }
}

struct EmitMetricCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emit",
        abstract: "Record one metric point (in the local database, or on --server).",
        discussion: """
            Names are letters, digits, _ . : - (starting with a letter or _),
            up to 200 characters; at most 20 tags, keys and values up to 200
            characters each. Inside a task, BATON_SERVER and BATON_TOKEN are
            set, so the point goes to the server that runs the task.

            Examples:
              baton metrics emit pipeline.duration 42.5 \\
                --tag pipeline=churn_training --tag owner=ml_engineering
              baton metrics emit rows.loaded 1e6 --tag table=clean_customers \\
                --timestamp 2026-11-25T10:00:00Z
              baton metrics emit temperature.delta -3.5 --tag sensor=a
            """)

    @Argument(help: "Metric name, such as pipeline.duration.") var name: String
    // Collected this way so a negative value (-3.5) is taken as the value instead of being
    // rejected as an unknown option; `validate()` insists on exactly one.
    @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The value: a finite number, like 42.5, -3 or 1e6.", valueName: "value"))
    var rawValues: [String] = []

    /// The collected arguments without a `--` separator, which this strategy keeps.
    var values: [String] { rawValues.filter { $0 != "--" } }
    var value: String { values.first ?? "" }

    func validate() throws {
        guard values.count == 1 else {
            throw ValidationError(
                values.isEmpty
                    ? "missing the VALUE after the metric name, like `baton metrics emit \(name) 42.5`"
                    : "one VALUE expected after the metric name, got \(values.count): \(values.joined(separator: " "))"
                        + (rawValues.contains("--") ? " (everything after -- is read as a value; put options before it)" : ""))
        }
    }
    @OptionGroup var tagOptions: MetricTagOptions
    @Option(help: ArgumentHelp("When it was observed (ISO 8601; default: now).", valueName: "date"))
    var timestamp: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        guard let number = Double(value.trimmingCharacters(in: .whitespaces)) else {
            throw CLIError("value '\(value)' is not a number; write it like 42.5 or 1e6 or -3.5")
        }
        let tags = try tagOptions.tags()
        let observed = try timestamp.map { try parseDateArgument($0, name: "--timestamp") } ?? Date()
        let point = MetricPoint(name: name, tags: tags, value: number, timestamp: observed)
        do {
            try MetricLimits.validate(point)
        } catch {
            throw CLIError(Self.explain(error))
        }
        if let client = try remoteOptions.client() {
            let input = APIMetricPointInput(name: name, value: number, tags: tags.isEmpty ? nil : tags, timestamp: observed)
            _ = try await remote { () async throws(BatonClient.ClientError) in
                try await client.post("/api/v1/metrics", body: APIMetricEmitRequest(point: input), as: APIMetricsRecorded.self)
            }
        } else {
            let database = try await store.openStore()
            do {
                try await database.recordMetrics([point])
            } catch let error as MetricValidationError {
                throw CLIError(Self.explain(error))
            }
        }
        if output.json {
            printJSON(APIMetricsRecorded(recorded: 1))
        } else {
            let tagText = tags.isEmpty ? "" : " {" + MetricText.tags(tags) + "}"
            print("recorded \(name) = \(MetricText.number(number))\(tagText)")
        }
    }

    /// The validation message in terms of this command's arguments.
    static func explain(_ error: MetricValidationError) -> String {
        switch error {
        case .invalidName: return error.description
        case .invalidValue: return "VALUE: " + error.description
        case .tooManyTags, .invalidTagKey, .invalidTagValue: return "--tag: " + error.description
        }
    }
}

struct QueryMetricCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Show a metric over time, in buckets, per series.",
        discussion: """
            --from and --to take a date (2026-11-25, 2026-11-25T10:00:00Z) or
            a duration meaning that long ago (24h, 7d). Without --step, a round
            step giving about 120 buckets is used; at most 10,000 buckets are
            answered. Each series prints as a sparkline and a table.

            Examples:
              baton metrics query pipeline.duration
              baton metrics query pipeline.duration --tag pipeline=etl \\
                --from 7d --step 6h --agg max
              baton metrics query pipeline.success --group-by owner --from 30d
              baton metrics query model.auc --tag model=churn --json
            """)

    @Argument(help: "Metric name, such as pipeline.duration.") var name: String
    @OptionGroup var tagOptions: MetricTagOptions
    @Option(help: ArgumentHelp("Start: a date, or how long ago (default: 24h).", valueName: "date|duration"))
    var from: String?
    @Option(help: ArgumentHelp("End: a date, or how long ago (default: now).", valueName: "date|duration"))
    var to: String?
    @Option(help: ArgumentHelp("Bucket length, like 60s, 15m, 1h, 1d.", valueName: "duration"))
    var step: String?
    @Option(help: "How each bucket is summarised: avg, sum, min, max, count or last.")
    var agg: String = "avg"
    @Option(help: ArgumentHelp("Merge series by these tag keys, comma-separated (like owner).", valueName: "keys"))
    var groupBy: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let now = Date()
        let end = try to.map { try Self.instant($0, option: "--to", now: now) } ?? now
        let start = try from.map { try Self.instant($0, option: "--from", now: now) } ?? end.addingTimeInterval(-86400)
        let tags = try tagOptions.tags()
        let result: APIMetricQueryResult
        do {
            let query = MetricQuery(
                name: name, tags: tags, from: start, to: end, step: try step.map { text throws(MetricQueryError) in try MetricQuery.parseStep(text) },
                aggregation: try MetricQuery.parseAggregation(agg),
                groupBy: try groupBy.map { text throws(MetricQueryError) in try MetricQuery.parseGroupBy(text) })
            try query.validate()
            if let client = try remoteOptions.client() {
                var items: [(String, String?)] = [
                    ("name", name), ("from", APICoding.isoString(start)), ("to", APICoding.isoString(end)),
                    ("step", String(query.step)), ("agg", query.aggregation.rawValue),
                    ("group_by", query.groupBy?.joined(separator: ",")),
                ]
                if !tags.isEmpty {
                    items.append(("tags", tags.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")))
                }
                let path = "/api/v1/metrics/query?" + items.compactMap { key, value in
                    value.map { "\(key)=\(percentEncoded($0))" }
                }.joined(separator: "&")
                result = try await remote { () async throws(BatonClient.ClientError) in
                    try await client.get(path, as: APIMetricQueryResult.self)
                }
            } else {
                result = try await query.run(on: try await store.openStore())
            }
        } catch let error as MetricQueryError {
            throw CLIError(Self.explain(error))
        }
        if output.json {
            printJSON(result)
            return
        }
        print(MetricText.render(result))
    }

    /// A date, or a duration meaning that long before now.
    static func instant(_ text: String, option: String, now: Date) throws -> Date {
        if let date = PipelineParser.parseDate(text, timezone: .gmt) { return date }
        if let seconds = try? DurationText.seconds(text) { return now.addingTimeInterval(-seconds) }
        throw CLIError("\(option) '\(text)' is neither a date (2026-11-25, 2026-11-25T10:00:00Z) nor a duration ago (24h, 7d)")
    }

    static func explain(_ error: MetricQueryError) -> String {
        let option: String
        switch error.field {
        case "name": option = "NAME"
        case "tags": option = "--tag"
        case "group_by": option = "--group-by"
        case "agg": option = "--agg"
        case "from", "to": option = "--\(error.field)"
        default: option = "--\(error.field)"
        }
        return "\(option): \(error.message)"
    }
}

struct ListMetricsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List metric series (a name with one set of tags) and their latest values.",
        discussion: """
            Examples:
              baton metrics list
              baton metrics list pipeline.duration --json
            """)

    @Argument(help: "Only series of this metric.") var name: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        if let name {
            do {
                try MetricLimits.validateName(name)
            } catch {
                throw CLIError(error.description)
            }
        }
        let series: [APIMetricSeries]
        if let client = try remoteOptions.client() {
            let path = "/api/v1/metrics?limit=10000" + (name.map { "&name=\(percentEncoded($0))" } ?? "")
            series = try await remote { () async throws(BatonClient.ClientError) in
                try await client.get(path, as: APIList<APIMetricSeries>.self)
            }.items
        } else {
            series = try await store.openStore().metricSeries(name: name).map(APIMetricSeries.init)
        }
        if output.json {
            printJSON(series)
            return
        }
        guard !series.isEmpty else {
            print(name.map { "no series of \($0)" } ?? "no metrics reported yet; add one with `baton metrics emit NAME VALUE`")
            return
        }
        var table = Table(headers: ["NAME", "TAGS", "LAST VALUE", "LAST AT (UTC)", "POINTS"])
        for item in series {
            table.rows.append([
                item.name, item.tags.isEmpty ? "-" : MetricText.tags(item.tags), MetricText.number(item.last_value),
                Format.time(item.last_timestamp), String(item.points),
            ])
        }
        print(table.render())
    }
}

/// How metrics read in a terminal.
enum MetricText {
    static func tags(_ tags: [String: String]) -> String {
        tags.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.6g", value)
    }

    static let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// One character per bucket, scaled between the series' lowest and highest value.
    static func sparkline(_ values: [Double]) -> String {
        guard let low = values.min(), let high = values.max() else { return "" }
        guard high > low else { return String(repeating: bars[3], count: values.count) }
        return String(values.map { bars[min(bars.count - 1, Int((($0 - low) / (high - low)) * Double(bars.count - 1) + 0.5))] })
    }

    static func render(_ result: APIMetricQueryResult) -> String {
        var lines = [
            "\(result.name) · \(result.agg) per \(DurationText.format(result.step_seconds)) · \(Format.time(result.from)) to \(Format.time(result.to)) UTC"
        ]
        if !result.tags.isEmpty { lines[0] += " · tags \(tags(result.tags))" }
        guard !result.series.isEmpty else {
            lines.append("no points in this range")
            return lines.joined(separator: "\n")
        }
        for series in result.series {
            let values = series.points.map(\.value)
            lines.append("")
            let title = series.tags.isEmpty ? "(no tags)" : tags(series.tags)
            let low = values.min().map(number) ?? "-"
            let high = values.max().map(number) ?? "-"
            let last = values.last.map(number) ?? "-"
            lines.append("\(title)  \(sparkline(values))  min \(low)  max \(high)  last \(last)")
            var table = Table(headers: ["  TIME (UTC)", "VALUE", "COUNT"])
            for point in series.points {
                table.rows.append(["  " + Format.time(point.t), number(point.value), String(point.count)])
            }
            lines.append(table.render())
        }
        return lines.joined(separator: "\n")
    }
}
