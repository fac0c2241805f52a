import Foundation
import Testing

/// `baton up` watches the pipelines folder: new files load, broken edits keep the last good version.
@Suite struct ReloadCLITests {
    static func pipeline(_ name: String, version: String, schedule: String = "none") -> String {
        """
        name: \(name)
        schedule: \(schedule)
        tasks:
          hello:
            run: echo "\(name) \(version)"
        """
    }

    struct PipelineRow: Decodable {
        var name: String
        var schedule: String
    }

    @Test func newFilesLoadAndBrokenEditsKeepTheLastGoodVersion() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("first", Self.pipeline("first", version: "v1"))
        let server = try await sandbox.startUpAndWait()
        try await waitUntil("first is loaded", detail: { server.log }) { server.log.contains("loaded pipeline first") }

        // An empty folder for --pipelines: a trigger can then only find what `baton up` loaded.
        let empty = sandbox.root + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)

        try sandbox.writePipeline("second", Self.pipeline("second", version: "v1"))
        let written = ContinuousClock.now
        // Timed on the server's own log line, not on a `baton trigger` succeeding: on a loaded machine
        // each CLI start alone can take seconds, which would blur the watcher into the rescan.
        try await waitUntil("baton up loads the new file", timeout: .seconds(30), detail: { server.log }) {
            server.log.contains("loaded pipeline second")
        }
        let loadedAfter = ContinuousClock.now - written
        // The file watcher reacts at once; the slow safety-net rescan runs every 10 s.
        #expect(loadedAfter < .seconds(8), "the new file took \(loadedAfter) to load")
        let secondID = try await sandbox.trigger("second", extra: ["--pipelines", empty])
        #expect(try await sandbox.waitForRuns([secondID]).first?.state == "success")
        #expect(try await sandbox.logs(secondID, "hello") == "second v1\n")

        // Break `first`: the error is logged, and the last good version keeps running.
        try sandbox.writePipeline(
            "first",
            """
            name: first
            tasks:
              hello:
                run: echo "first v2"
                retires: 3
            """)
        try await waitUntil("baton up reports the broken file", detail: { server.log }) {
            server.log.split(separator: "\n").contains { $0.contains("ERROR") && $0.contains("first.yaml") && $0.contains("retires") }
        }
        let validate = try await sandbox.baton("validate", sandbox.pipelines)
        #expect(validate.exitCode == 1)
        let brokenRun = try await sandbox.trigger("first", extra: ["--pipelines", empty])
        #expect(try await sandbox.waitForRuns([brokenRun]).first?.state == "success")
        #expect(try await sandbox.logs(brokenRun, "hello") == "first v1\n", "the previous version must keep working")
        #expect(server.log.contains("no longer") == false, "a broken file must not unload its pipeline:\n\(server.log)")

        // Fixing the file loads the new version.
        try sandbox.writePipeline("first", Self.pipeline("first", version: "v3", schedule: "\"@daily\""))
        try await waitUntil("baton up reloads the fixed file", detail: { server.log }) {
            let result = try await sandbox.baton("pipelines", "--json", "--pipelines", empty)
            let rows = try JSONDecoder().decode([PipelineRow].self, from: Data(result.stdout.utf8))
            return rows.first { $0.name == "first" }?.schedule == "@daily"
        }
        let fixedRun = try await sandbox.trigger("first", extra: ["--pipelines", empty])
        #expect(try await sandbox.waitForRuns([fixedRun]).first?.state == "success")
        #expect(try await sandbox.logs(fixedRun, "hello") == "first v3\n")
        #expect(await server.stop())
    }
}
