import ArgumentParser
import BatonCore
import BatonEngine
import BatonFeatures
import BatonStore
import Foundation

struct FeaturesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "The feature store: views, ingestion, materialization, training sets and online lookups.",
        discussion: """
            Entities, feature views and feature services are declared in YAML files in the pipelines
            folder (top-level `entities:`, `feature_views:`, `feature_services:`). Commands write to and
            read from the database directly; a running server picks up the writes within seconds.

            Examples:
              baton features list --pipelines examples/pipelines
              baton features ingest customer_features --file rows.csv
              baton features materialize customer_features --from 2026-11-01 --to 2026-11-25
              baton features historical --entities labels.csv --service churn_model --out training.csv
              baton features lookup churn_model --entity customer_id=42
            """,
        subcommands: [
            FeaturesList.self, FeaturesShow.self, FeaturesIngest.self, FeaturesMaterialize.self, FeaturesHistorical.self,
            FeaturesLookup.self,
        ])
}

/// The folder's definitions and a hub on the database; refuses definitions with errors.
func openFeatures(_ folder: PipelinesFolderOption, _ store: StoreOptions, keepsCache: Bool = false) async throws -> FeatureHub {
    let loaded = PipelineRepository.load(directory: folder.pipelines)
    let featureErrors = loaded.errors.filter { $0.field?.hasPrefix("feature") == true || $0.field?.hasPrefix("entities") == true }
    if let first = featureErrors.first {
        throw CLIError("the feature definitions have errors; run `baton validate \(folder.pipelines)`:\n\(first.description)")
    }
    if loaded.features.isEmpty {
        throw CLIError("no feature definitions in \(folder.pipelines); add a YAML file with `entities:`, `feature_views:` and `feature_services:`")
    }
    let hub = FeatureHub(store: try await store.openStore(), logger: StoreOptions.storeLogger, keepsCache: keepsCache)
    await hub.update(registry: loaded.features)
    return hub
}

/// Reports feature errors as CLI errors (their text says what to fix).
func featureCall<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as FeatureError {
        throw CLIError(error.description)
    }
}

/// The run, pipeline and task when called from inside a Baton task, for lineage.
func taskWriter(origin: String) -> FeatureWriter {
    let environment = ProcessInfo.processInfo.environment
    return FeatureWriter(
        runID: environment["BATON_RUN_ID"].flatMap { Int64($0) }, pipeline: environment["BATON_PIPELINE"],
        task: environment["BATON_TASK"], origin: origin)
}

struct FeaturesList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Feature views with rows, entities and freshness; entities and services.")
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var view: String
        var entity: String
        var features: [String]
        var rows: Int
        var entities: Int
        var last_event_timestamp: String?
        var last_written_at: String?
        var freshness_seconds: Double?
        var status: String
    }

    func run() async throws {
        let hub = try await openFeatures(folder, store)
        let registry = hub.registry
        var rows: [Row] = []
        for view in registry.views.values.sorted(by: { $0.name < $1.name }) {
            let summary = try await hub.store.featureViewSummary(view: view.name)
            let status = await Engine.status(of: view.dataset, store: hub.store, now: Date())
            rows.append(
                Row(
                    view: view.name, entity: view.entity, features: view.featureNames, rows: summary.rows, entities: summary.entities,
                    last_event_timestamp: summary.lastEventTime.map(FeatureTime.iso), last_written_at: summary.lastWrittenAt.map(FeatureTime.iso),
                    freshness_seconds: view.freshness, status: status.freshness.rawValue))
        }
        if output.json {
            printJSON(rows)
            return
        }
        var table = Table(headers: ["VIEW", "ENTITY", "FEATURES", "ROWS", "ENTITIES", "LAST EVENT", "STATUS"])
        for row in rows {
            table.rows.append([
                row.view, row.entity, String(row.features.count), String(row.rows), String(row.entities), row.last_event_timestamp ?? "-",
                row.status + (row.freshness_seconds.map { " (SLA \(DurationText.format($0)))" } ?? ""),
            ])
        }
        print(table.render())
        for service in registry.services.values.sorted(by: { $0.name < $1.name }) {
            print("service \(service.name): \(service.features.map(\.description).joined(separator: ", "))"
                + (service.models.isEmpty ? "" : " (used by \(service.models.joined(separator: ", ")))"))
        }
    }
}

struct FeaturesShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "One feature view: definition, counts and per-feature statistics.")
    @Argument(help: "The feature view.") var view: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var view: String
        var entity: String
        var ttl_seconds: Double?
        var rows: Int
        var entities: Int
        var statistics: [FeatureStatistics]
    }

    func run() async throws {
        let hub = try await openFeatures(folder, store)
        try await featureCall {
            let spec = try hub.registry.view(view)
            let (summary, stats) = try await hub.statistics(view: view)
            if output.json {
                printJSON(Report(view: view, entity: spec.entity, ttl_seconds: spec.ttl, rows: summary.rows, entities: summary.entities, statistics: stats))
                return
            }
            print("feature view \(spec.name) of entity \(spec.entity), owner \(spec.owner ?? "-"), ttl \(spec.ttl.map { DurationText.format($0) } ?? "none")")
            print("\(summary.rows) rows, \(summary.entities) entities, event times \(summary.firstEventTime.map(FeatureTime.iso) ?? "-") to \(summary.lastEventTime.map(FeatureTime.iso) ?? "-")")
            var table = Table(headers: ["FEATURE", "TYPE", "NULLS", "MIN", "MAX", "MEAN"])
            for stat in stats {
                func number(_ value: Double?) -> String { value.map { String(format: "%.4g", $0) } ?? "-" }
                table.rows.append([stat.name, stat.type.rawValue, String(format: "%.1f%%", stat.nullShare * 100), number(stat.min), number(stat.max), number(stat.mean)])
            }
            print(table.render())
        }
    }
}

struct FeaturesIngest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Write rows from a CSV or JSON Lines file to a feature view, as one all-or-nothing batch.",
        discussion: """
            Columns: the entity's join keys, event_timestamp (ISO 8601 or epoch seconds) and features
            (an empty CSV cell is null). A row with the entity and event time of a stored row replaces it.
            """)
    @Argument(help: "The feature view.") var view: String
    @Option(help: "A .csv or .jsonl file (- reads CSV from standard input).") var file: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let text: String
        if file == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read \(file)") }
            text = String(decoding: data, as: UTF8.self)
        }
        let hub = try await openFeatures(folder, store)
        let result = try await featureCall {
            let parser = try hub.parser(for: view)
            let rows = file.hasSuffix(".jsonl") || file.hasSuffix(".json") ? try parser.rows(jsonLines: text) : try parser.rows(csv: text)
            return try await hub.write(view: view, rows: rows, writer: taskWriter(origin: "cli"))
        }
        if output.json {
            printJSON(result)
        } else {
            print("\(view): stored \(result.rows) rows for \(result.entities) entities (\(result.inserted) new, \(result.overwritten) overwritten)")
        }
    }
}

struct FeaturesMaterialize: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "materialize",
        abstract: "Copy a view's rows with event times in [--from, --to) from its SQL source into the store.",
        discussion: "Usable as a pipeline task: `run: baton features materialize customer_features --from {{ data_interval_start }} --to {{ data_interval_end }}`.")
    @Argument(help: "The feature view.") var view: String
    @Option(help: "Start of the event time range (inclusive), ISO 8601.") var from: String
    @Option(help: "End of the event time range (exclusive), ISO 8601.") var to: String
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    func run() async throws {
        guard let start = FeatureTime.parse(from) else { throw CLIError("--from '\(from)' is not a time; write 2026-11-01 or 2026-11-01T06:00:00Z") }
        guard let end = FeatureTime.parse(to) else { throw CLIError("--to '\(to)' is not a time; write 2026-11-02 or 2026-11-02T06:00:00Z") }
        let hub = try await openFeatures(folder, store)
        let result = try await featureCall {
            try await hub.materialize(
                view: view, from: Date(timeIntervalSince1970: start), to: Date(timeIntervalSince1970: end), writer: taskWriter(origin: "materialize"))
        }
        if output.json {
            printJSON(result)
        } else {
            print("\(view): materialized \(result.rows) rows for \(result.entities) entities (\(result.inserted) new, \(result.overwritten) overwritten)")
        }
    }
}

struct FeaturesHistorical: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "historical",
        abstract: "Build a point-in-time correct training set: each entity row with features as they were at its time.",
        discussion: """
            The entity file (CSV or JSON Lines) holds the join keys, event_timestamp and any other
            columns (labels), which are kept. A feature gets the entity's latest value at or before the
            row's time and within the view's ttl, never a later one; otherwise it is empty.
            """)
    @Option(help: "Entity rows: a .csv or .jsonl file.") var entities: String
    @Option(help: "The feature service.") var service: String
    @Option(help: "Output file: .csv, or .jsonl for JSON Lines (default: CSV on standard output).") var out: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    struct Summary: Encodable {
        var rows: Int
        var features: [String]
        var out: String
        var seconds: Double
    }

    func run() async throws {
        guard let data = FileManager.default.contents(atPath: entities) else { throw CLIError("cannot read \(entities)") }
        let text = String(decoding: data, as: UTF8.self)
        let hub = try await openFeatures(folder, store)
        let started = ContinuousClock.now
        let set = try await featureCall {
            let table: EntityTable
            if entities.hasSuffix(".jsonl") || entities.hasSuffix(".json") {
                var items: [JSONValue] = []
                for line in text.split(separator: "\n") where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                    items.append(try JSONValue.parse(String(line)))
                }
                table = try EntityTable.json(items)
            } else {
                table = try EntityTable.csv(text)
            }
            return try await hub.historical(service: service, entities: table)
        }
        let elapsed = started.duration(to: .now)
        let body = (out?.hasSuffix(".jsonl") ?? false) ? set.jsonLines() : set.csv()
        if let out {
            try body.write(toFile: out, atomically: true, encoding: .utf8)
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if output.json {
                printJSON(Summary(rows: set.rowCount, features: set.featureNames, out: out, seconds: seconds))
            } else {
                print("\(out): \(set.rowCount) rows x \(set.featureNames.count) features in \(String(format: "%.2f", seconds)) s")
            }
        } else {
            print(body, terminator: "")
        }
    }
}

struct FeaturesLookup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lookup", abstract: "The latest (online) values of a feature service for entities.")
    @Argument(help: "The feature service.") var service: String
    @Option(name: .customLong("entity"), help: "Join key values, e.g. customer_id=42 (repeat for more entities; a,b pairs with commas).")
    var entityArguments: [String] = []
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    // The answer is JSON already; accepted so every command takes --json.
    @OptionGroup var output: OutputOptions

    func run() async throws {
        guard !entityArguments.isEmpty else { throw CLIError("give at least one --entity KEY=VALUE") }
        let hub = try await openFeatures(folder, store, keepsCache: true)
        var entities: [[String: JSONValue]] = []
        for argument in entityArguments {
            var entity: [String: JSONValue] = [:]
            for pair in argument.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw CLIError("'\(pair)' is not KEY=VALUE") }
                entity[parts[0]] = Double(parts[1]).map(JSONValue.number) ?? .string(parts[1])
            }
            entities.append(entity)
        }
        let answer = try await featureCall { try hub.online(service: service, entities: entities) }
        print(answer.json())
    }
}
