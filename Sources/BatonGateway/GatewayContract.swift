// Stand-in for BatonGateway's public API, as agreed with the gateway's author, so that
// BatonDeploy builds before the real module is merged. Drop this file (and its Package.swift
// target) at merge: the real module replaces it with the same declarations.
import AsyncHTTPClient
import Foundation
import Logging
import Synchronization

/// The replicas of one model version that may take traffic (healthy ones only).
public struct GatewayBackend: Sendable, Hashable {
    public var version: String
    public var endpoints: [GatewayEndpoint]

    public init(version: String, endpoints: [GatewayEndpoint]) {
        self.version = version
        self.endpoints = endpoints
    }
}

public struct GatewayEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var replicaID: String

    public init(host: String, port: Int, replicaID: String) {
        self.host = host
        self.port = port
        self.replicaID = replicaID
    }
}

public enum TrafficMode: String, Sendable, Codable { case split, shadow }

/// How one deployment's requests are routed.
public struct TrafficPolicy: Sendable, Equatable {
    public var stable: GatewayBackend?
    public var candidate: GatewayBackend?
    public var candidatePercent: Double
    public var mode: TrafficMode
    public var stickyKey: String?

    public init(
        stable: GatewayBackend?, candidate: GatewayBackend?, candidatePercent: Double, mode: TrafficMode, stickyKey: String?
    ) {
        self.stable = stable
        self.candidate = candidate
        self.candidatePercent = candidatePercent
        self.mode = mode
        self.stickyKey = stickyKey
    }
}

/// One version's request figures over a window.
public struct VersionStatsSnapshot: Sendable, Hashable {
    public var requests: Int
    public var errors: Int
    public var errorRate: Double
    public var p50Ms: Double
    public var p99Ms: Double

    public init(requests: Int, errors: Int, errorRate: Double, p50Ms: Double, p99Ms: Double) {
        self.requests = requests
        self.errors = errors
        self.errorRate = errorRate
        self.p50Ms = p50Ms
        self.p99Ms = p99Ms
    }
}

/// The prediction proxy. The stand-in only keeps policies; it routes nothing and counts nothing.
public final class Gateway: Sendable {
    private let policies = Mutex<[String: TrafficPolicy]>([:])

    public init(httpClient: HTTPClient? = nil, requestTimeout: Duration = .seconds(30), logger: Logger) {}

    public func setPolicy(_ policy: TrafficPolicy?, deployment: String) {
        policies.withLock { $0[deployment] = policy }
    }

    public func policy(deployment: String) -> TrafficPolicy? { policies.withLock { $0[deployment] } }

    public func stats(deployment: String) -> [String: VersionStatsSnapshot] { [:] }

    public func stats(deployment: String, since: Date) -> [String: VersionStatsSnapshot] { [:] }

    public func resetStats(deployment: String, version: String) {}
}
