import AsyncHTTPClient
import BatonCore
import BatonGateway
import BatonStore
import BatonWorker
import Foundation
import Logging
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

public enum ReplicaState: String, Sendable, Hashable, Codable {
    case starting, healthy, unhealthy, draining, stopped, crashed
}

/// One replica as the status document shows it.
public struct ReplicaSnapshot: Sendable, Hashable {
    public var id: String
    public var deployment: String
    public var version: String
    public var index: Int
    public var port: Int
    public var pid: Int32?
    public var state: ReplicaState
    public var restarts: Int
    public var logPath: String
}

/// How often replicas are checked and how long they get; shortened in tests.
public struct SupervisorTiming: Sendable {
    public var startingCheckInterval: Duration = .milliseconds(250)
    public var healthyCheckInterval: Duration = .seconds(5)
    public var failuresBeforeUnhealthy = 3
    public var healthTimeout: Duration = .seconds(2)
    /// How long a draining replica keeps running after it left routing, for requests in flight.
    public var drainWait: Duration = .seconds(10)
    /// Seconds between SIGTERM and SIGKILL of a stopping replica's process group.
    public var terminationGrace: Double = 5
    /// Restart delays: `backoffUnit` × 1, 2, 4 … up to `maxBackoff`.
    public var backoffUnit: Duration = .seconds(1)
    public var maxBackoff: Duration = .seconds(60)
    public var maxLogBytes = 8 * 1024 * 1024

    public init() {}
}

/// What a replica runs.
struct ReplicaLaunch: Sendable {
    var deployment: String
    var version: PlacedVersion
    var index: Int
    var spec: DeploymentSpec
    var environment: [String: String]

    var id: String { "\(deployment)-\(version.version)-\(index)" }
}

/// Runs replicas: each is `/bin/sh -c COMMAND` in a process group of its own (through the
/// worker's process runner, which signals whole groups), on a free loopback port, health-checked,
/// restarted with backoff when it exits, drained and stopped on request. A replica's exit ends
/// the runner's wait at once, so crashes are seen without polling.
actor ReplicaSupervisor {
    struct Entry {
        var launch: ReplicaLaunch
        var port: Int = 0
        var pid: Int32?
        var state: ReplicaState = .starting
        var restarts = 0
        var failures = 0
        var stopRequested = false
        var handle: AttemptHandle?
        var task: Task<Void, Never>?
        var generation = 0
    }

    let dataDirectory: String
    let store: any DeploymentStore
    let timing: SupervisorTiming
    let logger: Logger
    let clock: @Sendable () -> Date
    let httpClient: HTTPClient
    private var entries: [String: Entry] = [:]
    private var listener: (@Sendable (String) async -> Void)?
    /// Requests a replica is answering now, from the gateway; nil when it does not count.
    private var inFlight: @Sendable (String) -> Int? = { _ in nil }

    init(
        dataDirectory: String, store: any DeploymentStore, timing: SupervisorTiming, logger: Logger,
        clock: @escaping @Sendable () -> Date, httpClient: HTTPClient
    ) {
        self.dataDirectory = dataDirectory
        self.store = store
        self.timing = timing
        self.logger = logger
        self.clock = clock
        self.httpClient = httpClient
    }

    /// Called with the deployment's name whenever one of its replicas changes state.
    func setListener(_ listener: @escaping @Sendable (String) async -> Void) { self.listener = listener }

    func setInFlight(_ inFlight: @escaping @Sendable (String) -> Int?) { self.inFlight = inFlight }

    func replicas(deployment: String) -> [ReplicaSnapshot] {
        entries.values.filter { $0.launch.deployment == deployment }.map(snapshot).sorted { $0.id < $1.id }
    }

    func snapshot(_ entry: Entry) -> ReplicaSnapshot {
        ReplicaSnapshot(
            id: entry.launch.id, deployment: entry.launch.deployment, version: entry.launch.version.version, index: entry.launch.index,
            port: entry.port, pid: entry.pid, state: entry.state, restarts: entry.restarts, logPath: logPath(entry.launch))
    }

    /// Healthy replicas of a version: the only ones that take traffic.
    func endpoints(deployment: String, version: String) -> [GatewayEndpoint] {
        entries.values.filter { $0.launch.deployment == deployment && $0.launch.version.version == version && $0.state == .healthy }
            .sorted { $0.launch.index < $1.launch.index }
            .map { GatewayEndpoint(host: "127.0.0.1", port: $0.port, replicaID: $0.launch.id) }
    }

    func logPath(_ launch: ReplicaLaunch) -> String { "\(dataDirectory)/deployments/\(launch.deployment)/logs/\(launch.id).log" }

    /// Starts a replica unless one with its id is supervised already.
    func start(_ launch: ReplicaLaunch) {
        guard entries[launch.id] == nil else { return }
        entries[launch.id] = Entry(launch: launch)
        let id = launch.id
        entries[id]?.task = Task { await self.supervise(id) }
    }

    /// Takes a replica out of routing, lets the requests it is answering finish (at most
    /// `drainWait`), then stops its process group (SIGTERM, SIGKILL after the grace) and
    /// forgets it.
    func drainAndStop(_ id: String, reason: String) async {
        guard var entry = entries[id], entry.state != .draining else { return }
        entry.state = .draining
        entries[id] = entry
        await record(entry.launch, "replica.draining", reason: reason)
        await notify(entry.launch.deployment)
        // The gateway counts each replica's requests; checked every 20 ms only while draining.
        // A short grace first covers a request that chose this replica just before the routing
        // changed and has not been counted yet.
        let deadline = ContinuousClock.now + timing.drainWait
        try? await Task.sleep(for: min(timing.drainWait, .milliseconds(100)))
        while ContinuousClock.now < deadline, !Task.isCancelled, inFlight(id) != 0 {
            try? await Task.sleep(for: .milliseconds(20))
        }
        await stop(id)
    }

    /// Stops a replica at once (no drain), waiting until its process is gone.
    func stop(_ id: String) async {
        guard var entry = entries[id] else { return }
        entry.stopRequested = true
        entries[id] = entry
        if let handle = entry.handle {
            handle.stop(grace: timing.terminationGrace)
        }
        // A replica waiting out a restart backoff has no process: cancelling ends the wait.
        if entry.handle == nil || entry.state == .crashed { entry.task?.cancel() }
        await entry.task?.value
        entries[id] = nil
        await notify(entry.launch.deployment)
    }

    /// Stops every replica (Baton is shutting down); the store keeps what should run.
    func stopAll() async {
        for id in entries.keys.sorted() {
            entries[id]?.stopRequested = true
            if let handle = entries[id]?.handle {
                handle.stop(grace: timing.terminationGrace)
            } else {
                entries[id]?.task?.cancel()
            }
        }
        for id in entries.keys.sorted() {
            await entries[id]?.task?.value
            entries[id] = nil
        }
    }

    private func notify(_ deployment: String) async { await listener?(deployment) }

    private func record(_ launch: ReplicaLaunch, _ action: String, reason: String? = nil, detail: JSONValue? = nil) async {
        var object: [String: JSONValue] = ["replica": .string(launch.id)]
        if case .object(let extra) = detail { object.merge(extra) { _, new in new } }
        do {
            try await store.recordDeploymentEvent(
                DeploymentEventRecord(
                    deployment: launch.deployment, at: clock(), actor: "baton", action: action, version: launch.version.version,
                    reason: reason, detailJSON: JSONValue.object(object).compactJSON))
        } catch {
            logger.error("could not record \(action) of replica \(launch.id): \(error)")
        }
    }

    private func supervise(_ id: String) async {
        var backoffExponent = 0
        while let entry = entries[id], !entry.stopRequested, !Task.isCancelled {
            let launch = entry.launch
            guard let port = Self.freePort() else {
                logger.error("no free loopback port for replica \(id)")
                try? await Task.sleep(for: timing.backoffUnit)
                continue
            }
            let handle = AttemptHandle()
            entries[id]?.port = port
            entries[id]?.handle = handle
            entries[id]?.state = .starting
            entries[id]?.failures = 0
            entries[id]?.pid = nil
            entries[id]?.generation += 1
            let generation = entries[id]?.generation ?? 0
            await record(launch, "replica.starting", detail: .object(["port": .number(Double(port))]))
            await notify(launch.deployment)
            let request = attemptRequest(launch, port: port)
            let runner = TaskProcessRunner()
            let outcome: AttemptOutcome = await withTaskGroup(of: AttemptOutcome?.self) { group in
                group.addTask {
                    await runner.run(request, handle: handle) { pid in await self.started(id, pid: pid, generation: generation) }
                }
                group.addTask {
                    await self.checkHealth(id, port: port, path: launch.spec.health, generation: generation, logPath: request.logPath)
                    return nil
                }
                var result = AttemptOutcome(status: .stopped, duration: 0)
                while let next = await group.next() {
                    if let next {
                        result = next
                        break
                    }
                }
                group.cancelAll()
                return result
            }
            entries[id]?.handle = nil
            entries[id]?.pid = nil
            unlink(pidPath(launch))
            // A replica that exits while draining was on its way out anyway.
            if entries[id]?.stopRequested ?? true || Task.isCancelled || entries[id]?.state == .draining {
                entries[id]?.state = .stopped
                await record(launch, "replica.stopped", reason: outcome.reason)
                return
            }
            let wasHealthy = entries[id]?.state == .healthy || entries[id]?.state == .unhealthy
            if wasHealthy { backoffExponent = 0 }
            entries[id]?.state = .crashed
            await notify(launch.deployment)
            let delay = timing.backoffUnit * (1 << min(backoffExponent, 16))
            let wait = delay < timing.maxBackoff ? delay : timing.maxBackoff
            backoffExponent += 1
            await record(
                launch, "replica.crashed", reason: outcome.reason ?? "exited",
                detail: .object(["restart_in_seconds": .number(Self.seconds(wait))]))
            logger.warning("replica \(id) \(outcome.reason ?? "exited"); restarting in \(Self.seconds(wait))s")
            try? await Task.sleep(for: wait)
            guard !Task.isCancelled, !(entries[id]?.stopRequested ?? true) else {
                entries[id]?.state = .stopped
                await record(launch, "replica.stopped", reason: "stopped while waiting to restart")
                return
            }
            entries[id]?.restarts += 1
            await record(launch, "replica.restarted", detail: .object(["restarts": .number(Double(entries[id]?.restarts ?? 0))]))
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func started(_ id: String, pid: Int32, generation: Int) {
        guard entries[id]?.generation == generation, let launch = entries[id]?.launch else { return }
        entries[id]?.pid = pid
        // Replicas run in groups of their own and outlive a Baton that is killed: the pid file
        // lets the next start find and stop them.
        let ticks = ProcessGroup.startTicks(of: pid).map(String.init) ?? ""
        try? "\(pid) \(ticks)\n".write(toFile: pidPath(launch), atomically: true, encoding: .utf8)
    }

    func pidPath(_ launch: ReplicaLaunch) -> String { "\(dataDirectory)/deployments/\(launch.deployment)/\(launch.id).pid" }

    /// Stops the replicas a previous Baton process left running (it was killed before it could
    /// stop them), recognised by their pid and start time, so a pid reused since is never hit.
    func reapLeftovers() -> Int {
        let root = "\(dataDirectory)/deployments"
        var stopped = 0
        for folder in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] {
            for file in (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(folder)")) ?? [] where file.hasSuffix(".pid") {
                let path = "\(root)/\(folder)/\(file)"
                let fields = ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: " ").map {
                    $0.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                if fields.count == 2, let pid = Int32(fields[0]), let ticks = Int64(fields[1]),
                    ProcessGroup.startTicks(of: pid) == ticks
                {
                    ProcessGroup.killNow(pid)
                    stopped += 1
                    logger.warning("stopped replica \(file.dropLast(4)) (pid \(pid)) left running by a previous Baton process")
                }
                unlink(path)
            }
        }
        return stopped
    }

    private func attemptRequest(_ launch: ReplicaLaunch, port: Int) -> AttemptRequest {
        var environment = launch.environment
        for (key, value) in launch.spec.env { environment[key] = value }
        environment["BATON_PORT"] = String(port)
        environment["BATON_MODEL_DIR"] = launch.version.modelDir ?? ""
        environment["BATON_MODEL_URI"] = launch.version.modelURI
        environment["BATON_MODEL_VERSION"] = launch.version.version
        environment["BATON_DEPLOYMENT"] = launch.deployment
        environment["BATON_REPLICA"] = launch.id
        let folder = "\(dataDirectory)/deployments/\(launch.deployment)"
        return AttemptRequest(
            arguments: ["/bin/sh", "-c", launch.spec.command], environment: environment,
            workingDirectory: launch.spec.workdir ?? FileManager.default.currentDirectoryPath, logPath: logPath(launch),
            outputPath: "\(folder)/\(launch.id).output", timeout: nil, maxLogBytes: timing.maxLogBytes)
    }

    /// Checks the health path: often while starting, then at a calmer pace. Three missed checks
    /// in a row take a healthy replica out of routing; one answer brings it back.
    private func checkHealth(_ id: String, port: Int, path: String, generation: Int, logPath: String) async {
        while !Task.isCancelled {
            let state = entries[id]?.state ?? .stopped
            guard entries[id]?.generation == generation, state == .starting || state == .healthy || state == .unhealthy else { return }
            let interval = state == .starting ? timing.startingCheckInterval : timing.healthyCheckInterval
            let answered = await probe(port: port, path: path)
            guard !Task.isCancelled, entries[id]?.generation == generation, var entry = entries[id] else { return }
            guard entry.state != .draining, !entry.stopRequested else { return }
            Self.boundLog(logPath, limit: timing.maxLogBytes)
            if answered {
                entry.failures = 0
                if entry.state != .healthy {
                    let previous = entry.state
                    entry.state = .healthy
                    entries[id] = entry
                    // Routing first, the audit trail after: traffic should not wait on a store write.
                    await notify(entry.launch.deployment)
                    await record(entry.launch, "replica.healthy", reason: previous == .unhealthy ? "answers its health checks again" : nil,
                                 detail: .object(["port": .number(Double(port))]))
                }
            } else if entry.state != .starting {
                entry.failures += 1
                entries[id] = entry
                if entry.failures == timing.failuresBeforeUnhealthy, entry.state == .healthy {
                    entries[id]?.state = .unhealthy
                    await notify(entry.launch.deployment)
                    await record(
                        entry.launch, "replica.unhealthy",
                        reason: "missed \(entry.failures) health checks in a row; taken out of routing")
                }
            }
            try? await Task.sleep(for: (entries[id]?.state == .healthy && answered) ? timing.healthyCheckInterval : interval)
        }
    }

    private func probe(port: Int, path: String) async -> Bool {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .GET
        do {
            let response = try await httpClient.execute(request, timeout: .nanoseconds(timing.healthTimeout.nanoseconds))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            return (200..<300).contains(Int(response.status.code))
        } catch {
            return false
        }
    }

    /// Keeps a long-running replica's log bounded: once over the limit, the newest half stays.
    /// The replica writes with O_APPEND, so it carries on at the new end.
    static func boundLog(_ path: String, limit: Int) {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) > limit, let handle = FileHandle(forUpdatingAtPath: path) else { return }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(Int(info.st_size) - limit / 2))
        let tail = handle.readDataToEndOfFile()
        try? handle.truncate(atOffset: 0)
        var kept = Data("[baton: log truncated at \(limit) bytes; the newest half follows]\n".utf8)
        kept.append(tail)
        try? handle.write(contentsOf: kept)
    }

    /// A port the kernel considers free on 127.0.0.1 right now. Another process could take it
    /// before the replica binds; the replica then fails to start and is restarted on a new port.
    static func freePort() -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { return nil }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension Duration {
    var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
