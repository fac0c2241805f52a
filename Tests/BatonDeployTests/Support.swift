import AsyncHTTPClient
import BatonCore
import BatonGateway
import BatonRegistry
import BatonStore
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

@testable import BatonDeploy

enum VersionStatsSnapshotFixture {
    static func make(requests: Int, errors: Int, p99: Double) -> VersionStatsSnapshot {
        VersionStatsSnapshot(
            requests: requests, errors: errors, errorRate: requests == 0 ? 0 : Double(errors) / Double(requests), p50Ms: p99 / 2,
            p99Ms: p99)
    }
}

/// Routes test requests by the policy the manager set, as the gateway does (weighted split
/// between healthy stable and candidate replicas), and counts per version, so the manager's
/// analysis reads real figures from real replicas.
final class TestRouter: TrafficRouting {
    struct Sample {
        var version: String
        var at: Date
        var failed: Bool
        var milliseconds: Double
    }

    private let policies = Mutex<[String: TrafficPolicy]>([:])
    private let samples = Mutex<[String: [Sample]]>([:])
    private let counter = Atomic<Int>(0)

    func setPolicy(_ policy: TrafficPolicy?, deployment: String) { policies.withLock { $0[deployment] = policy } }
    func policy(_ deployment: String) -> TrafficPolicy? { policies.withLock { $0[deployment] } }

    func stats(deployment: String, since: Date) -> [String: VersionStatsSnapshot] {
        let chosen = samples.withLock { $0[deployment] ?? [] }.filter { $0.at >= since }
        var result: [String: VersionStatsSnapshot] = [:]
        for (version, group) in Dictionary(grouping: chosen, by: \.version) {
            let errors = group.filter(\.failed).count
            let latencies = group.map(\.milliseconds).sorted()
            func quantile(_ q: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * q))] }
            result[version] = VersionStatsSnapshot(
                requests: group.count, errors: errors, errorRate: Double(errors) / Double(group.count), p50Ms: quantile(0.5),
                p99Ms: quantile(0.99))
        }
        return result
    }

    func stats(deployment: String) -> [String: VersionStatsSnapshot] { stats(deployment: deployment, since: .distantPast) }

    func resetStats(deployment: String, version: String) {
        samples.withLock { $0[deployment]?.removeAll { $0.version == version } }
    }

    /// Sends one prediction; nil when no replica takes traffic.
    func predict(_ deployment: String) async -> (version: String, status: Int)? {
        guard let policy = policy(deployment) else { return nil }
        let useCandidate = (policy.candidate?.endpoints.isEmpty == false) && Double.random(in: 0..<100) < policy.candidatePercent
        guard let backend = useCandidate ? policy.candidate : policy.stable, !backend.endpoints.isEmpty else { return nil }
        let endpoint = backend.endpoints[counter.wrappingAdd(1, ordering: .relaxed).oldValue % backend.endpoints.count]
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(endpoint.port)/predict")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"customer_id": 1}"#))
        let started = ContinuousClock.now
        var status = 599
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            _ = try await response.body.collect(upTo: 1 << 20)
            status = Int(response.status.code)
        } catch {}
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1000
        samples.withLock {
            $0[deployment, default: []].append(Sample(version: backend.version, at: Date(), failed: status >= 500, milliseconds: milliseconds))
        }
        return (backend.version, status)
    }
}

/// A registry with model versions whose artifact folders tell the test replica how to behave.
struct Harness {
    let root: String
    let store: SQLiteStore
    let registry: Registry
    let router = TestRouter()
    let manager: DeploymentManager

    /// Changes how version `number`'s running replicas behave from their next request on.
    func setBehaviour(_ behaviour: String, version number: Int) async throws {
        let folder = try #require(try await registry.version(model: "churn", number: number).localPath)
        try behaviour.write(toFile: folder + "/behaviour", atomically: true, encoding: .utf8)
    }

    static var script: String {
        Bundle.module.path(forResource: "replica", ofType: "py") ?? "replica.py"
    }

    static var fastTiming: SupervisorTiming {
        var timing = SupervisorTiming()
        timing.startingCheckInterval = .milliseconds(50)
        timing.healthyCheckInterval = .milliseconds(200)
        timing.healthTimeout = .milliseconds(500)
        timing.drainWait = .milliseconds(600)
        timing.terminationGrace = 1
        timing.backoffUnit = .milliseconds(100)
        timing.maxBackoff = .seconds(1)
        return timing
    }

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-deploy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        store = try SQLiteStore(path: root + "/baton.db")
        registry = Registry(store: store, artifactRoot: root + "/artifacts")
        manager = Self.makeManager(store: store, registry: registry, router: router, root: root)
    }

    static func makeManager(store: SQLiteStore, registry: Registry, router: TestRouter, root: String) -> DeploymentManager {
        var logger = Logger(label: "test.deploy")
        logger.logLevel = .warning
        return DeploymentManager(
            store: store, resolver: RegistryModelResolver(registry: registry), router: router,
            configuration: DeploymentConfiguration(dataDirectory: root, timing: fastTiming), logger: logger)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    /// Registers version N of `churn` whose replica behaves as `behaviour` says.
    @discardableResult
    func registerVersion(_ behaviour: String, alias: String? = nil) async throws -> Int {
        if (try? await registry.model(named: "churn")) == nil {
            _ = try await registry.createRegisteredModel(name: "churn", description: nil, tags: [], actor: "test")
        }
        let folder = "v\(UUID().uuidString.prefix(8))"
        let created = try await registry.createModelVersion(
            name: "churn", source: "mlflow-artifacts:/0/\(folder)/artifacts/model", runID: nil, runLink: nil, description: nil,
            modelID: nil, tags: [], actor: "test", origin: nil)
        let number = Int((created["model_version"]?["version"] ?? created["version"])?.scalarText ?? "") ?? 0
        let directory = "\(root)/artifacts/0/\(folder)/artifacts/model"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try behaviour.write(toFile: directory + "/behaviour", atomically: true, encoding: .utf8)
        if let alias { try await registry.setAlias(name: "churn", alias: alias, version: String(number), actor: "test") }
        return number
    }

    func spec(replicas: Int = 1, steps: [RolloutStep] = [], minRequests: Int = 5, interval: Double = 0.2) -> DeploymentSpec {
        DeploymentSpec(
            name: "churn", owner: "mlops", model: "models:/churn@champion", command: "exec python3 \(Self.script)", workdir: root,
            health: "/health", replicas: replicas, env: ["EXTRA": "x"],
            rollout: RolloutSpec(
                steps: steps,
                analysis: AnalysisSpec(intervalSeconds: interval, minRequests: minRequests, maxErrorRate: 0.05, maxP99LatencyMs: 2000)))
    }
}

/// Waits until `condition` holds, checking often, failing after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(20), sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
    throw CancellationError()
}

extension JSONValue {
    func at(_ path: String) -> JSONValue? {
        var current: JSONValue? = self
        for part in path.split(separator: ".") {
            if let index = Int(part), case .array(let items)? = current {
                current = index < items.count ? items[index] : nil
            } else {
                current = current?[String(part)]
            }
        }
        return current
    }
}
