import Foundation
import Testing

@Suite struct RetryAndTimeoutCLITests {
    static func flaky(retries: Int) -> String {
        """
        name: flaky
        tasks:
          t:
            retries: \(retries)
            retry_delay: 200ms
            run: |
              echo "this is attempt $BATON_ATTEMPT"
              test "$BATON_ATTEMPT" -ge 3
        """
    }

    @Test func failsTwiceThenSucceedsWithTwoRetries() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("flaky", Self.flaky(retries: 2))
        let (run, result) = try await sandbox.triggerAndWait("flaky")
        #expect(result.exitCode == 0, "\(result)")
        #expect(run.state == "success", "\(run.summary)")
        #expect(run.task("t")?.state == "success")
        #expect(run.task("t")?.attempts == 3)

        #expect(try await sandbox.logs(run.id, "t", attempt: 1) == "this is attempt 1\n")
        #expect(try await sandbox.logs(run.id, "t", attempt: 2) == "this is attempt 2\n")
        #expect(try await sandbox.logs(run.id, "t") == "this is attempt 3\n", "the latest attempt by default")
        let missing = try await sandbox.baton("logs", String(run.id), "t", "--attempt", "4")
        #expect(missing.exitCode != 0)
        #expect(missing.stderr.contains("1, 2, 3"), "\(missing)")
    }

    @Test func runsOutOfRetries() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("flaky", Self.flaky(retries: 1))
        let (run, result) = try await sandbox.triggerAndWait("flaky")
        #expect(result.exitCode == 1, "\(result)")
        #expect(run.state == "failed", "\(run.summary)")
        #expect(run.task("t")?.state == "failed")
        #expect(run.task("t")?.attempts == 2)
        #expect(run.task("t")?.reason?.contains("exited with code 1") == true, "\(run.summary)")
    }

    @Test func timeoutKillsTheWholeProcessGroup() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let background = sandbox.uniqueSeconds(30)
        let foreground = sandbox.uniqueSeconds(30)
        try sandbox.writePipeline(
            "slow",
            """
            name: slow
            tasks:
              hang:
                timeout: 1s
                run: sleep \(background) & sleep \(foreground); wait
            """)
        let started = ContinuousClock.now
        let (run, result) = try await sandbox.triggerAndWait("slow")
        let elapsed = ContinuousClock.now - started
        #expect(result.exitCode == 1, "\(result)")
        #expect(run.state == "failed", "\(run.summary)")
        let task = try #require(run.task("hang"))
        #expect(task.state == "failed")
        #expect(task.reason?.contains("timed out") == true, "\(run.summary)")
        // The sleeps last 30 s: ending well before proves the timeout killed them. (A tight
        // bound only measured how busy the machine was.)
        #expect(elapsed < .seconds(25), "a 1s timeout took \(elapsed)")
        // Both sleeps, including the backgrounded grandchild, are gone.
        try await waitUntil("the timed-out task's processes are gone", timeout: .seconds(10)) {
            ProcessTable.pids(matching: background).isEmpty && ProcessTable.pids(matching: foreground).isEmpty
        }
        let log = try await sandbox.logs(run.id, "hang")
        #expect(log.contains("timed out"), "\(log)")
    }
}
