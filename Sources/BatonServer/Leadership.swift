import AsyncHTTPClient
import BatonAPI
import BatonDeploy
import BatonEngine
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import Logging
import ServiceLifecycle
import Synchronization


/// Which replica schedules. Several servers may share one PostgreSQL database; exactly one of
/// them (the holder of the store's leader lock) runs the scheduler and the work queue's engine.
/// The others serve reads themselves and forward every change to the leader.
public final class Leadership: Sendable {
    private struct State {
        var isLeader = false
        var leaderURL: String?
        /// How other servers reach this one (`--advertise`, or the address it listens on).
        var advertisedURL: String?
    }

    private let state: Mutex<State>

    /// `advertisedURL` nil: set by `listening(at:)` once the port is known (`--port 0`).
    /// `alone`: the only server on its store (SQLite): it leads from the start and never
    /// forwards, even before the engine has started.
    public init(advertisedURL: String?, alone: Bool = false) {
        state = Mutex(State(isLeader: alone, advertisedURL: advertisedURL))
    }

    public var isLeader: Bool { state.withLock { $0.isLeader } }
    /// Where changes go. A leader entry naming this server itself while it does not lead (left
    /// by its previous process on the same address) counts as no leader, not as a loop.
    public var leaderURL: String? {
        state.withLock { state in
            if state.isLeader { return state.advertisedURL }
            return state.leaderURL == state.advertisedURL ? nil : state.leaderURL
        }
    }
    public var advertisedURL: String? { state.withLock { $0.advertisedURL } }

    /// Records where this server listens, unless `--advertise` named an address.
    public func listening(at url: String) {
        state.withLock { if $0.advertisedURL == nil { $0.advertisedURL = url } }
    }

    func becameLeader() { state.withLock { $0.isLeader = true } }
    func follow(_ url: String?) {
        state.withLock {
            $0.isLeader = false
            $0.leaderURL = url
        }
    }

    static let metaKey = "leader"
}

/// Campaigns for leadership: runs the engine while this server leads, keeps the pipelines
/// current while it follows. A leader that finds its hold gone stops the process (its engine
/// must not act beside the new leader's); the supervisor restarts it as a follower.
public struct LeaderElectionService: Service {
    let engine: Engine
    let store: any Store
    let leadership: Leadership
    let logger: Logger
    let checkInterval: Duration
    /// Supervised only by the leader: replicas run on the leading server's machine, and a
    /// follower's manager only reads the store.
    let deployments: DeploymentManager?

    public init(
        engine: Engine, store: any Store, leadership: Leadership, logger: Logger, checkInterval: Duration = .seconds(1),
        deployments: DeploymentManager? = nil
    ) {
        self.deployments = deployments
        self.engine = engine
        self.store = store
        self.leadership = leadership
        self.logger = logger
        self.checkInterval = checkInterval
    }

    public struct LeadershipLost: Error, CustomStringConvertible {
        public var description: String {
            "this server lost the leader lock (its database connection dropped); stopping so that only the new leader schedules"
        }
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            let following = Task { await engine.follow() }
            defer { following.cancel() }
            var announced: String?
            while !Task.isCancelled {
                if try await store.tryLead() {
                    following.cancel()
                    await following.value
                    try await lead()
                    return
                }
                let leader = try? await store.meta(Leadership.metaKey)
                if leader != announced {
                    logger.info("following the leader at \(leader ?? "(none yet)")")
                    announced = leader
                }
                leadership.follow(leader)
                try? await Task.sleep(for: checkInterval)
            }
        }
    }

    private func lead() async throws {
        // Followers forward to the published address: it must be the real one, known once the
        // server listens.
        while leadership.advertisedURL == nil { try await Task.sleep(for: .milliseconds(10)) }
        let address = leadership.advertisedURL ?? ""
        try await store.setMeta(Leadership.metaKey, address)
        leadership.becameLeader()
        logger.info("this server leads: it schedules runs and hands out tasks (\(address))")
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await engine.run() }
            if let deployments {
                group.addTask {
                    do {
                        try await deployments.run()
                    } catch {
                        logger.error("deployments are not supervised: \(error)")
                    }
                    // The first task to end ends the group: this one must not end before the engine.
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
                }
            }
            group.addTask {
                // A graceful stop cancels this loop: that ends it quietly, not as an error.
                while !Task.isCancelled {
                    try? await Task.sleep(for: checkInterval)
                    if Task.isCancelled { return }
                    let leading: Bool
                    do {
                        leading = try await store.tryLead()
                    } catch {
                        if Task.isCancelled { return }
                        throw error
                    }
                    guard leading else { throw LeadershipLost() }
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }
}

/// On a server that does not lead, sends every change (anything but GET and HEAD) to the
/// leader and relays its answer, so clients and workers may talk to any replica.
struct LeaderForwardingMiddleware: RouterMiddleware {
    let leadership: Leadership
    let maxBodyBytes: Int

    /// NIO's HTTP client: workers' long polls hold forwarded requests open for up to 30 s, and
    /// the pool must not queue other changes behind them (URLSession on Linux did).
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 1024)
        // A pooled connection the leader is closing takes a POST and answers nothing; a POST
        // cannot be retried blindly. A fresh connection per change costs a loopback handshake.
        configuration.maximumUsesPerConnection = 1
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(Int64(WorkerProtocol.maxWaitSeconds) + 15))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    func handle(
        _ request: Request, context: BatonRequestContext, next: (Request, BatonRequestContext) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard !leadership.isLeader, request.method != .get, request.method != .head, path != "/login", path != "/logout",
            !Self.servedByAnyReplica(path)
        else {
            return try await next(request, context)
        }
        guard let leader = leadership.leaderURL else {
            throw APIError(
                .serviceUnavailable, code: "no_leader",
                "no Baton server leads yet (a new leader takes over within seconds); retry shortly")
        }
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes + WorkerProtocol.maxLogChunkBytes)
        var forwarded = HTTPClientRequest(url: leader + request.uri.description)
        forwarded.method = .init(rawValue: request.method.rawValue)
        for field in request.headers where Self.forwardedRequestHeaders.contains(field.name.canonicalName) {
            forwarded.headers.add(name: field.name.rawName, value: field.value)
        }
        forwarded.body = .bytes(body)
        let response: HTTPClientResponse
        let data: ByteBuffer
        do {
            response = try await Self.client.execute(forwarded, timeout: .seconds(Int64(WorkerProtocol.maxWaitSeconds) + 15))
            data = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw APIError(
                .serviceUnavailable, code: "leader_unreachable",
                "the leading server at \(leader) does not answer (\(error)); retry shortly")
        }
        var headers = HTTPFields()
        for header in response.headers where Self.relayedResponseHeaders.contains(header.name.lowercased()) {
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        headers[.init("X-Baton-Forwarded-To")!] = leader
        return Response(status: .init(code: Int(response.status.code)), headers: headers, body: ResponseBody(byteBuffer: data))
    }

    /// Lease renewals and log chunks only touch the store: any replica takes them, so workers
    /// keep their leases and stream logs while a new leader takes over.
    static func servedByAnyReplica(_ path: String) -> Bool {
        path == "/api/v1/workers/heartbeat" || (path.hasPrefix("/api/v1/workers/attempts/") && path.hasSuffix("/log"))
            // The registry's writes are plain store writes that need no scheduler.
            || MLflowRoutes.isMLflowPath(path)
    }

    static let forwardedRequestHeaders: Set<String> = [
        "authorization", "content-type", "accept", "cookie", "origin", "referer", "sec-fetch-site", "user-agent",
    ]
    static let relayedResponseHeaders: Set<String> = ["content-type", "location", "set-cookie", "retry-after"]
}
