import BatonGateway
import BatonServer
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `POST /serve/{deployment}/predict` through the whole HTTP application (middleware, auth,
/// metrics) to a real replica on loopback.
@Suite(.timeLimit(.minutes(5)))
struct ServeAPITests {
    /// A replica answering `{"prediction": 0.42}`; cancelled when the test ends.
    static func startReplica() async throws -> (port: Int, runner: Task<Void, any Error>) {
        let router = Router()
        router.post("/predict") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            // The caller's token is for Baton, never for the model server.
            let leaked = request.headers[.authorization] != nil
            return Response(
                status: leaked ? .badRequest : .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"prediction": 0.42, "echo": \#(String(buffer: body))}"#)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        var logger = Logger(label: "serve-test-replica")
        logger.logLevel = .critical
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }, logger: logger)
        let runner = Task { try await application.run() }
        for await port in ports { return (port, runner) }
        throw APITestFailure("the replica did not start")
    }

    static func errorDetail(_ result: APIHTTPResult) throws -> [String: Any] {
        let object = try result.object()
        #expect(Set(object.keys) == ["error"])
        return object["error"] as? [String: Any] ?? [:]
    }

    @Test func predictsThroughTheGatewayAndExportsMetrics() async throws {
        let replica = try await Self.startReplica()
        defer { replica.runner.cancel() }
        try await APITestServer.with(pipelines: [:]) { server in
            server.context.gateway.setPolicy(
                TrafficPolicy(stable: GatewayBackend(version: "3", endpoints: [GatewayEndpoint(port: replica.port, replicaID: "churn-3-0")])),
                deployment: "metrics-churn")
            let answer = try await server.post("/serve/metrics-churn/predict", json: #"{"tenure": 12}"#)
            #expect(answer.status == 200, "\(answer)")
            #expect(answer.header("X-Baton-Version") == "3")
            #expect(answer.header("X-Baton-Request-Id")?.isEmpty == false)
            #expect(answer.text == #"{"prediction": 0.42, "echo": {"tenure": 12}}"#)

            let missing = try await server.post("/serve/nope/predict", json: "{}")
            #expect(missing.status == 404)
            let detail = try Self.errorDetail(missing)
            #expect(detail["code"] as? String == "not_found")
            #expect((detail["message"] as? String)?.contains("'nope'") == true)
            #expect(detail["fix"] is String)

            let metrics = try await server.get("/metrics")
            // Metrics are process-wide and other suites' gateways record too: a name of its own.
            #expect(
                metrics.text.contains(#"baton_serve_requests_total{deployment="metrics-churn",version="3"} 1"#),
                "\(metrics.text.prefix(3000))")
            #expect(metrics.text.contains("# HELP baton_serve_latency_seconds"))
            #expect(server.context.gateway.stats(deployment: "metrics-churn")["3"]?.prediction.mean == 0.42)
        }
    }

    @Test func oversizedBodiesAre413InTheErrorShape() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let big = "{\"blob\": \"" + String(repeating: "a", count: server.context.gateway.maxBodyBytes) + "\"}"
            let answer = try await server.post("/serve/churn/predict", json: big)
            #expect(answer.status == 413)
            #expect(try Self.errorDetail(answer)["code"] as? String == "body_too_large")
        }
    }

    @Test func aViewerTokenMayPredictAndCredentialsStayWithBaton() async throws {
        let replica = try await Self.startReplica()
        defer { replica.runner.cancel() }
        try await APITestServer.with(pipelines: [:], requireAuth: true) { server in
            let viewer = try await server.context.tokens.create(team: "crm", role: .viewer, description: "app").token
            server.context.gateway.setPolicy(
                TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [GatewayEndpoint(port: replica.port, replicaID: "r")])),
                deployment: "churn")
            #expect(try await server.post("/serve/churn/predict", json: "{}").status == 401)
            let answer = try await server.post("/serve/churn/predict", json: #"{"x": 1}"#, token: viewer)
            #expect(answer.status == 200, "\(answer)")
        }
    }

    @Test func feedbackCountsForTheVersionThatAnsweredOnceAndBadReportsChangeNothing() async throws {
        let stable = try await Self.startReplica()
        defer { stable.runner.cancel() }
        let candidate = try await Self.startReplica()
        defer { candidate.runner.cancel() }
        try await APITestServer.with(pipelines: [:]) { server in
            server.context.gateway.setPolicy(
                TrafficPolicy(
                    stable: GatewayBackend(version: "1", endpoints: [GatewayEndpoint(port: stable.port, replicaID: "s")]),
                    candidate: GatewayBackend(version: "2", endpoints: [GatewayEndpoint(port: candidate.port, replicaID: "c")]),
                    candidatePercent: 50),
                deployment: "shop")
            var answered: [(id: String, version: String)] = []
            for index in 0..<40 {
                let answer = try await server.post("/serve/shop/predict", json: #"{"x": \#(index)}"#)
                #expect(answer.status == 200, "\(answer)")
                answered.append((try #require(answer.header("X-Baton-Request-Id")), try #require(answer.header("X-Baton-Version"))))
            }
            #expect(Set(answered.map(\.version)) == ["1", "2"], "a 50 % split over 40 requests reaches both versions")

            // One report per request, in one batch: each counts for the version that answered.
            let batch = answered.enumerated().map { index, request in
                #"{"request_id": "\#(request.id)", "metric": "converted", "value": \#(index % 2 == 0 ? "true" : "0")}"#
            }
            let recorded = try await server.post("/serve/shop/feedback", json: "[" + batch.joined(separator: ",") + "]")
            #expect(recorded.status == 200, "\(recorded)")
            let body = try recorded.object()
            #expect(body["counted"] as? Double == 40)
            #expect(body["duplicates"] as? Double == 0)
            let window = (from: Date().addingTimeInterval(-60), to: Date().addingTimeInterval(60))
            for version in ["1", "2"] {
                let points = try await server.context.store.metricPoints(
                    name: "converted", tags: ["deployment": "shop", "version": version], from: window.from, to: window.to, limit: 100)
                #expect(points.count == answered.filter { $0.version == version }.count)
                #expect(points.allSatisfy { $0.tags["source"] == "feedback" })
            }

            // The same request and metric again is acknowledged but not counted twice.
            let again = try await server.post(
                "/serve/shop/feedback", json: #"{"request_id": "\#(answered[0].id)", "metric": "converted", "value": 1}"#)
            #expect(again.status == 200)
            #expect(try again.object()["duplicates"] as? Double == 1)

            // A batch with one bad report is refused whole, naming the report and field.
            let mixed = try await server.post(
                "/serve/shop/feedback",
                json: #"[{"request_id": "\#(answered[1].id)", "metric": "revenue", "value": 12.5}, {"request_id": "\#(answered[2].id)", "metric": "revenue", "value": "lots"}]"#)
            #expect(mixed.status == 400)
            let mixedError = try Self.errorDetail(mixed)
            #expect(mixedError["field"] as? String == "[1].value", "\(mixedError)")
            #expect(mixedError["fix"] is String)
            let revenue = try await server.context.store.metricPoints(
                name: "revenue", tags: ["deployment": "shop"], from: window.from, to: window.to, limit: 10)
            #expect(revenue.isEmpty, "nothing of a refused batch is stored")
            // ...and its good half counts when sent again.
            let retried = try await server.post(
                "/serve/shop/feedback", json: #"{"request_id": "\#(answered[1].id)", "metric": "revenue", "value": 12.5}"#)
            #expect(try retried.object()["counted"] as? Double == 1, "\(retried)")

            // A request the gateway does not know needs its version; a wrong version is refused.
            let unknown = try await server.post("/serve/shop/feedback", json: #"{"request_id": "nope-1", "metric": "converted", "value": 1}"#)
            #expect(unknown.status == 404)
            let unknownError = try Self.errorDetail(unknown)
            #expect((unknownError["message"] as? String)?.contains("nope-1") == true)
            #expect((unknownError["fix"] as? String)?.contains("version") == true)
            let named = try await server.post(
                "/serve/shop/feedback", json: #"{"request_id": "nope-1", "version": "2", "metric": "converted", "value": 1}"#)
            #expect(named.status == 200, "\(named)")
            let wrongVersion = answered[3].version == "1" ? "2" : "1"
            let mismatch = try await server.post(
                "/serve/shop/feedback",
                json: #"{"request_id": "\#(answered[3].id)", "version": "\#(wrongVersion)", "metric": "clicks", "value": 1}"#)
            #expect(mismatch.status == 400)
            #expect((try Self.errorDetail(mismatch)["message"] as? String)?.contains("answered by version \(answered[3].version)") == true)
            for bad in [#"{"metric": "converted", "value": 1}"#, #"{"request_id": "x", "metric": "1bad", "value": 1}"#, "[]", "7",
                        #"{"request_id": "x", "metric": "m", "value": 1, "valeu": 2}"#] {
                let refused = try await server.post("/serve/shop/feedback", json: bad)
                #expect(refused.status == 400, "\(bad): \(refused)")
                #expect(try Self.errorDetail(refused)["code"] as? String == "invalid_request", "\(bad)")
            }
        }
    }
}
