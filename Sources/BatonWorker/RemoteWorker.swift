import BatonAPI
import BatonCore
import Foundation
import Logging

/// Settings of a `baton worker` process.
public struct RemoteWorkerConfiguration: Sendable {
    /// Servers to talk to, tried in turn when one does not answer (several replicas).
    public var servers: [String]
    public var token: String?
    public var queues: [String]
    public var slots: Int
    public var workerID: String
    /// Logs and output files of running attempts live here until they are sent.
    public var workDirectory: String
    /// This machine's copy of the pipelines folder, when it is not at the server's path.
    public var pipelinesDirectory: String?
    /// How often a running attempt's new log lines are sent.
    public var logFlushInterval: Duration

    public init(
        servers: [String], token: String?, queues: [String], slots: Int, workerID: String, workDirectory: String,
        pipelinesDirectory: String? = nil, logFlushInterval: Duration = .milliseconds(250)
    ) {
        self.servers = servers
        self.token = token
        self.queues = queues
        self.slots = max(1, slots)
        self.workerID = workerID
        self.workDirectory = workDirectory
        self.pipelinesDirectory = pipelinesDirectory
        self.logFlushInterval = logFlushInterval
    }

    /// `--server` values (repeatable, or comma-separated), else `BATON_SERVER`.
    public static func servers(
        from given: [String], environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String] {
        let values = given.isEmpty ? [environment["BATON_SERVER"] ?? ""] : given
        return values.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            .filter { !$0.isEmpty }
    }

    /// What is wrong with a worker's command line, as the message to print, or nil.
    public static func problem(servers: [String], slots: Int, queues: [String], logLevel: String) -> String? {
        guard !servers.isEmpty else {
            return "name the server to work for: --server http://HOST:PORT (or set BATON_SERVER)"
        }
        guard (1...1000).contains(slots) else { return "--slots must be between 1 and 1000" }
        for queue in queues where !PipelineParser.isValidWorkName(queue) {
            return "--queue '\(queue)' is not a queue name: use letters, digits, '_', '-' and '.', starting with a letter"
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            return "--log-level '\(logLevel)' is not one of trace, debug, info, warning, error"
        }
        return nil
    }

    /// `host-pid`: unique among live workers, and readable in the UI and logs.
    public static func defaultWorkerID() -> String {
        "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
    }
}

/// A worker on another machine: pulls attempts from a Baton server over HTTP (long poll),
/// runs each in its own process group, streams its log back while it runs, renews its
/// leases, and reports how it ended. It holds no database credentials.
///
/// Every call is retried against the next server when one does not answer, so a worker rides
/// out a server restart or a replica dying; reports are idempotent (keyed by attempt and
/// worker), so a retried report is never applied twice.
public actor RemoteWorker {
    public nonisolated let configuration: RemoteWorkerConfiguration
    nonisolated let clients: [BatonClient]
    nonisolated let logger: Logger
    nonisolated let runner = TaskProcessRunner()
    nonisolated let inProcess: InProcessLookup?
    private var current = 0
    private var running: [AttemptKey: AttemptHandle] = [:]
    private var leaseSeconds: Double = 30
    private var slotFreed: [CheckedContinuation<Void, Never>] = []

    /// `inProcess` picks the attempts this process runs itself (a BatonKit worker's Swift
    /// closures); every other attempt runs its command as a child process.
    public init(
        configuration: RemoteWorkerConfiguration, logger: Logger = Logger(label: "baton.worker"),
        inProcess: InProcessLookup? = nil
    ) throws {
        guard !configuration.servers.isEmpty else {
            throw BatonClient.ClientError(status: nil, code: nil, message: "name at least one server with --server URL")
        }
        self.configuration = configuration
        self.clients = try configuration.servers.map {
            try BatonClient(server: $0, token: configuration.token, session: BatonClient.concurrentSession)
        }
        self.logger = logger
        self.inProcess = inProcess
    }

    /// Pulls and runs work until the calling task is cancelled; attempts running then are
    /// stopped and reported as interrupted, so they run again elsewhere.
    public func run() async {
        try? FileManager.default.createDirectory(
            atPath: configuration.workDirectory + "/logs", withIntermediateDirectories: true)
        logger.info(
            "worker \(configuration.workerID) serving queues \(configuration.queues.joined(separator: ", ")) with \(configuration.slots) slots from \(configuration.servers.joined(separator: ", "))"
        )
        await withDiscardingTaskGroup { group in
            group.addTask { await self.heartbeats() }
            while !Task.isCancelled {
                let free = configuration.slots - running.count
                if free == 0 {
                    await waitForFreeSlot()
                    continue
                }
                let body = APIClaimRequest(
                    worker: configuration.workerID, queues: configuration.queues, slots: free,
                    wait_seconds: WorkerProtocol.maxWaitSeconds - 5)
                guard
                    let response = await call({ client in
                        try await client.post(
                            "/api/v1/workers/claim", body: body, timeout: WorkerProtocol.maxWaitSeconds + 5,
                            as: APIClaimResponse.self)
                    })
                else { continue }
                leaseSeconds = response.lease_seconds
                for attempt in response.attempts {
                    running[attempt.key] = AttemptHandle()
                    group.addTask { await self.runSlot(attempt) }
                }
            }
            group.cancelAll()
        }
    }

    private func waitForFreeSlot() async {
        await withCheckedContinuation { slotFreed.append($0) }
    }

    private func finished(_ key: AttemptKey) {
        running[key] = nil
        for waiter in slotFreed { waiter.resume() }
        slotFreed.removeAll()
    }

    /// The slot passes from one attempt to the next without freeing it, so the claim loop
    /// does not claim for it too.
    private func handOver(_ key: AttemptKey, to next: AttemptKey) {
        running[key] = nil
        running[next] = AttemptHandle()
    }

    /// Runs attempts in one slot: each report also claims the slot's next attempt, so a busy
    /// worker makes one request per task. When none is queued, the slot goes back to the claim
    /// loop's long poll.
    nonisolated func runSlot(_ first: APIClaimedAttempt) async {
        var current = first
        while true {
            let next = await execute(current, claimNext: !Task.isCancelled)
            guard let next, !Task.isCancelled else {
                await finished(current.key)
                if let next { await giveBack(next) }
                return
            }
            await handOver(current.key, to: next.key)
            current = next
        }
    }

    private func handle(_ key: AttemptKey) -> AttemptHandle { running[key] ?? AttemptHandle() }

    /// Calls the current server, moving to the next one when it cannot be reached. Errors the
    /// server answered with (4xx) are returned to the caller as nil after logging. Gives up
    /// only when the task is cancelled.
    func call<T: Sendable>(_ body: @Sendable (BatonClient) async throws -> T) async -> T? {
        var delay = 0.1
        while !Task.isCancelled {
            let index = current % clients.count
            let client = clients[index]
            do {
                return try await body(client)
            } catch {
                // Cancelled on purpose (shutdown, or the log shipper's last round): not a server fault.
                if Task.isCancelled { return nil }
                let failure = error as? BatonClient.ClientError
                if let status = failure?.status, (400..<500).contains(status), status != 408, status != 429 {
                    logger.error("\(client.baseURL.absoluteString) refused a request: \(failure?.message ?? "\(error)")")
                    return nil
                }
                logger.warning("\(client.baseURL.absoluteString): \(failure?.message ?? "\(error)"); trying again")
                // Several calls fail on the same server at once: move past it once, not once each
                // (two moves would bring them back to it).
                if current % clients.count == index { current += 1 }
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                delay = min(delay * 2, 5)
            }
        }
        return nil
    }

    /// An attempt handed over as this worker stops: reported interrupted at once, so it runs
    /// again elsewhere without waiting for its lease or using a retry.
    nonisolated func giveBack(_ claimed: APIClaimedAttempt) async {
        let key = claimed.key
        let report = APIFinishRequest(
            worker: configuration.workerID, state: .interrupted, exit_code: nil,
            reason: "interrupted: worker \(configuration.workerID) was stopping", output: nil)
        let path = Self.route(key, "finish")
        // One try, outside the cancelled task: if it fails, the lease runs out and it runs again.
        let client = await currentClient()
        _ = await Task { try? await client.post(path, body: report, as: APIFinishResponse.self) }.value
        await finished(key)
    }

    /// Runs one attempt and reports it; returns the next attempt the server handed over.
    nonisolated func execute(_ claimed: APIClaimedAttempt, claimNext: Bool) async -> APIClaimedAttempt? {
        let key = claimed.key
        let name = "\(key.runID)-\(Self.fileSafe(key.task))-\(key.attempt)"
        let logPath = configuration.workDirectory + "/logs/\(name).log"
        let outputPath = configuration.workDirectory + "/output-\(name).json"
        var environment = ProcessInfo.processInfo.environment
        environment["BATON_SERVER"] = await currentServer()
        if let token = configuration.token { environment["BATON_TOKEN"] = token }
        let request = AttemptRequest(
            payload: claimed.payload, logPath: logPath, outputPath: outputPath, baseEnvironment: environment,
            workingDirectory: localPath(claimed.payload.workingDirectory, serverRoot: claimed.payload.pipelinesDirectory))
        let handle = await handle(key)
        let shipper = Task { await self.shipLog(key, path: logPath, untilDone: false) }
        let outcome: AttemptOutcome
        if let task = inProcess?(claimed.payload) {
            outcome = await InProcessTaskRunner().run(
                task, request: request, key: key, pipeline: claimed.payload.pipeline, handle: handle)
        } else {
            outcome = await runner.run(request, handle: handle) { _ in }
        }
        shipper.cancel()
        _ = await shipper.value
        // The last lines, then the end: the server sees the whole log before the attempt ends.
        await shipLog(key, path: logPath, untilDone: true)
        let result = outcome.result(at: Date())
        let report = APIFinishRequest(
            worker: configuration.workerID, state: result.state, exit_code: result.exitCode, reason: result.reason,
            output: result.output, claim_from: claimNext ? configuration.queues : nil)
        let path = Self.route(key, "finish")
        let answer = await call { client in try await client.post(path, body: report, as: APIFinishResponse.self) }
        if answer?.accepted == false {
            logger.warning("the server no longer expected \(key) (declared lost or cancelled); its result was dropped")
        } else {
            logger.info("\(key) \(result.state.rawValue)")
        }
        try? FileManager.default.removeItem(atPath: logPath)
        try? FileManager.default.removeItem(atPath: outputPath)
        return answer?.next
    }

    private func currentClient() -> BatonClient { clients[current % clients.count] }
    private func currentServer() -> String { currentClient().baseURL.absoluteString }

    /// Sends the log's new bytes every flush interval (and once more at the end).
    nonisolated func shipLog(_ key: AttemptKey, path: String, untilDone final: Bool) async {
        let route = Self.route(key, "log")
        let worker = Self.queryValue(configuration.workerID)
        repeat {
            if !final {
                try? await Task.sleep(for: configuration.logFlushInterval)
            }
            while let chunk = await nextChunk(key, path: path) {
                let sent = await call { client in
                    try await client.post(
                        "\(route)?worker=\(worker)&offset=\(chunk.offset)", bytes: chunk.data, as: APILogAppendResponse.self)
                }
                guard let sent else { return }
                await setShipped(key, sent.size)
                if chunk.data.count < WorkerProtocol.maxLogChunkBytes { break }
            }
        } while !final && !Task.isCancelled
    }

    private var shipped: [AttemptKey: Int] = [:]

    private func setShipped(_ key: AttemptKey, _ size: Int) { shipped[key] = size }

    private func nextChunk(_ key: AttemptKey, path: String) -> (offset: Int, data: Data)? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let offset = shipped[key] ?? 0
        let size = Int((try? handle.seekToEnd()) ?? 0)
        guard size > offset else { return nil }
        try? handle.seek(toOffset: UInt64(offset))
        let data = handle.readData(ofLength: min(size - offset, WorkerProtocol.maxLogChunkBytes))
        return data.isEmpty ? nil : (offset, data)
    }

    /// Renews the leases of running attempts; stops the ones the server revoked.
    private func heartbeats() async {
        var last = ContinuousClock.now
        while !Task.isCancelled {
            // Short naps: the lease is learnt from the first claim, and may be much shorter than
            // the default the loop started with.
            let interval = Duration.milliseconds(Int(max(0.2, leaseSeconds / 3) * 1000))
            let remaining = interval - (ContinuousClock.now - last)
            if remaining > .zero {
                // At most a second at a time: the first claim may teach a much shorter lease.
                try? await Task.sleep(for: min(remaining, .seconds(1)))
                continue
            }
            last = ContinuousClock.now
            let keys = Array(running.keys)
            guard !keys.isEmpty else { continue }
            let body = APIHeartbeatRequest(worker: configuration.workerID, attempts: keys)
            guard
                let answer = await call({ client in
                    try await client.post("/api/v1/workers/heartbeat", body: body, as: APIHeartbeatResponse.self)
                })
            else { continue }
            leaseSeconds = answer.lease_seconds
            for key in answer.revoked {
                logger.warning("the server revoked \(key); stopping it")
                running[key]?.stop()
            }
        }
    }

    /// Maps a path under the server's pipelines folder into this machine's copy of it.
    nonisolated func localPath(_ path: String, serverRoot: String) -> String {
        guard let local = configuration.pipelinesDirectory, path == serverRoot || path.hasPrefix(serverRoot + "/") else {
            return path
        }
        return local + path.dropFirst(serverRoot.count)
    }

    /// `/api/v1/workers/attempts/RUN/TASK/ATTEMPT/ACTION`.
    static func route(_ key: AttemptKey, _ action: String) -> String {
        "/api/v1/workers/attempts/\(key.runID)/\(pathSegment(key.task))/\(key.attempt)/\(action)"
    }

    static func fileSafe(_ text: String) -> String {
        String(text.map { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" ? $0 : "_" })
    }

    static func pathSegment(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? text
    }

    static func queryValue(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}
