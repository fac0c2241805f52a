import BatonCore
import BatonStore
import Foundation
import Testing

@testable import BatonEngine

func processAlive(marker: String) -> Bool {
    let pgrep = Process()
    pgrep.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
    pgrep.arguments = ["-f", marker]
    pgrep.standardOutput = FileHandle.nullDevice
    try? pgrep.run()
    pgrep.waitUntilExit()
    return pgrep.terminationStatus == 0
}

@Suite struct EngineShutdownTests {
    @Test func aGracefulShutdownRequeuesRunningTasksWithoutUsingARetry() async throws {
        let harness = try EngineHarness()
        let marker = "34.\(Int.random(in: 100_000...999_999))"
        try harness.write(
            "slow",
            "name: slow\ntasks:\n  a:\n    run: if [ \"$BATON_ATTEMPT\" = 1 ]; then sleep \(marker); fi\n  b: {run: \"true\", needs: [a]}\n")
        let engine = harness.makeEngine()
        let running = Task { try await engine.run() }
        let deadline = ContinuousClock.now + .seconds(20)
        while await !engine.isRunning() { try await Task.sleep(for: .milliseconds(5)) }
        let run = try await engine.trigger(pipeline: "slow")
        while try await harness.store.attempts(runID: run.id, task: "a").first?.pid == nil {
            guard ContinuousClock.now < deadline else { throw RunRequestError("task never started") }
            try await Task.sleep(for: .milliseconds(10))
        }
        running.cancel()
        _ = try? await running.value
        let interrupted = try await harness.store.taskInstances(runID: run.id).first { $0.task == "a" }
        #expect(interrupted?.state == .queued)
        #expect(interrupted?.interruptions == 1)
        #expect(try await harness.store.attempts(runID: run.id, task: "a").map(\.state) == [.interrupted])
        #expect(!processAlive(marker: marker))
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            #expect(try await harness.waitFor(run.id, on: engine) == .success)
        }
        #expect(try await harness.store.attempts(runID: run.id, task: "a").map(\.state) == [.interrupted, .success])
    }
}
