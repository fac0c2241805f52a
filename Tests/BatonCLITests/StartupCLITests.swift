import Foundation
import Testing

/// Runs written by the CLI while `baton up` is still starting (recovering, loading files) must
/// not be missed: the server only notices other processes' writes through a change counter.
@Suite struct StartupCLITests {
    @Test func runsTriggeredDuringStartupAreAllPickedUp() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        // Many files make the startup (and so the window for a missed write) longer.
        for index in 0..<300 {
            try sandbox.writePipeline(
                "filler_\(index)",
                """
                name: filler_\(index)
                tasks:
                  noop:
                    run: "true"
                """)
        }
        try sandbox.writePipeline(
            "quick",
            """
            name: quick
            tasks:
              hello:
                run: echo hello
            """)
        let server = try sandbox.startUp()
        // Trigger while the server is loading the pipeline files: after it has recovered the
        // runs it found at start, before it begins watching for other processes' writes.
        try await waitUntil("baton up loads files", poll: .milliseconds(2), detail: { server.log }) {
            server.log.contains("loaded pipeline filler_0")
        }
        let id = try await sandbox.trigger("quick")
        let runs = try await sandbox.waitForRuns([id], timeout: .seconds(20))
        #expect(runs.first?.state == "success", "\(runs.map(\.summary))\n\(server.log)")
        #expect(await server.stop())
    }
}
