import ArgumentParser
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
                "\(result.filesRead) file\(result.filesRead == 1 ? "" : "s") checked: \(result.pipelines.count) pipeline\(result.pipelines.count == 1 ? "" : "s") valid, \(errors) error\(errors == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")"
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

    struct Row: Encodable {
        var name: String
        var owner: String?
        var schedule: String
        var schedule_description: String
        var timezone: String
        var next_run: Date?
        var paused: Bool
        var tasks: Int
        var recent_runs: [String]
        var file: String?
    }

    func run() async throws {
        let sqlite = try store.openStore()
        var specs: [String: (PipelineSpec, Bool, String?)] = [:]
        for record in try await sqlite.pipelines() { specs[record.name] = (record.spec, record.paused, record.file) }
        for loaded in PipelineRepository.load(directory: folder.pipelines).pipelines where specs[loaded.spec.name] == nil {
            specs[loaded.spec.name] = (loaded.spec, false, PipelineRepository.displayPath(loaded.file))
        }
        var rows: [Row] = []
        for name in specs.keys.sorted() {
            let (spec, paused, file) = specs[name]!
            if let owner, spec.owner != owner { continue }
            var next: Date?
            var words = "manual only"
            if case .cron(let expression) = spec.schedule, let cron = try? CronSchedule.parse(expression) {
                next = cron.nextFire(after: Date(), in: TimeZone(identifier: spec.timezone) ?? .gmt)
                words = cron.humanDescription
            } else if case .once = spec.schedule {
                words = "once"
            }
            let recent = try await sqlite.runs(RunQuery(pipeline: name, limit: 10)).map(\.state.rawValue)
            rows.append(
                Row(
                    name: name, owner: spec.owner, schedule: spec.schedule.description, schedule_description: words,
                    timezone: spec.timezone, next_run: paused ? nil : next, paused: paused, tasks: spec.tasks.count,
                    recent_runs: recent, file: file))
        }
        if output.json {
            printJSON(rows)
            return
        }
        if rows.isEmpty {
            print("no pipelines found in \(folder.pipelines) or \(store.databasePath)")
            return
        }
        var table = Table(headers: ["PIPELINE", "OWNER", "SCHEDULE", "NEXT RUN (UTC)", "PAUSED", "RECENT RUNS"])
        for row in rows {
            let squares = row.recent_runs.reversed().map { state -> String in
                switch state {
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
    @OptionGroup var output: OutputOptions

    func run() async throws {
        var states: [RunState]?
        if let state {
            guard let parsed = RunState(rawValue: state) else {
                throw CLIError("--state '\(state)' is not a run state; use one of \(RunState.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            states = [parsed]
        }
        let sqlite = try store.openStore()
        let runs = try await sqlite.runs(RunQuery(pipeline: pipeline, states: states, limit: max(1, limit)))
        if output.json {
            printJSON(runs.map { RunJSON($0) })
            return
        }
        if runs.isEmpty {
            print("no runs yet")
            return
        }
        var table = Table(headers: ["RUN", "PIPELINE", "STATE", "TRIGGER", "LOGICAL DATE (UTC)", "STARTED (UTC)", "DURATION"])
        for run in runs {
            table.rows.append([
                String(run.id), run.pipeline, run.state.rawValue, run.trigger.rawValue, Format.time(run.logicalDate),
                Format.time(run.startedAt), run.startedAt == nil ? "-" : Format.duration(run.startedAt, run.endedAt),
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
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let id = try parseRunID(runID)
        let sqlite = try store.openStore()
        guard let run = try await sqlite.run(id: id) else { throw CLIError("no run \(id) in \(store.databasePath)") }
        let tasks = try await sqlite.taskInstances(runID: id)
        if output.json {
            printJSON(RunJSON(run, tasks: tasks))
            return
        }
        print(renderRun(run, tasks: tasks))
    }
}

func renderRun(_ run: RunRecord, tasks: [TaskInstanceRecord]) -> String {
    var lines = [
        "run \(run.id) of \(run.pipeline): \(run.state.rawValue)",
        "  trigger \(run.trigger.rawValue), logical date \(Format.time(run.logicalDate)) UTC, interval \(Format.time(run.intervalStart)) .. \(Format.time(run.intervalEnd))",
        "  started \(Format.time(run.startedAt)), \(run.endedAt == nil ? "running for" : "took") \(Format.duration(run.startedAt, run.endedAt))",
    ]
    if !run.params.isEmpty { lines.append("  params \(JSONValue.object(run.params).compactJSON)") }
    lines.append("")
    var table = Table(headers: ["TASK", "STATE", "ATTEMPT", "STARTED (UTC)", "DURATION", "NOTE"])
    let order = TaskGraph(tasks: run.spec.tasks).topologicalOrder()
    let byName = Dictionary(uniqueKeysWithValues: tasks.map { ($0.task, $0) })
    for name in order {
        guard let task = byName[name] else { continue }
        table.rows.append([
            name, task.state.rawValue, task.attempts == 0 ? "-" : String(task.attempts), Format.time(task.startedAt),
            task.startedAt == nil ? "-" : Format.duration(task.startedAt, task.endedAt), task.reason ?? "",
        ])
    }
    lines.append(table.render())
    return lines.joined(separator: "\n")
}
