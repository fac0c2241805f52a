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
@Suite(.timeLimit(.minutes(2)))
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
}
