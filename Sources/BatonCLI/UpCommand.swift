import ArgumentParser
import BatonCore
import BatonDeploy
import BatonEngine
import BatonGateway
import BatonRegistry
import BatonStore
import Foundation
import Logging
import BatonServer
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

struct UpCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Run Baton: scheduler, local worker slots, REST API and web UI in one process.",
        discussion: """
            Loads every pipeline file in the folder (and reloads them when they change), creates
            scheduled runs, runs tasks as child processes, and serves the web UI and the REST API
            (http://127.0.0.1:8080 by default). State is kept in one SQLite file; stop it with
            Ctrl-C, or kill it: on restart, unfinished runs continue.

            On 127.0.0.1 the API needs no token. On any other address it requires API tokens
            (`baton tokens create`) unless --insecure is given.

            Examples:
              baton up --pipelines examples/pipelines
              baton up --slots 8 --db /var/lib/baton/baton.db --host 0.0.0.0 --port 8080
            """)

    @OptionGroup var options: ServeOptions

    func validate() throws { try options.validate() }

    func run() async throws { try await options.serve() }
}

/// `baton server`: the same process as `baton up`, named for deployments where it runs as a
/// service behind other machines' workers.
struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the Baton server (the same process as `baton up`).",
        discussion: """
            Examples:
              baton server --host 0.0.0.0 --port 8080 --db /var/lib/baton/baton.db
            """)

    @OptionGroup var options: ServeOptions

    func validate() throws { try options.validate() }

    func run() async throws { try await options.serve() }
}

struct ServeOptions: ParsableArguments {
    static let taskTeam = "baton-tasks"

    /// A token for tasks of this server (operator: publish events, emit metrics, trigger).
    /// Tokens minted by earlier starts are revoked, so only the running server's one works.
    static func taskToken(_ context: ServerContext) async throws -> String {
        for token in try await context.store.tokens() where token.team == taskTeam && token.revokedAt == nil {
            _ = try await context.store.revokeToken(id: token.id, at: Date())
        }
        let created = try await context.tokens.create(
            team: taskTeam, role: .operator, description: "tasks of baton up (pid \(getpid()))")
        return created.token
    }

    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption

    @Option(help: "Tasks that may run at once in this process (default: the number of CPU cores; 0: only remote workers run tasks).")
    var slots: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("queue"), help: ArgumentHelp("A queue this process's slots serve (repeatable; default: default).", valueName: "name"))
    var queues: [String] = []

    @Option(name: .customLong("pool"), help: ArgumentHelp("The slot limit of a pool, across all workers, like warehouse=2 (repeatable).", valueName: "name=slots"))
    var poolLimits: [String] = []

    @Option(help: ArgumentHelp("How long a worker's claim on a task holds without a heartbeat; then the attempt is lost and retried.", valueName: "duration"))
    var lease: String = "30s"

    @Option(help: ArgumentHelp("How the other servers reach this one when it leads (default: http://HOST:PORT).", valueName: "url"))
    var advertise: String?

    @Option(help: "Most missed intervals created per pipeline when catching up.")
    var maxCatchup: Int = 50

    @Option(help: "Address to serve the API and UI on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to serve the API and UI on; 0 picks a free one.")
    var port: Int = 8080

    @Flag(help: "Require API tokens even on 127.0.0.1.")
    var auth = false

    @Flag(help: "Serve a non-loopback address without API tokens (anyone who can reach it may run pipelines).")
    var insecure = false

    @Option(help: "Log level: trace, debug, info, warning, error.")
    var logLevel: String = "info"

    @Option(
        help: ArgumentHelp(
            "How long metric points are kept (like 30d, 12h); older ones are deleted every hour.", valueName: "duration"))
    var metricsRetention: String = "30d"

    /// `--metrics-retention` in seconds; checked by `validate()`.
    @Option(
        help: ArgumentHelp(
            "Folder for MLflow artifacts (model files); servers sharing PostgreSQL need a shared folder (default: DATA_DIR/artifacts).",
            valueName: "dir"))
    var artifactRoot: String?

    @Option(help: ArgumentHelp("Largest artifact file accepted, in MB.", valueName: "MB"))
    var maxArtifactMB: Int = 5120

    var metricsRetentionSeconds: Double { (try? DurationText.seconds(metricsRetention)) ?? MetricsRetentionService.defaultRetention }

    func validate() throws {
        do {
            // Under an hour would purge points a dashboard of the last hour still shows.
            guard try DurationText.seconds(metricsRetention) >= 3600 else {
                throw ValidationError("--metrics-retention '\(metricsRetention)' is too short; keep metrics for at least 1h")
            }
        } catch let error as DurationText.ParseError {
            throw ValidationError("--metrics-retention: \(error.description)")
        }
        guard slots >= 0 else { throw ValidationError("--slots must be 0 or more") }
        _ = try parsedPools()
        for queue in queues where !PipelineParser.isValidWorkName(queue) {
            throw ValidationError("--queue '\(queue)' is not a queue name: use letters, digits, '_', '-' and '.', starting with a letter")
        }
        do {
            guard try DurationText.seconds(lease) >= 1 else { throw ValidationError("--lease '\(lease)' is too short; use at least 1s") }
        } catch let error as DurationText.ParseError {
            throw ValidationError("--lease: \(error.description)")
        }
        guard maxCatchup >= 1 else { throw ValidationError("--max-catchup must be at least 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is not a port number (0-65535)") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level '\(logLevel)' is not one of trace, debug, info, warning, error")
        }
        if auth && insecure { throw ValidationError("--auth and --insecure contradict each other; pick one") }
    }

    /// `--pool name=slots` as a table; the first error names the flag's value and the fix.
    func parsedPools() throws -> [String: Int] {
        var pools: [String: Int] = [:]
        for entry in poolLimits {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, PipelineParser.isValidWorkName(parts[0]), let size = Int(parts[1]), size >= 1 else {
                throw ValidationError("--pool '\(entry)' must be NAME=SLOTS with SLOTS at least 1, like warehouse=2")
            }
            pools[parts[0]] = size
        }
        return pools
    }

    var requireAuth: Bool {
        if auth { return true }
        if insecure { return false }
        return !ServerConfiguration.isLoopback(host)
    }

    func serve() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = ConsoleLogHandler(label: label)
            handler.logLevel = label == "baton" ? level : max(level, .warning)
            return handler
        }
        let logger = Logger(label: "baton")
        // One engine per SQLite file, by a lock the kernel releases if the process dies. Servers
        // sharing PostgreSQL need no such file: they elect one leader through the database.
        let lock: EngineLock?
        if store.isPostgres {
            lock = nil
        } else {
            guard let held = EngineLock(databasePath: store.databasePath) else {
                let holder = EngineLock.holder(databasePath: store.databasePath).map { " (pid \($0))" } ?? ""
                throw CLIError("another `baton up` is already running on \(store.databasePath)\(holder); stop it first or use another --db")
            }
            lock = held
        }
        let database: any Store
        do {
            database = try await BatonStore.openStore(store.location, logger: logger)
        } catch {
            throw CLIError("\(error)")
        }
        let metrics = MetricsRegistry.shared
        let engine = Engine(
            store: database,
            configuration: EngineConfiguration(
                pipelinesDirectory: folder.pipelines, dataDirectory: store.dataDirectory, slots: slots,
                maxCatchupRuns: maxCatchup, leaseSeconds: (try? DurationText.seconds(lease)) ?? 30,
                workerID: localWorkerID, queues: queues.isEmpty ? [TaskSpec.defaultQueue] : queues,
                pools: try parsedPools(), artifactRoot: artifactRoot ?? store.dataDirectory + "/artifacts"),
            logger: logger)
        let initial = PipelineRepository.load(directory: folder.pipelines)
        logger.info(
            "baton up: \(initial.pipelines.count) pipelines from \(folder.pipelines), \(slots) slots, database \(store.shownDatabase)")
        if !initial.errors.isEmpty {
            logger.warning("\(initial.errors.count) problems in pipeline files; run `baton validate \(folder.pipelines)` for details")
        }
        let serverConfiguration = ServerConfiguration(
            host: host, port: port, requireAuth: requireAuth, artifactRoot: artifactRoot ?? store.dataDirectory + "/artifacts",
            maxArtifactBytes: Int64(max(1, maxArtifactMB)) << 20)
        // The gateway routes predictions to the replicas the deployment manager supervises.
        let gateway = Gateway(logger: logger)
        let deployments = DeploymentManager(
            store: database,
            resolver: RegistryModelResolver(
                registry: Registry(store: database, artifactRoot: artifactRoot ?? store.dataDirectory + "/artifacts")),
            router: gateway, configuration: DeploymentConfiguration(dataDirectory: store.dataDirectory), logger: logger)
        await engine.setDeploymentListener { specs, keptFiles in
            await deployments.applyFolder(specs, keptFiles: keptFiles)
        }
        // SLO and drift alerts are engine events too, so a retraining pipeline can trigger on them.
        await deployments.setAlertPublisher { name, payload in
            do {
                _ = try await engine.publish(name: name, payload: payload, source: "deployments")
            } catch {
                logger.warning("the alert event \(name) was not published: \(error)")
            }
        }
        let context = ServerContext(
            store: database, engine: engine, configuration: serverConfiguration, metrics: metrics,
            pipelinesDirectory: folder.pipelines, leadership: Leadership(advertisedURL: advertise, alone: !store.isPostgres),
            deployments: deployments, gateway: gateway)
        let host = self.host
        let authNote = requireAuth
            ? "API tokens required (create one with `baton tokens create --team T --role operator`)"
            : (ServerConfiguration.isLoopback(host)
                ? "auth off on loopback (use --auth to require API tokens)"
                : "WARNING: auth off on a non-loopback address (--insecure)")
        let taskToken = requireAuth ? try await Self.taskToken(context) : nil
        let application = BatonHTTP.application(context: context, logger: logger) { port in
            let shown = host.contains(":") ? "[\(host)]" : host
            logger.info("web UI and API on http://\(shown):\(port) (\(authNote))")
            // Tasks reach this server through the `baton` CLI or plain HTTP with these.
            let reachable = ServerConfiguration.isLoopback(host) || host == "0.0.0.0" || host == "::" ? "127.0.0.1" : shown
            let wildcard = host == "0.0.0.0" || host == "::"
            context.leadership?.listening(at: "http://\(wildcard ? ProcessInfo.processInfo.hostName : shown):\(port)")
            var variables = ["BATON_SERVER": "http://\(reachable):\(port)"]
            if let taskToken { variables["BATON_TOKEN"] = taskToken }
            variables.merge(cliEnvironment()) { _, new in new }
            await engine.setTaskEnvironment(variables)
            await deployments.setServerURL("http://\(reachable):\(port)", token: taskToken)
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [
                    .init(
                        service: LeaderElectionService(
                            engine: engine, store: database, leadership: context.leadership!, logger: logger,
                            deployments: deployments)),
                    .init(service: application),
                    .init(
                        service: MetricsRetentionService(
                            store: database, retention: metricsRetentionSeconds, logger: logger)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        let outcome: Result<Void, any Error>
        do {
            try await group.run()
            outcome = .success(())
        } catch {
            outcome = .failure(error)
        }
        // Closed on every way out: the leader lock's connection ends with a goodbye, so the next
        // leader takes over at once instead of when the server notices the connection is gone.
        if let postgres = database as? PostgresStore { await postgres.close() }
        withExtendedLifetime(lock) {}
        if case .failure(let error) = outcome { throw CLIError("\(error)") }
    }

    /// The id of this process's own slots in claims. One process holds a SQLite database, so a
    /// fixed id lets a restart recognise its predecessor's attempts as lost at once; replicas
    /// sharing PostgreSQL each need their own (the others' expire with their leases).
    var localWorkerID: String {
        store.isPostgres ? "\(ProcessInfo.processInfo.hostName)-\(getpid())-local" : "local"
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
