import BatonCore
import BatonEngine
import BatonGateway
@testable import BatonServer
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The pipeline handler that answers lookups and predictions before the router: same answers
/// as the router, responses in request order on a pipelined connection, errors left to the router.
@Suite(.timeLimit(.minutes(5)))
struct HotPathTests {
    static let definitions = """
        entities:
          customer:
            join_keys: {customer_id: int}
        feature_views:
          hot_stats:
            entity: customer
            features:
              spend: float
              segment: string
        feature_services:
          hot_churn:
            features: [hot_stats]
        """

    static func ingest(_ server: APITestServer) async throws {
        let now = Date().timeIntervalSince1970
        let rows: [JSONValue] = (1...5).map {
            ["customer_id": .number(Double($0)), "event_timestamp": .number(now - 60), "spend": .number(Double($0) * 10), "segment": "gold \"vip\""]
        }
        _ = try await server.engine.features.ingest(view: "hot_stats", json: rows, writer: FeatureWriter(origin: "test"))
    }

    /// A server with `hot_stats` rows for customers 1 to 5 and deployment `hot` served by a
    /// replica that echoes the request body.
    static func withFeaturesAndDeployment(_ body: (APITestServer) async throws -> Void) async throws {
        let replica = try await ServeAPITests.startReplica()
        defer { replica.runner.cancel() }
        try await APITestServer.with(pipelines: ["features": Self.definitions]) { server in
            try await Self.ingest(server)
            server.context.gateway.setPolicy(
                TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [GatewayEndpoint(port: replica.port, replicaID: "hot-1-0")])),
                deployment: "hot")
            try await body(server)
        }
    }

    @Test func lookupsAnswerWhatTheRouterAnswers() async throws {
        try await APITestServer.with(pipelines: ["features": Self.definitions]) { server in
            try await Self.ingest(server)
            let fast = try await server.get("/api/v1/features/online/hot_churn?customer_id=3")
            let routed = try await server.post("/api/v1/features/online", json: #"{"service": "hot_churn", "entities": [{"customer_id": 3}]}"#)
            #expect(fast.status == 200, "\(fast)")
            #expect(fast.text == routed.text)
            #expect(fast.text.contains("30"), "\(fast.text)")
            #expect(fast.header("Content-Type") == "application/json")
            #expect(fast.header("Server") == "Baton")
            #expect(fast.header("Date")?.hasSuffix(" GMT") == true)

            // An escaped value is decoded by the router; the answer is the same.
            let escaped = try await server.get("/api/v1/features/online/hot_churn?customer_id=%33")
            #expect(escaped.text == fast.text)

            // Failures keep the router's error shape.
            let missingKey = try await server.get("/api/v1/features/online/hot_churn?customer=3")
            #expect(missingKey.status == 400)
            #expect(missingKey.text.contains("customer_id"), "\(missingKey.text)")
            let unknown = try await server.get("/api/v1/features/online/hot_chrn?customer_id=3")
            #expect(unknown.status == 404, "\(unknown)")
            #expect(try unknown.object()["error"] != nil)

            // The request timer counts what the hot path answers.
            let before = try await Self.okLookups(server)
            for _ in 0..<5 { _ = try await server.get("/api/v1/features/online/hot_churn?customer_id=1") }
            let after = try await Self.okLookups(server)
            #expect(after >= before + 5, "before \(before), after \(after)")
        }
    }

    @Test func aReplicasFramingFieldsAreReplacedAndItsOthersChecked() {
        let fields = HotPathHandler.checkedFields(
            [
                ("content-LENGTH", "5"), ("Server", "replica"), ("X-Baton-Version", "3"), ("DATE", "yesterday"),
                ("Transfer-Encoding", "chunked"), ("connection", "close"), ("Bad Name", "dropped"), ("Content-Type", "a\r\nb"),
                ("X-Dates", "kept"),
            ], bodyLength: 7)
        #expect(fields["Content-Length"] == ["7"])
        #expect(fields["Server"] == ["Baton"])
        #expect(fields["Date"].count == 1 && fields["Date"] != ["yesterday"])
        #expect(fields["Transfer-Encoding"].isEmpty && fields["Connection"].isEmpty && fields["Bad Name"].isEmpty)
        #expect(fields["X-Baton-Version"] == ["3"])
        #expect(fields["X-Dates"] == ["kept"])
        #expect(fields["Content-Type"].count == 1 && !fields["Content-Type"][0].contains("\r"))
        for kept in ["X-Date", "Dat", "Servers", "content_length", "connections"] { #expect(!HotPathHandler.isSetBelow(kept), "\(kept)") }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await Self.withFeaturesAndDeployment { server in
            func get(_ path: String) -> String { "GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n" }
            func predict(_ body: String) -> String {
                "POST /serve/hot/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            // Sent in one write each, so hot requests arrive while the router still owes an
            // answer, and requests of both kinds arrive while a prediction is in flight.
            let sequences: [[(request: String, status: Int, body: String)]] = [
                [
                    (get("/healthz"), 200, "ok"), (get("/api/v1/features/online/hot_churn?customer_id=2"), 200, "20"),
                    (predict(#"{"n": 1}"#), 200, #""echo": {"n": 1}"#), (get("/api/v1/features/online/hot_churn?customer_id=4"), 200, "40"),
                    (get("/api/v1/features/online/hot_churn"), 400, "customer_id"), (predict(#"{"n": 2}"#), 200, #""echo": {"n": 2}"#),
                    (get("/healthz"), 200, "ok"),
                ],
                [
                    (predict(#"{"n": 3}"#), 200, #""echo": {"n": 3}"#), (get("/api/v1/features/online/hot_churn?customer_id=1"), 200, "10"),
                    (predict(#"{"n": 4}"#), 200, #""echo": {"n": 4}"#), (predict(#"{"n": 5}"#), 200, #""echo": {"n": 5}"#),
                    (get("/healthz"), 200, "ok"), (get("/api/v1/features/online/hot_churn?customer_id=3"), 200, "30"),
                ],
            ]
            for sequence in sequences { try await Self.expectInOrder(sequence, port: server.baseURL.port!) }
        }
    }

    @Test func aClientSendingFarAheadOfItsAnswersIsAnsweredInOrder() async throws {
        try await Self.withFeaturesAndDeployment { server in
            // 400 predictions in one write, about 170 KB: more than the raw path keeps waiting
            // while a prediction is out, so reading stops and starts again many times.
            let padding = String(repeating: "x", count: 300)
            let requests = (0..<400).map { index in
                let body = #"{"n": \#(index), "pad": "\#(padding)"}"#
                return "POST /serve/hot/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            #expect(requests.joined().utf8.count > RawRequestHandler.maxHeadBytes + RawRequestHandler.maxRawBodyBytes)
            let answers = try await RawHTTP.exchange(port: server.baseURL.port!, sending: requests.joined(), responses: requests.count)
            #expect(answers.allSatisfy { $0.status == 200 }, "\(answers.filter { $0.status != 200 }.prefix(3))")
            let order = answers.compactMap { answer -> Int? in
                guard let range = answer.body.range(of: #""n": "#) else { return nil }
                return Int(answer.body[range.upperBound...].prefix { $0.isNumber })
            }
            #expect(order == Array(0..<400))
        }
    }

    @Test func aClientThatHalfClosesStillGetsItsAnswers() async throws {
        try await Self.withFeaturesAndDeployment { server in
            let body = #"{"n": 7}"#
            let requests =
                "POST /serve/hot/predict HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                + "GET /api/v1/features/online/hot_churn?customer_id=5 HTTP/1.1\r\nHost: t\r\n\r\n"
            let answers = try await RawHTTP.exchange(port: server.baseURL.port!, sending: requests, responses: 2, halfClose: true)
            #expect(answers.map(\.status) == [200, 200], "\(answers)")
            #expect(answers.first?.body.contains(#""echo": {"n": 7}"#) == true)
            #expect(answers.last?.body.contains("50") == true)
        }
    }

    @Test func aServerWindingDownAnswersThePredictionInFlightFirst() async throws {
        // A replica that takes its time, so the prediction is still out when the server stops.
        let router = Router()
        router.post("/predict") { _, _ -> Response in
            try await Task.sleep(for: .milliseconds(400))
            return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"prediction": 1}"#)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        var logger = Logger(label: "slow-replica")
        logger.logLevel = .critical
        let replica = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? 0) }, logger: logger)
        let runner = Task { try await replica.run() }
        defer { runner.cancel() }
        var replicaPort = 0
        for await port in ports {
            replicaPort = port
            break
        }
        try await APITestServer.with(pipelines: [:]) { server in
            server.context.gateway.setPolicy(
                TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [GatewayEndpoint(port: replicaPort, replicaID: "slow-1-0")])),
                deployment: "slow")
            // A second application on the same context, stopped the way `baton up` stops on
            // SIGTERM: a graceful shutdown of its service group, not a cancellation.
            let (listening, listened) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
            let application = BatonHTTP.application(context: server.context, logger: logger) { listened.yield($0) }
            let group = ServiceGroup(configuration: .init(services: [.init(service: application)], logger: logger))
            let running = Task { try await group.run() }
            var port = 0
            for await listeningPort in listening {
                port = listeningPort
                break
            }
            let request = "POST /serve/slow/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}"
            let exchange = Task { try await RawHTTP.exchange(port: port, sending: request, responses: 1) }
            let deadline = ContinuousClock.now + .seconds(10)
            while server.context.gateway.inFlight(replicaID: "slow-1-0") == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(server.context.gateway.inFlight(replicaID: "slow-1-0") == 1, "the prediction never reached the replica")
            await group.triggerGracefulShutdown()
            let answers = try await exchange.value
            #expect(answers.map(\.status) == [200], "\(answers)")
            #expect(answers.first?.body == #"{"prediction": 1}"#)
            try await running.value
        }
    }

    @Test func oversizedPredictionsAreRefusedAndTheConnectionGoesOn() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let limit = server.context.gateway.maxBodyBytes
            let body = String(repeating: "x", count: limit + 1)
            let requests = [
                "POST /serve/any/predict HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)",
                "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
            ]
            let answers = try await RawHTTP.exchange(port: server.baseURL.port!, sending: requests.joined(), responses: 2)
            #expect(answers.map(\.status) == [413, 200], "\(answers.map(\.status))")
            #expect(answers.first?.body.contains("body_too_large") == true)
        }
    }

    @Test func lookupsOnAFreshConnectionAreAnsweredFromItsBytesThenTheDecoderTakesOver() async throws {
        try await Self.withFeaturesAndDeployment { server in
            func get(_ path: String, headers: String = "Host: t\r\n") -> String { "GET \(path) HTTP/1.1\r\n\(headers)\r\n" }
            let lookup = "/api/v1/features/online/hot_churn?customer_id="
            let sequence: [(request: String, status: Int, body: String)] = [
                (get(lookup + "1"), 200, "10"), (get(lookup + "2", headers: "Host: t\r\nConnection: Keep-Alive\r\nX-Trace: a b\r\n"), 200, "20"),
                (get(lookup + "3"), 200, "30"),
                // The first request the raw path does not answer hands the connection over.
                (get("/api/v1/features/online/hot_churn?customer=3"), 400, "customer_id"),
                (get(lookup + "4"), 200, "40"), (get("/healthz"), 200, "ok"), (get(lookup + "5"), 200, "50"),
            ]
            let before = RawRequestHandler.answers.load(ordering: .relaxed)
            try await Self.expectInOrder(sequence, port: server.baseURL.port!)
            // The first three of each round came from the bytes (the server installed the path).
            #expect(RawRequestHandler.answers.load(ordering: .relaxed) >= before + 9)
            // A request that arrives a few bytes at a time is put together before it is answered.
            let pieces = ["GET /api/v1/fea", "tures/online/hot_ch", "urn?customer_id=2 HTTP/1.1\r\nHo", "st: t\r\n", "\r", "\n", get(lookup + "3")]
            let split = try await RawHTTP.exchange(port: server.baseURL.port!, sending: pieces, responses: 2)
            #expect(split.map(\.status) == [200, 200], "\(split)")
            #expect(split.first?.body.contains("20") == true && split.last?.body.contains("30") == true, "\(split)")
        }
    }

    @Test func requestsTheRawPathDoesNotReadTheSameWayGoToTheRouter() async throws {
        try await Self.withFeaturesAndDeployment { server in
            let lookup = "/api/v1/features/online/hot_churn?customer_id=3"
            // Each is answered as the router answers it; the connection's later lookups too.
            let handedOver = [
                "GET \(lookup) HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                "GET \(lookup) HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                "GET /api/v1/features/online/hot_churn?customer_id=%33 HTTP/1.1\r\nHost: t\r\n\r\n",
            ]
            for request in handedOver {
                let answers = try await RawHTTP.exchange(
                    port: server.baseURL.port!, sending: request + "GET \(lookup) HTTP/1.1\r\nHost: t\r\n\r\n", responses: 2)
                #expect(answers.map(\.status) == [200, 200], "\(request.debugDescription): \(answers)")
                #expect(answers.allSatisfy { $0.body.contains("30") }, "\(request.debugDescription): \(answers)")
            }
            // `Connection: close` is the router's to honour: one answer, then the end.
            let closing = try await RawHTTP.exchange(
                port: server.baseURL.port!, sending: "GET \(lookup) HTTP/1.1\r\nConnection: close\r\n\r\n", responses: 1, thenExpectEnd: true)
            #expect(closing.map(\.status) == [200], "\(closing)")
        }
    }

    @Test func theRawPathPutsSplitRequestsTogetherAndHandsTheRestToTheDecoder() async throws {
        try await APITestServer.with(pipelines: ["features": Self.definitions]) { server in
            try await Self.ingest(server)
            let channel = EmbeddedChannel(handler: RawRequestHandler(HotPathContext(server.context)))
            func answered() throws -> [String] {
                var answers: [String] = []
                while let buffer = try channel.readOutbound(as: ByteBuffer.self) { answers.append(String(buffer: buffer)) }
                return answers
            }
            func passed() throws -> String {
                var text = ""
                while let buffer = try channel.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
                return text
            }
            let lookup = "GET /api/v1/features/online/hot_churn?customer_id="
            try channel.writeInbound(ByteBuffer(string: "GET /api/v1/features/online/hot_churn?cust"))
            #expect(try answered().isEmpty)
            #expect(try passed().isEmpty)
            let rest = "GET /healthz HTTP/1.1\r\n\r\n\(lookup)4 HTTP/1.1\r\n\r\n"
            try channel.writeInbound(ByteBuffer(string: "omer_id=2 HTTP/1.1\r\nHost: t\r\n\r\n\(lookup)3 HTTP/1.1\r\n\r\n" + rest))
            let answers = try answered()
            #expect(answers.count == 2, "\(answers)")
            #expect(answers.first?.hasPrefix("HTTP/1.1 200 OK\r\n") == true && answers.first?.contains(#""spend":20"#) == true, "\(answers)")
            #expect(answers.last?.contains(#""spend":30"#) == true, "\(answers)")
            // The first request it does not answer goes on with everything after it, and so
            // does every later byte.
            #expect(try passed() == rest)
            try channel.writeInbound(ByteBuffer(string: "\(lookup)5 HTTP/1.1\r\n\r\n"))
            #expect(try answered().isEmpty)
            #expect(try passed() == "\(lookup)5 HTTP/1.1\r\n\r\n")
            _ = try channel.finish()

            // A client that does not read its answers (the channel unwritable) is handed over.
            let stalled = EmbeddedChannel(handler: RawRequestHandler(HotPathContext(server.context)))
            stalled.isWritable = false
            try stalled.writeInbound(ByteBuffer(string: "\(lookup)1 HTTP/1.1\r\n\r\n"))
            #expect(try stalled.readOutbound(as: ByteBuffer.self) == nil)
            #expect(try stalled.readInbound(as: ByteBuffer.self).map { String(buffer: $0) } == "\(lookup)1 HTTP/1.1\r\n\r\n")
            _ = try stalled.finish()
        }
    }

    @Test func theRawParserAcceptsOnlyPlainLookups() {
        func parse(_ text: String) -> RawRequestHandler.Parsed {
            Array(text.utf8).withUnsafeBytes { RawRequestHandler.parse($0, maxBodyBytes: 1024) }
        }
        let target = "/api/v1/features/online/s?k=1"
        let plain = "GET \(target) HTTP/1.1\r\nHost: t\r\n\r\n"
        #expect(parse(plain) == .lookup(target: target, headLength: plain.utf8.count))
        #expect(parse(plain + "GET ") == .lookup(target: target, headLength: plain.utf8.count))
        for cut in [1, 10, 30, plain.utf8.count - 1] {
            #expect(parse(String(decoding: plain.utf8.prefix(cut), as: UTF8.self)) == .incomplete, "cut at \(cut)")
        }
        for other in [
            "POST \(target) HTTP/1.1\r\n\r\n", "GET /healthz HTTP/1.1\r\n\r\n", "GET \(target) HTTP/1.0\r\n\r\n",
            "GET /api/v1/features/online/s?k=%31 HTTP/1.1\r\n\r\n", "GET \(target) HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET \(target) HTTP/1.1\r\ncontent-length: 0\r\n\r\n", "GET \(target) HTTP/1.1\r\nConnection: close\r\n\r\n",
            "GET \(target) HTTP/1.1\r\nUpgrade: h2c\r\n\r\n", "GET \(target) HTTP/1.1\r\nExpect: 100-continue\r\n\r\n", "GET \(target) HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET \(target) HTTP/1.1\r\n folded\r\n\r\n", "GET \(target) HTTP/1.1\r\nX: a\nY: b\r\n\r\n",
            "GET \(target) HTTP/1.1\r\nX: caf\u{E9}\r\n\r\n", "GET \(target)  HTTP/1.1\r\n\r\n",
        ] {
            #expect(parse(other) == .other, "\(other.debugDescription)")
        }
    }

    @Test func theRawParserReadsPlainPredictionsWithTheirBodies() {
        func parse(_ text: String) -> RawRequestHandler.Parsed {
            Array(text.utf8).withUnsafeBytes { RawRequestHandler.parse($0, maxBodyBytes: 16) }
        }
        let head =
            "POST /serve/churn/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nX-Baton-Key:  c-1 \r\n"
            + "Accept: */*\r\nAuthorization: Bearer s\r\nContent-Length: 8\r\n\r\n"
        let expected = RawRequestHandler.RawPrediction(
            deployment: "churn", contentType: "application/json",
            headers: [("x-baton-key", "c-1"), ("accept", "*/*")],
            headLength: head.utf8.count, bodyLength: 8)
        #expect(parse(head + #"{"a": 1}"#) == .predict(expected))
        #expect(parse(head + #"{"a": 1}POST "#) == .predict(expected))
        // The body counts: a request is whole only with all of it.
        for cut in [1, 12, 40, head.utf8.count - 1, head.utf8.count, head.utf8.count + 7] {
            #expect(parse(String(decoding: (head + #"{"a": 1}"#).utf8.prefix(cut), as: UTF8.self)) == .incomplete, "cut at \(cut)")
        }
        let target = "/serve/churn/predict"
        for other in [
            "POST \(target) HTTP/1.1\r\nHost: t\r\n\r\n", "POST \(target) HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST \(target) HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
            "POST \(target) HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", "POST \(target) HTTP/1.1\r\nContent-Length: 2 2\r\n\r\n{}",
            "POST \(target) HTTP/1.1\r\nContent-Length: 17\r\n\r\n", "POST \(target) HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}",
            "POST \(target) HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
            "POST \(target) HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
            "POST \(target) HTTP/1.1\r\nSec-Fetch-Site: cross-site\r\nContent-Length: 2\r\n\r\n{}",
            "POST \(target) HTTP/1.1\r\nContent-Type: a\r\nContent-Type: b\r\nContent-Length: 2\r\n\r\n{}",
            "POST /serve/churn/feedback HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "POST /serve/a/b/predict HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            "POST /serve/ch%75rn/predict HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", "PUT \(target) HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
            "GET \(target) HTTP/1.1\r\n\r\n",
        ] {
            #expect(parse(other) == .other, "\(other.debugDescription)")
        }
        // The decoder's path reads the deployment the same way.
        #expect(HotPathHandler.deployment(inPredictPath: "/serve/churn/predict") == "churn")
        #expect(HotPathHandler.deployment(inPredictPath: "/serve/churn-2.b/predict?trace=1") == "churn-2.b")
        for path in [
            "/serve/churn/predictx", "/serve//predict", "/serve/a/b/predict", "/serve/ch%75rn/predict", "/serve/churn/feedback",
            "/serve/churn", "/serve/", "/serve/churn/predict/", "/api/serve/churn/predict",
        ] {
            #expect(HotPathHandler.deployment(inPredictPath: path) == nil, "\(path)")
        }
    }

    @Test func predictionsOnAFreshConnectionAreAnsweredFromItsBytesLikeTheRouterAnswersThem() async throws {
        try await Self.withFeaturesAndDeployment { server in
            func predict(_ body: String, headers: String = "") -> String {
                "POST /serve/hot/predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\(headers)Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
            }
            let before = RawRequestHandler.answers.load(ordering: .relaxed)
            // Split over writes, with the caller's request id and a credential the replica must not see.
            let pieces = [
                "POST /serve/hot/predict HTTP/1.1\r\nHost: t\r\nX-Baton-Request-Id: req-7\r\nAuthorization: Bearer x\r\nContent-Le",
                "ngth: 8\r\n\r\n{\"n\":",
                " 7}" + predict(#"{"n": 8}"#),
            ]
            let answers = try await RawHTTP.exchange(port: server.baseURL.port!, sending: pieces, responses: 2)
            #expect(answers.map(\.status) == [200, 200], "\(answers)")
            #expect(answers.first?.body == #"{"prediction": 0.42, "echo": {"n": 7}}"#, "\(answers)")
            #expect(answers.last?.body.contains(#""echo": {"n": 8}"#) == true, "\(answers)")
            let head = answers.first?.head.lowercased() ?? ""
            for expected in ["x-baton-request-id: req-7", "x-baton-version: 1", "content-type: application/json", "server: baton", "date: "] {
                #expect(head.contains(expected), "\(expected) missing from \(head)")
            }
            #expect(RawRequestHandler.answers.load(ordering: .relaxed) >= before + 2, "the raw path did not answer")

            // The router's answer to the same request: the same status, body and headers.
            let routed = try await RawHTTP.exchange(
                port: server.baseURL.port!, sending: "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + predict(#"{"n": 9}"#, headers: "X-Baton-Request-Id: req-9\r\n"),
                responses: 2)
            let fresh = try await RawHTTP.exchange(
                port: server.baseURL.port!, sending: predict(#"{"n": 9}"#, headers: "X-Baton-Request-Id: req-9\r\n"), responses: 1)
            func headerNames(_ answer: RawHTTP.Answer?) -> [String] {
                (answer?.head.lowercased().components(separatedBy: "\r\n").dropFirst().map { String($0.prefix { $0 != ":" }) } ?? []).sorted()
            }
            #expect(routed.last?.status == fresh.first?.status && routed.last?.body == fresh.first?.body, "\(routed) \(fresh)")
            #expect(headerNames(routed.last) == headerNames(fresh.first), "\(routed.last?.head ?? "") vs \(fresh.first?.head ?? "")")

            // An unknown deployment is the gateway's 404 in Baton's error shape, and the
            // connection goes on.
            let unknown = try await RawHTTP.exchange(
                port: server.baseURL.port!,
                sending: "POST /serve/nope/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}" + predict(#"{"n": 10}"#), responses: 2)
            #expect(unknown.map(\.status) == [404, 200], "\(unknown)")
            #expect(unknown.first?.body.contains("not_found") == true, "\(unknown)")
        }
    }

    /// Sends the requests in one write, three times on fresh connections, and expects each
    /// answer's status and a piece of its body in request order.
    static func expectInOrder(_ sequence: [(request: String, status: Int, body: String)], port: Int) async throws {
        for round in 0..<3 {
            let answers = try await RawHTTP.exchange(port: port, sending: sequence.map(\.request).joined(), responses: sequence.count)
            #expect(answers.map(\.status) == sequence.map(\.status), "round \(round): \(answers)")
            for (answer, expected) in zip(answers, sequence) {
                #expect(answer.body.contains(expected.body), "round \(round): \(answer) lacks \(expected.body)")
            }
        }
    }

    static func okLookups(_ server: APITestServer) async throws -> Double {
        let text = try await server.get("/metrics").text
        let line = text.split(separator: "\n").first {
            $0.hasPrefix("baton_http_request_duration_seconds_count") && $0.contains(#"method="GET""#) && $0.contains(#"status="200""#)
        }
        return line.flatMap { $0.split(separator: " ").last }.flatMap { Double($0) } ?? 0
    }
}

/// A blocking HTTP/1.1 client on its own thread: sends bytes as one write and reads the given
/// number of `Content-Length` responses, which URLSession cannot do (it never pipelines).
enum RawHTTP {
    struct Answer: Sendable, CustomStringConvertible {
        var status: Int
        var body: String
        /// The status line and headers.
        var head = ""
        var description: String { "\(status) \(body.prefix(200))" }
    }

    /// `halfClose`: shut the sending side once everything is sent, as some clients do.
    /// `thenExpectEnd`: after the answers, the server must close the connection.
    static func exchange(
        port: Int, sending text: String, responses: Int, halfClose: Bool = false, thenExpectEnd: Bool = false
    ) async throws -> [Answer] {
        try await exchange(port: port, sending: [text], responses: responses, halfClose: halfClose, thenExpectEnd: thenExpectEnd)
    }

    /// Sends `pieces` as separate writes, 20 ms apart, so the server reads them separately.
    static func exchange(
        port: Int, sending pieces: [String], responses: Int, halfClose: Bool = false, thenExpectEnd: Bool = false
    ) async throws -> [Answer] {
        try await offloaded {
            try blockingExchange(port: port, sending: pieces, responses: responses, halfClose: halfClose, thenExpectEnd: thenExpectEnd)
        }
    }

    private static func blockingExchange(
        port: Int, sending pieces: [String], responses: Int, halfClose: Bool, thenExpectEnd: Bool
    ) throws -> [Answer] {
        let socketFD = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socketFD >= 0 else { throw APITestFailure("socket() failed") }
        defer { close(socketFD) }
        var timeout = timeval(tv_sec: 20, tv_usec: 0)
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socketFD, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw APITestFailure("connect to \(port) failed") }
        var one: Int32 = 1
        setsockopt(socketFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        for (index, piece) in pieces.enumerated() {
            if index > 0 { usleep(20_000) }
            let bytes = Array(piece.utf8)
            var sent = 0
            while sent < bytes.count {
                let count = bytes[sent...].withUnsafeBytes { send(socketFD, $0.baseAddress, $0.count, 0) }
                guard count > 0 else { throw APITestFailure("send failed after \(sent) bytes") }
                sent += count
            }
        }
        if halfClose { shutdown(socketFD, Int32(SHUT_WR)) }
        var received: [UInt8] = []
        var answers: [Answer] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while answers.count < responses {
            if let (answer, used) = parse(received) {
                answers.append(answer)
                received.removeFirst(used)
                continue
            }
            let count = buffer.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw APITestFailure("the connection ended after \(answers.count) answers: \(answers)") }
            received.append(contentsOf: buffer[0..<count])
        }
        if thenExpectEnd {
            let count = buffer.withUnsafeMutableBytes { recv(socketFD, $0.baseAddress, $0.count, 0) }
            guard count == 0, received.isEmpty else {
                throw APITestFailure("the connection stayed open after \(answers.count) answers (read \(count) more bytes)")
            }
        }
        return answers
    }

    /// One complete response at the start of `bytes` and how many bytes it took.
    private static func parse(_ bytes: [UInt8]) -> (Answer, Int)? {
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        guard bytes.count >= 4, let end = (0...(bytes.count - 4)).first(where: { Array(bytes[$0..<($0 + 4)]) == separator }) else {
            return nil
        }
        let head = String(decoding: bytes[0..<end], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        let length = lines.dropFirst().compactMap { line -> Int? in
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
            return Int(parts[1].trimmingCharacters(in: .whitespaces))
        }.first ?? 0
        let bodyStart = end + 4
        guard bytes.count >= bodyStart + length else { return nil }
        let body = String(decoding: bytes[bodyStart..<(bodyStart + length)], as: UTF8.self)
        return (Answer(status: status, body: body, head: head), bodyStart + length)
    }
}
