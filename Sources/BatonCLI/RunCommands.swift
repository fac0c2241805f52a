import ArgumentParser
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger",
        abstract: "Start a run of a pipeline now.",
        discussion: """
            Params are checked against the pipeline's declared params and types. With --wait the
            command follows the run (tasks done/total, the running task, elapsed time) and exits
            non-zero if the run fails. When no `baton up` is running on the database, --wait runs
            the pipeline in this process.

            Examples:
              baton trigger customer_data_pipeline
              baton trigger model_deployment_pipeline --param force_rollback=true --wait
            """)

    @Argument(help: "Pipeline name.")
    var pipeline: String

    @Option(name: .customLong("param"), help: ArgumentHelp("A param value, key=value; repeatable.", valueName: "key=value"))
    var params: [String] = []

    @Flag(help: "Follow the run until it ends; exit 1 unless it succeeds.")
    var wait = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let sqlite = try store.openStore()
        let spec = try await resolvePipeline(pipeline, store: sqlite, folder: folder.pipelines)
        let values = try parseParams(params, spec: spec)
        let record: RunRecord
        do {
            record = try RunFactory.manual(spec, params: values, now: Date())
        } catch {
            throw CLIError("\(error)")
        }
        let (run, _) = try await sqlite.createRun(record)
        if !wait {
            if output.json {
                printJSON(RunJSON(run))
            } else {
                print("triggered run \(run.id) of \(run.pipeline)")
                if EngineLock.isFree(databasePath: store.databasePath) {
                    print("note: no `baton up` is running on \(store.databasePath); the run starts when one does (or use --wait)")
                }
            }
            return
        }
        let final = try await follow(runID: run.id, sqlite: sqlite, store: store, folder: folder.pipelines, json: output.json)
        if final != .success { throw ExitCode(1) }
    }
}

extension EngineLock {
    static func isFree(databasePath: String) -> Bool {
        guard let lock = EngineLock(databasePath: databasePath) else { return false }
        withExtendedLifetime(lock) {}
        return true
    }
}

/// Follows a run until it ends, printing progress; runs an engine in this process when no
/// `baton up` holds the database.
func follow(runID: Int64, sqlite: SQLiteStore, store: StoreOptions, folder: String, json: Bool) async throws -> RunState {
    var localEngine: Task<Void, any Error>?
    var lock: EngineLock?
    if let acquired = EngineLock(databasePath: store.databasePath) {
        lock = acquired
        LoggingSystem.bootstrap { label in
            var handler = ConsoleLogHandler(label: label)
            handler.logLevel = .error
            return handler
        }
        let engine = Engine(
            store: sqlite,
            configuration: EngineConfiguration(
                pipelinesDirectory: folder, dataDirectory: store.dataDirectory, watchFiles: false,
                schedulerEnabled: false),
            logger: Logger(label: "baton"))
        localEngine = Task { try await engine.run() }
        if !json { writeOut("no `baton up` is running on \(store.databasePath): running the pipeline in this process") }
    }
    defer {
        localEngine?.cancel()
        withExtendedLifetime(lock) {}
    }
    let interactive = isatty(STDOUT_FILENO) == 1 && !json
    var reported: [String: TaskState] = [:]
    if !json { writeOut("run \(runID) started; following it (Ctrl-C stops following, not the run)") }
    while true {
        guard let run = try await sqlite.run(id: runID) else { throw CLIError("run \(runID) disappeared") }
        let tasks = try await sqlite.taskInstances(runID: runID)
        if !json {
            if interactive {
                let done = tasks.filter(\.state.isTerminal).count
                let running = tasks.filter { $0.state == .running }.map(\.task)
                let elapsed = Format.duration(run.startedAt ?? run.createdAt, run.endedAt)
                let line = "[\(done)/\(tasks.count) tasks done] \(running.isEmpty ? run.state.rawValue : "running: " + running.joined(separator: ", "))  \(elapsed)"
                writeOut("\r\u{1B}[2K" + line, newline: false)
            }
            for task in tasks where task.state.isTerminal && reported[task.task] != task.state {
                reported[task.task] = task.state
                let mark = task.state == .success ? "✓" : (task.state == .skipped ? "-" : "✗")
                let timing = task.startedAt == nil ? "" : " in \(Format.duration(task.startedAt, task.endedAt))"
                let note = task.reason.map { ": \($0)" } ?? ""
                if interactive { writeOut("\r\u{1B}[2K", newline: false) }
                writeOut("  \(mark) \(task.task) \(task.state.rawValue)\(timing)\(note)")
            }
        }
        if run.state.isTerminal {
            if json {
                printJSON(RunJSON(run, tasks: tasks))
            } else {
                if interactive { writeOut("\r\u{1B}[2K", newline: false) }
                writeOut("run \(runID) of \(run.pipeline) \(run.state == .success ? "succeeded" : run.state.rawValue) in \(Format.duration(run.startedAt ?? run.createdAt, run.endedAt))")
                if run.state != .success {
                    writeOut("see the logs: baton logs \(runID) TASK")
                }
            }
            return run.state
        }
        try await Task.sleep(for: .milliseconds(100))
    }
}

struct LogsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print the log of a task's attempt (stdout and stderr).",
        discussion: """
            Examples:
              baton logs 12 train_xgboost
              baton logs 12 train_xgboost --attempt 1
              baton logs 12 train_xgboost --follow
            """)

    @Argument(help: "Run id.")
    var runID: String

    @Argument(help: "Task name.")
    var task: String

    @Option(help: "Attempt number (default: the latest).")
    var attempt: Int?

    @Flag(name: .shortAndLong, help: "Keep printing new lines until the attempt ends.")
    var follow = false

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let id = try parseRunID(runID)
        let sqlite = try store.openStore()
        guard let run = try await sqlite.run(id: id) else { throw CLIError("no run \(id) in \(store.databasePath)") }
        guard run.spec.task(named: task) != nil else {
            throw CLIError("run \(id) of \(run.pipeline) has no task '\(task)'; " + Suggest.hint(for: task, in: run.spec.tasks.map(\.name)))
        }
        var attempts = try await sqlite.attempts(runID: id, task: task)
        if follow && attempts.isEmpty {
            while attempts.isEmpty {
                if let current = try await sqlite.run(id: id), current.state.isTerminal { break }
                try await Task.sleep(for: .milliseconds(200))
                attempts = try await sqlite.attempts(runID: id, task: task)
            }
        }
        guard !attempts.isEmpty else {
            let state = try await sqlite.taskInstances(runID: id).first { $0.task == task }?.state.rawValue ?? "unknown"
            throw CLIError("task \(task) of run \(id) has no attempts yet (state: \(state))")
        }
        let chosen: AttemptRecord
        if let attempt {
            guard let match = attempts.first(where: { $0.attempt == attempt }) else {
                throw CLIError("task \(task) of run \(id) has attempts \(attempts.map { String($0.attempt) }.joined(separator: ", ")), not \(attempt)")
            }
            chosen = match
        } else {
            chosen = attempts.last!
        }
        var offset: UInt64 = 0
        func drain() {
            guard let handle = FileHandle(forReadingAtPath: chosen.logPath) else { return }
            defer { try? handle.close() }
            try? handle.seek(toOffset: offset)
            let data = handle.readDataToEndOfFile()
            offset += UInt64(data.count)
            FileHandle.standardOutput.write(data)
        }
        drain()
        guard follow else { return }
        while true {
            let current = try await sqlite.attempts(runID: id, task: task).first { $0.attempt == chosen.attempt }
            if current?.state != .running {
                drain()
                return
            }
            try await Task.sleep(for: .milliseconds(200))
            drain()
        }
    }
}

struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a run: running tasks are stopped (their whole process group), the rest never start.",
        discussion: """
            Examples:
              baton cancel 12
            """)

    @Argument(help: "Run id.")
    var runID: String

    @OptionGroup var store: StoreOptions

    func run() async throws {
        let id = try parseRunID(runID)
        let sqlite = try store.openStore()
        guard let run = try await sqlite.run(id: id) else { throw CLIError("no run \(id) in \(store.databasePath)") }
        guard !run.state.isTerminal else {
            print("run \(id) already ended: \(run.state.rawValue)")
            return
        }
        _ = try await sqlite.requestCancel(runID: id)
        if let lock = EngineLock(databasePath: store.databasePath) {
            // No engine is running: apply the cancellation here.
            var machine = RunStateMachine(
                spec: run.spec, params: run.params, state: run.state,
                tasks: Dictionary(uniqueKeysWithValues: try await sqlite.taskInstances(runID: id).map { ($0.task, $0.progress) }))
            let effects = machine.handle(.cancel(reason: "cancelled by request"))
            var changes: [StoreChange] = []
            let now = Date()
            for effect in effects {
                if case .taskStateChanged(let task, let state, let reason) = effect {
                    changes.append(.taskState(runID: id, task: task, state: state, attempts: machine.progress(of: task)?.attempts ?? 0, output: nil, reason: reason, retryAt: nil, at: now))
                } else if case .runStateChanged(let state) = effect {
                    changes.append(.runState(runID: id, state: state, at: now))
                }
            }
            try await sqlite.commit(changes)
            withExtendedLifetime(lock) {}
            print("cancelled run \(id)")
            return
        }
        for _ in 0..<50 {
            if let current = try await sqlite.run(id: id), current.state.isTerminal {
                print("cancelled run \(id)")
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        print("cancellation of run \(id) requested; the engine is stopping its tasks")
    }
}

struct BackfillCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Create runs for past intervals of a pipeline's schedule.",
        discussion: """
            One run per interval starting in [--from, --to); intervals that already have a run are
            left alone. Runs start in logical-date order, at most max_active_runs at a time.

            Examples:
              baton backfill customer_data_pipeline --from 2026-11-01 --to 2026-11-02
              baton backfill feature_pipeline --from 2026-11-01T00:00:00Z --to 2026-11-01T06:00:00Z --wait
            """)

    @Argument(help: "Pipeline name.")
    var pipeline: String

    @Option(help: "First interval start (UTC unless an offset is given).")
    var from: String

    @Option(help: "End of the range, exclusive.")
    var to: String

    @Flag(help: "Wait until every backfilled run ends; exit 1 if any fails.")
    var wait = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let start = try parseDateArgument(from, name: "--from")
        let end = try parseDateArgument(to, name: "--to")
        let sqlite = try store.openStore()
        let spec = try await resolvePipeline(pipeline, store: sqlite, folder: folder.pipelines)
        let records: [RunRecord]
        do {
            records = try RunFactory.backfill(spec, from: start, to: end, now: Date())
        } catch {
            throw CLIError("\(error)")
        }
        var created: [RunRecord] = []
        var existing = 0
        for record in records {
            let (run, isNew) = try await sqlite.createRun(record)
            if isNew { created.append(run) } else { existing += 1 }
        }
        if output.json && !wait {
            printJSON(created.map { RunJSON($0) })
        } else if !output.json {
            print("backfill of \(spec.name): \(created.count) runs created, \(existing) intervals already had a run")
        }
        guard wait else { return }
        var failed = 0
        for run in created {
            let state = try await follow(runID: run.id, sqlite: sqlite, store: store, folder: folder.pipelines, json: output.json)
            if state != .success { failed += 1 }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}

struct PauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Stop scheduling new runs of a pipeline (running ones continue).")

    @Argument(help: "Pipeline name.") var pipeline: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let sqlite = try store.openStore()
        guard try await sqlite.pipeline(named: pipeline) != nil else {
            throw CLIError("unknown pipeline '\(pipeline)' in \(store.databasePath) (pipelines appear once `baton up` has loaded them)")
        }
        try await sqlite.setPaused(true, pipeline: pipeline)
        print("paused \(pipeline)")
    }
}

struct UnpauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Resume scheduling a pipeline.")

    @Argument(help: "Pipeline name.") var pipeline: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let sqlite = try store.openStore()
        guard try await sqlite.pipeline(named: pipeline) != nil else {
            throw CLIError("unknown pipeline '\(pipeline)' in \(store.databasePath)")
        }
        try await sqlite.setPaused(false, pipeline: pipeline)
        print("unpaused \(pipeline)")
    }
}

/// Unbuffered output, so progress lines appear as they happen, in order.
func writeOut(_ text: String, newline: Bool = true) {
    FileHandle.standardOutput.write(Data((newline ? text + "\n" : text).utf8))
}
