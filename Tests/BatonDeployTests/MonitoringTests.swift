import BatonCore
import BatonGateway
import BatonStore
import Foundation
import Logging
import Synchronization
import Testing

@testable import BatonDeploy

/// SLO and drift alerts raised by the manager's monitoring.
@Suite(.serialized) struct MonitoringTests {
    @Test func anSLOBreachPublishesTheDegradedEventOnce() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        try await harness.registerVersion("errors", alias: "champion")
        var logger = Logger(label: "test.monitoring")
        logger.logLevel = .error
        var configuration = DeploymentConfiguration(dataDirectory: harness.root, timing: Harness.fastTiming)
        configuration.monitorInterval = .milliseconds(100)
        let manager = DeploymentManager(
            store: harness.store, resolver: RegistryModelResolver(registry: harness.registry), router: harness.router,
            configuration: configuration, logger: logger)
        let published = Mutex<[(String, JSONValue)]>([])
        await manager.setAlertPublisher { name, payload in published.withLock { $0.append((name, payload)) } }
        let task = Task { try await manager.run() }
        defer { task.cancel() }
        try await eventually("the manager supervises") { await manager.isSupervising() }
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
}
