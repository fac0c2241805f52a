import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `baton trigger --wait` with no `baton up` runs an engine inside the CLI process. That engine
/// holds the database like `baton up` does, so it may also start other queued runs; when the
/// followed run ends, the CLI must stop that engine cleanly, never abandon attempts mid-flight.
@Suite struct InProcessTriggerCLITests {
    @Test func waitingTriggerLeavesOtherQueuedRunsResumable() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        // `other` sleeps long while the file `hold` exists, so the CLI's engine is still running it
        // when the followed run ends.
        let marker = sandbox.uniqueSeconds(30)
        try sandbox.write("hold", "")
        try sandbox.writePipeline(
            "other",
            """
            name: other
            tasks:
              work:
                run: |
                  echo "other attempt $BATON_ATTEMPT"
                  if [ -e ../hold ]; then sleep \(marker); fi
            """)
        try sandbox.writePipeline(
            "main",
            """
            name: main
            tasks:
              step:
                run: sleep 0.5; echo main done
            """)
        let other = try await sandbox.trigger("other")
        let (run, result) = try await sandbox.triggerAndWait("main")
        #expect(result.exitCode == 0, "\(result)")
        #expect(run.state == "success", "\(run.summary)")

        // Whatever the CLI's engine did with the other run, nothing of it may be left running.
        #expect(ProcessTable.pids(matching: marker).isEmpty, "the CLI exited and left a task process behind")
        let left = try await sandbox.run(other)
        #expect(left.task("work")?.state != "running", "an attempt was abandoned as running: \(left.summary)")

        // The other run (no retries) must still complete once a server runs it.
        try FileManager.default.removeItem(atPath: sandbox.root + "/hold")
        let server = try await sandbox.startUpAndWait()
        let finished = try await sandbox.waitForRuns([other])
        #expect(finished.first?.state == "success", "\(finished.map(\.summary))\n\(server.log)")
        #expect(await server.stop())
    }

    @Test func ctrlCStopsTheInProcessEngineCleanly() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let marker = sandbox.uniqueSeconds(30)
        try sandbox.write("hold", "")
        try sandbox.writePipeline(
            "main",
            """
            name: main
            tasks:
              step:
                run: |
                  echo "attempt $BATON_ATTEMPT"
                  if [ -e ../hold ]; then sleep \(marker); fi
              after:
                needs: [step]
                run: echo after
            """)
        let waiting = try sandbox.spawn(["trigger", "main", "--wait"])
        try await waitUntil("the task runs inside the CLI") { !ProcessTable.sleeps(matching: marker).isEmpty }
        let id = try #require(try await sandbox.runs("main").first?.id)
        waiting.signal(SIGINT)
        #expect(await waiting.waitForExit(timeout: .seconds(10)), "trigger --wait ignored Ctrl-C")
        let result = waiting.result()
        #expect(result.exitCode == 130, "\(result)")
        #expect(!result.looksLikeCrash, "\(result)")
        #expect(result.stderr.contains("run \(id)"), "\(result)")
        try await waitUntil("the task process is gone", timeout: .seconds(10)) {
            ProcessTable.pids(matching: marker).isEmpty
        }
        let left = try await sandbox.run(id)
        #expect(left.state == "running", "Ctrl-C stops following, not the run: \(left.summary)")
        #expect(left.task("step")?.state == "queued", "the interrupted task must be requeued: \(left.summary)")

        try FileManager.default.removeItem(atPath: sandbox.root + "/hold")
        let server = try await sandbox.startUpAndWait()
        let finished = try await sandbox.waitForRuns([id])
        #expect(finished.first?.state == "success", "\(finished.map(\.summary))\n\(server.log)")
        #expect(try await sandbox.run(id).task("step")?.attempts == 2)
        #expect(await server.stop())
    }

    @Test func waitingTriggerFollowsARunningServer() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "main",
            """
            name: main
            tasks:
              step:
                run: echo "served by the server"
            """)
        let server = try await sandbox.startUpAndWait()
        let (run, result) = try await sandbox.triggerAndWait("main")
        #expect(result.exitCode == 0, "\(result)")
        #expect(run.state == "success")
        #expect(server.log.contains("picked up run \(run.id)"), "the running server should execute it:\n\(server.log)")
        #expect(await server.stop())
    }
}
