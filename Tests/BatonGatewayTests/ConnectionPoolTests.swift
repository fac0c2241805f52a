import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

@testable import BatonGateway

@Suite("The gateway's replica connections")
struct ConnectionPoolTests {
    @Test("sequential requests share one kept connection")
    func reuse() async throws {
        let replica = try await RawReplica.start(.keepAlive)
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
        for _ in 0..<200 { #expect(await gateway.predict("d", #"{"x": 1}"#).status == 200) }
        #expect(replica.requests == 200)
        #expect(replica.connections == 1, "200 sequential requests opened \(replica.connections) connections")
        await gateway.shutdown()
        // After shutdown nothing is sent.
        let late = await gateway.predict("d", "{}")
        #expect(late.status == 502)
        #expect(replica.requests == 200)
        try await replica.stop()
    }

    @Test("concurrent requests open connections of their own and keep them for later")
    func concurrent() async throws {
        let replica = try await RawReplica.start(.keepAlive)
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
        for _ in 0..<5 {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<8 { group.addTask { await gateway.predict("d", "{}").status } }
                for await status in group { #expect(status == 200) }
            }
        }
        #expect(replica.requests == 40)
        // At most one connection per request in flight, kept across the rounds.
        #expect(replica.connections <= 8, "\(replica.connections) connections for 8 at a time")
        await gateway.shutdown()
        try await replica.stop()
    }

    @Test("a replica that closes after each answer, with Connection: close or without a word, still answers every request")
    func closingReplica() async throws {
        for mode in [RawReplica.Mode.closeHeader, .silentClose] {
            let replica = try await RawReplica.start(mode)
            let gateway = Gateway(logger: quietLogger())
            gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
            for _ in 0..<50 {
                let answer = await gateway.predict("d", "{}")
                #expect(answer.status == 200, "\(mode): \(answer.text)")
                #expect(answer.text.contains("prediction"))
            }
            #expect(replica.connections == 50, "\(mode)")
            #expect(gateway.stats(deployment: "d")["1"]?.errors == 0)
            await gateway.shutdown()
            try await replica.stop()
        }
    }

    @Test("an answer over the response limit is a 502, not a truncated body")
    func responseLimit() async throws {
        let replica = try await RawReplica.start(.keepAlive)
        // The deadline only bounds a hang: the whole suite on two loaded cores once kept this
        // exchange waiting past 5 s, which turned the 502 under test into a 504.
        let gateway = Gateway(requestTimeout: .seconds(30), maxBodyBytes: 1 << 20, maxResponseBytes: 10, logger: quietLogger(), clock: nil)
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
        let answer = await gateway.predict("d", "{}")
        #expect(answer.status == 502)
        #expect(answer.errorDetail?["message"]?.contains("10-byte limit") == true)
        await gateway.shutdown()
        try await replica.stop()
    }
}

/// A model server on NIO directly, so a test can count its connections and choose how it
/// ends them.
final class RawReplica: Sendable {
    enum Mode: Sendable, CustomStringConvertible {
        case keepAlive
        /// Answers with `Connection: close` and closes.
        case closeHeader
        /// Closes after answering without saying so, as a server with a short idle timeout does.
        case silentClose

        var description: String {
            switch self {
            case .keepAlive: "keep-alive"
            case .closeHeader: "Connection: close"
            case .silentClose: "silent close"
            }
        }
    }

    let counts: Counts
    let channel: any Channel

    final class Counts: Sendable {
        let connections = Atomic<Int>(0)
        let requests = Atomic<Int>(0)
    }

    private init(counts: Counts, channel: any Channel) {
        self.counts = counts
        self.channel = channel
    }

    var connections: Int { counts.connections.load(ordering: .relaxed) }
    var requests: Int { counts.requests.load(ordering: .relaxed) }

    func endpoint() -> GatewayEndpoint { GatewayEndpoint(host: "127.0.0.1", port: channel.localAddress?.port ?? 0, replicaID: "raw") }

    func stop() async throws { try await channel.close() }

    static func start(_ mode: Mode) async throws -> RawReplica {
        let counts = Counts()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                counts.connections.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withPipeliningAssistance: false)
                    try channel.pipeline.syncOperations.addHandler(RawReplicaHandler(mode: mode, counts: counts))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return RawReplica(counts: counts, channel: channel)
    }
}

final class RawReplicaHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let mode: RawReplica.Mode
    let counts: RawReplica.Counts

    init(mode: RawReplica.Mode, counts: RawReplica.Counts) {
        self.mode = mode
        self.counts = counts
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        counts.requests.add(1, ordering: .relaxed)
        let body = ByteBuffer(string: #"{"prediction": 0.5, "peer": \#(context.channel.remoteAddress?.port ?? 0)}"#)
        var headers = HTTPHeaders([("Content-Type", "application/json"), ("Content-Length", "\(body.readableBytes)")])
        if mode == .closeHeader { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        guard mode != .keepAlive else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
