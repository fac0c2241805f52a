import Synchronization

/// One version as the router sees it: its replicas, their connection pools, a round-robin
/// counter and the version's recorder.
final class Target: Sendable {
    let backend: GatewayBackend
    /// Looked up once per policy, not per request; parallel to `backend.endpoints`.
    let pools: [EndpointPool]
    /// Requests each replica is answering now, parallel to `backend.endpoints`.
    let inFlight: [InFlightCounter]
    let recorder: VersionRecorder
    private let counter = Atomic<Int>(0)

    init(
        backend: GatewayBackend, recorder: VersionRecorder, client: ReplicaClient,
        inFlight: (GatewayEndpoint) -> InFlightCounter
    ) {
        self.backend = backend
        self.recorder = recorder
        pools = backend.endpoints.map { client.pool(host: $0.host, port: $0.port) }
        self.inFlight = backend.endpoints.map(inFlight)
    }

    /// The next replica in turn (callers take it modulo the endpoint count).
    func nextIndex() -> Int {
        counter.wrappingAdd(1, ordering: .relaxed).oldValue & Int.max
    }
}

/// A deployment's policy resolved to targets; replaced whole by `setPolicy`.
final class Route: Sendable {
    let deployment: String
    let policy: TrafficPolicy
    let stable: Target?
    let candidate: Target?
    let requestLog: RequestLog

    init(deployment: String, policy: TrafficPolicy, stable: Target?, candidate: Target?, requestLog: RequestLog) {
        self.deployment = deployment
        self.policy = policy
        self.stable = stable
        self.candidate = candidate
        self.requestLog = requestLog
    }

    /// Which version answers, and which one gets a shadow copy.
    func choose(stickyKey: String?) -> (primary: Target?, shadow: Target?) {
        guard let stable else { return (candidate, nil) }
        guard let candidate else { return (stable, nil) }
        if policy.mode == .shadow { return (stable, candidate) }
        let percent = min(100, max(0, policy.candidatePercent.isNaN ? 0 : policy.candidatePercent))
        let roll = stickyKey.map(Self.roll(key:)) ?? Double.random(in: 0..<100)
        let chosen = roll < percent ? candidate : stable
        let other = roll < percent ? stable : candidate
        // A version without a healthy replica hands its share to the other one rather than
        // failing requests that the other version could answer.
        if chosen.backend.endpoints.isEmpty, !other.backend.endpoints.isEmpty { return (other, nil) }
        return (chosen, nil)
    }

    /// A key's fixed place in 0..<100, from a hash that is the same in every process and
    /// release (Swift's `Hasher` is seeded per process), so a key keeps its version across
    /// server restarts as long as the percentage does not change.
    static func roll(key: String) -> Double {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01B3
        }
        // FNV's low bits mix poorly for short keys; fold the high half in.
        hash ^= hash >> 32
        return Double(hash % 10_000) / 100
    }
}

/// Requests a replica is answering now; kept per replica id across policy changes, so a drain
/// can wait for the ones that started before the replica left routing.
final class InFlightCounter: Sendable {
    let value = Atomic<Int>(0)
}
