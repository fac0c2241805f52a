import BatonCore
import BatonWorker
import Foundation
import Synchronization
import Testing

@testable import BatonKit

/// Steps run in-process the way a worker runs a claimed attempt: `Worker.inProcessTask(for:)`
/// finds the closure from the attempt's payload and `InProcessTaskRunner` runs it with the
/// payload's variables, writing the log file the worker streams.
@Suite struct StepExecutionTests {
    enum CleanError: Error, CustomStringConvertible {
        case emptyFile(String)
        var description: String {
            switch self {
            case .emptyFile(let path): return "no rows in \(path)"
            }
        }
    }

    static let started = Mutex<Bool>(false)
    static let stubbornReleased = Mutex<Bool>(false)

    static let pipeline = Pipeline("steps", params: [Param("region", default: "eu")]) {
        Command("extract", "true")
        Step("clean", needs: "extract") { context in
            let raw = try context.input("extract", as: Raw.self)
            context.log("cleaning \(raw.rows) rows")
            return Clean(rows: raw.rows - 3, region: try context.param("region"))
        }
        Step("count", needs: "clean") { context in try context.input("clean", as: Clean.self).rows }
        Step("wrapped") { _ in ["value": 1] }
        Step("nothing") { context in context.log("no output") }
        Step("fails", needs: "extract") { _ in throw CleanError.emptyFile("raw/customers.csv") }
        Step("asks_for_more", needs: "extract") { context in try context.input("missing", as: Raw.self) }
        Step("cooperative") { _ in try await Task.sleep(for: .seconds(60)) }
            .timeout(.milliseconds(200))
        Step("stubborn") { _ in
            started.withLock { $0 = true }
            // Ignores cancellation on purpose and runs until the test has read the attempt, so it
            // is still running when the grace ends however late a loaded machine fires the timers
            // (a fixed 15 s once ended first); bounded in case the test never lets it go.
            let end = ContinuousClock.now + .seconds(120)
            while ContinuousClock.now < end, !stubbornReleased.withLock({ $0 }) { usleep(10_000) }
        }
        .timeout(.milliseconds(100))
        Step("huge") { _ in String(repeating: "x", count: 70_000) }
        Step("blocking") { _ in
            let end = ContinuousClock.now + .seconds(8)
            while ContinuousClock.now < end { usleep(10_000) }
        }
    }

    struct Attempt {
        var outcome: AttemptOutcome
        var log: String
    }

    static func run(
        _ task: String, inputs: JSONValue = .object([:]), params: JSONValue = ["region": "us"],
        handle: AttemptHandle = AttemptHandle(), grace: Duration = .seconds(5)
    ) async throws -> Attempt {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("batonkit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let spec = pipeline.spec(executable: "/somewhere/else/worker")
        let taskSpec = try #require(spec.task(named: task))
        let payload = DispatchPayload(
            pipeline: "steps", arguments: { if case .argv(let items) = taskSpec.command { return items }; return [] }(),
            environment: [
                "BATON_PIPELINE": "steps", "BATON_TASK": task, "BATON_RUN_ID": "7", "BATON_ATTEMPT": "2",
                "BATON_LOGICAL_DATE": "2026-11-24T00:00:00Z", "BATON_DATA_INTERVAL_START": "2026-11-24T00:00:00Z",
                "BATON_DATA_INTERVAL_END": "2026-11-25T00:00:00Z", "BATON_INPUTS": inputs.compactJSON,
                "BATON_PARAMS": params.compactJSON,
            ],
            workingDirectory: folder, pipelinesDirectory: folder, timeout: taskSpec.timeout, maxOutputBytes: 64 * 1024,
            maxLogBytes: 1 << 20)
        let found = try #require(Worker(pipeline).inProcessTask(for: payload), "the worker finds its own step")
        let request = AttemptRequest(
            payload: payload, logPath: folder + "/log.txt", outputPath: folder + "/out.json", baseEnvironment: [:])
        let outcome = await InProcessTaskRunner(grace: grace).run(
            found, request: request, key: AttemptKey(runID: 7, task: task, attempt: 2), pipeline: "steps", handle: handle)
        let log = (try? String(contentsOfFile: folder + "/log.txt", encoding: .utf8)) ?? ""
        return Attempt(outcome: outcome, log: log)
    }

    @Test func aStepReadsItsInputsAndParamsAndReturnsItsOutput() async throws {
        let attempt = try await Self.run("clean", inputs: ["extract": ["path": "raw.csv", "rows": 41]])
        #expect(attempt.outcome.status == .succeeded, "\(attempt.outcome) \(attempt.log)")
        #expect(attempt.outcome.output == ["region": "us", "rows": 38])
        #expect(attempt.log == "cleaning 41 rows\n")
        #expect(attempt.outcome.result(at: Date()).state == .success)
    }

    @Test func valuesThatAreNotObjectsAreWrappedAndUnwrapped() async throws {
        let count = try await Self.run("count", inputs: ["clean": ["rows": 38, "region": "eu"]])
        #expect(count.outcome.output == ["value": 38])
        // Like the Python SDK: an object whose only key is `value` is wrapped too, so unwrapping
        // gives back exactly what was returned.
        let wrapped = try await Self.run("wrapped")
        #expect(wrapped.outcome.output == ["value": ["value": 1]])
        let nothing = try await Self.run("nothing")
        #expect(nothing.outcome.status == .succeeded)
        #expect(nothing.outcome.output == nil)
        #expect(TaskOutput.unwrap(["value": 38]) == 38)
        #expect(TaskOutput.unwrap(["value": 38, "other": 1]) == ["value": 38, "other": 1])
    }

    @Test func aThrownErrorFailsTheAttemptWithItsMessage() async throws {
        let attempt = try await Self.run("fails", inputs: ["extract": [:]])
        #expect(attempt.outcome.status == .threw("CleanError: no rows in raw/customers.csv"))
        #expect(attempt.outcome.reason == "threw CleanError: no rows in raw/customers.csv")
        #expect(attempt.outcome.result(at: Date()).state == .failed)
        #expect(attempt.log.contains("baton: the task threw CleanError: no rows in raw/customers.csv"), "\(attempt.log)")
    }

    @Test func inputsThatAreMissingOrDoNotDecodeSayWhatToFix() async throws {
        let missing = try await Self.run("asks_for_more", inputs: ["extract": [:]])
        let reason = try #require(missing.outcome.reason)
        #expect(reason.contains("step 'asks_for_more' of steps has no input 'missing'"), "\(reason)")
        #expect(reason.contains("its inputs are extract; add 'missing' to the step's needs"), "\(reason)")
        let wrongShape = try await Self.run("clean", inputs: ["extract": ["path": "raw.csv", "rows": "many"]])
        let wrong = try #require(wrongShape.outcome.reason)
        #expect(wrong.contains("got an input 'extract' it cannot read: cannot decode it as Raw: expected Int at rows"), "\(wrong)")
        let noParam = try await Self.run("clean", inputs: ["extract": ["path": "p", "rows": 1]], params: [:])
        #expect(noParam.outcome.reason?.contains("has no param 'region'") == true, "\(noParam.outcome)")
    }

    @Test func aTimeoutCancelsTheStep() async throws {
        let started = ContinuousClock.now
        let attempt = try await Self.run("cooperative")
        #expect(attempt.outcome.status == .timedOut(after: 0.2))
        // The step sleeps 60 s: ending well before proves the timeout cancelled it. (A tight
        // bound only measured how busy the machine was.)
        #expect(ContinuousClock.now - started < .seconds(40))
        #expect(attempt.log.contains("baton: timed out after 200ms; the task was cancelled"), "\(attempt.log)")
        #expect(!attempt.log.contains("did not return"))
    }

    @Test func aStepIgnoringCancellationIsReportedAfterTheGrace() async throws {
        defer { Self.stubbornReleased.withLock { $0 = true } }
        let attempt = try await Self.run("stubborn", grace: .milliseconds(100))
        #expect(attempt.outcome.status == .timedOut(after: 0.1))
        #expect(attempt.log.contains("did not return within"), "\(attempt.log)")
    }

    @Test func blockingStepsLeaveTheWorkersOwnTasksRunning() async throws {
        // More blocked steps than the cooperative pool has threads: each runs on a thread of its
        // own, so timers, heartbeats and log shipping (here: a short sleep) still run on time.
        // Causal, not timed: had the steps blocked the pool, the sleep could only end after one
        // of them returned. (Other suites share the pool, so a wall-clock bound was flaky.)
        let steps = ProcessInfo.processInfo.activeProcessorCount + 1
        final class Counter: Sendable {
            let value = Mutex(0)
        }
        let returned = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<steps {
                group.addTask {
                    let attempt = try await Self.run("blocking")
                    returned.value.withLock { $0 += 1 }
                    #expect(attempt.outcome.status == .succeeded)
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            #expect(returned.value.withLock { $0 } == 0, "the sleep waited for the blocked steps")
            try await group.waitForAll()
        }
    }

    @Test func aStopCancelsARunningStep() async throws {
        let handle = AttemptHandle()
        async let attempt = Self.run("cooperative", handle: handle)
        // The attempt registers its stopper before it waits; a stop before that is kept too.
        handle.stop()
        let result = try await attempt
        #expect(result.outcome.status == .stopped)
        #expect(result.outcome.result(at: Date()).state == .cancelled)
    }

    @Test func anOutputOverTheLimitFailsLikeABigOutputFile() async throws {
        let attempt = try await Self.run("huge")
        guard case .badOutput(let message) = attempt.outcome.status else {
            Issue.record("expected a bad output, got \(attempt.outcome)")
            return
        }
        #expect(message.contains("over the 65536-byte limit"), "\(message)")
    }

    @Test func onlyThisWorkersStepsRunInProcess() {
        let worker = Worker(Self.pipeline)
        func payload(_ arguments: [String], pipeline: String = "steps") -> DispatchPayload {
            DispatchPayload(
                pipeline: pipeline, arguments: arguments, environment: [:], workingDirectory: "/", pipelinesDirectory: "/",
                timeout: nil, maxOutputBytes: 1, maxLogBytes: 1)
        }
        #expect(worker.inProcessTask(for: payload(["/x/w", "run-task", "steps", "clean"])) != nil)
        #expect(worker.inProcessTask(for: payload(["/bin/sh", "-c", "true"])) == nil, "a command")
        #expect(worker.inProcessTask(for: payload(["/x/w", "run-task", "steps", "clean"], pipeline: "other")) == nil)
        #expect(worker.inProcessTask(for: payload(["/bin/sh", "-c", "run-task steps clean"])) == nil)
    }

    @Test func aStepThisBuildDoesNotHaveFailsWithTheFix() async throws {
        let payload = DispatchPayload(
            pipeline: "steps", arguments: ["/x/w", "run-task", "steps", "renamed"], environment: [:], workingDirectory: "/",
            pipelinesDirectory: "/", timeout: nil, maxOutputBytes: 1024, maxLogBytes: 1024)
        let task = try #require(Worker(Self.pipeline).inProcessTask(for: payload))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("batonkit-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let request = AttemptRequest(payload: payload, logPath: folder + "/log", outputPath: folder + "/out", baseEnvironment: [:])
        let outcome = await InProcessTaskRunner().run(
            task, request: request, key: AttemptKey(runID: 1, task: "renamed", attempt: 1), pipeline: "steps",
            handle: AttemptHandle())
        #expect(outcome.reason?.contains("has no step 'renamed': Baton read another build of it; rebuild and restart the worker") == true, "\(outcome)")
    }

    @Test func eventIdsRepeatPerAttemptAndCallsWithoutAServerSayWhy() async throws {
        let names = PublishedNames()
        #expect(names.nextID(for: "data.updated", run: 3, task: "load") == "run-3-load-data.updated")
        #expect(names.nextID(for: "data.updated", run: 3, task: "load") == "run-3-load-data.updated-2")
        #expect(names.nextID(for: "other", run: 3, task: "load") == "run-3-load-other")
        let context = try TaskContext(
            environment: [
                "BATON_PIPELINE": "steps", "BATON_TASK": "load", "BATON_RUN_ID": "3",
                "BATON_LOGICAL_DATE": "2026-11-24T00:00:00Z", "BATON_DATA_INTERVAL_START": "2026-11-24T00:00:00Z",
                "BATON_DATA_INTERVAL_END": "2026-11-25T00:00:00Z",
            ], workingDirectory: "/", log: { _ in })
        #expect(context.ds == "2026-11-24")
        do {
            try await context.publishEvent("data.updated", payload: ["rows": 1])
            Issue.record("published without a server")
        } catch {
            #expect(error.description == "cannot publish event data.updated: BATON_SERVER is not set; this works in steps run by a worker of a Baton server")
        }
        do {
            try await context.publishEvent("data.updated", payload: [1, 2])
            Issue.record("published a list as payload")
        } catch {
            #expect(error.message.contains("must encode to a JSON object, got a"), "\(error)")
        }
    }

    @Test func errorsReadLikeTheirTypeAndMessage() {
        struct Plain: Error {}
        struct Localized: LocalizedError { var errorDescription: String? { "disk full" } }
        enum Coded: Error { case badRow(Int) }
        #expect(InProcessTaskRunner.describe(Plain()) == "Plain()", "the type is named once")
        #expect(InProcessTaskRunner.describe(Coded.badRow(3)) == "Coded: badRow(3)")
        #expect(InProcessTaskRunner.describe(Localized()) == "Localized: disk full")
        #expect(InProcessTaskRunner.describe(CleanError.emptyFile("a")) == "CleanError: no rows in a")
    }
}
