import ArgumentParser
import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Logging
import Synchronization

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
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        if let client = try remoteOptions.client() {
            try await triggerRemotely(client)
            return
        }
        let database = try await store.openStore()
        let spec = try await resolvePipeline(pipeline, store: database, folder: folder.pipelines)
        let values = try parseParams(params, spec: spec)
        let record: RunRecord
        do {
            record = try RunFactory.manual(spec, params: values, now: Date())
        } catch {
            throw CLIError("\(error)")
        }
        let (run, _) = try await database.createRun(record)
        if !wait {
            if output.json {
                printJSON(APIRun(run, tasks: try await database.taskInstances(runID: run.id)))
            } else {
                print("triggered run \(run.id) of \(run.pipeline)")
                // With PostgreSQL, servers elsewhere may run it: there is no lock file to look at.
                if !store.isPostgres && EngineLock.isFree(databasePath: store.databasePath) {
                    print("note: no `baton up` is running on \(store.shownDatabase); the run starts when one does (or use --wait)")
                }
            }
            return
        }
        let final = try await follow(runID: run.id, database: database, store: store, folder: folder.pipelines, json: output.json)
        if final != .success { throw ExitCode(1) }
    }

    /// Params travel as text and the server converts them to the declared types, as it does for
    /// the local database.
    func triggerRemotely(_ client: BatonClient) async throws {
        let detail = try await remote { () async throws(BatonClient.ClientError) in
            try await client.get("/api/v1/pipelines/\(percentEncoded(pipeline))", as: APIPipelineDetail.self)
        }
        var values: [String: JSONValue] = [:]
        for item in params {
            guard let equals = item.firstIndex(of: "=") else { throw CLIError("--param '\(item)' must be written key=value") }
            let key = String(item[..<equals])
            let text = String(item[item.index(after: equals)...])
            guard let declared = detail.pipeline.params.first(where: { $0.name == key }) else {
                throw CLIError(
                    "pipeline '\(pipeline)' has no param '\(key)'; "
                        + Suggest.hint(for: key, in: detail.pipeline.params.map(\.name)))
            }
            let spec = ParamSpec(
                name: key, defaultValue: declared.default_value, type: ParamType(rawValue: declared.type) ?? .any,
                allowedValues: declared.allowed_values)
            do {
                values[key] = try ParamValidation.coerce(text, for: spec)
            } catch {
                throw CLIError(error.description)
            }
        }
        let run = try await remote { () async throws(BatonClient.ClientError) in
            try await client.post("/api/v1/runs", body: APITriggerRequest(pipeline: pipeline, params: values), as: APIRun.self)
        }
        guard wait else {
            if output.json { printJSON(run) } else { print("triggered run \(run.id) of \(run.pipeline) on \(client.baseURL.absoluteString)") }
            return
        }
        let final = try await watch(runID: run.id, json: output.json, local: nil) {
            try await remote { () async throws(BatonClient.ClientError) in
                try await client.get("/api/v1/runs/\(run.id)", as: APIRun.self)
            }
        }
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
func follow(runID: Int64, database: any Store, store: StoreOptions, folder: String, json: Bool) async throws -> RunState {
    let local = LocalEngine.startIfNoServer(database: database, store: store, folder: folder, json: json)
    return try await withLocalEngine(local) {
        try await watch(runID: runID, json: json, local: local) {
            guard let run = try await database.run(id: runID) else { throw CLIError("run \(runID) disappeared") }
            return APIRun(run, tasks: try await database.taskInstances(runID: runID))
        }
    }
}

/// Runs `body`, then stops `local` (if any) and waits for it, also when `body` throws.
func withLocalEngine<T>(_ local: LocalEngine?, _ body: () async throws -> T) async throws -> T {
    let value: T
    do {
        value = try await body()
    } catch {
        await local?.stop()
        throw error
    }
    await local?.stop()
    return value
}

/// An engine inside this CLI process, for `--wait` when no `baton up` holds the database. Like
/// `baton up` it holds the engine lock, so it also runs other queued runs meanwhile.
///
/// `stop()` must be awaited before the process exits: it waits until the engine has recorded
/// its running attempts as interrupted (requeued without using a retry). Exiting without it
/// left those attempts `running`, so the next `baton up` declared them lost and failed tasks
/// without retries, and their processes (in their own process groups) outlived the CLI. For the
/// same reason Ctrl-C and SIGTERM stop following and stop the engine instead of killing the CLI.
final class LocalEngine {
    private let lock: EngineLock
    private let task: Task<Void, any Error>
    private let signals: [any DispatchSourceSignal]
    let interrupted = InterruptFlag()

    /// swift-log may be bootstrapped once per process only (a second call is a fatal error).
    private static let errorOnlyLogging: Void = LoggingSystem.bootstrap { label in
        var handler = ConsoleLogHandler(label: label)
        handler.logLevel = .error
        return handler
    }

    static func startIfNoServer(database: any Store, store: StoreOptions, folder: String, json: Bool) -> LocalEngine? {
        // Servers sharing PostgreSQL elect one engine among themselves; an engine in the CLI
        // would run beside theirs, so with PostgreSQL the run waits for a server.
        if store.isPostgres {
            if !json { writeOut("with PostgreSQL the run is started by a Baton server on \(store.shownDatabase); waiting for it") }
            return nil
        }
        guard let lock = EngineLock(databasePath: store.databasePath) else { return nil }
        // This process is now the only engine on the file: its bell would only wake itself.
        (database as? SQLiteStore)?.setAnnouncesWrites(false)
        _ = errorOnlyLogging
        let engine = Engine(
            store: database,
            configuration: EngineConfiguration(
                pipelinesDirectory: folder, dataDirectory: store.dataDirectory, watchFiles: false,
                schedulerEnabled: false),
            logger: Logger(label: "baton"))
        if !json { writeOut("no `baton up` is running on \(store.shownDatabase): running the pipeline in this process") }
        let environment = cliEnvironment(databasePath: store.databasePath)
        return LocalEngine(
            lock: lock,
            task: Task {
                await engine.setTaskEnvironment(environment)
                try await engine.run()
            })
    }

    private init(lock: EngineLock, task: Task<Void, any Error>) {
        self.lock = lock
        self.task = task
        let flag = interrupted
        signals = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { flag.set() }
            source.resume()
            return source
        }
    }

    func stop() async {
        task.cancel()
        _ = await task.result
        for source in signals { source.cancel() }
        signal(SIGINT, SIG_DFL)
        signal(SIGTERM, SIG_DFL)
        withExtendedLifetime(lock) {}
    }
}

/// Set from a signal handler, read by the follow loop.
final class InterruptFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

/// Prints a run's progress until it ends. With a local engine, Ctrl-C ends the wait (exit 130).
func watch(
    runID: Int64, json: Bool, local: LocalEngine?, fetch: () async throws -> APIRun
) async throws -> RunState {
    let interactive = isatty(STDOUT_FILENO) == 1 && !json
    var reported: [String: String] = [:]
    if !json { writeOut("run \(runID) started; following it (Ctrl-C stops following, not the run)") }
    while true {
        let run = try await fetch()
        let tasks = run.tasks ?? []
        let terminal = Set(["success", "failed", "upstream_failed", "skipped", "cancelled"])
        if !json {
            if interactive {
                let done = tasks.filter { terminal.contains($0.state) }.count
                let running = tasks.filter { $0.state == "running" }.map(\.task)
                let elapsed = Format.duration(run.started_at ?? run.created_at, run.ended_at)
                let line = "[\(done)/\(tasks.count) tasks done] \(running.isEmpty ? run.state : "running: " + running.joined(separator: ", "))  \(elapsed)"
                writeOut("\r\u{1B}[2K" + line, newline: false)
            }
            for task in tasks where terminal.contains(task.state) && reported[task.task] != task.state {
                reported[task.task] = task.state
                let mark = task.state == "success" ? "✓" : (task.state == "skipped" ? "-" : "✗")
                let timing = task.started_at == nil ? "" : " in \(Format.duration(task.started_at, task.ended_at))"
                let note = task.reason.map { ": \($0)" } ?? ""
                if interactive { writeOut("\r\u{1B}[2K", newline: false) }
                writeOut("  \(mark) \(task.task) \(task.state)\(timing)\(note)")
            }
        }
        if let state = RunState(rawValue: run.state), state.isTerminal {
            if json {
                printJSON(run)
            } else {
                if interactive { writeOut("\r\u{1B}[2K", newline: false) }
                writeOut("run \(runID) of \(run.pipeline) \(state == .success ? "succeeded" : state.rawValue) in \(Format.duration(run.started_at ?? run.created_at, run.ended_at))")
                if state != .success {
                    writeOut("see the logs: baton logs \(runID) TASK")
                }
            }
            return state
        }
        if local?.interrupted.isSet == true {
            FileHandle.standardError.write(
                Data("stopped: run \(runID) was running in this process; its running tasks were interrupted and run again when `baton up` starts\n".utf8))
            throw ExitCode(130)
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
    @OptionGroup var remoteOptions: RemoteOptions

    func run() async throws {
        let id = try parseRunID(runID)
        if let client = try remoteOptions.client() {
            try await printRemotely(client, runID: id)
            return
        }
        let database = try await store.openStore()
        guard let run = try await database.run(id: id) else { throw CLIError("no run \(id) in \(store.shownDatabase)") }
        guard run.spec.task(named: task) != nil else {
            throw CLIError("run \(id) of \(run.pipeline) has no task '\(task)'; " + Suggest.hint(for: task, in: run.spec.tasks.map(\.name)))
        }
        var attempts = try await database.attempts(runID: id, task: task)
        if follow && attempts.isEmpty {
            while attempts.isEmpty {
                if let current = try await database.run(id: id), current.state.isTerminal { break }
                try await Task.sleep(for: .milliseconds(200))
                attempts = try await database.attempts(runID: id, task: task)
            }
        }
        guard !attempts.isEmpty else {
            let state = try await database.taskInstances(runID: id).first { $0.task == task }?.state.rawValue ?? "unknown"
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
        // The file where this machine ran the attempt, else the copy a remote worker sent.
        func drain() async throws {
            if let handle = FileHandle(forReadingAtPath: chosen.logPath) {
                defer { try? handle.close() }
                try? handle.seek(toOffset: offset)
                let data = handle.readDataToEndOfFile()
                offset += UInt64(data.count)
                FileHandle.standardOutput.write(data)
            } else if let data = try await database.attemptLog(chosen.key, from: Int(offset), limit: 64 << 20) {
                offset += UInt64(data.count)
                FileHandle.standardOutput.write(data)
            }
        }
        try await drain()
        guard follow else { return }
        while true {
            let current = try await database.attempts(runID: id, task: task).first { $0.attempt == chosen.attempt }
            if !(current?.state.isOpen ?? false) {
                try await drain()
                return
            }
            try await Task.sleep(for: .milliseconds(200))
            try await drain()
        }
    }

    /// Reads the log through the API: whole, or followed by offset while the attempt runs.
    func printRemotely(_ client: BatonClient, runID id: Int64) async throws {
        let base = "/api/v1/runs/\(id)/tasks/\(percentEncoded(task))/logs"
        var offset = 0
        while true {
            var path = base + "?offset=\(offset)"
            if let attempt { path += "&attempt=\(attempt)" }
            let chunk = try await remote { () async throws(BatonClient.ClientError) in
                try await client.get(path, as: APILogChunkView.self)
            }
            FileHandle.standardOutput.write(Data(chunk.content.utf8))
            offset = chunk.next_offset
            if !follow || chunk.complete { return }
            if chunk.content.isEmpty { try await Task.sleep(for: .milliseconds(300)) }
        }
    }
}

/// The fields of a log chunk the CLI needs.
struct APILogChunkView: Decodable, Sendable {
    var next_offset: Int
    var complete: Bool
    var content: String
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
    @OptionGroup var remoteOptions: RemoteOptions

    func run() async throws {
        let id = try parseRunID(runID)
        if let client = try remoteOptions.client() {
            let run = try await remote { () async throws(BatonClient.ClientError) in
                try await client.post("/api/v1/runs/\(id)/cancel", body: Optional<APITriggerRequest>.none, as: APIRun.self)
            }
            print("cancelled run \(run.id) (\(run.state))")
            return
        }
        let database = try await store.openStore()
        guard let run = try await database.run(id: id) else { throw CLIError("no run \(id) in \(store.shownDatabase)") }
        guard !run.state.isTerminal else {
            print("run \(id) already ended: \(run.state.rawValue)")
            return
        }
        _ = try await database.requestCancel(runID: id)
        if !store.isPostgres, let lock = EngineLock(databasePath: store.databasePath) {
            // No engine is running: apply the cancellation here.
            var machine = RunStateMachine(
                spec: run.spec, params: run.params, state: run.state,
                tasks: Dictionary(uniqueKeysWithValues: try await database.taskInstances(runID: id).map { ($0.task, $0.progress) }))
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
            try await database.commit(changes)
            withExtendedLifetime(lock) {}
            print("cancelled run \(id)")
            return
        }
        for _ in 0..<50 {
            if let current = try await database.run(id: id), current.state.isTerminal {
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
        let database = try await store.openStore()
        let spec = try await resolvePipeline(pipeline, store: database, folder: folder.pipelines)
        let records: [RunRecord]
        do {
            records = try RunFactory.backfill(spec, from: start, to: end, now: Date())
        } catch {
            throw CLIError("\(error)")
        }
        var created: [RunRecord] = []
        var existing = 0
        for record in records {
            let (run, isNew) = try await database.createRun(record)
            if isNew { created.append(run) } else { existing += 1 }
        }
        if output.json && !wait {
            printJSON(created.map { APIRun($0) })
        } else if !output.json {
            print("backfill of \(spec.name): \(created.count) runs created, \(existing) intervals already had a run")
        }
        guard wait else { return }
        // One engine for all the runs (it runs them per max_active_runs), not one per run.
        let local = LocalEngine.startIfNoServer(database: database, store: store, folder: folder.pipelines, json: output.json)
        let failed = try await withLocalEngine(local) {
            var failed = 0
            for run in created {
                let state = try await watch(runID: run.id, json: output.json, local: local) {
                    guard let current = try await database.run(id: run.id) else { throw CLIError("run \(run.id) disappeared") }
                    return APIRun(current, tasks: try await database.taskInstances(runID: run.id))
                }
                if state != .success { failed += 1 }
            }
            return failed
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
        let database = try await store.openStore()
        guard try await database.pipeline(named: pipeline) != nil else {
            throw CLIError("unknown pipeline '\(pipeline)' in \(store.shownDatabase) (pipelines appear once `baton up` has loaded them)")
        }
        try await database.setPaused(true, pipeline: pipeline)
        print("paused \(pipeline)")
    }
}

struct UnpauseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "unpause", abstract: "Resume scheduling a pipeline.")

    @Argument(help: "Pipeline name.") var pipeline: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        let database = try await store.openStore()
        guard try await database.pipeline(named: pipeline) != nil else {
            throw CLIError("unknown pipeline '\(pipeline)' in \(store.shownDatabase)")
        }
        try await database.setPaused(false, pipeline: pipeline)
        print("unpaused \(pipeline)")
    }
}

/// Unbuffered output, so progress lines appear as they happen, in order.
func writeOut(_ text: String, newline: Bool = true) {
    FileHandle.standardOutput.write(Data((newline ? text + "\n" : text).utf8))
}
