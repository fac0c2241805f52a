import BatonCore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// One version's healthy replicas.
public struct GatewayBackend: Sendable, Hashable {
    public var version: String
    /// Healthy replicas only: the gateway sends to every endpoint listed.
    public var endpoints: [GatewayEndpoint]

    public init(version: String, endpoints: [GatewayEndpoint]) {
        self.version = version
        self.endpoints = endpoints
    }
}

/// One replica's loopback address.
public struct GatewayEndpoint: Sendable, Hashable {
    public var host: String
    public var port: Int
    public var replicaID: String

    public init(host: String = "127.0.0.1", port: Int, replicaID: String) {
        self.host = host
        self.port = port
        self.replicaID = replicaID
    }
}

/// How traffic is shared between stable and candidate.
public enum TrafficMode: String, Sendable, Codable {
    /// Each request goes to one version, the candidate with `candidatePercent` probability.
    case split
    /// Stable answers every request; a copy goes to the candidate, whose answer is only recorded.
    case shadow
}

/// Where a deployment's traffic goes.
public struct TrafficPolicy: Sendable, Equatable {
    /// Nil before the first version became stable: then the candidate takes all traffic.
    public var stable: GatewayBackend?
    public var candidate: GatewayBackend?
    /// The candidate's share in `.split`, 0...100 (values outside are clamped).
    public var candidatePercent: Double
    public var mode: TrafficMode
    /// A top-level field of the request JSON whose value pins a caller to one version; the
    /// `X-Baton-Key` header wins over it. Nil routes each request at random.
    public var stickyKey: String?

    public init(
        stable: GatewayBackend?, candidate: GatewayBackend? = nil, candidatePercent: Double = 0, mode: TrafficMode = .split,
        stickyKey: String? = nil
    ) {
        self.stable = stable
        self.candidate = candidate
        self.candidatePercent = candidatePercent
        self.mode = mode
        self.stickyKey = stickyKey
    }
}

/// An answer for the caller: the replica's, or the gateway's own error in Baton's error shape.
public struct GatewayResponse: Sendable {
    public var status: Int
    /// Content type, `X-Baton-Version` (when a version answered) and `X-Baton-Request-Id`.
    public var headers: [(String, String)]
    public var body: ByteBuffer

    public init(status: Int, headers: [(String, String)], body: ByteBuffer) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The value of a header, compared without case.
    public func header(_ name: String) -> String? {
        headers.first { $0.0.caseInsensitiveCompare(name) == .orderedSame }?.1
    }

    /// `{"error": {"code", "message", "fix"}}`, Baton's error shape.
    public static func error(status: Int, code: String, message: String, fix: String?, requestID: String?) -> GatewayResponse {
        var text = #"{"error":{"code":"# + jsonString(code) + #","message":"# + jsonString(message)
        if let fix { text += #","fix":"# + jsonString(fix) }
        text += "}}"
        var headers = [("Content-Type", "application/json; charset=utf-8")]
        if let requestID { headers.append(("X-Baton-Request-Id", requestID)) }
        return GatewayResponse(status: status, headers: headers, body: ByteBuffer(string: text))
    }

    /// The answer to a body over `limit` bytes, for a server that collects the body itself.
    public static func bodyTooLarge(limit: Int, deployment: String) -> GatewayResponse {
        error(
            status: 413, code: "body_too_large",
            message: "the prediction request for deployment '\(deployment)' is over the \(limit)-byte limit",
            fix: "send smaller batches (split `instances` over several requests)", requestID: nil)
    }

    static func jsonString(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// Why a replica did not answer; the gateway turns it into 502 or 504.
public enum ReplicaFailure: Error, Sendable, CustomStringConvertible {
    case timedOut(replicaID: String, address: String, after: Duration)
    case unreachable(replicaID: String, address: String, reason: String)

    public var description: String {
        switch self {
        case .timedOut(let replica, let address, let after): "replica \(replica) at \(address) did not answer within \(after)"
        case .unreachable(let replica, let address, let reason): "replica \(replica) at \(address) is unreachable: \(reason)"
        }
    }
}

/// The prediction gateway. Routing reads one lock-protected table per request and each version's
/// statistics sit behind their own lock, so concurrent requests never wait on an actor hop.
public final class Gateway: Sendable {
    /// Largest prediction request body accepted, in bytes.
    public let maxBodyBytes: Int
    /// Largest replica answer read, in bytes.
    public let maxResponseBytes: Int
    /// Shadow copies in flight at most; copies beyond it are skipped (and logged) so a slow
    /// candidate cannot pile up memory behind stable's traffic.
    public let maxShadowInFlight: Int
    /// Request bodies larger than this have their inputs sampled for drift one time in eight,
    /// keeping large batches from costing every request.
    static let inputScanFullBytes = 64 << 10
    static let maxInputRows = 100

    private let client: ReplicaClient
    private let requestTimeout: Duration
    private let logger: Logger
    private let routes = Mutex<[String: Route]>([:])
    /// One policy change at a time: another change pruning connection pools between this one's
    /// making its targets and publishing its route would retire pools the new route uses.
    private let policyChanges = Mutex<Void>(())
    private let recorders = Mutex<[String: [String: VersionRecorder]]>([:])
    private let requestLogs = Mutex<[String: RequestLog]>([:])
    private let inFlightCounters = Mutex<[String: InFlightCounter]>([:])
    /// Requests per deployment whose answering version is remembered for feedback.
    public static let rememberedRequests = 50_000
    private let shadows = Mutex<ShadowTasks>(ShadowTasks())
    private let counter = Atomic<UInt64>(0)
    private let requestIDPrefix: String
    /// Seconds since the gateway started; injectable so window tests need no waiting.
    private let clock: @Sendable () -> Int

    struct ShadowTasks: Sendable {
        var inFlight = 0
        /// `shutdown` calls waiting for the copies in flight to end.
        var waiting: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }
    /// The loop `forward` runs on for callers that are not on one (the router's handlers, shadow
    /// copies' owners, tests): one loop, so their connections are kept on it and reused.
    private let offLoopCallers: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()

    /// - Parameters:
    ///   - requestTimeout: per attempt; with the one retry a request can take twice as long.
    public convenience init(requestTimeout: Duration = .seconds(30), logger: Logger) {
        self.init(requestTimeout: requestTimeout, maxBodyBytes: 10 << 20, logger: logger, clock: nil)
    }

    init(
        requestTimeout: Duration, maxBodyBytes: Int, maxResponseBytes: Int = 10 << 20, maxShadowInFlight: Int = 256,
        maxIdlePerReplica: Int = 64, logger: Logger, clock: (@Sendable () -> Int)?
    ) {
        // Replicas are loopback processes: a refused connection fails at once and a connect
        // that hangs gives up after 2 s, so the retry goes to another replica quickly.
        client = ReplicaClient(maxResponseBytes: maxResponseBytes, maxIdlePerEndpoint: maxIdlePerReplica, connectTimeout: .seconds(2))
        self.requestTimeout = requestTimeout
        self.maxBodyBytes = maxBodyBytes
        self.maxResponseBytes = maxResponseBytes
        self.maxShadowInFlight = maxShadowInFlight
        self.logger = logger
        requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        if let clock {
            self.clock = clock
        } else {
            let origin = ContinuousClock.now
            self.clock = { Int((ContinuousClock.now - origin).components.seconds) }
        }
    }

    // MARK: - Policy

    /// Sets where a deployment's traffic goes; nil stops serving it (its statistics stay until
    /// reset). Requests already in flight finish on the policy they started with.
    public func setPolicy(_ policy: TrafficPolicy?, deployment: String) {
        policyChanges.withLock { _ in applyPolicy(policy, deployment: deployment) }
    }

    private func applyPolicy(_ policy: TrafficPolicy?, deployment: String) {
        guard let policy else {
            _ = routes.withLock { $0.removeValue(forKey: deployment) }
            dropUnusedPools()
            return
        }
        let stable = policy.stable.map {
            Target(
                backend: $0, recorder: recorder(deployment: deployment, version: $0.version), client: client,
                inFlight: inFlightCounter)
        }
        let candidate = policy.candidate.map {
            Target(
                backend: $0, recorder: recorder(deployment: deployment, version: $0.version), client: client,
                inFlight: inFlightCounter)
        }
        let log = requestLogs.withLock { logs in
            if let existing = logs[deployment] { return existing }
            let created = RequestLog(capacity: Self.rememberedRequests)
            logs[deployment] = created
            return created
        }
        let route = Route(deployment: deployment, policy: policy, stable: stable, candidate: candidate, requestLog: log)
        routes.withLock { $0[deployment] = route }
        dropUnusedPools()
    }

    /// Replicas come and go with rollouts: connections to ones no route lists are closed.
    private func dropUnusedPools() {
        let live: Set<String> = routes.withLock { all in
            var keys: Set<String> = []
            for route in all.values {
                for target in [route.stable, route.candidate].compactMap({ $0 }) {
                    for endpoint in target.backend.endpoints { keys.insert("\(endpoint.host):\(endpoint.port)") }
                }
            }
            return keys
        }
        client.retain(only: live)
    }

    public func policy(deployment: String) -> TrafficPolicy? {
        routes.withLock { $0[deployment]?.policy }
    }

    private func recorder(deployment: String, version: String) -> VersionRecorder {
        recorders.withLock { all in
            if let existing = all[deployment]?[version] { return existing }
            let created = VersionRecorder(deployment: deployment, version: version)
            all[deployment, default: [:]][version] = created
            return created
        }
    }

    // MARK: - Statistics

    /// Per version (by version), since the gateway started or the version's stats were reset.
    public func stats(deployment: String) -> [String: VersionStatsSnapshot] {
        stats(deployment: deployment, window: nil)
    }

    /// Per version over the last `since` (whole 10 s slots, at most ten minutes), for analyses
    /// that compare recent behaviour.
    public func stats(deployment: String, since: Duration) -> [String: VersionStatsSnapshot] {
        stats(deployment: deployment, window: since)
    }

    private func stats(deployment: String, window: Duration?) -> [String: VersionStatsSnapshot] {
        let versions = recorders.withLock { $0[deployment] ?? [:] }
        let now = clock()
        return versions.mapValues { $0.snapshot(window: window, now: now) }
    }

    /// Per version, the last ten minutes in 10 s slots (oldest first): requests, errors and p99.
    public func timeline(deployment: String) -> [String: [TimelinePoint]] {
        let versions = recorders.withLock { $0[deployment] ?? [:] }
        let now = clock()
        let wallNow = Date()
        return versions.mapValues { recorder in
            recorder.timeline(now: now).map { slot in
                TimelinePoint(
                    start: wallNow.addingTimeInterval(Double(slot.slotStart - now)), requests: slot.requests, errors: slot.errors,
                    p99Ms: slot.p99Ms)
            }
        }
    }

    /// Forgets what a version did, e.g. when a new rollout starts with it.
    public func resetStats(deployment: String, version: String) {
        let recorder = recorders.withLock { $0[deployment]?[version] }
        recorder?.reset()
    }

    /// Sampled inputs and predictions of a version over the last hour, for drift.
    public func driftWindow(deployment: String, version: String) -> InputDistribution {
        driftWindow(deployment: deployment, version: version, since: nil)
    }

    /// The same over the last `since` (whole 10-minute slots).
    public func driftWindow(deployment: String, version: String, since: Duration?) -> InputDistribution {
        let recorder = recorders.withLock { $0[deployment]?[version] }
        return recorder?.driftWindow(since: since, now: clock()) ?? InputDistribution(requests: 0, fields: [:], predictions: [])
    }

    private func inFlightCounter(_ endpoint: GatewayEndpoint) -> InFlightCounter {
        inFlightCounters.withLock { counters in
            if let existing = counters[endpoint.replicaID] { return existing }
            let created = InFlightCounter()
            counters[endpoint.replicaID] = created
            return created
        }
    }

    /// Requests a replica is answering now (those it was sent before it left routing included),
    /// so a drain can stop it as soon as they are done.
    public func inFlight(replicaID: String) -> Int {
        inFlightCounters.withLock { $0[replicaID] }?.value.load(ordering: .relaxed) ?? 0
    }

    // MARK: - Feedback

    /// Marks `metric` reported for a request this gateway answered and tells which version
    /// answered it; nil when the request is unknown here (another server answered it, or it is
    /// older than the last `rememberedRequests` of the deployment).
    public func claimFeedback(deployment: String, requestID: String, metric: String) -> FeedbackClaim? {
        requestLogs.withLock { $0[deployment] }?.claim(requestID: requestID, metric: metric)
    }

    /// Takes back a claim whose report could not be stored.
    public func unclaimFeedback(deployment: String, requestID: String, metric: String) {
        requestLogs.withLock { $0[deployment] }?.unclaim(requestID: requestID, metric: metric)
    }

    /// The version that answered a recent request, if this gateway remembers it.
    public func answeringVersion(deployment: String, requestID: String) -> String? {
        requestLogs.withLock { $0[deployment] }?.version(of: requestID)
    }

    // MARK: - Forwarding

    /// Sends a prediction request to a replica chosen by the deployment's policy and answers
    /// with the replica's answer plus `X-Baton-Version` and `X-Baton-Request-Id`, or with an
    /// error in Baton's shape: 404 unknown deployment, 413 body too large, 503 no healthy
    /// replica, 502 unreachable replica, 504 timeout.
    ///
    /// A version chosen by the split that has no healthy replica hands the request to the other
    /// version rather than failing it. `headers`: `X-Baton-Key` (sticky routing) and
    /// `X-Baton-Request-Id` (kept instead of a new id) are read; `Accept` and other `X-` headers
    /// except credentials go on to the replica.
    public func forward(
        deployment: String, body: ByteBuffer, contentType: String?, headers: [(String, String)]
    ) async -> GatewayResponse {
        let current = MultiThreadedEventLoopGroup.currentEventLoop
        let loop = current ?? offLoopCallers
        return await withCheckedContinuation { continuation in
            if current != nil {
                forward(deployment: deployment, body: body, contentType: contentType, headers: headers, on: loop) {
                    continuation.resume(returning: $0)
                }
            } else {
                loop.execute {
                    self.forward(deployment: deployment, body: body, contentType: contentType, headers: headers, on: loop) {
                        continuation.resume(returning: $0)
                    }
                }
            }
        }
    }

    /// `forward` for callers on an event loop, such as a channel handler: call it on `loop`,
    /// and `answered` runs there too. The exchange with the replica is callbacks on that loop,
    /// on a connection of that loop's own, with no task or thread hop.
    public func forward(
        deployment: String, body: ByteBuffer, contentType: String?, headers: [(String, String)], on loop: any EventLoop,
        answered: @escaping (GatewayResponse) -> Void
    ) {
        // `answered` never runs before this returns: a handler that calls `forward` from its
        // read and is answered from within it would go on reading its next requests inside
        // that call, one stack frame deeper per request.
        let call = ForwardCall()
        let answered: (GatewayResponse) -> Void = { answer in
            if call.returned {
                answered(answer)
            } else {
                loop.assumeIsolated().execute { answered(answer) }
            }
        }
        defer { call.returned = true }
        let requestID = Self.header("x-baton-request-id", in: headers).flatMap { Self.isSafeValue($0) ? $0 : nil }
            ?? nextRequestID()
        guard body.readableBytes <= maxBodyBytes else {
            var answer = GatewayResponse.bodyTooLarge(limit: maxBodyBytes, deployment: deployment)
            answer.headers.append(("X-Baton-Request-Id", requestID))
            return answered(answer)
        }
        guard let route = routes.withLock({ $0[deployment] }) else {
            return answered(
                .error(
                    status: 404, code: "not_found", message: "no deployment named '\(deployment)' is serving",
                    fix: "check the name with `baton deploy status`; a new deployment serves once a replica is healthy",
                    requestID: requestID))
        }
        let stickyKey =
            Self.header("x-baton-key", in: headers)
            ?? route.policy.stickyKey.flatMap { JSONScan.field($0, in: body) }
        let (primary, shadow) = route.choose(stickyKey: stickyKey)
        guard let primary, !primary.backend.endpoints.isEmpty else {
            let version = primary?.backend.version ?? route.policy.stable?.version ?? route.policy.candidate?.version
            return answered(
                .error(
                    status: 503, code: "unavailable",
                    message: "deployment '\(deployment)' has no healthy replica"
                        + (version.map { " of version \($0)" } ?? "") + " to answer",
                    fix: "check the replicas with `baton deploy status \(deployment)`; requests succeed again once one passes its health check",
                    requestID: requestID))
        }
        var fields: [(String, String)] = []
        fields.reserveCapacity(2 + headers.count)
        fields.append(("Content-Type", contentType.flatMap { Self.isSafeValue($0) ? $0 : nil } ?? "application/json"))
        fields.append(("X-Baton-Request-Id", requestID))
        for (name, value) in headers where Self.forwardsHeader(name) && Self.isSafeName(name) && Self.isSafeValue(value) {
            fields.append((name, value))
        }
        let request = ReplicaRequest(fields: fields, body: body)

        let now = clock()
        let inputs = sampleInputs(body)
        if let inputs { primary.recorder.recordInputs(inputs, now: now) }
        if let shadow, !shadow.backend.endpoints.isEmpty {
            startShadow(target: shadow, request: request, inputs: inputs, now: now, on: loop)
        }
        send(to: primary, request: request, on: loop) { outcome in
            if case .success = outcome.result { route.requestLog.record(requestID: requestID, version: primary.backend.version) }
            answered(self.respond(outcome, target: primary, deployment: deployment, requestID: requestID))
        }
    }

    /// Stops shadow copies and closes the connections to replicas. Requests forwarded after this
    /// fail with 502.
    public func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = shadows.withLock { state in
                state.closed = true
                guard state.inFlight > 0 else { return true }
                state.waiting.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
        client.close()
    }

    deinit {
        // A server that never called `shutdown` still releases its connections.
        client.close()
    }

    // MARK: - Internals

    /// Whether `forward(on:)` has returned, read by its answer's callback on the same loop.
    private final class ForwardCall {
        var returned = false
    }

    private struct Outcome {
        var result: Result<ReplicaAnswer, ReplicaFailure>
        var nanos: Int64
    }

    /// One version's answer, with one retry on another of its replicas; `completion` runs on `loop`.
    private func send(to target: Target, request: ReplicaRequest, on loop: any EventLoop, completion: @escaping (Outcome) -> Void) {
        let start = NIODeadline.now()
        let endpoints = target.backend.endpoints
        let first = target.nextIndex() % endpoints.count
        attempt(target, replica: first, request: request, on: loop) { result in
            // Predictions are idempotent, so a replica that did not answer is worth one retry on
            // another; a replica that answered (even 5xx) did its part and is not asked twice.
            guard case .failure(let failure) = result, endpoints.count > 1 else {
                return completion(Outcome(result: result, nanos: (NIODeadline.now() - start).nanoseconds))
            }
            self.logger.debug("retrying on another replica", metadata: ["error": "\(failure)", "version": "\(target.backend.version)"])
            self.attempt(target, replica: (first + 1) % endpoints.count, request: request, on: loop) { result in
                completion(Outcome(result: result, nanos: (NIODeadline.now() - start).nanoseconds))
            }
        }
    }

    private func attempt(
        _ target: Target, replica index: Int, request: ReplicaRequest, on loop: any EventLoop,
        completion: @escaping (Result<ReplicaAnswer, ReplicaFailure>) -> Void
    ) {
        let endpoint = target.backend.endpoints[index]
        let pool = target.pools[index]
        let inFlight = target.inFlight[index]
        inFlight.value.add(1, ordering: .relaxed)
        let deadline = NIODeadline.now() + TimeAmount(requestTimeout)
        client.send(pool: pool, request: request, deadline: deadline, on: loop) { [requestTimeout] result in
            inFlight.value.subtract(1, ordering: .relaxed)
            switch result {
            case .success(let answer):
                completion(.success(answer))
            case .failure(.deadlineExceeded):
                completion(.failure(.timedOut(replicaID: endpoint.replicaID, address: pool.hostHeader, after: requestTimeout)))
            case .failure(let error):
                completion(.failure(.unreachable(replicaID: endpoint.replicaID, address: pool.hostHeader, reason: "\(error)")))
            }
        }
    }

    private func respond(_ outcome: Outcome, target: Target, deployment: String, requestID: String) -> GatewayResponse {
        let version = target.backend.version
        switch outcome.result {
        case .success(let answer):
            let prediction = (200..<300).contains(answer.status) ? JSONScan.prediction(in: answer.body) : nil
            target.recorder.record(nanos: outcome.nanos, failed: answer.status >= 500, prediction: prediction, now: clock())
            var headers: [(String, String)] = []
            headers.reserveCapacity(3)
            if let contentType = answer.contentType { headers.append(("Content-Type", contentType)) }
            headers.append(("X-Baton-Version", version))
            headers.append(("X-Baton-Request-Id", requestID))
            return GatewayResponse(status: answer.status, headers: headers, body: answer.body)
        case .failure(let failure):
            target.recorder.record(nanos: outcome.nanos, failed: true, prediction: nil, now: clock())
            logger.warning(
                "prediction failed", metadata: ["deployment": "\(deployment)", "version": "\(version)", "error": "\(failure)"])
            var answer: GatewayResponse
            switch failure {
            case .timedOut:
                answer = .error(
                    status: 504, code: "timeout",
                    message: "deployment '\(deployment)' version \(version) did not answer in time: \(failure)",
                    fix: "check the replica's logs and load with `baton deploy status \(deployment)`; a slow model may need more replicas",
                    requestID: requestID)
            case .unreachable:
                answer = .error(
                    status: 502, code: "bad_gateway",
                    message: "deployment '\(deployment)' version \(version) could not be reached: \(failure)",
                    fix: "the replica may have crashed; Baton restarts crashed replicas, check `baton deploy status \(deployment)`",
                    requestID: requestID)
            }
            answer.headers.append(("X-Baton-Version", version))
            return answer
        }
    }

    /// Sends a copy to the candidate on the request's loop; it outlives the request, and
    /// `shutdown` waits for it.
    private func startShadow(target: Target, request: ReplicaRequest, inputs: [(String, Double)]?, now: Int, on loop: any EventLoop) {
        let admitted = shadows.withLock { state in
            guard !state.closed, state.inFlight < maxShadowInFlight else { return false }
            state.inFlight += 1
            return true
        }
        guard admitted else {
            logger.debug("shadow copy skipped: too many in flight", metadata: ["version": "\(target.backend.version)"])
            return
        }
        if let inputs { target.recorder.recordInputs(inputs, now: now) }
        send(to: target, request: request, on: loop) { outcome in
            switch outcome.result {
            case .success(let answer):
                let prediction = (200..<300).contains(answer.status) ? JSONScan.prediction(in: answer.body) : nil
                target.recorder.record(nanos: outcome.nanos, failed: answer.status >= 500, prediction: prediction, now: self.clock())
            case .failure:
                target.recorder.record(nanos: outcome.nanos, failed: true, prediction: nil, now: self.clock())
            }
            let waiting = self.shadows.withLock { state in
                state.inFlight -= 1
                guard state.inFlight == 0 else { return [CheckedContinuation<Void, Never>]() }
                defer { state.waiting.removeAll() }
                return state.waiting
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    private func sampleInputs(_ body: ByteBuffer) -> [(String, Double)]? {
        if body.readableBytes > Self.inputScanFullBytes, counter.wrappingAdd(1, ordering: .relaxed).oldValue % 8 != 0 { return nil }
        var inputs: [(String, Double)] = []
        JSONScan.numericInputs(in: body, maxRows: Self.maxInputRows) { inputs.append(($0, $1)) }
        return inputs.isEmpty ? nil : inputs
    }

    private func nextRequestID() -> String {
        let sequence = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        return requestIDPrefix + "-" + String(sequence, radix: 16)
    }

    /// The value of `name` (given in lowercase) in `headers`, whose names may be in any case.
    static func header(_ name: String, in headers: [(String, String)]) -> String? {
        for (key, value) in headers where ASCII.equalsIgnoringCase(key.utf8, name) { return value }
        return nil
    }

    /// A name of visible ASCII without a colon: what the replica connection writes as is
    /// (servers' parsers check this already; `forward` is public, so it does not rely on that).
    static func isSafeName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }
    }

    /// A value without CR, LF or NUL, for the same reason.
    static func isSafeValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 != 0x0D && $0 != 0x0A && $0 != 0 }
    }

    /// Callers' credentials are for Baton, not for the model server.
    static func forwardsHeader(_ name: String) -> Bool {
        if ASCII.equalsIgnoringCase(name.utf8, "accept") { return true }
        var bytes = name.utf8.makeIterator()
        // "x-" or "X-": OR-ing 0x20 maps only those two bytes onto "x".
        guard let first = bytes.next(), first | 0x20 == UInt8(ascii: "x"), bytes.next() == UInt8(ascii: "-") else { return false }
        return !ASCII.equalsIgnoringCase(name.utf8, "x-baton-request-id") && !ASCII.equalsIgnoringCase(name.utf8, "x-api-key")
            && !ASCII.equalsIgnoringCase(name.utf8, "x-forwarded-authorization")
    }
}
