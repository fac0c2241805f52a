import Foundation
import Testing

@Suite struct LogsAndLockCLITests {
    @Test func logsFollowPrintsLinesUntilTheAttemptEnds() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "chatty",
            """
            name: chatty
            tasks:
              talk:
                run: |
                  echo "line 1"
                  for i in $(seq 300); do [ -f go ] && break; sleep 0.1; done
                  for i in 2 3 4; do echo "line $i"; sleep 0.1; done
            """)
        let server = try await sandbox.startUpAndWait()
        let id = try await sandbox.trigger("chatty")
        try await waitUntil("the task runs", detail: { server.log }) {
            try await sandbox.run(id).task("talk")?.state == "running"
        }
        // The task holds its remaining lines until `go` exists, so --follow starts mid-attempt
        // however slow the machine is.
        let follower = try sandbox.spawn(["logs", String(id), "talk", "--follow"])
        try await Task.sleep(for: .milliseconds(300))
        try sandbox.write("pipelines/go", "")
        guard await follower.waitForExit(timeout: .seconds(60)) else { throw TestFailure("logs --follow never ended") }
        let followed = follower.result()
        #expect(followed.exitCode == 0, "\(followed)")
        #expect(followed.stdout == "line 1\nline 2\nline 3\nline 4\n", "\(followed)")
        // --follow returns only once the attempt is over.
        #expect(try await sandbox.run(id).task("talk")?.state == "success")
        #expect(await server.stop())
    }

    @Test func aSecondServerOnTheSameDatabaseIsRefused() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("one", "name: one\ntasks:\n  a: echo a\n")
        let first = try await sandbox.startUpAndWait()
        let second = try sandbox.startUp()
        #expect(await second.child.waitForExit(timeout: .seconds(20)), "a second baton up kept running")
        let result = second.child.result()
        #expect(result.exitCode != 0, "\(result)")
        #expect(!result.looksLikeCrash, "\(result)")
        #expect(result.stderr.contains("already running"), "\(result)")
        #expect(result.stderr.contains("pid \(first.pid)"), "the message should name the holder: \(result)")
        #expect(first.isRunning)
        #expect(await first.stop())
    }
}
