import BatonCore
import BatonStore
import BatonWorker
import Foundation
import Logging

/// Runs queued attempts in this process, through the same claim, lease and report path that
/// remote workers use over HTTP: a claim in the store, a lease renewed while the process runs,
/// and a report guarded by this worker's id.
///
/// The engine wakes it the moment it queues work and each finished attempt wakes it again, so
/// nothing waits for a poll; the heartbeat timer also wakes it as a safety net.
actor LocalExecutor {
    nonisolated let store: any Store
    nonisolated let workerID: String
    nonisolated let slots: Int
    nonisolated let queues: [String]
    nonisolated let leaseSeconds: Double
    nonisolated let clock: @Sendable () -> Date
    nonisolated let metrics: EngineMetrics
    nonisolated let logger: Logger
    nonisolated let runner = TaskProcessRunner()
    nonisolated let wakes: AsyncStream<Void>
    nonisolated let wakeContinuation: AsyncStream<Void>.Continuation

    private var pools: [String: Int] = [:]
    private var baseEnvironment: [String: String]
    private var running: [AttemptKey: AttemptHandle] = [:]

    init(
        store: any Store, workerID: String, slots: Int, queues: [String], leaseSeconds: Double,
        baseEnvironment: [String: String], metrics: EngineMetrics, logger: Logger,
        clock: @escaping @Sendable () -> Date
    ) {
        self.store = store
        self.workerID = workerID
        self.slots = max(1, slots)
        self.queues = queues
        self.leaseSeconds = leaseSeconds
        self.baseEnvironment = baseEnvironment
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        (wakes, wakeContinuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Asks for a claim soon. Wakes coalesce: a burst of queued attempts costs one claim.
    nonisolated func wake() { wakeContinuation.yield() }

    func setPools(_ pools: [String: Int]) { self.pools = pools }
    func setBaseEnvironment(_ environment: [String: String]) { baseEnvironment = environment }
    var busyCount: Int { running.count }
    func isRunning(runID: Int64) -> Bool { running.keys.contains { $0.runID == runID } }

    /// Stops a running attempt now (the engine cancelled it); its report follows as usual.
    func stop(_ key: AttemptKey) -> Bool {
        guard let handle = running[key] else { return false }
        handle.stop()
        return true
    }

    /// Claims and runs attempts until the calling task is cancelled. Attempts running then are
    /// interrupted and reported, so they run again after a restart.
    func run(
        claimed: @escaping @Sendable ([AttemptRecord]) async -> Void,
        report: @escaping @Sendable (AttemptRecord) async -> Void
    ) async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.heartbeat() }
            wake()
            for await _ in wakes {
                guard !Task.isCancelled else { break }
                let attempts = await claim()
                guard !attempts.isEmpty else { continue }
                for attempt in attempts {
                    group.addTask { await self.execute(attempt, report: report) }
                }
                await claimed(attempts)
            }
            group.cancelAll()
        }
    }

    private func claim() async -> [AttemptRecord] {
        let free = slots - running.count
        guard free > 0 else { return [] }
        let request = ClaimRequest(
            workerID: workerID, queues: queues, limit: free, leaseSeconds: leaseSeconds, pools: pools, now: clock())
        do {
            let claimed = try await store.claimAttempts(request)
            for attempt in claimed { running[attempt.key] = AttemptHandle() }
            metrics.record(busySlots: running.count)
            // A full batch may have left more behind.
            if claimed.count == free, running.count < slots { wake() }
            return claimed
        } catch {
            logger.error("could not claim queued tasks: \(error)")
            return []
        }
    }

    private func finished(_ key: AttemptKey) {
        running[key] = nil
        metrics.record(busySlots: running.count)
        wake()
    }

    /// What an attempt needs from this actor, in one hop on the per-task path.
    private func launchState(_ key: AttemptKey) -> (environment: [String: String], handle: AttemptHandle) {
        (baseEnvironment, running[key] ?? AttemptHandle())
    }

    nonisolated func execute(_ attempt: AttemptRecord, report: @Sendable (AttemptRecord) async -> Void) async {
        let key = attempt.key
        let outcome: AttemptOutcome
        if let payload = attempt.payload {
            let outputPath =
                payload.environment["BATON_OUTPUT"]
                ?? NSTemporaryDirectory() + "baton-output-\(key.runID)-\(key.task)-\(key.attempt).json"
            let (environment, handle) = await launchState(key)
            let request = AttemptRequest(
                payload: payload, logPath: attempt.logPath, outputPath: outputPath, baseEnvironment: environment)
            let store = self.store
            outcome = await runner.run(request, handle: handle) { pid in
                try? await store.commit([
                    .attemptProcess(
                        runID: key.runID, task: key.task, attempt: key.attempt, pid: pid,
                        startTicks: ProcessGroup.startTicks(of: pid))
                ])
            }
        } else {
            outcome = AttemptOutcome(status: .failedToStart("the queued attempt has no payload"), duration: 0)
        }
        let result = outcome.result(at: clock())
        let accepted: Bool
        do {
            accepted = try await store.finishAttempt(key, workerID: workerID, result: result)
        } catch {
            // The lease runs out and the engine declares the attempt lost: it is retried.
            logger.error("could not record the end of \(key): \(error)")
            accepted = false
        }
        await finished(key)
        guard accepted else { return }
        await report(attempt.ended(with: result))
    }

    /// Keeps this worker's leases alive, and stops attempts it no longer holds (declared lost
    /// or ended by the engine while it ran).
    private func heartbeat() async {
        let interval = max(0.2, leaseSeconds / 3)
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Int(interval * 1000)))
            guard !Task.isCancelled else { return }
            await renew()
            wake()
        }
    }

    private func renew() async {
        let keys = Array(running.keys)
        guard !keys.isEmpty else { return }
        do {
            let held = try await store.renewLeases(
                workerID: workerID, attempts: keys, until: clock().addingTimeInterval(leaseSeconds))
            for key in keys where !held.contains(key) {
                logger.warning("\(key) is no longer this worker's; stopping it")
                running[key]?.stop()
            }
        } catch {
            logger.error("could not renew the leases of running tasks: \(error)")
        }
    }
}
