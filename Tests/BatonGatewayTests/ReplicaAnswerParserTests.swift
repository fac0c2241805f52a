import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@testable import BatonGateway

@Suite("Framing a replica's answer")
struct ReplicaAnswerParserTests {
    static let plain = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\nDate: x\r\n\r\n{\"prediction\": 0.42}"

    /// The answer from feeding `text` whole, then one byte at a time, then in two pieces at
    /// every split; all must agree.
    func parsed(_ text: String, limit: Int = 1 << 20, ended: Bool = false) throws -> ReplicaAnswer? {
        var whole = ReplicaAnswerParser(maxBodyBytes: limit)
        var answer = try whole.parse(ByteBuffer(string: text))
        if ended, answer == nil { answer = whole.inputEnded() }
        let bytes = Array(text.utf8)
        var splits: [[[UInt8]]] = [bytes.map { [$0] }]
        for cut in stride(from: 1, to: bytes.count, by: max(1, bytes.count / 40)) {
            splits.append([Array(bytes[..<cut]), Array(bytes[cut...])])
        }
        for pieces in splits {
            var parser = ReplicaAnswerParser(maxBodyBytes: limit)
            var again: ReplicaAnswer?
            for piece in pieces {
                #expect(again == nil, "an answer before its last byte")
                again = try parser.parse(ByteBuffer(bytes: piece))
            }
            if ended, again == nil { again = parser.inputEnded() }
            #expect(again?.status == answer?.status)
            #expect(again?.body == answer?.body)
            #expect(again?.keepAlive == answer?.keepAlive)
        }
        return answer
    }

    func failure(_ text: String, limit: Int = 1 << 20) -> ReplicaCallError? {
        var parser = ReplicaAnswerParser(maxBodyBytes: limit)
        do {
            _ = try parser.parse(ByteBuffer(string: text))
            return nil
        } catch {
            return error
        }
    }

    @Test("a Content-Length answer, whole or in any pieces")
    func contentLength() throws {
        let answer = try #require(try parsed(Self.plain))
        #expect(answer.status == 200)
        #expect(answer.contentType == "application/json")
        #expect(String(buffer: answer.body) == #"{"prediction": 0.42}"#)
        #expect(answer.keepAlive)
    }

    @Test("a chunked answer with extensions and trailers is joined")
    func chunked() throws {
        let text = "HTTP/1.1 201 Created\r\ntransfer-encoding: gzip, Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n1A\r\n, a chunk of 26 bytes.....\r\n0\r\nExpires: never\r\n\r\n"
        let answer = try #require(try parsed(text))
        #expect(answer.status == 201)
        #expect(answer.contentType == nil)
        #expect(String(buffer: answer.body) == "hello, a chunk of 26 bytes.....")
        #expect(answer.keepAlive)
    }

    @Test("interim answers are skipped, and bare line feeds are accepted")
    func interimAnswers() throws {
        let answer = try #require(try parsed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\nLink: x\n\nHTTP/1.1 503\nContent-Length: 2\n\nno"))
        #expect(answer.status == 503)
        #expect(String(buffer: answer.body) == "no")
    }

    @Test("whether the connection is used again follows the version and Connection field")
    func keepAlive() throws {
        #expect(try parsed("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(try parsed("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n")?.keepAlive == true)
        #expect(try parsed("HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n")?.keepAlive == false)
        #expect(try parsed("HTTP/1.1 204 No Content\r\n\r\n")?.keepAlive == true)
        // A Content-Length beside a transfer coding: framed by the coding, never reused.
        let both = try parsed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")
        #expect(both.map { String(buffer: $0.body) } == "ok")
        #expect(both?.keepAlive == false)
        // Bytes after the answer belong to no request.
        var parser = ReplicaAnswerParser(maxBodyBytes: 100)
        #expect(try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1")).map(\.keepAlive) == false)
    }

    @Test("an answer without a length runs to the connection's end")
    func untilClose() throws {
        var parser = ReplicaAnswerParser(maxBodyBytes: 100)
        #expect(try parser.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ")) == nil)
        #expect(try parser.parse(ByteBuffer(string: "part two")) == nil)
        let ended = parser.inputEnded()
        let answer = try #require(ended)
        #expect(String(buffer: answer.body) == "part one, part two")
        #expect(answer.contentType == "text/plain")
        #expect(!answer.keepAlive)
        // A connection that ends mid-answer with a length is no answer.
        var short = ReplicaAnswerParser(maxBodyBytes: 100)
        #expect(try short.parse(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok")) == nil)
        let shortEnded = short.inputEnded()
        #expect(shortEnded == nil)
        #expect(short.answerStarted)
    }

    @Test("bodies over the limit are refused however they are framed")
    func limits() {
        for text in [
            "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nsix ch\r\n6\r\n",
            "HTTP/1.1 200 OK\r\n\r\neleven byte",
        ] {
            guard case .answerTooLarge(let limit) = failure(text, limit: 10) else {
                Issue.record("no limit error for \(text.debugDescription)")
                continue
            }
            #expect(limit == 10)
        }
    }

    @Test("malformed answers are refused with what is wrong in them")
    func malformed() {
        let cases: [(String, String)] = [
            ("SPDY/3 200 OK\r\n\r\n", "SPDY/3 200 OK"),
            ("HTTP/1.1 2000 OK\r\n\r\n", "three-digit status"),
            ("HTTP/1.1 099 Low\r\n\r\n", "099"),
            ("HTTP/1.1 200 OK\r\nX-A: 1\r\n  folded\r\n\r\n", "folded"),
            ("HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n", "Bad Name: 1"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n", "12x"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n", "2 and 3"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "zz"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its size"),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", "101"),
        ]
        for (text, named) in cases {
            guard case .malformedAnswer(let reason) = failure(text) else {
                Issue.record("\(text.debugDescription) was not refused as malformed")
                continue
            }
            #expect(reason.contains(named), "\(reason)")
        }
        let endless = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Filler: 0123456789\r\n", count: 4000)
        guard case .malformedAnswer(let reason) = failure(endless) else {
            Issue.record("a head without end was not refused")
            return
        }
        #expect(reason.contains("65536"))
    }

    @Test("a request that hangs after fast ones on the same connection times out at its own deadline", .timeLimit(.minutes(1)))
    func deadlineAfterFastAnswers() async throws {
        let replica = try await ScriptedReplica.start([Self.plain], hangOn: "hang")
        let gateway = Gateway(requestTimeout: .milliseconds(600), maxBodyBytes: 1 << 20, logger: quietLogger(), clock: nil)
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
        // The connection's timer is armed for this request's deadline and not cancelled after it.
        #expect(await gateway.predict("d", "{}").status == 200)
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        let hung = await gateway.predict("d", #"{"hang": 1}"#)
        let waited = ContinuousClock.now - start
        #expect(hung.status == 504, "\(hung.text)")
        #expect(waited >= .milliseconds(590), "timed out after \(waited), before its own deadline")
        #expect(waited < .seconds(10))
        // The late answer's connection was closed; the next request gets a new one.
        #expect(await gateway.predict("d", "{}").status == 200)
        await gateway.shutdown()
        try await replica.stop()
    }

    @Test("the gateway reads chunked, interim and close-delimited answers from a real connection, in pieces")
    func throughTheGateway() async throws {
        let scripts = [
            ["HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
             "E\r\n{\"prediction\":", "\r\n", "6\r\n 0.75}\r\n0\r\n\r\n"],
            ["HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"prediction\"", ": 0.75}"],
        ]
        for script in scripts {
            let replica = try await ScriptedReplica.start(script)
            let gateway = Gateway(logger: quietLogger())
            gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
            for _ in 0..<3 {
                let answer = await gateway.predict("d", #"{"x": 1}"#)
                #expect(answer.status == 200, "\(answer.text)")
                #expect(answer.text.replacingOccurrences(of: " ", with: "") == #"{"prediction":0.75}"#)
                #expect(answer.header("Content-Type") == "application/json")
            }
            #expect(gateway.stats(deployment: "d")["1"]?.errors == 0)
            await gateway.shutdown()
            try await replica.stop()
        }
        // A replica answering garbage is a 502 naming what it sent.
        let garbage = try await ScriptedReplica.start(["SSH-2.0-OpenSSH_9.2\r\n\r\n"])
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [garbage.endpoint()])), deployment: "d")
        let answer = await gateway.predict("d", "{}")
        #expect(answer.status == 502)
        #expect(answer.errorDetail?["message"]?.contains("SSH-2.0") == true, "\(answer.text)")
        await gateway.shutdown()
        try await garbage.stop()
    }
}

/// A replica that reads each request (head and Content-Length body) and answers with the
/// script's pieces, each in a write of its own a moment apart; a script without a length closes
/// the connection after it. A request whose body contains `hangOn` gets no answer.
final class ScriptedReplica: Sendable {
    let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    func endpoint() -> GatewayEndpoint { GatewayEndpoint(host: "127.0.0.1", port: channel.localAddress?.port ?? 0, replicaID: "scripted") }

    func stop() async throws { try await channel.close() }

    static func start(_ script: [String], hangOn: String? = nil) async throws -> ScriptedReplica {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ScriptedReplicaHandler(script: script, hangOn: hangOn))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return ScriptedReplica(channel: channel)
    }
}

final class ScriptedReplicaHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let script: [String]
    let hangOn: String?
    private var received = ""

    init(script: [String], hangOn: String?) {
        self.script = script
        self.hangOn = hangOn
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
        guard let headEnd = received.range(of: "\r\n\r\n") else { return }
        let head = received[..<headEnd.lowerBound].lowercased()
        let length = head.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
        guard received.utf8.count >= received.utf8.distance(from: received.startIndex, to: headEnd.upperBound) + length else { return }
        let request = received
        received = ""
        if let hangOn, request.contains(hangOn) { return }
        let closes = !script.joined().lowercased().contains("content-length") && !script.joined().lowercased().contains("chunked")
        write(0, context: context, thenClose: closes)
    }

    private func write(_ index: Int, context: ChannelHandlerContext, thenClose: Bool) {
        guard index < script.count else {
            if thenClose { context.close(promise: nil) }
            return
        }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: script[index])), promise: nil)
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(5)) {
            self.write(index + 1, context: context, thenClose: thenClose)
        }
    }
}
