import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Hummingbird
import ServiceLifecycle

/// `/api/v1/workers`: the remote-worker protocol. Claims come out of the same store queue the
/// server's own slots use; a claim with nothing to do waits (long poll) until the engine queues
/// work, so an idle worker costs one open request, not a poll loop.
enum WorkerRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/workers")
        let engine = context.engine
        let store = context.store
        let leaseSeconds = engine.configuration.leaseSeconds

        group.post("claim") { request, _ -> Response in
            var request = request
            let body = try await request.decodeJSON(
                APIClaimRequest.self, limit: 64 * 1024, fields: ["worker", "queues", "slots", "wait_seconds"])
            try validate(worker: body.worker)
            try validate(queues: body.queues)
            guard (1...1000).contains(body.slots) else {
                throw APIError.badRequest("slots must be between 1 and 1000, got \(body.slots)", field: "slots")
            }
            let wait = body.wait_seconds ?? 0
            guard wait >= 0, wait <= WorkerProtocol.maxWaitSeconds else {
                throw APIError.badRequest(
                    "wait_seconds must be between 0 and \(Int(WorkerProtocol.maxWaitSeconds)), got \(wait)",
                    field: "wait_seconds")
            }
            let deadline = ContinuousClock.now + .milliseconds(Int64(wait * 1000))
            while true {
                let generation = engine.workSignal.generation
                let claimed = try await store.claimAttempts(
                    ClaimRequest(
                        workerID: body.worker, queues: body.queues, limit: body.slots, leaseSeconds: leaseSeconds,
                        pools: engine.configuration.pools, now: Date()))
                if !claimed.isEmpty {
                    await engine.attemptsClaimed(claimed)
                    let attempts = claimed.compactMap(APIClaimedAttempt.init)
                    return APIResponse.json(APIClaimResponse(attempts: attempts, lease_seconds: leaseSeconds))
                }
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero, !Task.isCancelled, !Task.isShuttingDownGracefully else {
                    return APIResponse.json(APIClaimResponse(attempts: [], lease_seconds: leaseSeconds))
                }
                await engine.workSignal.wait(after: generation, timeout: remaining)
            }
        }

        group.post("heartbeat") { request, _ -> Response in
            var request = request
            let body = try await request.decodeJSON(
                APIHeartbeatRequest.self, limit: 1 << 20, fields: ["worker", "attempts"])
            try validate(worker: body.worker)
            let held = try await store.renewLeases(
                workerID: body.worker, attempts: body.attempts, until: Date().addingTimeInterval(leaseSeconds))
            return APIResponse.json(
                APIHeartbeatResponse(revoked: body.attempts.filter { !held.contains($0) }, lease_seconds: leaseSeconds))
        }

        group.post("attempts/:run/:task/:attempt/finish") { request, requestContext -> Response in
            let key = try attemptKey(requestContext)
            var request = request
            let body = try await request.decodeJSON(
                APIFinishRequest.self, limit: 1 << 20,
                fields: ["worker", "state", "exit_code", "reason", "output", "claim_from"])
            try validate(worker: body.worker)
            // Every check before the report is recorded: a refused request changes nothing.
            if let queues = body.claim_from { try validate(queues: queues, field: "claim_from") }
            guard !body.state.isOpen, body.state != .lost, body.state != .skipped, body.state != .deferred else {
                throw APIError.badRequest(
                    "'\(body.state.rawValue)' is not how an attempt ends on a worker; use success, failed, timed_out, cancelled or interrupted",
                    field: "state")
            }
            let result = AttemptResult(
                state: body.state, exitCode: body.exit_code, reason: body.reason.map { String($0.prefix(4096)) },
                output: body.output, at: Date())
            let accepted = try await store.finishAttempt(key, workerID: body.worker, result: result)
            if accepted, let attempt = try await store.attempt(key) {
                await engine.attemptReported(attempt)
            }
            var next: APIClaimedAttempt?
            if let queues = body.claim_from, !queues.isEmpty {
                let claimed = try await store.claimAttempts(
                    ClaimRequest(
                        workerID: body.worker, queues: queues, limit: 1, leaseSeconds: leaseSeconds,
                        pools: engine.configuration.pools, now: Date()))
                if !claimed.isEmpty { await engine.attemptsClaimed(claimed) }
                next = claimed.first.flatMap(APIClaimedAttempt.init)
            }
            return APIResponse.json(APIFinishResponse(accepted: accepted, next: next))
        }

        group.post("attempts/:run/:task/:attempt/log") { request, requestContext -> Response in
            let key = try attemptKey(requestContext)
            guard let worker = request.uri.queryParameters.get("worker") else {
                throw APIError.badRequest("say which worker sends the log: ?worker=ID", field: "worker")
            }
            let offset = try request.queryInt("offset", default: 0, range: 0...Int.max)
            guard let attempt = try await store.attempt(key) else {
                throw APIError.notFound("no \(key)", field: "attempt")
            }
            guard attempt.workerID == worker else {
                throw APIError.conflict(
                    "\(key) is held by worker \(attempt.workerID ?? "none"), not \(worker)", field: "worker")
            }
            let limit = (attempt.payload?.maxLogBytes ?? 16 << 20)
            var request = request
            let buffer: ByteBuffer
            do {
                buffer = try await request.collectBody(upTo: WorkerProtocol.maxLogChunkBytes)
            } catch {
                throw APIError(
                    .contentTooLarge, code: "body_too_large",
                    "a log chunk is at most \(WorkerProtocol.maxLogChunkBytes) bytes; send it in smaller pieces")
            }
            var chunk = Data(buffer.readableBytesView)
            // A retried chunk overlaps what is stored: keep only the new bytes.
            let stored = try await store.appendAttemptLog(key, Data(), maxBytes: limit)
            guard offset <= stored else {
                throw APIError.conflict("the log of \(key) has \(stored) bytes; send from offset \(stored)", field: "offset")
            }
            chunk = chunk.dropFirst(stored - offset)
            let size = try await store.appendAttemptLog(key, chunk, maxBytes: limit)
            return APIResponse.json(APILogAppendResponse(size: size))
        }
    }

    static func validate(queues: [String], field: String = "queues") throws {
        guard !queues.isEmpty else {
            throw APIError.badRequest("name at least one queue to serve (for example [\"default\"])", field: field)
        }
        for queue in queues where !PipelineParser.isValidWorkName(queue) {
            throw APIError.badRequest(
                "'\(queue)' is not a queue name: use letters, digits, '_', '-' and '.', starting with a letter",
                field: field)
        }
    }

    static func validate(worker: String) throws {
        guard !worker.isEmpty, worker.count <= 200, !worker.contains(where: \.isNewline) else {
            throw APIError.badRequest("the worker id must be 1 to 200 characters on one line", field: "worker")
        }
    }

    static func attemptKey(_ context: BatonRequestContext) throws -> AttemptKey {
        let runID = try context.parameters.runID()
        let task = context.parameters.get("task") ?? ""
        guard let text = context.parameters.get("attempt"), let attempt = Int(text), attempt >= 1 else {
            throw APIError.badRequest("the attempt number must be 1, 2, ...", field: "attempt")
        }
        return AttemptKey(runID: runID, task: task, attempt: attempt)
    }
}

extension APIClaimedAttempt {
    /// A claimed attempt as the worker protocol sends it; nil for one without a payload.
    init?(_ attempt: AttemptRecord) {
        guard let payload = attempt.payload else { return nil }
        self.init(run_id: attempt.runID, task: attempt.task, attempt: attempt.attempt, payload: payload)
    }
}
