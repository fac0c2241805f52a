import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A replica's whole answer, collected on the connection's event loop.
struct ReplicaAnswer: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: ByteBuffer
    /// False when the replica asked to close (`Connection: close`, or HTTP/1.0 without keep-alive).
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
    case shutDown

    var description: String {
        switch self {
        case .connectFailed(let error): "could not connect: \(error)"
        case .deadlineExceeded: "no answer before the deadline"
        case .closedBeforeAnswer(let reason): "the connection closed before an answer (\(reason))"
        case .closedMidAnswer(let reason): "the connection closed in the middle of the answer (\(reason))"
        case .answerTooLarge(let limit): "the answer is over the \(limit)-byte limit"
        case .shutDown: "the gateway is shut down"
        }
    }
}

/// HTTP/1.1 keep-alive connections to replicas, written on NIO directly: an exchange is one
/// write and one promise on the connection's event loop, so a request costs no thread hop when
/// the caller already runs on that loop (as it does under `baton`'s NIO executor).
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

    /// One request and its answer, on a kept connection when there is one.
    func send(
        pool: EndpointPool, headers: HTTPHeaders, body: ByteBuffer, deadline: NIODeadline
    ) async -> Result<ReplicaAnswer, ReplicaCallError> {
        guard !closed.load(ordering: .relaxed) else { return .failure(.shutDown) }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/predict", headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: pool.hostHeader)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        // The event loop the caller runs on, when it runs on one: a connection there answers
        // without crossing threads.
        let loop = MultiThreadedEventLoopGroup.singleton.any()
        if let kept = pool.take(preferring: loop) {
            let result = await exchange(on: kept, head: head, body: body, deadline: deadline)
            switch result {
            case .failure(.closedBeforeAnswer) where NIODeadline.now() < deadline:
                // The replica closed the idle connection as we wrote to it; nothing reached the
                // model, so a fresh connection to the same replica is worth one try.
                kept.close(promise: nil)
            default:
                finish(kept, pool: pool, result: result)
                return result
            }
        }
        let channel: any Channel
        switch await connect(pool: pool, on: loop, deadline: deadline) {
        case .success(let connected): channel = connected
        case .failure(let error): return .failure(error)
        }
        let result = await exchange(on: channel, head: head, body: body, deadline: deadline)
        finish(channel, pool: pool, result: result)
        return result
    }

    private func finish(_ channel: any Channel, pool: EndpointPool, result: Result<ReplicaAnswer, ReplicaCallError>) {
        if case .success(let answer) = result, answer.keepAlive, !closed.load(ordering: .relaxed) {
            pool.release(channel)
        } else {
            channel.close(promise: nil)
        }
    }

    private func exchange(
        on channel: any Channel, head: HTTPRequestHead, body: ByteBuffer, deadline: NIODeadline
    ) async -> Result<ReplicaAnswer, ReplicaCallError> {
        let promise = channel.eventLoop.makePromise(of: ReplicaAnswer.self)
        let call = ReplicaCall(head: head, body: body, deadline: deadline, promise: promise)
        // A channel that closed before the handler saw the write fails the write only, so the
        // answer's promise is failed from here too (a second failure of a promise is ignored).
        channel.writeAndFlush(call).whenFailure { error in
            promise.fail(ReplicaCallError.closedBeforeAnswer(reason: "\(error)"))
        }
        do {
            return .success(try await promise.futureResult.get())
        } catch let error as ReplicaCallError {
            return .failure(error)
        } catch {
            return .failure(.closedBeforeAnswer(reason: "\(error)"))
        }
    }

    private func connect(pool: EndpointPool, on loop: any EventLoop, deadline: NIODeadline) async -> Result<any Channel, ReplicaCallError> {
        let remaining = deadline - NIODeadline.now()
        guard remaining > .zero else { return .failure(.deadlineExceeded) }
        let limit = maxResponseBytes
        let bootstrap = (ClientBootstrap(validatingGroup: loop) ?? ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton))
            .connectTimeout(min(connectTimeout, remaining))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // The gateway only sends fields it has checked (`Gateway.isSafeName`, `isSafeValue`), so
                    // NIO's second check of every name and value on each request is skipped.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(ReplicaExchangeHandler(maxResponseBytes: limit))
                }
            }
        let future = pool.address.map { bootstrap.connect(to: $0) } ?? bootstrap.connect(host: pool.host, port: pool.port)
        do {
            let channel = try await future.get()
            // A kept connection the replica closes leaves the idle list at once.
            channel.closeFuture.whenComplete { _ in pool.forget(channel) }
            return .success(channel)
        } catch {
            // The connect timeout is cut to what is left of the request's deadline; running out
            // of that is the request's timeout, not an unreachable replica.
            return .failure(NIODeadline.now() >= deadline ? .deadlineExceeded : .connectFailed(error))
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
        var idle: [any Channel] = []
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

    /// An open idle connection, one on `loop` if there is one.
    func take(preferring loop: any EventLoop) -> (any Channel)? {
        state.withLock { state in
            while !state.idle.isEmpty {
                let index = state.idle.lastIndex { $0.eventLoop === loop } ?? state.idle.count - 1
                let channel = state.idle.remove(at: index)
                if channel.isActive { return channel }
            }
            return nil
        }
    }

    func release(_ channel: any Channel) {
        let kept = state.withLock { state in
            guard !state.retired, state.idle.count < maxIdle, channel.isActive else { return false }
            state.idle.append(channel)
            return true
        }
        if !kept { channel.close(promise: nil) }
    }

    func forget(_ channel: any Channel) {
        state.withLock { state in state.idle.removeAll { $0 === channel } }
    }

    func retire() {
        let idle = state.withLock { state in
            state.retired = true
            defer { state.idle.removeAll() }
            return state.idle
        }
        for channel in idle { channel.close(promise: nil) }
    }

    var idleCount: Int { state.withLock { $0.idle.count } }
}

/// What the handler is asked to write: a request and the promise its answer completes.
struct ReplicaCall: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var deadline: NIODeadline
    var promise: EventLoopPromise<ReplicaAnswer>
}

/// Sends one request at a time and collects its answer (head and body up to a limit); the
/// deadline closes the connection, since a late answer would otherwise be read as the next one's.
final class ReplicaExchangeHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = ReplicaCall
    typealias OutboundOut = HTTPClientRequestPart

    private let maxResponseBytes: Int
    private var pending: EventLoopPromise<ReplicaAnswer>?
    private var head: HTTPResponseHead?
    private var body: ByteBuffer?
    private var timeout: Scheduled<Void>?

    init(maxResponseBytes: Int) {
        self.maxResponseBytes = maxResponseBytes
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let call = unwrapOutboundIn(data)
        guard pending == nil else {
            // The pool never hands out a busy connection; refuse rather than mix two answers.
            call.promise.fail(ReplicaCallError.closedBeforeAnswer(reason: "the connection was busy"))
            promise?.succeed()
            return
        }
        pending = call.promise
        head = nil
        body = nil
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: call.deadline) { [self] in
            fail(.deadlineExceeded)
            context.close(promise: nil)
        }
        context.write(wrapOutboundOut(.head(call.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(call.body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard pending != nil else {
            // Bytes nobody asked for: the connection can no longer be trusted to pair answers.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let received):
            if let length = received.headers.first(name: "content-length").flatMap({ Int($0) }), length > maxResponseBytes {
                fail(.answerTooLarge(limit: maxResponseBytes))
                context.close(promise: nil)
                return
            }
            head = received
        case .body(var part):
            if body == nil {
                body = part
            } else {
                body!.writeBuffer(&part)
            }
            if body!.readableBytes > maxResponseBytes {
                fail(.answerTooLarge(limit: maxResponseBytes))
                context.close(promise: nil)
            }
        case .end:
            guard let promise = pending, let head else { return }
            let answer = ReplicaAnswer(
                status: Int(head.status.code), headers: head.headers, body: body ?? ByteBuffer(), keepAlive: head.isKeepAlive)
            reset()
            promise.succeed(answer)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(head == nil ? .closedBeforeAnswer(reason: "closed by the replica") : .closedMidAnswer(reason: "closed by the replica"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(head == nil ? .closedBeforeAnswer(reason: "\(error)") : .closedMidAnswer(reason: "\(error)"))
        context.close(promise: nil)
    }

    private func fail(_ error: ReplicaCallError) {
        guard let promise = pending else { return }
        reset()
        promise.fail(error)
    }

    private func reset() {
        timeout?.cancel()
        timeout = nil
        pending = nil
        head = nil
        body = nil
    }
}
