import BatonCore
import Foundation
import Testing

@testable import BatonStore

/// The work queue: claims, pools, queues, leases, guarded reports and logs kept in the store.
@Suite struct DispatchStoreTests {
    static let t0 = Date(timeIntervalSince1970: 1_767_225_600)

    /// A run of `tasks` independent tasks, each with a queued attempt 1.
    static func queued(
        _ store: any Store, tasks: [String], queue: String = "default", pool: String? = nil, at time: Date = t0
    ) async throws -> RunRecord {
        let spec = PipelineSpec(
            name: "fan", schedule: .none, tasks: tasks.map { TaskSpec(name: $0, command: .shell("true")) })
        let run = try await store.createRun(sampleRun(spec)).run
        var changes: [StoreChange] = [.runState(runID: run.id, state: .running, at: time)]
        for task in tasks {
            changes.append(
                .taskState(runID: run.id, task: task, state: .queued, attempts: 1, output: nil, reason: nil, retryAt: nil, at: time))
            changes.append(
                .attemptStarted(
                    AttemptRecord(
                        runID: run.id, task: task, attempt: 1, state: .queued, startedAt: time, logPath: "/tmp/\(task).log",
                        queue: queue, pool: pool, queuedAt: time,
                        payload: DispatchPayload(
                            pipeline: "fan", arguments: ["/bin/sh", "-c", "echo \(task)"], environment: ["BATON_TASK": task],
                            workingDirectory: "/tmp", pipelinesDirectory: "/tmp", timeout: 5, maxOutputBytes: 1024,
                            maxLogBytes: 100))))
        }
        try await store.commit(changes)
        return run
    }

    static func claim(
        _ store: any Store, worker: String, queues: [String] = ["default"], limit: Int = 10, pools: [String: Int] = [:],
        at time: Date = t0
    ) async throws -> [AttemptRecord] {
        try await store.claimAttempts(
            ClaimRequest(workerID: worker, queues: queues, limit: limit, leaseSeconds: 30, pools: pools, now: time))
    }

    @Test(arguments: Backend.allCases) func aClaimTakesOldestFirstUpToTheLimitAndMarksTasksRunning(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let run = try await Self.queued(store, tasks: ["a", "b", "c"])
            let first = try await Self.claim(store, worker: "w1", limit: 2, at: Self.t0.addingTimeInterval(1))
            #expect(first.map(\.task) == ["a", "b"])
            #expect(first.allSatisfy { $0.state == .running && $0.workerID == "w1" })
            #expect(first.first?.leaseExpires == Self.t0.addingTimeInterval(31))
            #expect(first.first?.payload?.arguments == ["/bin/sh", "-c", "echo a"], "the payload travels with the claim")
            let instances = try await store.taskInstances(runID: run.id)
            #expect(instances.filter { $0.state == .running }.map(\.task).sorted() == ["a", "b"])
            #expect(instances.first { $0.task == "c" }?.state == .queued)
            let second = try await Self.claim(store, worker: "w2", limit: 5)
            #expect(second.map(\.task) == ["c"])
            #expect(try await Self.claim(store, worker: "w3").isEmpty, "nothing is claimed twice")
        }
    }

    @Test(arguments: Backend.allCases) func concurrentClaimersNeverShareAnAttempt(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            // Two stores: the claimers stand for workers behind two servers.
            let other = try await database.open()
            let tasks = (0..<60).map { "t\($0)" }
            _ = try await Self.queued(store, tasks: tasks)
            let claimed = try await withThrowingTaskGroup(of: [String].self) { group in
                for worker in 0..<6 {
                    let target = worker.isMultiple(of: 2) ? store : other
                    group.addTask {
                        var mine: [String] = []
                        while true {
                            let batch = try await Self.claim(target, worker: "w\(worker)", limit: 3)
                            if batch.isEmpty { return mine }
                            mine += batch.map(\.task)
                        }
                    }
                }
                var all: [String] = []
                for try await part in group { all += part }
                return all
            }
            #expect(claimed.count == tasks.count)
            #expect(Set(claimed) == Set(tasks))
            let running = try await store.openAttempts()
            #expect(running.count == tasks.count && running.allSatisfy { $0.state == .running })
        }
    }

    @Test(arguments: Backend.allCases) func concurrentClaimersNeverOverfillAPool(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let other = try await database.open()
            _ = try await Self.queued(store, tasks: (0..<30).map { "w\($0)" }, pool: "warehouse")
            _ = try await Self.queued(store, tasks: (0..<10).map { "f\($0)" })
            let pools = ["warehouse": 3]
            let claimed = try await withThrowingTaskGroup(of: [AttemptRecord].self) { group in
                for worker in 0..<8 {
                    let target = worker.isMultiple(of: 2) ? store : other
                    group.addTask { try await Self.claim(target, worker: "w\(worker)", limit: 4, pools: pools) }
                }
                return try await group.reduce(into: [AttemptRecord]()) { $0 += $1 }
            }
            #expect(claimed.filter { $0.pool == "warehouse" }.count <= 3)
            let running = try await store.openAttempts().filter { $0.state == .running }
            #expect(running.filter { $0.pool == "warehouse" }.count <= 3)
            #expect(Set(running.map(\.key)) == Set(claimed.map(\.key)), "what the store holds is what the claimers got")
            // Whatever was left of the pool's slots goes to the next claim, and no more.
            let rest = try await Self.claim(store, worker: "late", limit: 40, pools: pools)
            let total = running.count + rest.count
            #expect(total == 3 + 10, "three from the pool and every free attempt")
        }
    }

    @Test(arguments: Backend.allCases) func queuesRouteAttemptsToTheWorkersThatServeThem(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await Self.queued(store, tasks: ["train"], queue: "gpu")
            #expect(try await Self.claim(store, worker: "cpu-worker").isEmpty)
            let gpu = try await Self.claim(store, worker: "gpu-worker", queues: ["default", "gpu"])
            #expect(gpu.map(\.task) == ["train"])
            #expect(gpu.first?.queue == "gpu")
            #expect(try await store.queuedAttemptCounts().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func aPoolNeverRunsMoreThanItsSlotsAcrossWorkers(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await Self.queued(store, tasks: ["a", "b", "c", "d"], pool: "warehouse")
            _ = try await Self.queued(store, tasks: ["free"])
            let pools = ["warehouse": 2]
            let first = try await Self.claim(store, worker: "w1", limit: 1, pools: pools)
            let second = try await Self.claim(store, worker: "w2", limit: 10, pools: pools)
            #expect(first.count + second.filter { $0.pool == "warehouse" }.count == 2)
            #expect(second.contains { $0.task == "free" }, "attempts outside the pool are not held back by it")
            #expect(try await Self.claim(store, worker: "w3", limit: 10, pools: pools).isEmpty)
            #expect(try await store.queuedAttemptCounts() == ["default": 2])
            let held = first[0]
            #expect(try await store.finishAttempt(held.key, workerID: "w1", result: AttemptResult(state: .success, at: Self.t0)))
            let freed = try await Self.claim(store, worker: "w3", limit: 10, pools: pools)
            #expect(freed.count == 1, "a finished attempt frees its pool slot")
        }
    }

    @Test(arguments: Backend.allCases) func leasesAreRenewedOnlyByTheirWorkerAndExpireOtherwise(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await Self.queued(store, tasks: ["a", "b"])
            let claimed = try await Self.claim(store, worker: "w1")
            let keys = claimed.map(\.key)
            #expect(try await store.renewLeases(workerID: "intruder", attempts: keys, until: Self.t0.addingTimeInterval(100)).isEmpty)
            let held = try await store.renewLeases(workerID: "w1", attempts: [keys[0]], until: Self.t0.addingTimeInterval(100))
            #expect(held == [keys[0]])
            let expired = try await store.expiredAttempts(now: Self.t0.addingTimeInterval(60))
            #expect(expired.map(\.task) == ["b"], "a renewed lease holds; the other ran out at 30 s")
            #expect(try await store.expiredAttempts(now: Self.t0.addingTimeInterval(10)).isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func aReportCountsOnlyFromTheHolderAndOnlyOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let run = try await Self.queued(store, tasks: ["a"])
            let key = try await Self.claim(store, worker: "w1")[0].key
            let lost = AttemptResult(state: .lost, reason: "lease expired", at: Self.t0.addingTimeInterval(40))
            #expect(try await store.finishAttempt(key, workerID: "w2", result: lost) == false, "not w2's attempt")
            #expect(try await store.finishAttempt(key, workerID: "w1", result: lost))
            let late = AttemptResult(state: .success, exitCode: 0, output: ["rows": 3], at: Self.t0.addingTimeInterval(41))
            #expect(try await store.finishAttempt(key, workerID: "w1", result: late) == false, "a late report cannot undo the loss")
            let stored = try #require(try await store.attempt(key))
            #expect(stored.state == .lost)
            #expect(stored.payload == nil, "an ended attempt drops its payload")
            #expect(try await store.openAttempts().isEmpty)
            // The engine has not applied the loss yet: the task instance still shows it running.
            #expect(try await store.unappliedAttempts().map(\.key) == [key])
            try await store.commit([
                .taskState(runID: run.id, task: "a", state: .failed, attempts: 1, output: nil, reason: "lost", retryAt: nil, at: Self.t0)
            ])
            #expect(try await store.unappliedAttempts().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func theEngineCanEndAQueuedAttemptBeforeAnyWorkerHasIt(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await Self.queued(store, tasks: ["a"])
            let key = AttemptKey(runID: 1, task: "a", attempt: 1)
            let stopped = AttemptResult(state: .cancelled, reason: "run cancelled", at: Self.t0)
            #expect(try await store.finishAttempt(key, workerID: nil, result: stopped))
            #expect(try await Self.claim(store, worker: "w1").isEmpty, "a cancelled attempt is not claimable")
        }
    }

    @Test(arguments: Backend.allCases) func theOutputOfAReportIsKeptForTheEngine(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await Self.queued(store, tasks: ["a"])
            let key = try await Self.claim(store, worker: "w1")[0].key
            let result = AttemptResult(state: .success, exitCode: 0, output: ["rows": 3, "path": "s3://x"], at: Self.t0)
            #expect(try await store.finishAttempt(key, workerID: "w1", result: result))
            let stored = try #require(try await store.attempt(key))
            #expect(stored.output == ["rows": 3, "path": "s3://x"])
            #expect(stored.exitCode == 0)
            #expect(stored.endedAt == Self.t0)
        }
    }

    @Test(arguments: Backend.allCases) func logsAreStoredInOrderAndCappedAtTheirLimit(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await Self.queued(store, tasks: ["a"])
            let key = AttemptKey(runID: 1, task: "a", attempt: 1)
            #expect(try await store.attemptLog(key, from: 0, limit: 100) == nil, "no log stored yet")
            #expect(try await store.appendAttemptLog(key, Data("hello ".utf8), maxBytes: 16) == 6)
            #expect(try await store.appendAttemptLog(key, Data("world\n".utf8), maxBytes: 16) == 12)
            #expect(try await store.appendAttemptLog(key, Data("and more than fits".utf8), maxBytes: 16) == 16)
            #expect(try await store.appendAttemptLog(key, Data("x".utf8), maxBytes: 16) == 16, "full logs take no more")
            #expect(try await store.attemptLog(key, from: 0, limit: 100) == Data("hello world\nand ".utf8))
            #expect(try await store.attemptLog(key, from: 3, limit: 6) == Data("lo wor".utf8))
            #expect(try await store.attemptLog(key, from: 16, limit: 10) == Data())
        }
    }
}
