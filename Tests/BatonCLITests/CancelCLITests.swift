import Foundation
import Testing

@Suite struct CancelCLITests {
    @Test func cancelStopsTheRunningProcessQuickly() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let marker = sandbox.uniqueSeconds(30)
        try sandbox.writePipeline(
            "long",
            """
            name: long
            tasks:
              wait_forever:
                run: echo waiting; sleep \(marker)
              after:
                needs: [wait_forever]
                run: echo after
            """)
        let server = try await sandbox.startUpAndWait()
        let id = try await sandbox.trigger("long")
        try await waitUntil("the long task runs", detail: { server.log }) {
            try await sandbox.run(id).task("wait_forever")?.state == "running"
                && !ProcessTable.sleeps(matching: marker).isEmpty
        }

        let result = try await sandbox.baton("cancel", String(id))
        // The request is in the database once the command returns; from then on the server acts.
        let requested = Date()
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout.contains("cancelled run \(id)"), "\(result)")
        try await waitUntil("the run is cancelled", timeout: .seconds(10)) {
            try await sandbox.run(id).state == "cancelled"
        }
        try await waitUntil("the task's processes are gone", timeout: .seconds(10)) {
            ProcessTable.pids(matching: marker).isEmpty
        }

        let run = try await sandbox.run(id)
        // Timed by the server's own record, not by this test's polling (each poll is a `baton`
        // process, slow on a busy machine): the change check, not the 10 s rescan, noticed it.
        let ended = try #require(run.ended_at)
        #expect(ended.timeIntervalSince(requested) < 4, "the server ended the run \(ended.timeIntervalSince(requested)) s after the request")
        #expect(run.task("wait_forever")?.state == "cancelled", "\(run.summary)")
        #expect(run.task("after")?.state == "cancelled", "\(run.summary)")
        #expect(run.task("after")?.attempts == 0)
        #expect(run.ended_at != nil)
        let again = try await sandbox.baton("cancel", String(id))
        #expect(again.exitCode == 0)
        #expect(again.stdout.contains("already ended: cancelled"), "\(again)")
        #expect(await server.stop())
    }

    @Test func cancelWithoutServerCancelsTheQueuedRun() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "quick",
            """
            name: quick
            tasks:
              hello:
                run: echo hello > ../ran.txt
            """)
        let id = try await sandbox.trigger("quick")
        #expect(try await sandbox.run(id).state == "queued")
        let result = try await sandbox.baton("cancel", String(id))
        #expect(result.exitCode == 0, "\(result)")
        let run = try await sandbox.run(id)
        #expect(run.state == "cancelled", "\(run.summary)")
        #expect(run.task("hello")?.state == "cancelled")

        // A later `baton up` must not run it.
        let other = try await sandbox.trigger("quick")
        let server = try await sandbox.startUpAndWait()
        try await sandbox.waitForRuns([other])
        #expect(try await sandbox.run(id).state == "cancelled")
        #expect(try await sandbox.run(id).task("hello")?.attempts == 0)
        #expect(await server.stop())
    }
}
