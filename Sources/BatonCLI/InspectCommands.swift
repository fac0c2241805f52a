import ArgumentParser
import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check pipeline files and report every problem with file, line and a fix.",
        discussion: """
            Exits with status 1 when any file has an error. One broken file never hides the others.

            Examples:
              baton validate
              baton validate examples/pipelines --json
            """)

    @Argument(help: "Folder of pipeline files (default: --pipelines, or ./pipelines).")
    var directory: String?

    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    struct Report: Encodable {
        var files: Int
        var pipelines: [String]
        var errors: Int
        var warnings: Int
        var issues: [Issue]
        struct Issue: Encodable {
            var file: String
            var line: Int
            var column: Int
            var severity: String
            var field: String?
            var message: String
            var value: String?
            var fix: String?
        }
    }

    func run() async throws {
        let path = directory ?? folder.pipelines
        let result = PipelineRepository.load(directory: path)
        let errors = result.errors.count
        let warnings = result.issues.count - errors
        if output.json {
            printJSON(
                Report(
                    files: result.filesRead, pipelines: result.pipelines.map(\.spec.name).sorted(), errors: errors,
                    warnings: warnings,
                    issues: result.issues.map {
                        Report.Issue(
                            file: $0.file, line: $0.line, column: $0.column, severity: $0.severity.rawValue,
                            field: $0.field, message: $0.message, value: $0.value, fix: $0.fix)
                    }))
        } else {
            for issue in result.issues { print(issue.description) }
            if !result.issues.isEmpty { print("") }
            print(
                "\(result.filesRead) file\(result.filesRead == 1 ? "" : "s") checked: \(result.pipelines.count) pipeline\(result.pipelines.count == 1 ? "" : "s") valid, "
                    + (result.deployments.isEmpty ? "" : "\(result.deployments.count) deployment\(result.deployments.count == 1 ? "" : "s") valid, ")
                    + "\(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")"
            )
        }
        if errors > 0 { throw ExitCode(1) }
    }
}

struct PipelinesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipelines",
        abstract: "List pipelines: owner, schedule, next run, paused state and recent runs.",
        discussion: """
            Examples:
              baton pipelines
              baton pipelines --owner ml_engineering --json
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    @Option(help: "Only pipelines of this owner team.")
    var owner: String?

    func run() async throws {
        let database = try await store.openStore()
        var records: [String: PipelineRecord] = [:]
        for record in try await database.pipelines() { records[record.name] = record }
        // Pipelines in the folder that no `baton up` has loaded yet are listed too.
        for loaded in PipelineRepository.load(directory: folder.pipelines).pipelines where records[loaded.spec.name] == nil {
            records[loaded.spec.name] = PipelineRecord(
                name: loaded.spec.name, file: PipelineRepository.displayPath(loaded.file), spec: loaded.spec,
                firstSeen: Date(), updatedAt: Date())
        }
        var rows: [APIPipeline] = []
        for name in records.keys.sorted() {
            guard let record = records[name] else { continue }
            if let owner, record.spec.owner != owner { continue }
            rows.append(APIPipeline(record, recentRuns: try await database.runs(RunQuery(pipeline: name, limit: 10))))
        }
        if output.json {
            printJSON(rows)
            return
        }
        if rows.isEmpty {
            print("no pipelines found in \(folder.pipelines) or \(store.shownDatabase)")
            return
        }
        var table = Table(headers: ["PIPELINE", "OWNER", "SCHEDULE", "NEXT RUN (UTC)", "PAUSED", "RECENT RUNS"])
        for row in rows {
            let squares = row.recent_runs.reversed().map { run -> String in
                switch run.state {
                case "success": return "■"
                case "failed": return "✗"
                case "running": return "▶"
                case "queued": return "·"
                default: return "○"
                }
            }.joined()
            table.rows.append([
                row.name, row.owner ?? "-", "\(row.schedule_description) (\(row.schedule))", Format.time(row.next_run),
                row.paused ? "yes" : "no", squares.isEmpty ? "-" : squares,
            ])
        }
        print(table.render())
    }
}

struct RunsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runs",
        abstract: "List recent runs, newest first.",
        discussion: """
            Examples:
              baton runs
              baton runs customer_data_pipeline --state failed --limit 5
              baton runs --json
            """)

    @Argument(help: "Only runs of this pipeline.")
    var pipeline: String?

    @Option(help: "Only runs in this state (queued, running, success, failed, cancelled).")
    var state: String?

    @Option(help: "How many runs to show.")
    var limit: Int = 20

    @OptionGroup var store: StoreOptions
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        var states: [RunState]?
        if let state {
            guard let parsed = RunState(rawValue: state) else {
                throw CLIError("--state '\(state)' is not a run state; use one of \(RunState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            states = [parsed]
        }
        let runs: [APIRun]
        if let client = try remoteOptions.client() {
            var query = "/api/v1/runs?limit=\(min(500, max(1, limit)))"
            if let pipeline { query += "&pipeline=\(percentEncoded(pipeline))" }
            if let state { query += "&state=\(percentEncoded(state))" }
            runs = try await remote { () async throws(BatonClient.ClientError) in
                try await client.get(query, as: APIList<APIRun>.self).items
            }
        } else {
            let database = try await store.openStore()
            runs = try await database.runs(RunQuery(pipeline: pipeline, states: states, limit: max(1, limit))).map { APIRun($0) }
        }
        if output.json {
            printJSON(runs)
            return
        }
        if runs.isEmpty {
            print("no runs yet")
            return
        }
        var table = Table(headers: ["RUN", "PIPELINE", "STATE", "TRIGGER", "LOGICAL DATE (UTC)", "STARTED (UTC)", "DURATION"])
        for run in runs {
            table.rows.append([
                String(run.id), run.pipeline, run.state, run.trigger, Format.time(run.logical_date),
                Format.time(run.started_at), run.started_at == nil ? "-" : Format.duration(run.started_at, run.ended_at),
            ])
        }
        print(table.render())
    }
}

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Inspect one run.",
        subcommands: [ShowRunCommand.self])
}

struct ShowRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show a run and its tasks: state, attempt, start and duration.",
        discussion: """
            Examples:
              baton run show 12
              baton run show 12 --json
            """)

    @Argument(help: "Run id, as listed by `baton runs`.")
    var runID: String

    @OptionGroup var store: StoreOptions
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let id = try parseRunID(runID)
        let run = try await fetchRun(id, store: store, remoteOptions: remoteOptions)
        if output.json {
            printJSON(run)
            return
        }
        print(renderRun(run))
    }
}

/// A run with its tasks, from the server when one was given, else from the database.
func fetchRun(_ id: Int64, store: StoreOptions, remoteOptions: RemoteOptions) async throws -> APIRun {
    if let client = try remoteOptions.client() {
        return try await remote { () async throws(BatonClient.ClientError) in
            try await client.get("/api/v1/runs/\(id)", as: APIRun.self)
        }
    }
    let database = try await store.openStore()
    guard let run = try await database.run(id: id) else { throw CLIError("no run \(id) in \(store.shownDatabase)") }
    return APIRun(run, tasks: try await database.taskInstances(runID: id))
}

func renderRun(_ run: APIRun) -> String {
    var lines = [
        "run \(run.id) of \(run.pipeline): \(run.state)",
        "  trigger \(run.trigger), logical date \(Format.time(run.logical_date)) UTC, interval \(Format.time(run.data_interval_start)) .. \(Format.time(run.data_interval_end))",
        "  started \(Format.time(run.started_at)), \(run.ended_at == nil ? "running for" : "took") \(Format.duration(run.started_at, run.ended_at))",
    ]
    if !run.params.isEmpty { lines.append("  params \(JSONValue.object(run.params).compactJSON)") }
    lines.append("")
    var table = Table(headers: ["TASK", "STATE", "ATTEMPT", "STARTED (UTC)", "DURATION", "NOTE"])
    for task in run.tasks ?? [] {
        table.rows.append([
            task.task, task.state, task.attempts == 0 ? "-" : String(task.attempts), Format.time(task.started_at),
            task.started_at == nil ? "-" : Format.duration(task.started_at, task.ended_at), task.reason ?? "",
        ])
    }
    lines.append(table.render())
    return lines.joined(separator: "\n")
}
