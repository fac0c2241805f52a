import BatonCore
import BatonStore
import Foundation
import Logging
import Testing

@testable import BatonEngine

/// An engine on a temporary folder and database, run for the duration of a test.
struct EngineHarness {
    let root: String
    let store: SQLiteStore

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-engine-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        store = try SQLiteStore(path: root + "/baton.db")
    }

    func write(_ name: String, _ yaml: String) throws {
        try yaml.write(toFile: root + "/pipelines/\(name).yaml", atomically: true, encoding: .utf8)
    }

    func makeEngine(
        clock: (@Sendable () -> Date)? = nil, scheduler: Bool = false, slots: Int = 2,
        externalCheckInterval: Duration = .milliseconds(50), externalCheckSafetyNet: Duration = .milliseconds(50),
        watchFiles: Bool = false
    ) -> Engine {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return Engine(
            store: store,
            configuration: EngineConfiguration(
                pipelinesDirectory: root + "/pipelines", dataDirectory: root, slots: slots,
                externalCheckInterval: externalCheckInterval, externalCheckSafetyNet: externalCheckSafetyNet,
                watchFiles: watchFiles, schedulerEnabled: scheduler),
            logger: logger, clock: clock ?? { Date() })
    }

    /// Runs `body` while the engine runs, then stops the engine and waits until it has stopped,
    /// as a restarted server follows a process that has exited: an engine started while the last
    /// one still winds down would see that one's attempts as left by a dead process.
    @discardableResult
    func withEngine<T>(_ engine: Engine, _ body: (Engine) async throws -> T) async throws -> T {
        let task = Task { try await engine.run() }
        let result: Result<T, any Error>
        do {
            let deadline = ContinuousClock.now + .seconds(30)
            while await !engine.isRunning() {
                guard ContinuousClock.now < deadline else { throw RunRequestError("engine did not start") }
                try await Task.sleep(for: .milliseconds(5))
            }
            result = .success(try await body(engine))
        } catch {
            result = .failure(error)
        }
        task.cancel()
        try await Self.waitUntilStopped(task, seconds: 30)
        return try result.get()
    }

    private static func waitUntilStopped(_ task: Task<Void, any Error>, seconds: Int) async throws {
        let stopped = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                _ = await task.result
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(seconds))
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard stopped else { throw RunRequestError("the engine did not stop within \(seconds)s of being cancelled") }
    }

    func waitFor(_ runID: Int64, on engine: Engine, seconds: Int = 30) async throws -> RunState {
        try await withThrowingTaskGroup(of: RunState?.self) { group in
            group.addTask { try await engine.waitUntilFinished(runID: runID) }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            let first = try await group.next()!
            group.cancelAll()
            guard let state = first else { throw RunRequestError("run \(runID) did not finish within \(seconds)s") }
            return state
        }
    }
}

@Suite struct EngineRunTests {
    @Test func outputsFlowDownstreamAndTheRunSucceeds() async throws {
        let harness = try EngineHarness()
        try harness.write(
            "flow",
            """
            name: flow
            params: {region: eu}
            tasks:
              train:
                run: |
                  echo '{"accuracy": 0.91}' > "$BATON_OUTPUT"
              report:
                needs: [train]
                run: test {{ tasks.train.output.accuracy }} = 0.91 && test {{ params.region }} = eu
            """)
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let run = try await engine.trigger(pipeline: "flow")
            #expect(try await harness.waitFor(run.id, on: engine) == .success)
            let tasks = try await harness.store.taskInstances(runID: run.id)
            #expect(tasks.first { $0.task == "train" }?.output == ["accuracy": 0.91])
            #expect(tasks.allSatisfy { $0.state == .success })
        }
    }

    @Test func triggeringAPipelineWhoseFileIsBrokenSaysWhy() async throws {
        let harness = try EngineHarness()
        try harness.write("broken", "name: broken\ntasks:\n  a: {run: \"true\", retries: lots}\n")
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            await #expect {
                _ = try await engine.trigger(pipeline: "broken")
            } throws: { error in
                "\(error)".contains("retries") && "\(error)".contains("broken.yaml")
            }
        }
    }

    @Test func paramsAreValidatedOnTrigger() async throws {
        let harness = try EngineHarness()
        try harness.write("p", "name: p\nparams: {epochs: 3}\ntasks:\n  a: {run: \"true\"}\n")
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            await #expect(throws: RunRequestError.self) { _ = try await engine.trigger(pipeline: "p", params: ["epochs": "many"]) }
            await #expect(throws: RunRequestError.self) { _ = try await engine.trigger(pipeline: "p", params: ["epoch": 3]) }
            await #expect(throws: RunRequestError.self) { _ = try await engine.trigger(pipeline: "nope") }
        }
    }

    @Test func maxActiveRunsIsRespected() async throws {
        let harness = try EngineHarness()
        try harness.write("serial", "name: serial\nmax_active_runs: 1\ntasks:\n  a: {run: sleep 0.2}\n")
        try await harness.withEngine(harness.makeEngine(slots: 4)) { engine async throws in
            var ids: [Int64] = []
            for _ in 0..<3 { ids.append(try await engine.trigger(pipeline: "serial").id) }
            for id in ids { #expect(try await harness.waitFor(id, on: engine) == .success) }
            let runs = try await harness.store.runs(RunQuery(pipeline: "serial")).sorted { $0.id < $1.id }
            for (earlier, later) in zip(runs, runs.dropFirst()) {
                let ended = try #require(earlier.endedAt)
                let started = try #require(later.startedAt)
                #expect(ended <= started)
            }
        }
    }

    @Test func aCancelRequestFromAnotherProcessStopsTheRun() async throws {
        let harness = try EngineHarness()
        let marker = "33.\(Int.random(in: 100_000...999_999))"
        try harness.write("long", "name: long\ntasks:\n  wait: {run: sleep \(marker)}\n  after: {run: \"true\", needs: [wait]}\n")
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let run = try await engine.trigger(pipeline: "long")
            let deadline = ContinuousClock.now + .seconds(20)
            while try await harness.store.taskInstances(runID: run.id).first?.state != .running {
                guard ContinuousClock.now < deadline else { throw RunRequestError("task never started") }
                try await Task.sleep(for: .milliseconds(20))
            }
            let cli = try SQLiteStore(path: harness.root + "/baton.db")
            #expect(try await cli.requestCancel(runID: run.id))
            #expect(try await harness.waitFor(run.id, on: engine) == .cancelled)
            let tasks = try await harness.store.taskInstances(runID: run.id)
            #expect(tasks.allSatisfy { $0.state == .cancelled })
        }
    }

    /// A command's store rings the database's change bell: the engine acts on the write at once,
    /// though its polls here are an hour apart (without the bell this run would go on sleeping).
    @Test func aCommandsWriteIsActedOnAtOnceWithoutAPoll() async throws {
        let harness = try EngineHarness()
        let marker = "34.\(Int.random(in: 100_000...999_999))"
        try harness.write("long", "name: long\ntasks:\n  wait: {run: sleep \(marker)}\n")
        let engine = harness.makeEngine(
            externalCheckInterval: .seconds(3600), externalCheckSafetyNet: .seconds(3600), watchFiles: true)
        try await harness.withEngine(engine) { engine async throws in
            let run = try await engine.trigger(pipeline: "long")
            let deadline = ContinuousClock.now + .seconds(20)
            while try await harness.store.taskInstances(runID: run.id).first?.state != .running {
                guard ContinuousClock.now < deadline else { throw RunRequestError("task never started") }
                try await Task.sleep(for: .milliseconds(20))
            }
            let command = try SQLiteStore(path: harness.root + "/baton.db", announcesWrites: true)
            #expect(try await command.requestCancel(runID: run.id))
            #expect(try await harness.waitFor(run.id, on: engine, seconds: 20) == .cancelled)
        }
    }
}

@Suite struct EngineRecoveryTests {
    /// Leaves the store as a killed engine would: the run running, one attempt running.
    func leaveInterruptedRun(_ harness: EngineHarness, retries: Int) async throws -> Int64 {
        let spec = try #require(
            PipelineParser.parse(
                "name: interrupted\ntasks:\n  a: {run: \"true\", retries: \(retries), retry_delay: 0}\n  b: {run: \"true\", needs: [a]}\n",
                file: "interrupted.yaml"
            ).spec)
        let now = Date()
        let run = try await harness.store.createRun(
            RunRecord(
                pipeline: spec.name, runKey: "manual__x", logicalDate: now, intervalStart: now, intervalEnd: now,
                trigger: .manual, params: [:], spec: spec, createdAt: now)
        ).run
        try await harness.store.commit([
            .runState(runID: run.id, state: .running, at: now),
            .taskState(runID: run.id, task: "a", state: .running, attempts: 1, output: nil, reason: nil, retryAt: nil, at: now),
            .attemptStarted(AttemptRecord(runID: run.id, task: "a", attempt: 1, startedAt: now, logPath: harness.root + "/a1.log")),
        ])
        return run.id
    }

    @Test func aRunningAttemptLeftByACrashIsLostAndRetried() async throws {
        let harness = try EngineHarness()
        let runID = try await leaveInterruptedRun(harness, retries: 1)
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            #expect(try await harness.waitFor(runID, on: engine) == .success)
        }
        let attempts = try await harness.store.attempts(runID: runID, task: "a")
        #expect(attempts.map(\.state) == [.lost, .success])
        #expect(attempts.first?.reason?.contains("lost") == true)
    }

    @Test func withoutRetriesALostAttemptFailsTheTask() async throws {
        let harness = try EngineHarness()
        let runID = try await leaveInterruptedRun(harness, retries: 0)
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            #expect(try await harness.waitFor(runID, on: engine) == .failed)
        }
        let tasks = try await harness.store.taskInstances(runID: runID)
        #expect(tasks.first { $0.task == "a" }?.state == .failed)
        #expect(tasks.first { $0.task == "a" }?.reason?.contains("lost") == true)
        #expect(tasks.first { $0.task == "b" }?.state == .upstreamFailed)
    }
}

@Suite struct EngineSchedulingTests {
    @Test func catchupCreatesEachMissedIntervalOnceAcrossRestarts() async throws {
        let harness = try EngineHarness()
        let now = try #require(PipelineParser.parseDate("2026-11-25T10:30:00Z", timezone: .gmt))
        try harness.write(
            "hourly",
            """
            name: hourly
            schedule: "@hourly"
            catchup: true
            start_date: 2026-11-25T06:00:00Z
            tasks:
              a: {run: "true"}
            """)
        for _ in 0..<2 {
            try await harness.withEngine(harness.makeEngine(clock: { now }, scheduler: true)) { _ in
                let deadline = ContinuousClock.now + .seconds(20)
                while try await harness.store.runs(RunQuery(states: [.success])).count < 4 {
                    guard ContinuousClock.now < deadline else { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        let runs = try await harness.store.runs(RunQuery(pipeline: "hourly")).sorted { $0.logicalDate < $1.logicalDate }
        #expect(runs.map { DataInterval.iso($0.logicalDate) } == [
            "2026-11-25T06:00:00Z", "2026-11-25T07:00:00Z", "2026-11-25T08:00:00Z", "2026-11-25T09:00:00Z",
        ])
        #expect(runs.allSatisfy { $0.state == .success && $0.trigger == .schedule })
        #expect(runs.map { $0.intervalEnd.timeIntervalSince($0.intervalStart) } == [3600, 3600, 3600, 3600])
    }

    @Test func withoutCatchupOnlyTheLatestIntervalRuns() async throws {
        let harness = try EngineHarness()
        let now = try #require(PipelineParser.parseDate("2026-11-25T10:30:00Z", timezone: .gmt))
        try harness.write(
            "daily", "name: daily\nschedule: \"0 6 * * *\"\ntimezone: Europe/Berlin\ntasks:\n  a: {run: \"true\"}\n")
        try await harness.withEngine(harness.makeEngine(clock: { now }, scheduler: true)) { _ in
            let deadline = ContinuousClock.now + .seconds(20)
            while try await harness.store.runs(RunQuery(pipeline: "daily")).isEmpty, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let runs = try await harness.store.runs(RunQuery(pipeline: "daily"))
        // 06:00 in Berlin is 05:00 UTC in November; the latest completed interval is 24 → 25 Nov.
        #expect(runs.map { DataInterval.iso($0.logicalDate) } == ["2026-11-24T05:00:00Z"])
    }

    @Test func aBrokenEditKeepsThePreviousVersion() async throws {
        let harness = try EngineHarness()
        try harness.write("keep", "name: keep\ntasks:\n  a: {run: \"true\"}\n")
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            try harness.write("keep", "name: keep\ntasks:\n  a: {run: \"true\", needs: [missing]}\n")
            await engine.reloadPipelines()
            #expect(await engine.issues().contains { $0.message.contains("missing") })
            let run = try await engine.trigger(pipeline: "keep")
            #expect(try await harness.waitFor(run.id, on: engine) == .success)
        }
    }
}
