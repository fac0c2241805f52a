import BatonCore
import Foundation
import Synchronization
import Testing

@testable import BatonStore

/// The `Store` contract, run against every backend on a fresh database per test.
@Suite struct StoreTests {
    @Test(arguments: Backend.allCases) func aRunIsCreatedOncePerKeyWithPendingTasks(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let spec = sampleSpec(tasks: ["extract", "load", "a_report", "Zeta"])
            let first = try await store.createRun(sampleRun(spec))
            let second = try await store.createRun(sampleRun(spec))
            #expect(first.created)
            #expect(!second.created)
            #expect(first.run.id == second.run.id)
            let tasks = try await store.taskInstances(runID: first.run.id)
            #expect(tasks.map(\.task) == ["extract", "load", "a_report", "Zeta"], "in the definition's order")
            #expect(tasks.allSatisfy { $0.state == .pending })
            let stored = try #require(try await store.run(id: first.run.id))
            #expect(stored.spec == spec)
            #expect(stored.params == ["region": "eu"])
            #expect(stored.state == .queued)
            #expect(stored.logicalDate == Date(timeIntervalSince1970: 1_790_000_000))
            #expect(stored.trigger == .schedule)
            #expect(stored.cancelRequested == false)
            #expect(stored.event == nil)
        }
    }

    @Test(arguments: Backend.allCases) func concurrentCreatorsOfOneIntervalGetOneRun(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let other = try await database.open()
            let spec = sampleSpec()
            let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<20 {
                    let target = index.isMultiple(of: 2) ? store : other
                    group.addTask { try await target.createRun(sampleRun(spec)).created }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(results.filter { $0 }.count == 1)
            #expect(try await store.runs(RunQuery(pipeline: "etl")).count == 1)
            let run = try #require(try await other.runs(RunQuery(pipeline: "etl")).first)
            #expect(try await store.taskInstances(runID: run.id).count == 2, "the tasks were inserted once")
        }
    }

    @Test(arguments: Backend.allCases) func transitionsCommitTogetherAndSurviveReopening(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let run = try await store.createRun(sampleRun(sampleSpec())).run
            let now = Date(timeIntervalSince1970: 1_790_000_123.456)
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
            let reopened = try await database.open()
            let tasks = try await reopened.taskInstances(runID: run.id)
            #expect(tasks.first?.state == .success)
            #expect(tasks.first?.output == ["rows": 10])
            #expect(tasks.first?.startedAt == now, "times keep their fractions")
            #expect(tasks.first?.endedAt == now)
            let attempts = try await reopened.attempts(runID: run.id, task: "extract")
            #expect(attempts.count == 1)
            #expect(attempts.first?.pid == 4242)
            #expect(attempts.first?.processStartTicks == 99)
            #expect(attempts.first?.exitCode == 0)
            #expect(attempts.first?.state == .success)
            #expect(try await reopened.attempts(runID: run.id, task: nil).map(\.task) == ["extract"])
            #expect(try await reopened.run(id: run.id)?.state == .running)
            #expect(try await reopened.run(id: run.id)?.startedAt == now)
            #expect(try await reopened.unfinishedRuns().map(\.id) == [run.id])
            #expect(try await reopened.openAttempts().isEmpty)
        }
    }

    @Test(arguments: Backend.allCases) func aLargeCommitAppliesEveryChangeAsInItsOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let names = (0..<30).map { "t\($0)" }
            let run = try await store.createRun(sampleRun(sampleSpec(tasks: names))).run
            let t1 = Date(timeIntervalSince1970: 1_790_000_100.25)
            let t2 = t1.addingTimeInterval(10)
            var changes: [StoreChange] = [.runState(runID: run.id, state: .running, at: t1)]
            for (index, task) in names.enumerated() {
                changes.append(
                    .taskState(
                        runID: run.id, task: task, state: .running, attempts: 1, interruptions: index % 4,
                        output: index.isMultiple(of: 2) ? ["i": .number(Double(index))] : nil,
                        reason: index.isMultiple(of: 3) ? "reason \(index)" : nil, retryAt: index.isMultiple(of: 5) ? t2 : nil,
                        at: t1))
                changes.append(
                    .attemptStarted(
                        AttemptRecord(
                            runID: run.id, task: task, attempt: 1, state: .queued, pid: index.isMultiple(of: 2) ? Int32(index) : nil,
                            startedAt: t1, logPath: "/logs/\(task).log", pool: index.isMultiple(of: 2) ? "warehouse" : nil,
                            queuedAt: index.isMultiple(of: 3) ? t1 : nil)))
            }
            // Later changes to the same rows in the same commit see the earlier ones.
            changes.append(.taskState(runID: run.id, task: "t0", state: .running, attempts: 1, output: nil, reason: nil, retryAt: nil, at: t2))
            changes.append(.taskState(runID: run.id, task: "t1", state: .success, attempts: 1, output: nil, reason: nil, retryAt: nil, at: t2))
            changes.append(.attemptFinished(runID: run.id, task: "t2", attempt: 1, state: .cancelled, exitCode: nil, reason: "stop", at: t2))
            changes.append(.attemptStarted(AttemptRecord(runID: run.id, task: "t2", attempt: 1, state: .queued, startedAt: t2, logPath: "again")))
            try await store.commit(changes)

            let instances = try await store.taskInstances(runID: run.id)
            #expect(instances.map(\.task) == names)
            for (index, instance) in instances.enumerated() where index > 1 {
                #expect(instance.state == .running && instance.attempts == 1 && instance.interruptions == index % 4)
                #expect(instance.output == (index.isMultiple(of: 2) ? ["i": .number(Double(index))] : nil))
                #expect(instance.reason == (index.isMultiple(of: 3) ? "reason \(index)" : nil))
                #expect(instance.retryAt == (index.isMultiple(of: 5) ? t2 : nil))
                #expect(instance.startedAt == t1 && instance.endedAt == nil)
            }
            #expect(instances[0].startedAt == t1, "a second running update keeps the first start")
            #expect(instances[0].output == nil)
            #expect(instances[1].state == .success && instances[1].endedAt == t2 && instances[1].startedAt == t1)

            let open = try await store.openAttempts()
            #expect(open.map(\.task) == names.filter { $0 != "t2" }, "in the order they were queued")
            for attempt in open {
                let index = Int(attempt.task.dropFirst())!
                #expect(attempt.state == .queued && attempt.logPath == "/logs/\(attempt.task).log")
                #expect(attempt.pid == (index.isMultiple(of: 2) ? Int32(index) : nil))
                #expect(attempt.pool == (index.isMultiple(of: 2) ? "warehouse" : nil))
                #expect(attempt.queuedAt == (index.isMultiple(of: 3) ? t1 : nil))
                #expect(attempt.queue == "default" && attempt.payload == nil)
            }
            let stopped = try #require(try await store.attempts(runID: run.id, task: "t2").first)
            #expect(stopped.state == .cancelled && stopped.logPath == "/logs/t2.log", "an existing attempt is not inserted again")
        }
    }

    @Test(arguments: Backend.allCases) func aFailingChangeRollsBackTheWholeCommit(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let run = try await store.createRun(sampleRun(sampleSpec())).run
            let now = Date()
            // The attempt refers to a run that does not exist: the foreign key refuses it, and the
            // run's state change before it in the same commit must not stay behind.
            await #expect(throws: (any Error).self) {
                try await store.commit([
                    .runState(runID: run.id, state: .running, at: now),
                    .attemptStarted(AttemptRecord(runID: run.id + 1000, task: "extract", attempt: 1, startedAt: now, logPath: "x")),
                ])
            }
            #expect(try await store.run(id: run.id)?.state == .queued)
            // The store stays usable after a failed transaction.
            try await store.commit([.runState(runID: run.id, state: .running, at: now)])
            #expect(try await store.run(id: run.id)?.state == .running)
        }
    }

    @Test(arguments: Backend.allCases) func aFinishedAttemptIsNotReopenedByALateUpdate(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let run = try await store.createRun(sampleRun(sampleSpec())).run
            let now = Date()
            try await store.commit([.attemptStarted(AttemptRecord(runID: run.id, task: "extract", attempt: 1, startedAt: now, logPath: "x"))])
            #expect(try await store.openAttempts().map(\.attempt) == [1])
            try await store.commit([.attemptFinished(runID: run.id, task: "extract", attempt: 1, state: .lost, exitCode: nil, reason: "lost", at: now)])
            try await store.commit([.attemptFinished(runID: run.id, task: "extract", attempt: 1, state: .success, exitCode: 0, reason: nil, at: now)])
            #expect(try await store.attempts(runID: run.id, task: "extract").first?.state == .lost)
            #expect(try await store.attempts(runID: run.id, task: "extract").first?.reason == "lost")
        }
    }

    @Test(arguments: Backend.allCases) func cancellationRequestsAreVisibleToOtherConnections(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let run = try await store.createRun(sampleRun(sampleSpec())).run
            let tokenBefore = try await store.externalChangeToken()
            let cli = try await database.open()
            #expect(try await cli.requestCancel(runID: run.id))
            #expect(try await store.externalChangeToken() != tokenBefore)
            #expect(try await store.cancelRequestedRunIDs() == [run.id])
            #expect(try await store.run(id: run.id)?.cancelRequested == true)
            try await store.commit([.runCleared(runID: run.id)])
            #expect(try await store.cancelRequestedRunIDs().isEmpty)
            #expect(try await cli.requestCancel(runID: run.id))
            try await store.commit([.runState(runID: run.id, state: .cancelled, at: Date())])
            #expect(try await store.cancelRequestedRunIDs().isEmpty)
            #expect(try await cli.requestCancel(runID: run.id) == false)
        }
    }

    @Test(arguments: Backend.allCases) func ownWritesDoNotChangeTheExternalToken(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let before = try await store.externalChangeToken()
            let run = try await store.createRun(sampleRun(sampleSpec())).run
            _ = try await store.requestCancel(runID: run.id)
            try await store.commit([.runState(runID: run.id, state: .running, at: Date())])
            #expect(try await store.externalChangeToken() == before)
        }
    }

    /// `baton up` reads the token five times a second; counted as a write, each read woke the
    /// WAL checkpointer 50 ms later on an otherwise idle server.
    @Test func readingTheExternalTokenIsNotAWrite() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-token-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let store = try SQLiteStore(path: folder + "/baton.db")
        let before = store.writesNoted
        for _ in 0..<3 { _ = try await store.externalChangeToken() }
        #expect(store.writesNoted == before)
        _ = try await store.createRun(sampleRun(sampleSpec()))
        #expect(store.writesNoted > before, "a real write is noted")
    }

    @Test(arguments: Backend.allCases) func pipelinesKeepFirstSeenAndScheduleOnlyMovesForward(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let t0 = Date(timeIntervalSince1970: 1_000)
            let first = try await store.upsertPipeline(name: "etl", file: "p/etl.yaml", spec: sampleSpec(), now: t0)
            var changed = sampleSpec()
            changed.owner = "ml_engineering"
            let second = try await store.upsertPipeline(name: "etl", file: "p/etl.yaml", spec: changed, now: t0.addingTimeInterval(60))
            #expect(first.firstSeen == t0)
            #expect(second.firstSeen == t0)
            #expect(second.updatedAt == t0.addingTimeInterval(60))
            #expect(second.spec.owner == "ml_engineering")
            #expect(try await store.pipeline(named: "etl")?.lastScheduledEnd == nil)
            try await store.setLastScheduledEnd(t0.addingTimeInterval(7200), pipeline: "etl")
            try await store.setLastScheduledEnd(t0.addingTimeInterval(3600), pipeline: "etl")
            #expect(try await store.pipeline(named: "etl")?.lastScheduledEnd == t0.addingTimeInterval(7200))
            try await store.setPaused(true, pipeline: "etl")
            #expect(try await store.pipelines().first?.paused == true)
            #expect(try await store.pipeline(named: "nope") == nil)
            // Byte order, as SQLite sorts: upper case before lower case.
            for name in ["b", "B", "a", "_x"] {
                _ = try await store.upsertPipeline(name: name, file: "p/\(name).yaml", spec: sampleSpec(name: name), now: t0)
            }
            #expect(try await store.pipelines().map(\.name) == ["B", "_x", "a", "b", "etl"])
        }
    }

    @Test(arguments: Backend.allCases) func runsAreListedNewestFirstWithFiltersAndCursor(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
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
            #expect(try await store.runs(RunQuery(pipeline: "a", states: [.queued, .failed], limit: 10, beforeID: 3)).map(\.id) == [2, 1])
            #expect(try await store.unfinishedRuns().map(\.id) == [1, 3, 4, 5])
            #expect(try await store.run(id: 2)?.endedAt != nil)
        }
    }

    @Test(arguments: Backend.allCases) func eventRunsKeepTheirEvent(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            var run = sampleRun(sampleSpec(), key: "event:e1")
            run.trigger = .event
            run.event = ["id": "e1", "payload": ["rows": 3]]
            _ = try await store.createRun(run)
            let stored = try #require(try await store.runs(RunQuery()).first)
            #expect(stored.trigger == .event)
            #expect(stored.event == ["id": "e1", "payload": ["rows": 3]])
        }
    }

    @Test(arguments: Backend.allCases) func tokensAreStoredRevokedOnceAndMarkedUsed(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let created = Date(timeIntervalSince1970: 1_000)
            try await store.createToken(
                TokenRecord(id: "bt_1", team: "data", role: .operator, description: "ci", secretHash: "ab", createdAt: created))
            try await store.createToken(
                TokenRecord(id: "bt_2", team: "ml", role: .viewer, description: nil, secretHash: "cd", createdAt: created.addingTimeInterval(1)))
            #expect(try await store.tokens().map(\.id) == ["bt_1", "bt_2"])
            #expect(try await store.token(id: "bt_1")?.role == .operator)
            #expect(try await store.token(id: "bt_2")?.description == nil)
            try await store.markTokenUsed(id: "bt_1", at: created.addingTimeInterval(5))
            #expect(try await store.token(id: "bt_1")?.lastUsedAt == created.addingTimeInterval(5))
            #expect(try await store.revokeToken(id: "bt_1", at: created.addingTimeInterval(9)))
            #expect(try await store.revokeToken(id: "bt_1", at: created.addingTimeInterval(10)) == false)
            #expect(try await store.token(id: "bt_1")?.revokedAt == created.addingTimeInterval(9))
            #expect(try await store.revokeToken(id: "missing", at: created) == false)
            #expect(try await store.token(id: "missing") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func thePingAnswers(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in try await store.ping() }
    }

    @Test func aDatabaseInAnUnwritablePlaceGivesAClearError() throws {
        #expect {
            _ = try SQLiteStore(path: "/proc/baton-cannot-write-here/baton.db")
        } throws: { error in
            "\(error)".contains("/proc/baton-cannot-write-here/baton.db")
        }
    }

    /// `baton up` and a CLI command opening a new database together both migrate it; before the
    /// migration lock, both could apply the same migration ("duplicate column name").
    @Test func openersRacingOnANewDatabaseMigrateItOnce() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-migrate-race-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for round in 0..<6 {
            let path = "\(folder)/round\(round).db"
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 6) { _ in
                do { _ = try SQLiteStore(path: path) } catch { failures.withLock { $0.append("\(error)") } }
            }
            #expect(failures.withLock { $0 } == [], "round \(round)")
        }
    }
}
