import NIOCore
import NIOPosix
import Synchronization

/// A request for a replica: header fields the gateway has checked (`Gateway.isSafeName`,
/// `isSafeValue`) besides `Host` and `Content-Length`, which the connection adds.
struct ReplicaRequest: Sendable {
    var fields: [(String, String)]
    var body: ByteBuffer
}

/// A replica's whole answer, collected on the connection's event loop.
struct ReplicaAnswer: Sendable {
    var status: Int
    /// The only field the gateway passes on to its caller.
    var contentType: String?
    var body: ByteBuffer
    /// False when the connection cannot carry another exchange: the replica asked to close
    /// (`Connection: close`, HTTP/1.0 without keep-alive), the body ran to the connection's end,
    /// or bytes followed the answer.
    var keepAlive: Bool
}

/// Why one exchange with a replica failed; the gateway adds which replica it was.
enum ReplicaCallError: Error, CustomStringConvertible {
    case connectFailed(any Error)
    case deadlineExceeded
    /// The connection ended (or failed) before the answer's head arrived: on a kept connection
    /// this is usually the replica having closed it while it sat idle.
    case closedBeforeAnswer(reason: String)
    case closedMidAnswer(reason: String)
    case answerTooLarge(limit: Int)
    /// The bytes are not an HTTP/1.1 answer this client can frame.
    case malformedAnswer(reason: String)
    case shutDown

    var description: String {
        switch self {
        case .connectFailed(let error): "could not connect: \(error)"
        case .deadlineExceeded: "no answer before the deadline"
        case .closedBeforeAnswer(let reason): "the connection closed before an answer (\(reason))"
        case .closedMidAnswer(let reason): "the connection closed in the middle of the answer (\(reason))"
        case .answerTooLarge(let limit): "the answer is over the \(limit)-byte limit"
        case .malformedAnswer(let reason): "the answer is not valid HTTP/1.1: \(reason)"
        case .shutDown: "the gateway is shut down"
        }
    }
}

/// HTTP/1.1 keep-alive connections to replicas, written on NIO directly: an exchange is one
/// write and a callback on the caller's event loop, where its connection lives too.
final class ReplicaClient: Sendable {
    let maxResponseBytes: Int
    let maxIdlePerEndpoint: Int
    let connectTimeout: TimeAmount
    private let pools = Mutex<[String: EndpointPool]>([:])
    private let closed = Atomic<Bool>(false)

    init(maxResponseBytes: Int, maxIdlePerEndpoint: Int = 64, connectTimeout: TimeAmount = .seconds(2)) {
        self.maxResponseBytes = maxResponseBytes
        self.maxIdlePerEndpoint = maxIdlePerEndpoint
        self.connectTimeout = connectTimeout
    }

    /// The pool for an endpoint, made on first use; targets keep it so requests skip this lookup.
    func pool(host: String, port: Int) -> EndpointPool {
        let key = "\(host):\(port)"
        return pools.withLock { all in
            if let existing = all[key] { return existing }
            let created = EndpointPool(host: host, port: port, maxIdle: maxIdlePerEndpoint)
            if closed.load(ordering: .relaxed) { created.retire() }
            all[key] = created
            return created
        }
    }

    /// Forgets the pools of endpoints no route lists any more and closes their idle connections;
    /// requests still using them finish, and their connections close afterwards.
    func retain(only keep: Set<String>) {
        let dropped = pools.withLock { all in
            let gone = all.filter { !keep.contains($0.key) }
            for key in gone.keys { all.removeValue(forKey: key) }
            return Array(gone.values)
        }
        for pool in dropped { pool.retire() }
    }

    /// Closes every connection; later exchanges fail with `.shutDown`.
    func close() {
        closed.store(true, ordering: .relaxed)
        let all = pools.withLock { all in
            defer { all.removeAll() }
            return Array(all.values)
        }
        for pool in all { pool.retire() }
    }

    /// One request and its answer, on a kept connection when there is one; `completion` runs
    /// on `loop`, and this must be called there. It may run before this returns (a closed
    /// client, a spent deadline).
    func send(
        pool: EndpointPool, request: ReplicaRequest, deadline: NIODeadline, on loop: any EventLoop,
        completion: @escaping (Result<ReplicaAnswer, ReplicaCallError>) -> Void
    ) {
        loop.preconditionInEventLoop()
        guard !closed.load(ordering: .relaxed) else { return completion(.failure(.shutDown)) }
        guard let kept = pool.take(on: loop) else {
            return sendOnNewConnection(pool: pool, request: request, deadline: deadline, on: loop, completion: completion)
        }
        exchange(on: kept, request: request, deadline: deadline, answerOn: loop) { result in
            switch result {
            case .failure(.closedBeforeAnswer) where NIODeadline.now() < deadline:
                // The replica closed the idle connection as we wrote to it; nothing reached the
                // model, so a fresh connection to the same replica is worth one try.
                kept.channel.close(promise: nil)
                self.sendOnNewConnection(pool: pool, request: request, deadline: deadline, on: loop, completion: completion)
            default:
                self.finish(kept, pool: pool, result: result)
                completion(result)
            }
        }
    }

    private func sendOnNewConnection(
        pool: EndpointPool, request: ReplicaRequest, deadline: NIODeadline, on loop: any EventLoop,
        completion: @escaping (Result<ReplicaAnswer, ReplicaCallError>) -> Void
    ) {
        let remaining = deadline - NIODeadline.now()
        guard remaining > .zero else { return completion(.failure(.deadlineExceeded)) }
        let limit = maxResponseBytes
        let hostHeader = pool.hostHeader
        let bootstrap = (ClientBootstrap(validatingGroup: loop) ?? ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton))
            .connectTimeout(min(connectTimeout, remaining))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        ReplicaExchangeHandler(hostHeader: hostHeader, maxResponseBytes: limit))
                }
            }
        let connecting = (pool.address.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(host: pool.host, port: pool.port))
            .flatMapThrowing { channel in
                // On the channel's loop: the handler is reached directly from now on.
                let handler = try channel.pipeline.syncOperations.handler(type: ReplicaExchangeHandler.self)
                return ReplicaConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }
        connecting.hop(to: loop).assumeIsolated().whenComplete { connected in
            switch connected {
            case .success(let connection):
                // A kept connection the replica closes leaves the idle list at once.
                connection.channel.closeFuture.whenComplete { _ in pool.forget(connection) }
                self.exchange(on: connection, request: request, deadline: deadline, answerOn: loop) { result in
                    self.finish(connection, pool: pool, result: result)
                    completion(result)
                }
            case .failure(let error):
                // The connect timeout is cut to what is left of the request's deadline; running
                // out of that is the request's timeout, not an unreachable replica.
                completion(.failure(NIODeadline.now() >= deadline ? .deadlineExceeded : .connectFailed(error)))
            }
        }
    }

    private func finish(_ connection: ReplicaConnection, pool: EndpointPool, result: Result<ReplicaAnswer, ReplicaCallError>) {
        if case .success(let answer) = result, answer.keepAlive, !closed.load(ordering: .relaxed) {
            pool.release(connection)
        } else {
            connection.channel.close(promise: nil)
        }
    }

    private func exchange(
        on connection: ReplicaConnection, request: ReplicaRequest, deadline: NIODeadline, answerOn loop: any EventLoop,
        completion: @escaping (Result<ReplicaAnswer, ReplicaCallError>) -> Void
    ) {
        let connectionLoop = connection.channel.eventLoop
        if connectionLoop === loop {
            connection.handler.value.start(request, deadline: deadline, completion: completion)
            return
        }
        // A connection on another loop (none idle on this one): its answer crosses back.
        let promise = connectionLoop.makePromise(of: ReplicaAnswer.self)
        connectionLoop.execute {
            connection.handler.value.start(request, deadline: deadline) { result in
                switch result {
                case .success(let answer): promise.succeed(answer)
                case .failure(let error): promise.fail(error)
                }
            }
        }
        promise.futureResult.hop(to: loop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let answer): completion(.success(answer))
            case .failure(let error as ReplicaCallError): completion(.failure(error))
            case .failure(let error): completion(.failure(.closedBeforeAnswer(reason: "\(error)")))
            }
        }
    }
}

/// One replica's idle connections, most recently used last.
final class EndpointPool: Sendable {
    let host: String
    let port: Int
    let hostHeader: String
    /// Parsed once when the host is an IP address (replicas are loopback ones), so connecting
    /// does not go through the resolver.
    let address: SocketAddress?
    let maxIdle: Int
    private let state = Mutex<State>(State())

    private struct State {
        var idle: [ReplicaConnection] = []
        /// A retired pool keeps nothing: its endpoint left every route, or the gateway shut down.
        var retired = false
    }

    init(host: String, port: Int, maxIdle: Int) {
        self.host = host
        self.port = port
        self.maxIdle = maxIdle
        hostHeader = "\(host):\(port)"
        address = try? SocketAddress(ipAddress: host, port: port)
    }

    /// An open idle connection on `loop`. One on another loop is not taken: its answer would
    /// cross threads (a wake-up and a hop per request) for as long as the two keep trading
    /// connections, where a connection of the loop's own costs one connect.
    func take(on loop: any EventLoop) -> ReplicaConnection? {
        state.withLock { state in
            while let index = state.idle.lastIndex(where: { $0.channel.eventLoop === loop }) {
                let connection = state.idle.remove(at: index)
                if connection.channel.isActive { return connection }
            }
            return nil
        }
    }

    func release(_ connection: ReplicaConnection) {
        let kept = state.withLock { state in
            guard !state.retired, state.idle.count < maxIdle, connection.channel.isActive else { return false }
            state.idle.append(connection)
            return true
        }
        if !kept { connection.channel.close(promise: nil) }
    }

    func forget(_ connection: ReplicaConnection) {
        state.withLock { state in state.idle.removeAll { $0 === connection } }
    }

    func retire() {
        let idle = state.withLock { state in
            state.retired = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for connection in idle { connection.channel.close(promise: nil) }
    }

    var idleCount: Int { state.withLock { $0.idle.count } }
}
