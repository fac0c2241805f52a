import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

@testable import BatonGateway

/// A model server on a free loopback port: answers `POST /predict` with
/// `{"prediction": <value>, "replica": "<name>"}` (or the status it is told to), and counts what
/// it received.
final class TestReplica: Sendable {
    let name: String
    let port: Int
    private let runner: Task<Void, any Error>
    private let log: ReplicaLog

    struct Behaviour: Sendable {
        var prediction: Double = 0.42
        var status: Int = 200
        var delay: Duration = .zero
    }

    private init(name: String, port: Int, runner: Task<Void, any Error>, log: ReplicaLog) {
        self.name = name
        self.port = port
        self.runner = runner
        self.log = log
    }

    var received: Int { log.state.withLock { $0.count } }
    var bodies: [String] { log.state.withLock { $0.bodies } }
    /// Each request's header fields, names lowercased.
    var headers: [[(String, String)]] { log.state.withLock { $0.headers } }

    func endpoint() -> GatewayEndpoint { GatewayEndpoint(host: "127.0.0.1", port: port, replicaID: name) }

    func stop() { runner.cancel() }

    static func start(_ name: String, _ behaviour: Behaviour = Behaviour()) async throws -> TestReplica {
        let log = ReplicaLog()
        let router = Router()
        router.post("/predict") { request, _ -> Response in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            log.state.withLock {
                $0.count += 1
                $0.bodies.append(String(buffer: body))
                $0.headers.append(request.headers.map { ($0.name.canonicalName, $0.value) })
            }
            if behaviour.delay > .zero { try await Task.sleep(for: behaviour.delay) }
            let text = #"{"prediction": \#(behaviour.prediction), "replica": "\#(name)"}"#
            return Response(
                status: .init(code: behaviour.status), headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        var logger = Logger(label: "test-replica")
        logger.logLevel = .critical
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }, logger: logger)
        let runner = Task { try await application.run() }
        let port = try await within(.seconds(20), "replica \(name) to listen") {
            for await port in ports { return port }
            return nil
        }
        return TestReplica(name: name, port: port, runner: runner, log: log)
    }
}

/// What a replica received, shared by its handler and the test.
final class ReplicaLog: Sendable {
    let state = Mutex<(count: Int, bodies: [String], headers: [[(String, String)]])>((0, [], []))
}

struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// The value `body` produces, or a failure after `limit`.
func within<T: Sendable>(
    _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T?
) async throws -> T {
    let value = try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
    guard let value else { throw TimedOut(description: "waited \(limit) for \(what)") }
    return value
}

/// Polls `condition` until it holds or `limit` passes; a deadline, never a fixed sleep.
func waitUntil(_ limit: Duration, _ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(description: "waited \(limit) for \(what)") }
        try await Task.sleep(for: .milliseconds(5))
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "gateway-test")
    logger.logLevel = .critical
    return logger
}

extension Gateway {
    func predict(_ deployment: String, _ json: String, headers: [(String, String)] = []) async -> GatewayResponse {
        await forward(deployment: deployment, body: ByteBuffer(string: json), contentType: "application/json", headers: headers)
    }
}

extension GatewayResponse {
    var text: String { String(buffer: body) }

    /// The decoded error body, for shape checks.
    var errorDetail: [String: String]? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let error = object["error"] as? [String: Any]
        else { return nil }
        return error.compactMapValues { $0 as? String }
    }
}
