import ArgumentParser
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run Baton: the scheduler and local worker slots in one process.",
        discussion: """
            Loads every pipeline file in the folder (and reloads them when they change), creates
            scheduled runs, and runs tasks as child processes. State is kept in one SQLite file;
            stop it with Ctrl-C, or kill it: on restart, unfinished runs continue and attempts that
            were running are retried per their policy.

            Examples:
              baton up --pipelines examples/pipelines
              baton up --slots 8 --db /var/lib/baton/baton.db
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption

    @Option(help: "Tasks that may run at once (default: the number of CPU cores).")
    var slots: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(help: "Most missed intervals created per pipeline when catching up.")
    var maxCatchup: Int = 50

    @Option(help: "Log level: trace, debug, info, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        guard slots >= 1 else { throw ValidationError("--slots must be at least 1") }
        guard maxCatchup >= 1 else { throw ValidationError("--max-catchup must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, warning, error")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = ConsoleLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "baton")
        guard let lock = EngineLock(databasePath: store.databasePath) else {
            let holder = EngineLock.holder(databasePath: store.databasePath).map { " (pid \($0))" } ?? ""
            throw CLIError("another `baton up` is already running on \(store.databasePath)\(holder); stop it first or use another --db")
        }
        let sqlite = try store.openStore()
        let engine = Engine(
            store: sqlite,
            configuration: EngineConfiguration(
                pipelinesDirectory: folder.pipelines, dataDirectory: store.dataDirectory, slots: slots,
                maxCatchupRuns: maxCatchup),
            logger: logger)
        let folderPath = folder.pipelines
        let initial = PipelineRepository.load(directory: folderPath)
        logger.info(
            "baton up: \(initial.pipelines.count) pipelines from \(folderPath), \(slots) slots, database \(store.databasePath)")
        if !initial.errors.isEmpty {
            logger.warning("\(initial.errors.count) problems in pipeline files; run `baton validate \(folderPath)` for details")
        }
        let runTask = Task { try await engine.run() }
        let signals = [SIGINT, SIGTERM].map { signalNumber -> any DispatchSourceSignal in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber)
            source.setEventHandler {
                logger.info("stopping (running tasks are stopped and retried on the next start)")
                runTask.cancel()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        do {
            try await runTask.value
        } catch is CancellationError {
        } catch {
            throw CLIError("\(error)")
        }
        withExtendedLifetime(lock) {}
    }
}

/// One readable line per event: time, level, message, then key=value metadata.
struct ConsoleLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let time = Date().formatted(.iso8601.time(includingFractionalSeconds: true).timeSeparator(.colon))
        var line = "\(time) \(event.level.rawValue.uppercased().padding(toLength: 7, withPad: " ", startingAt: 0)) \(event.message)"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        line += "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
