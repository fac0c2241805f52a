import BatonCore
import Foundation
import Testing

@testable import BatonWorker

struct Sandbox {
    let folder: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-worker-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    func request(
        _ command: String, timeout: Double? = nil, environment: [String: String] = [:], maxOutputBytes: Int = 64 * 1024,
        maxLogBytes: Int = 16 * 1024 * 1024
    ) -> AttemptRequest {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        env["BATON_OUTPUT"] = folder + "/output.json"
        return AttemptRequest(
            arguments: ["/bin/sh", "-c", command], environment: env, workingDirectory: folder, logPath: folder + "/attempt.log",
            outputPath: folder + "/output.json", timeout: timeout, maxOutputBytes: maxOutputBytes, maxLogBytes: maxLogBytes)
    }

    var log: String { (try? String(contentsOfFile: folder + "/attempt.log", encoding: .utf8)) ?? "" }
}

func processAlive(marker: String) -> Bool {
    let result = Process()
    result.executableURL = URL(fileURLWithPath: "/usr/bin/pgrep")
    result.arguments = ["-f", marker]
    result.standardOutput = FileHandle.nullDevice
    try? result.run()
    result.waitUntilExit()
    return result.terminationStatus == 0
}

@Suite struct TaskProcessRunnerTests {
    let runner = TaskProcessRunner()

    @Test func aSuccessfulTaskReturnsItsOutputAndLogsBothStreams() async throws {
        let box = try Sandbox()
        let outcome = await runner.run(
            box.request(#"echo to-stdout; echo to-stderr >&2; echo "$GREETING"; echo '{"accuracy": 0.93}' > "$BATON_OUTPUT""#,
                        environment: ["GREETING": "hello from env"]),
            handle: AttemptHandle())
        #expect(outcome.status == .succeeded)
        #expect(outcome.output == ["accuracy": 0.93])
        #expect(box.log.contains("to-stdout"))
        #expect(box.log.contains("to-stderr"))
        #expect(box.log.contains("hello from env"))
    }

    @Test func theWorkingDirectoryIsTheRequestedOne() async throws {
        let box = try Sandbox()
        _ = await runner.run(box.request("pwd"), handle: AttemptHandle())
        #expect(box.log.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix(URL(fileURLWithPath: box.folder).lastPathComponent))
    }

    @Test func aNonZeroExitIsReportedWithItsCode() async throws {
        let box = try Sandbox()
        let outcome = await runner.run(box.request("exit 7"), handle: AttemptHandle())
        #expect(outcome.status == .exited(code: 7))
        #expect(outcome.reason == "exited with code 7")
    }

    @Test(arguments: [
        ("echo '[1,2]' > \"$BATON_OUTPUT\"", "must be a JSON object"),
        ("echo 'not json' > \"$BATON_OUTPUT\"", "not valid JSON"),
    ])
    func badOutputFailsTheAttempt(command: String, expected: String) async throws {
        let box = try Sandbox()
        let outcome = await runner.run(box.request(command), handle: AttemptHandle())
        guard case .badOutput(let message) = outcome.status else {
            Issue.record("expected bad output, got \(outcome.status)")
            return
        }
        #expect(message.contains(expected))
        #expect(box.log.contains(expected))
    }

    @Test func outputOverTheLimitIsRejectedWithTheSizes() async throws {
        let box = try Sandbox()
        let outcome = await runner.run(
            box.request(#"python3 -c 'import json,os; json.dump({"x": "a" * 5000}, open(os.environ["BATON_OUTPUT"], "w"))'"#,
                        maxOutputBytes: 1000),
            handle: AttemptHandle())
        guard case .badOutput(let message) = outcome.status else {
            Issue.record("expected bad output, got \(outcome.status)")
            return
        }
        #expect(message.contains("1000-byte limit"))
    }

    @Test func aTimeoutKillsTheWholeProcessGroup() async throws {
        let box = try Sandbox()
        let marker = "31.\(Int.random(in: 100_000...999_999))"
        let clock = ContinuousClock()
        let start = clock.now
        let outcome = await runner.run(box.request("sleep \(marker) & sleep \(marker); wait", timeout: 0.5), handle: AttemptHandle())
        let elapsed = clock.now - start
        #expect(outcome.status == .timedOut(after: 0.5))
        // The sleeps last 31 s: ending well before proves the timeout killed them. (A tight
        // bound only measured how busy the machine was.)
        #expect(elapsed < .seconds(25))
        #expect(box.log.contains("timed out"))
        let deadline = clock.now + .seconds(5)
        while processAlive(marker: marker), clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!processAlive(marker: marker))
    }

    @Test func stoppingAnAttemptEndsIt() async throws {
        let box = try Sandbox()
        let handle = AttemptHandle()
        let marker = "32.\(Int.random(in: 100_000...999_999))"
        async let outcome = runner.run(box.request("sleep \(marker)"), handle: handle)
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while handle.pid == nil, clock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        handle.stop(grace: 1)
        #expect(await outcome.status == .stopped)
        #expect(!processAlive(marker: marker))
    }

    @Test func aMissingProgramFailsToStartWithItsName() async throws {
        let box = try Sandbox()
        var request = box.request("true")
        request.arguments = ["/nonexistent/baton-test-program", "--flag"]
        let outcome = await runner.run(request, handle: AttemptHandle())
        guard case .failedToStart(let message) = outcome.status else {
            Issue.record("expected failure to start, got \(outcome.status)")
            return
        }
        #expect(message.contains("baton-test-program"))
    }

    @Test func aRunawayLogIsTruncatedToItsLimit() async throws {
        let box = try Sandbox()
        _ = await runner.run(
            box.request("echo FIRST-LINE; head -c 200000 /dev/zero | tr '\\0' x; echo; echo LAST-LINE", maxLogBytes: 10_000),
            handle: AttemptHandle())
        let log = box.log
        #expect(log.utf8.count < 11_000)
        #expect(log.contains("FIRST-LINE"))
        #expect(log.contains("LAST-LINE"))
        #expect(log.contains("log truncated"))
    }

    @Test func theProcessStartTimeIdentifiesAPid() throws {
        let ticks = ProcessGroup.startTicks(of: getpid())
        #expect(ticks != nil)
        #expect(ProcessGroup.startTicks(of: 999_999_999) == nil)
    }
}
