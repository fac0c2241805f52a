import AsyncHTTPClient
import BatonCore
import BatonGateway
import BatonStore
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// Publishes an event (name, JSON payload) to the engine: `baton up` passes the engine's
/// `publish`, so a pipeline can trigger on `deployment.NAME.degraded`.
public typealias AlertPublisher = @Sendable (_ name: String, _ payload: JSONValue) async -> Void

/// One condition that went wrong: an SLO breached by a version, or a feature drifted.
public struct DeploymentAlert: Sendable, Hashable {
    /// `slo` or `drift`.
    public var kind: String
    /// Identifies the condition, so it alerts once until it clears (`slo.error_rate.4`, `drift.4.x`).
    public var key: String
    public var version: String
    public var reason: String
    public var values: JSONValue

    func payload(deployment: String) -> JSONValue {
        .object([
            "deployment": .string(deployment), "kind": .string(kind), "version": .string(version), "reason": .string(reason),
            "values": values,
        ])
    }
}

extension DeploymentManager {
    /// Live values below this many are too few for a PSI to mean anything; such features do not alert.
    static let minimumDriftSample = 30

    /// Sets who publishes the `deployment.NAME.degraded` events.
    public func setAlertPublisher(_ publisher: AlertPublisher?) { alertPublisher = publisher }

    func monitorAll() async {
        for name in names() { await monitor(name) }
    }

    /// The conditions that are wrong now: SLOs of stable and canary over `slo.window`, and PSI
    /// per feature over `drift.window` above `drift.max_psi`.
    func currentAlerts(_ name: String) -> [DeploymentAlert] {
        guard let deployment = try? deployment(name) else { return [] }
        let spec = deployment.spec
        var alerts: [DeploymentAlert] = []
        let versions = [deployment.state.stable, deployment.state.canary].compactMap { $0?.version }
        if let slo = spec.slo {
            let stats = router.stats(deployment: name, since: clock().addingTimeInterval(-slo.windowSeconds))
            for version in versions {
                guard let snapshot = stats[version], snapshot.requests > 0 else { continue }
                let values: JSONValue = .object([
                    "requests": .number(Double(snapshot.requests)), "error_rate": .number(snapshot.errorRate),
                    "p99_ms": .number(snapshot.p99Ms), "window_seconds": .number(slo.windowSeconds),
                ])
                if let limit = slo.maxErrorRate, snapshot.errorRate > limit {
                    alerts.append(DeploymentAlert(
                        kind: "slo", key: "slo.error_rate.\(version)", version: version,
                        reason: "v\(version) error rate \(Self.rounded(snapshot.errorRate)) is above the SLO's \(Self.rounded(limit))",
                        values: Self.merging(values, ["max_error_rate": .number(limit)])))
                }
                if let limit = slo.maxP99LatencyMs, snapshot.p99Ms > limit {
                    alerts.append(DeploymentAlert(
                        kind: "slo", key: "slo.p99.\(version)", version: version,
                        reason: "v\(version) p99 latency \(Self.rounded(snapshot.p99Ms)) ms is above the SLO's \(Self.rounded(limit)) ms",
                        values: Self.merging(values, ["max_p99_latency_ms": .number(limit)])))
                }
            }
        }
        if let maxPSI = spec.drift?.maxPSI, let drift = try? drift(name) {
            for version in drift.versions {
                for (feature, entry) in version.features.sorted(by: { $0.key < $1.key })
                where entry.liveCount >= Self.minimumDriftSample && entry.psi > maxPSI {
                    alerts.append(DeploymentAlert(
                        kind: "drift", key: "drift.\(version.version).\(feature)", version: version.version,
                        reason: "v\(version.version) feature \(feature) drifted: PSI \(Self.rounded(entry.psi)) is above \(Self.rounded(maxPSI))",
                        values: .object([
                            "feature": .string(feature), "psi": .number(entry.psi), "max_psi": .number(maxPSI),
                            "live_count": .number(Double(entry.liveCount)), "window_seconds": .number(drift.windowSeconds),
                        ])))
                }
            }
        }
        return alerts
    }

    /// One monitoring round: raises each new condition once, and forgets the ones that cleared.
    func monitor(_ name: String) async {
        let alerts = currentAlerts(name)
        let active = activeAlerts[name] ?? []
        activeAlerts[name] = Set(alerts.map(\.key))
        for cleared in active.subtracting(alerts.map(\.key)).sorted() {
            _ = try? await store.recordDeploymentEvent(
                event(name, actor: "baton", action: "alert.cleared", reason: "\(cleared) is back within its threshold"))
        }
        for alert in alerts where !active.contains(alert.key) { await raise(alert, deployment: name) }
    }

    func raise(_ alert: DeploymentAlert, deployment name: String) async {
        logger.warning("deployment \(name): \(alert.reason)")
        _ = try? await store.recordDeploymentEvent(
            event(name, actor: "baton", action: "alert.\(alert.kind)", version: alert.version, reason: alert.reason, detail: alert.values))
        Counter(label: "baton_deployment_alerts_total", dimensions: [("deployment", name), ("kind", alert.kind)]).increment()
        let payload = alert.payload(deployment: name)
        if let alertPublisher { await alertPublisher("deployment.\(name).degraded", payload) }
        if let webhook = try? deployment(name).spec.alertWebhook, !webhook.isEmpty {
            let client = httpClient
            let logger = logger
            Task {
                var request = HTTPClientRequest(url: webhook)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(ByteBuffer(string: payload.compactJSON))
                do {
                    let response = try await client.execute(request, timeout: .seconds(10))
                    _ = try await response.body.collect(upTo: 64 * 1024)
                    if response.status.code >= 300 {
                        logger.warning("deployment \(name): the alert webhook answered \(response.status.code)")
                    }
                } catch {
                    logger.warning("deployment \(name): the alert webhook \(webhook) failed: \(error)")
                }
            }
        }
    }

    static func rounded(_ value: Double) -> String { String(format: "%.4g", value) }

    static func merging(_ value: JSONValue, _ extra: [String: JSONValue]) -> JSONValue {
        .object((value.objectValue ?? [:]).merging(extra) { _, new in new })
    }
}
