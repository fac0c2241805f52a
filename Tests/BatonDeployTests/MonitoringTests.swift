import BatonCore
import BatonGateway
import BatonStore
import Foundation
import Hummingbird
import Logging
import Synchronization
import Testing

@testable import BatonDeploy

/// SLO and drift alerts raised by the manager's monitoring.
@Suite(.serialized) struct MonitoringTests {
    /// A running manager that checks every 100 ms, with a stable `errors` version registered as
    /// champion, and the alert events it publishes.
    static func monitoredManager(
        _ harness: Harness
    ) async throws -> (DeploymentManager, Task<Void, any Error>, PublishedAlerts) {
        try await harness.registerVersion("errors", alias: "champion")
        var logger = Logger(label: "test.monitoring")
        logger.logLevel = .critical
        var configuration = DeploymentConfiguration(dataDirectory: harness.root, timing: Harness.fastTiming)
        configuration.monitorInterval = .milliseconds(100)
        let manager = DeploymentManager(
            store: harness.store, resolver: RegistryModelResolver(registry: harness.registry), router: harness.router,
            configuration: configuration, logger: logger)
        let published = PublishedAlerts()
        await manager.setAlertPublisher { name, payload in published.withLock { $0.append((name, payload)) } }
        let task = Task { try await manager.run() }
        try await eventually("the manager supervises") { await manager.isSupervising() }
        return (manager, task, published)
    }

    @Test func anSLOBreachPublishesTheDegradedEventOnce() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let (manager, task, published) = try await Self.monitoredManager(harness)
        defer { task.cancel() }
        var spec = harness.spec()
        spec.slo = SLOSpec(maxErrorRate: 0.1, windowSeconds: 60)
        try await manager.put(spec, source: "api", actor: "alice")
        try await eventually("stable serves") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
        for _ in 0..<5 { _ = await harness.router.predict("churn") }
        try await eventually("the breach is published") { published.withLock { !$0.isEmpty } }
        // Later rounds see the same breach and stay quiet.
        try await Task.sleep(for: .milliseconds(500))
        let events = published.withLock { $0 }
        #expect(events.count == 1)
        #expect(events.first?.0 == "deployment.churn.degraded")
        #expect(events.first?.1["kind"] == .string("slo"))
        #expect(events.first?.1["version"] == .string("1"))
        #expect(events.first?.1["values"]?["error_rate"] == .number(1))
        let trail = try await harness.store.deploymentEvents(deployment: "churn", limit: 1000, beforeID: nil)
        #expect(trail.filter { $0.action == "alert.slo" }.count == 1)
        task.cancel()
        _ = await task.result
    }

    @Test func anAlertPostsItsWebhookClearsWhenTheBreachEndsAndIsRaisedAgainLater() async throws {
        // The owner's webhook: a server on loopback that keeps every body it is sent.
        let received = Mutex<[String]>([])
        let router = Router()
        router.post("/hook") { request, _ -> HTTPResponse.Status in
            var request = request
            let body = try await request.collectBody(upTo: 1 << 20)
            received.withLock { $0.append(String(buffer: body)) }
            return .noContent
        }
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        var quiet = Logger(label: "test.webhook")
        quiet.logLevel = .critical
        let hook = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                continuation.yield(channel.localAddress?.port ?? 0)
                continuation.finish()
            }, logger: quiet)
        let hookTask = Task { try await hook.run() }
        defer { hookTask.cancel() }
        var hookPort = 0
        for await port in ports { hookPort = port }

        let harness = try Harness()
        defer { harness.remove() }
        let (manager, task, published) = try await Self.monitoredManager(harness)
        defer { task.cancel() }
        var spec = harness.spec()
        spec.slo = SLOSpec(maxErrorRate: 0.1, windowSeconds: 60)
        spec.alertWebhook = "http://127.0.0.1:\(hookPort)/hook"
        try await manager.put(spec, source: "api", actor: "alice")
        try await eventually("stable serves") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
        for _ in 0..<5 { _ = await harness.router.predict("churn") }

        try await eventually("the webhook receives the alert") { received.withLock { !$0.isEmpty } }
        let body = try JSONValue.parse(Data(received.withLock { $0[0] }.utf8))
        #expect(body["deployment"] == .string("churn"))
        #expect(body["kind"] == .string("slo"))
        #expect(body["version"] == .string("1"))
        #expect(body["values"]?["max_error_rate"] == .number(0.1))

        // The replica recovers and its errors leave the window: the alert clears, once.
        try await harness.setBehaviour("ok", version: 1)
        harness.router.resetStats(deployment: "churn", version: "1")
        try await eventually("the alert clears") {
            let trail = try await harness.store.deploymentEvents(deployment: "churn", limit: 1000, beforeID: nil)
            return trail.contains { $0.action == "alert.cleared" }
        }
        // A new breach after the clearing is a new alert: published and posted again.
        try await harness.setBehaviour("errors", version: 1)
        for _ in 0..<5 { _ = await harness.router.predict("churn") }
        try await eventually("the second breach is published and posted") {
            published.withLock { $0.count } == 2 && received.withLock { $0.count } == 2
        }
        let trail = try await harness.store.deploymentEvents(deployment: "churn", limit: 1000, beforeID: nil)
        #expect(trail.filter { $0.action == "alert.slo" }.count == 2)
        #expect(trail.filter { $0.action == "alert.cleared" }.count == 1)
        task.cancel()
        _ = await task.result
    }
}

/// The `deployment.NAME.degraded` events a manager published.
final class PublishedAlerts: Sendable {
    private let events = Mutex<[(String, JSONValue)]>([])

    func withLock<T: Sendable>(_ body: (inout [(String, JSONValue)]) -> T) -> T {
        events.withLock { body(&$0) }
    }
}
