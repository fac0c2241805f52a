import BatonCore
import Foundation
import Testing

@testable import BatonStore

/// A fresh database file in its own temporary folder.
func makeStore() throws -> (SQLiteStore, String) {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-store-\(UUID().uuidString)").path
    let path = folder + "/baton.db"
    return (try SQLiteStore(path: path), path)
}

func sampleSpec(name: String = "etl", tasks: [String] = ["extract", "load"]) -> PipelineSpec {
    PipelineSpec(
        name: name, owner: "data_engineering", schedule: .cron("@hourly"),
        tasks: tasks.enumerated().map { index, task in
            TaskSpec(name: task, command: .shell("true"), needs: index == 0 ? [] : [tasks[index - 1]])
        })
}

func sampleRun(_ spec: PipelineSpec, key: String = "2026-11-25T10:00:00Z", at date: Date = Date(timeIntervalSince1970: 1_790_000_000))
    -> RunRecord
{
    RunRecord(
        pipeline: spec.name, runKey: key, logicalDate: date, intervalStart: date, intervalEnd: date.addingTimeInterval(3600),
        trigger: .schedule, params: ["region": "eu"], spec: spec, createdAt: date)
}

@Suite struct SQLiteStoreTests {
    @Test func aRunIsCreatedOncePerKeyWithPendingTasks() async throws {
        let (store, _) = try makeStore()
        let spec = sampleSpec()
        let first = try await store.createRun(sampleRun(spec))
        let second = try await store.createRun(sampleRun(spec))
        #expect(first.created)
        #expect(!second.created)
        #expect(first.run.id == second.run.id)
        let tasks = try await store.taskInstances(runID: first.run.id)
        #expect(tasks.map(\.task) == ["extract", "load"])
        #expect(tasks.allSatisfy { $0.state == .pending })
        let stored = try #require(try await store.run(id: first.run.id))
        #expect(stored.spec == spec)
        #expect(stored.params == ["region": "eu"])
        #expect(stored.state == .queued)
    }

    @Test func concurrentCreatorsOfOneIntervalGetOneRun() async throws {
        let (store, path) = try makeStore()
        let other = try SQLiteStore(path: path)
        let spec = sampleSpec()
        let results = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<20 {
                let target: SQLiteStore = index.isMultiple(of: 2) ? store : other
                group.addTask { try await target.createRun(sampleRun(spec)).created }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.filter { $0 }.count == 1)
        #expect(try await store.runs(RunQuery(pipeline: "etl")).count == 1)
    }

    @Test func transitionsCommitTogetherAndSurviveReopening() async throws {
        let (store, path) = try makeStore()
        let run = try await store.createRun(sampleRun(sampleSpec())).run
        let now = Date()
        try await store.commit([
            .runState(runID: run.id, state: .running, at: now),
            .taskState(runID: run.id, task: "extract", state: .running, attempts: 1, output: nil, reason: nil, retryAt: nil, at: now),
            .attemptStarted(AttemptRecord(runID: run.id, task: "extract", attempt: 1, startedAt: now, logPath: "/tmp/x.log")),
        ])
        try await store.commit([
            .attemptProcess(runID: run.id, task: "extract", attempt: 1, pid: 4242, startTicks: 99),
            .attemptFinished(runID: run.id, task: "extract", attempt: 1, state: .success, exitCode: 0, reason: nil, at: now),
            .taskState(
                runID: run.id, task: "extract", state: .success, attempts: 1, output: ["rows": 10], reason: nil,
                retryAt: nil, at: now),
        ])
        let reopened = try SQLiteStore(path: path)
        let tasks = try await reopened.taskInstances(runID: run.id)
        #expect(tasks.first?.state == .success)
        #expect(tasks.first?.output == ["rows": 10])
        #expect(tasks.first?.endedAt != nil)
        let attempts = try await reopened.attempts(runID: run.id, task: "extract")
        #expect(attempts.count == 1)
        #expect(attempts.first?.pid == 4242)
        #expect(attempts.first?.state == .success)
        #expect(try await reopened.run(id: run.id)?.state == .running)
        #expect(try await reopened.unfinishedRuns().map(\.id) == [run.id])
        #expect(try await reopened.openAttempts().isEmpty)
    }

    @Test func aFinishedAttemptIsNotReopenedByALateUpdate() async throws {
        let (store, _) = try makeStore()
        let run = try await store.createRun(sampleRun(sampleSpec())).run
        let now = Date()
        try await store.commit([.attemptStarted(AttemptRecord(runID: run.id, task: "extract", attempt: 1, startedAt: now, logPath: "x"))])
        try await store.commit([.attemptFinished(runID: run.id, task: "extract", attempt: 1, state: .lost, exitCode: nil, reason: "lost", at: now)])
        try await store.commit([.attemptFinished(runID: run.id, task: "extract", attempt: 1, state: .success, exitCode: 0, reason: nil, at: now)])
        #expect(try await store.attempts(runID: run.id, task: "extract").first?.state == .lost)
    }

    @Test func cancellationRequestsAreVisibleToOtherConnections() async throws {
        let (store, path) = try makeStore()
        let run = try await store.createRun(sampleRun(sampleSpec())).run
        let tokenBefore = try await store.externalChangeToken()
        let cli = try SQLiteStore(path: path)
        #expect(try await cli.requestCancel(runID: run.id))
        #expect(try await store.externalChangeToken() != tokenBefore)
        #expect(try await store.cancelRequestedRunIDs() == [run.id])
        try await store.commit([.runState(runID: run.id, state: .cancelled, at: Date())])
        #expect(try await store.cancelRequestedRunIDs().isEmpty)
        #expect(try await cli.requestCancel(runID: run.id) == false)
    }

    @Test func ownWritesDoNotChangeTheExternalToken() async throws {
        let (store, _) = try makeStore()
        let before = try await store.externalChangeToken()
        _ = try await store.createRun(sampleRun(sampleSpec()))
        #expect(try await store.externalChangeToken() == before)
    }

    @Test func pipelinesKeepFirstSeenAndScheduleOnlyMovesForward() async throws {
        let (store, _) = try makeStore()
        let t0 = Date(timeIntervalSince1970: 1_000)
        let first = try await store.upsertPipeline(name: "etl", file: "p/etl.yaml", spec: sampleSpec(), now: t0)
        var changed = sampleSpec()
        changed.owner = "ml_engineering"
        let second = try await store.upsertPipeline(name: "etl", file: "p/etl.yaml", spec: changed, now: t0.addingTimeInterval(60))
        #expect(first.firstSeen == t0)
        #expect(second.firstSeen == t0)
        #expect(second.spec.owner == "ml_engineering")
        try await store.setLastScheduledEnd(t0.addingTimeInterval(7200), pipeline: "etl")
        try await store.setLastScheduledEnd(t0.addingTimeInterval(3600), pipeline: "etl")
        #expect(try await store.pipeline(named: "etl")?.lastScheduledEnd == t0.addingTimeInterval(7200))
        try await store.setPaused(true, pipeline: "etl")
        #expect(try await store.pipelines().first?.paused == true)
    }

    @Test func runsAreListedNewestFirstWithFiltersAndCursor() async throws {
        let (store, _) = try makeStore()
        for index in 0..<5 {
            _ = try await store.createRun(sampleRun(sampleSpec(name: index < 3 ? "a" : "b"), key: "k\(index)"))
        }
        let all = try await store.runs(RunQuery())
        #expect(all.map(\.id) == [5, 4, 3, 2, 1])
        #expect(try await store.runs(RunQuery(pipeline: "a")).count == 3)
        let page = try await store.runs(RunQuery(limit: 2, beforeID: 4))
        #expect(page.map(\.id) == [3, 2])
        try await store.commit([.runState(runID: 2, state: .failed, at: Date())])
        #expect(try await store.runs(RunQuery(states: [.failed])).map(\.id) == [2])
    }

    @Test func aDatabaseInAnUnwritablePlaceGivesAClearError() throws {
        #expect {
            _ = try SQLiteStore(path: "/proc/baton-cannot-write-here/baton.db")
        } throws: { error in
            "\(error)".contains("/proc/baton-cannot-write-here/baton.db")
        }
    }
}
