import BatonDeploy
import BatonEngine
import BatonGateway
import BatonServer
import BatonStore
import Foundation
import Hummingbird
import Logging

/// Why an in-process test server could not start.
struct InProcessServerError: Error, CustomStringConvertible {
    var description: String
}

/// An engine and the HTTP application on a free loopback port in this process, shared by the
/// API and UI test servers: pipelines are written to `root/pipelines`, the store is
/// `root/baton.db`, and cancelling `runner` stops both.
struct InProcessServer: Sendable {
    let store: SQLiteStore
    let engine: Engine
    let context: ServerContext
    let port: Int
    let runner: Task<Void, any Error>

    static func start(
        root: String, pipelines: [String: String], requireAuth: Bool, slots: Int = 4, scheduler: Bool = false,
        deployments: (@Sendable (SQLiteStore, Gateway) -> DeploymentManager)? = nil
    ) async throws -> InProcessServer {
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        for (name, yaml) in pipelines {
            try yaml.write(toFile: root + "/pipelines/\(name).yaml", atomically: true, encoding: .utf8)
        }
        let store = try SQLiteStore(path: root + "/baton.db")
        var logger = Logger(label: "baton-test-server")
        logger.logLevel = .error
        let engine = Engine(
            store: store,
            configuration: EngineConfiguration(
                pipelinesDirectory: root + "/pipelines", dataDirectory: root, slots: slots,
                externalCheckInterval: .milliseconds(50), externalCheckSafetyNet: .milliseconds(50), watchFiles: false,
                schedulerEnabled: scheduler),
            logger: logger)
        let gateway = Gateway(logger: logger)
        let context = ServerContext(
            store: store, engine: engine,
            configuration: ServerConfiguration(
                host: "127.0.0.1", port: 0, requireAuth: requireAuth, artifactRoot: root + "/artifacts"),
            metrics: MetricsRegistry.shared, pipelinesDirectory: root + "/pipelines",
            deployments: deployments?(store, gateway), gateway: gateway)
        let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        // Stopping by cancellation makes Hummingbird log a CancellationError; keep it quiet.
        var httpLogger = logger
        httpLogger.logLevel = .critical
        let application = BatonHTTP.application(context: context, logger: httpLogger) { port in
            portContinuation.yield(port)
            portContinuation.finish()
        }
        let runner = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await engine.run() }
                group.addTask { try await application.run() }
                // Either one ending (or the task being cancelled) stops both.
                defer { group.cancelAll() }
                try await group.next()
            }
        }
        let port = try await withThrowingTaskGroup(of: Int?.self) { group in
            group.addTask {
                for await port in ports { return port }
                return nil
            }
            group.addTask {
                try await Task.sleep(for: .seconds(20))
                return nil
            }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let port else {
            runner.cancel()
            throw InProcessServerError(description: "the HTTP server did not start listening within 20 s")
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while await !engine.isRunning() {
            guard ContinuousClock.now < deadline else {
                runner.cancel()
                throw InProcessServerError(description: "the engine did not start within 20 s")
            }
            try await Task.sleep(for: .milliseconds(5))
        }
        return InProcessServer(store: store, engine: engine, context: context, port: port, runner: runner)
    }
}
