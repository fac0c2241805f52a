import ArgumentParser
import BatonCore
import BatonWorker
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

/// `baton worker`: runs tasks for a Baton server on this machine.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run tasks for a Baton server on this machine (pulls work over HTTP).",
        discussion: """
            The worker asks the server for tasks of its queues (a long poll: it waits without
            polling), runs each as a child process in its own process group, streams the log
            back while it runs, and reports how it ended. It needs an API token with the
            operator role and no database access. Give several --server URLs (or a
            comma-separated list) when servers run as replicas: it moves to the next one when
            one does not answer.

            Tasks see the worker's own environment plus Baton's variables; BATON_SERVER and
            BATON_TOKEN point at the server it talks to. When this machine's copy of the
            pipelines folder lives elsewhere than on the server, pass it with --pipelines.

            On SIGTERM or Ctrl-C, running tasks are stopped and reported as interrupted: they
            run again on a worker. When a worker dies without a word, its tasks are declared
            lost once their lease expires (see `baton server --lease`) and retried per policy.

            Examples:
              baton worker --server http://baton.internal:8080 --token $BATON_TOKEN
              baton worker --server http://a:8080,http://b:8080 --queue gpu --slots 2
            """)

    @Option(
        name: .customLong("server"),
        help: ArgumentHelp("A Baton server (repeatable, or comma-separated; or BATON_SERVER).", valueName: "url"))
    var servers: [String] = []

    @Option(help: ArgumentHelp("API token with the operator role (or BATON_TOKEN).", valueName: "token"))
    var token: String?

    @Option(name: .customLong("queue"), help: ArgumentHelp("A queue to serve (repeatable; default: default).", valueName: "name"))
    var queues: [String] = []

    @Option(help: "Tasks that may run at once on this worker (default: the number of CPU cores).")
    var slots: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("id"), help: ArgumentHelp("This worker's id (default: HOST-PID); unique among live workers.", valueName: "id"))
    var workerID: String?

    @Option(help: ArgumentHelp("Folder for logs and outputs of running tasks (default: a temporary folder).", valueName: "dir"))
    var workDir: String?

    @Option(help: ArgumentHelp("This machine's copy of the server's pipelines folder, when its path differs.", valueName: "dir"))
    var pipelines: String?

    @Option(help: "Log level: trace, debug, info, warning, error.")
    var logLevel: String = "info"

    var serverList: [String] { RemoteWorkerConfiguration.servers(from: servers) }

    func validate() throws {
        if let problem = RemoteWorkerConfiguration.problem(servers: serverList, slots: slots, queues: queues, logLevel: logLevel) {
            throw ValidationError(problem)
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = ConsoleLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "baton.worker")
        let workDirectory = workDir ?? NSTemporaryDirectory() + "baton-worker-\(getpid())"
        let worker: RemoteWorker
        do {
            worker = try RemoteWorker(
                configuration: RemoteWorkerConfiguration(
                    servers: serverList, token: token ?? ProcessInfo.processInfo.environment["BATON_TOKEN"],
                    queues: queues.isEmpty ? [TaskSpec.defaultQueue] : queues, slots: slots,
                    workerID: workerID ?? RemoteWorkerConfiguration.defaultWorkerID(), workDirectory: workDirectory,
                    pipelinesDirectory: pipelines.map { URL(fileURLWithPath: $0).standardizedFileURL.path }),
                logger: logger)
        } catch {
            throw CLIError("\(error)")
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: WorkerService(worker: worker))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if workDir == nil { try? FileManager.default.removeItem(atPath: workDirectory) }
    }
}

struct WorkerService: Service {
    let worker: RemoteWorker

    func run() async throws {
        await cancelWhenGracefulShutdown { await worker.run() }
    }
}
