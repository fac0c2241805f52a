import BatonAPI
import BatonCore
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Pipelines written in Swift with BatonKit, through the real binaries: `baton` reads them from
/// a `*.baton-swift.yaml` manifest naming the test worker (Tests/BatonKitTestWorker, built with
/// the package), and that worker runs their steps in its own process over the remote-worker
/// protocol while `baton up`'s slots run the command tasks.
@Suite(.serialized) struct SwiftPipelinesCLITests {
    /// Next to the `baton` binary under test, as `swift build` puts them.
    static func workerBinary() throws -> String {
        let path = (try BatonBinary.require() as NSString).deletingLastPathComponent + "/batonkit-test-worker"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure("the BatonKit test worker is missing at \(path); build it with `swift build`")
        }
        return path
    }

    static func writeManifest(_ sandbox: Sandbox, executable: String, name: String = "fixture") throws {
        try sandbox.write("pipelines/\(name).baton-swift.yaml", "executable: \(executable)\n")
    }

    /// Starts the test worker against `server`; killed by `defer` in the test.
    static func startWorker(
        _ sandbox: Sandbox, server: String, id: String, environment: [String: String] = [:]
    ) throws -> ChildProcess {
        try ChildProcess(
            executable: try workerBinary(), arguments: ["work", "--server", server, "--slots", "2", "--id", id],
            directory: sandbox.root, stdoutPath: sandbox.root + "/worker-\(id).out",
            stderrPath: sandbox.root + "/worker-\(id).err",
            environment: Sandbox.environment.merging(environment) { _, new in new })
    }

    @Test func stepsRunOnTheSwiftWorkerAndPassDataWithCommandTasks() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try Self.writeManifest(sandbox, executable: try Self.workerBinary())
        // Started by the event a step publishes.
        try sandbox.writePipeline(
            "on_counted", "name: on_counted\ntriggers: [swift.counted]\ntasks:\n  echo: echo counted {{ event.payload.rows }}\n")
        let validate = try await sandbox.baton("validate")
        #expect(validate.exitCode == 0, "\(validate)")
        #expect(validate.stdout.contains("2 files checked: 3 pipelines valid, 0 errors"), "\(validate)")

        let server = try await sandbox.startUpAndWait(["--slots", "2"])
        let base = try await RemoteWorkerCLITests.url(of: server)
        let worker = try Self.startWorker(sandbox, server: base, id: "swift-1")
        defer { worker.killForCleanup() }
        // A hostile param: the step receives it as data, and the downstream shell command gets it
        // as one quoted word.
        let hostile = "x; touch PWNED $(touch PWNED2)"
        let (run, result) = try await sandbox.triggerAndWait(
            "swift_flow", params: ["who=\(hostile)"], timeout: .seconds(60))
        #expect(run.state == "success", "\(run.summary)\n\(result)\n\(server.log)\n\(worker.stderr)")
        #expect(run.task("clean")?.output == ["rows": 42, "who": .string(hostile), "attempt": 1])
        #expect(run.task("count")?.output == ["value": 42])
        let report = try await sandbox.logs(run.id, "report")
        #expect(report.contains("rows=42 count=42 who=\(hostile)\n"), "\(report)")
        #expect(!sandbox.exists("PWNED") && !sandbox.exists("pipelines/PWNED") && !sandbox.exists("pipelines/PWNED2"))
        let clean = try await sandbox.logs(run.id, "clean")
        #expect(clean.contains("cleaning 41 rows from raw/customers.csv in run \(run.id)"), "\(clean)")

        let cleanAttempts = try await RemoteWorkerCLITests.attempts(base, run: run.id, task: "clean")
        #expect(cleanAttempts.map(\.worker) == ["swift-1"], "only the Swift worker serves the pipeline's queue")
        #expect(cleanAttempts.first?.queue == "swift_flow")
        let extract = try await RemoteWorkerCLITests.attempts(base, run: run.id, task: "extract")
        #expect(extract.first?.worker != "swift-1" && extract.first?.queue == "default", "commands run in baton up's slots")

        // The step published an event (starting on_counted) and a metric point.
        let triggered = try await sandbox.waitForRuns(pipeline: "on_counted", count: 1)
        #expect(triggered.first?.state == "success", "\(triggered.map(\.summary))")
        if let id = triggered.first?.id {
            #expect(try await sandbox.logs(id, "echo") == "counted 42\n")
        }
        let metrics = try #require(URL(string: "\(base)/api/v1/metrics"))
        let (body, _) = try await URLSession.shared.data(from: metrics)
        #expect(String(decoding: body, as: UTF8.self).contains("swift.rows"))

        // The CLI lists it like any pipeline, with the owner declared in Swift.
        let pipelines = try await sandbox.baton("pipelines")
        #expect(pipelines.stdout.contains("swift_flow") && pipelines.stdout.contains("data_engineering"), "\(pipelines)")
        #expect(!server.log.contains("ERROR"), "\(server.log)")
    }

    @Test func aStepsCommandRunsTheClosureInAProcessWhereNoSwiftWorkerServes() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try Self.writeManifest(sandbox, executable: try Self.workerBinary())
        // baton up's own slots serve the steps' queue too: they start `EXECUTABLE run-task ...`.
        let server = try await sandbox.startUpAndWait(["--slots", "2", "--queue", "default", "--queue", "swift_flow", "--queue", "swift_failing"])
        let (run, result) = try await sandbox.triggerAndWait("swift_flow", params: ["who=spawned"], timeout: .seconds(60))
        #expect(run.state == "success", "\(run.summary)\n\(result)\n\(server.log)")
        #expect(run.task("clean")?.output == ["rows": 42, "who": "spawned", "attempt": 1])
        #expect(try await sandbox.logs(run.id, "report").contains("rows=42 count=42 who=spawned\n"))
        #expect(try await sandbox.logs(run.id, "clean").contains("cleaning 41 rows from raw/customers.csv"))
        let failing = try await sandbox.triggerAndWait("swift_failing", timeout: .seconds(60)).0
        #expect(failing.task("explode")?.reason == "exited with code 1: FixtureError: bad row 12", "\(failing.summary)")
    }

    @Test func aThrowingStepFailsWithItsMessageAndATimedOutStepIsCancelled() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try Self.writeManifest(sandbox, executable: try Self.workerBinary())
        let server = try await sandbox.startUpAndWait(["--slots", "1"])
        let base = try await RemoteWorkerCLITests.url(of: server)
        let worker = try Self.startWorker(sandbox, server: base, id: "swift-2")
        defer { worker.killForCleanup() }
        let (run, result) = try await sandbox.triggerAndWait("swift_failing", timeout: .seconds(60))
        #expect(run.state == "failed", "\(run.summary)\n\(result)")
        let explode = try #require(run.task("explode"))
        #expect(explode.attempts == 2, "retried once: \(run.summary)")
        #expect(explode.reason == "threw FixtureError: bad row 12", "\(run.summary)")
        let log = try await sandbox.logs(run.id, "explode", attempt: 2)
        #expect(log.contains("attempt 2 reads row 12") && log.contains("baton: the task threw FixtureError: bad row 12"), "\(log)")
        let slow = try #require(run.task("slow"))
        #expect(slow.reason?.contains("timed out after 500ms") == true, "\(run.summary)")
        #expect(try await sandbox.logs(run.id, "slow").contains("sleeping\nbaton: timed out after 500ms; the task was cancelled"))
        // The worker is still serving: the timed-out step was cancelled, not left holding a slot.
        #expect(!worker.hasExited, "\(worker.stderr)")
    }

    @Test func problemsInSwiftPipelinesAreReportedAtTheManifestWithTheirSwiftLines() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try Self.writeManifest(sandbox, executable: try Self.workerBinary())
        try Self.writeManifest(sandbox, executable: "../build/missing-worker", name: "missing")
        try sandbox.writePipeline("plain", "name: plain\ntasks:\n  hello: echo hello\n")
        let child = try ChildProcess(
            executable: sandbox.binary, arguments: ["validate", sandbox.pipelines, "--json"], directory: sandbox.root,
            stdoutPath: sandbox.root + "/validate.out", stderrPath: sandbox.root + "/validate.err",
            environment: Sandbox.environment.merging(["BATONKIT_TEST_PIPELINES": "broken"]) { _, new in new })
        #expect(await child.waitForExit(timeout: .seconds(30)))
        let result = child.result()
        #expect(result.exitCode == 1, "\(result)")
        struct Report: Decodable {
            struct Issue: Decodable {
                var file: String
                var field: String?
                var message: String
                var fix: String?
            }
            var files: Int
            var pipelines: [String]
            var issues: [Issue]
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.files == 3)
        #expect(report.pipelines == ["plain"], "a broken manifest never keeps other files from loading")
        let fixture = report.issues.filter { $0.file.hasSuffix("fixture.baton-swift.yaml") }
        let cron = try #require(fixture.first { $0.field == "schedule" }, "\(report.issues)")
        #expect(cron.message.contains("(pipeline swift_broken, at ") && cron.message.contains("BatonKitTestWorker/main.swift:"), "\(cron)")
        let needs = try #require(fixture.first { $0.field == "tasks.second.needs" })
        #expect(needs.fix == "did you mean 'first'? (in the Swift source, then rebuild the worker)")
        let source = try String(contentsOfFile: needs.message.firstMatch(of: /at (\/\S+\.swift):\d+/).map { String($0.1) } ?? "", encoding: .utf8)
        let line = try #require(needs.message.firstMatch(of: /main\.swift:(\d+)/).flatMap { Int($0.1) })
        #expect(source.split(separator: "\n", omittingEmptySubsequences: false)[line - 1].contains("Step(\"second\", needs: \"frist\")"))
        let missing = try #require(report.issues.first { $0.file.hasSuffix("missing.baton-swift.yaml") })
        #expect(missing.message.contains("does not exist") && missing.fix?.contains("swift build") == true, "\(missing)")
    }
}
