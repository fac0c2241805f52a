import BatonCore
import Foundation
import Testing

/// Mistakes on the command line end with a non-zero exit and one clear sentence, never a crash.
@Suite struct BadInputCLITests {
    func expectCleanError(_ result: CommandResult, mentions words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.exitCode != 0, "\(result)", sourceLocation: sourceLocation)
        #expect(!result.looksLikeCrash, "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.hasPrefix("Error: "), "\(result)", sourceLocation: sourceLocation)
        #expect(result.stderr.split(separator: "\n").count <= 3, "a short message, not a dump: \(result)", sourceLocation: sourceLocation)
        for word in words {
            #expect(result.stderr.contains(word), "stderr should mention '\(word)': \(result)", sourceLocation: sourceLocation)
        }
    }

    @Test func badInputGetsAClearMessage() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "customer_data",
            """
            name: customer_data
            params:
              limit: {default: 10, type: integer}
              region: {default: eu, type: string}
            tasks:
              extract:
                run: echo {{ params.limit }}
            """)

        expectCleanError(try await sandbox.baton("trigger", "custmer_data"), mentions: ["custmer_data", "did you mean 'customer_data'"])
        expectCleanError(
            try await sandbox.baton("trigger", "customer_data", "--param", "regoin=us"),
            mentions: ["no param 'regoin'", "region"])
        expectCleanError(
            try await sandbox.baton("trigger", "customer_data", "--param", "limit=abc"), mentions: ["limit", "abc"])
        expectCleanError(try await sandbox.baton("trigger", "customer_data", "--param", "limit"), mentions: ["key=value"])
        expectCleanError(try await sandbox.baton("run", "show", "999"), mentions: ["no run 999"])
        expectCleanError(try await sandbox.baton("run", "show", "abc"), mentions: ["not a run id"])
        expectCleanError(try await sandbox.baton("cancel", "999"), mentions: ["no run 999"])
        expectCleanError(try await sandbox.baton("logs", "999", "extract"), mentions: ["no run 999"])
        expectCleanError(
            try await sandbox.baton("backfill", "customer_data", "--from", "yesterday", "--to", "2026-01-02"),
            mentions: ["--from", "yesterday"])
        expectCleanError(
            try await sandbox.baton("backfill", "customer_data", "--from", "2026-01-01", "--to", "2026-01-02"),
            mentions: ["no cron schedule"])

        // None of the rejected triggers created a run.
        #expect(try await sandbox.runs().isEmpty)

        // A real run (no `baton up`: it stays queued), then ask for a task it does not have.
        let id = try await sandbox.trigger("customer_data", params: ["limit=5"])
        expectCleanError(try await sandbox.baton("logs", String(id), "extrct"), mentions: ["no task 'extrct'", "extract"])
        expectCleanError(try await sandbox.baton("logs", String(id), "extract"), mentions: ["no attempts yet"])
        #expect(try await sandbox.run(id).params["limit"] == 5)
    }

    @Test func unknownPipelineWithNoFilesSaysWhereItLooked() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let result = try await sandbox.baton("trigger", "anything", "--wait")
        #expect(result.exitCode != 0)
        #expect(!result.looksLikeCrash, "\(result)")
        #expect(result.stderr.contains("unknown pipeline 'anything'"), "\(result)")
        #expect(result.stderr.contains(sandbox.pipelines), "\(result)")
    }
}
