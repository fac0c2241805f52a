import BatonCore
import BatonAPI
import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Helpers that drive the real `baton` executable as a child process, the way a user does.
///
/// Every test makes its own `Sandbox` (a temp dir with a `pipelines` folder and a database),
/// runs commands through it and calls `sandbox.shutdown()` in a `defer`, which kills every
/// `baton up` it started (and any task process carrying one of its markers) even when the
/// test fails halfway.

// MARK: - Locating the binary

enum BatonBinary {
    /// `<package root>/.build/debug/baton`, found from this file's path:
    /// Tests/BatonCLITests/Support/BatonProcess.swift -> package root. `BATON_TEST_BINARY` (or
    /// `BATON_BINARY`, as scripts/test.sh sets for the e2e tests) overrides it, to test a release
    /// build or a deliberately broken one.
    static let path: String = {
        let environment = ProcessInfo.processInfo.environment
        if let override = environment["BATON_TEST_BINARY"] ?? environment["BATON_BINARY"], !override.isEmpty {
            return override
        }
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent(".build/debug/baton").path
    }()

    /// The binary, or a test failure explaining how to build it.
    static func require() throws -> String {
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestFailure(
                "the baton binary is missing at \(path); build it first with `swift build` (these tests run the real executable)")
        }
        return path
    }
}

/// A failure with a readable message (thrown errors are reported by Swift Testing).
struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Child processes

/// The outcome of one finished command.
struct CommandResult: Sendable, CustomStringConvertible {
    var arguments: [String]
    var exitCode: Int32
    /// True when the process died from a signal (a crash), not an exit.
    var signalled: Bool
    var stdout: String
    var stderr: String
    var elapsed: Double

    var description: String {
        "`baton \(arguments.joined(separator: " "))` -> \(signalled ? "signal" : "exit") \(exitCode) in \(String(format: "%.2f", elapsed))s\n--- stdout ---\n\(stdout)\n--- stderr ---\n\(stderr)"
    }

    /// Signs that the process crashed instead of reporting an error.
    var looksLikeCrash: Bool {
        signalled || stderr.contains("Fatal error") || stderr.contains("Stack dump") || stderr.contains("Backtrace")
            || stderr.contains("Thread 0")
    }
}

/// A child process started with `posix_spawn`; a thread of its own waits for its end (no
/// polling), and stdout/stderr go to files so a chatty child can never block on a full pipe.
///
/// Not Foundation's `Process`: on Linux it lists `/proc/self/fd` to close every descriptor in
/// the child, and with the thousand-odd descriptors the server suites hold it crashed the test
/// process twice in clean-clone runs (a bad pointer in `memcpy` inside `Process.run`). Here the
/// C library closes them (`posix_spawn_file_actions_addclosefrom_np`).
final class ChildProcess: Sendable {
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String
    let pid: Int32
    private let box = ExitBox()
    private let started = ContinuousClock.now

    init(
        executable: String, arguments: [String], directory: String, stdoutPath: String, stderrPath: String,
        environment: [String: String]
    ) throws {
        self.arguments = arguments
        self.stdoutPath = stdoutPath
        self.stderrPath = stderrPath
        pid = try Spawn.start(
            executable: executable, arguments: arguments, directory: directory, stdoutPath: stdoutPath, stderrPath: stderrPath,
            environment: environment)
        let box = self.box
        let pid = self.pid
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                guard errno == EINTR else {
                    status = -1
                    break
                }
            }
            // Exited: the code; killed: the signal (as Foundation's terminationStatus gives it).
            let signalled = status != -1 && (status & 0x7f) != 0
            let code = status == -1 ? -1 : signalled ? status & 0x7f : (status >> 8) & 0xff
            let waiters = box.state.withLock { value in
                value.exit = (code, signalled)
                defer { value.waiters = [] }
                return value.waiters
            }
            for waiter in waiters { waiter.resume() }
            box.ended.signal()
        }
    }

    /// Blocks the calling thread until the process ends or `seconds` pass; false on the timeout
    /// (the process is left running). For synchronous helpers only; tests await `waitForExit`.
    func waitBlocking(seconds: Double) -> Bool {
        guard box.ended.wait(timeout: .now() + seconds) == .success else { return false }
        box.ended.signal()
        return true
    }

    var hasExited: Bool { box.state.withLock { $0.exit != nil } }
    var exitStatus: (code: Int32, signalled: Bool)? { box.state.withLock { $0.exit } }

    var elapsed: Double {
        let duration = ContinuousClock.now - started
        return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Waits for the process to end, without a deadline.
    func exited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = box.state.withLock { value -> Bool in
                if value.exit != nil { return true }
                value.waiters.append(continuation)
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Waits up to `timeout`; returns false (leaving the process running) when it did not end.
    func waitForExit(timeout: Duration) async -> Bool {
        if hasExited { return true }
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await self.exited()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            if !first {
                // The exit waiter only returns once the process is gone: kill it so the group ends,
                // but report the timeout.
                signal(SIGKILL)
            }
            group.cancelAll()
            await group.waitForAll()
            return first
        }
    }

    func signal(_ number: Int32) {
        guard !hasExited else { return }
        kill(pid, number)
    }

    /// Synchronous last-resort cleanup for `defer`: SIGTERM (so a `baton up` or a `--wait` stops
    /// its task processes), a short grace, then SIGKILL.
    func killForCleanup() {
        guard !hasExited else { return }
        signal(SIGTERM)
        for _ in 0..<300 where !hasExited { usleep(10_000) }
        signal(SIGKILL)
        for _ in 0..<300 where !hasExited { usleep(10_000) }
    }

    var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    func result() -> CommandResult {
        let status = exitStatus ?? (-1, false)
        return CommandResult(
            arguments: arguments, exitCode: status.code, signalled: status.signalled, stdout: stdout, stderr: stderr,
            elapsed: elapsed)
    }
}

/// How a child ended, and who waits for it; filled in by the thread waiting for it.
final class ExitBox: Sendable {
    typealias State = (exit: (code: Int32, signalled: Bool)?, waiters: [CheckedContinuation<Void, Never>])
    let state = Mutex<State>((nil, []))
    /// Signalled once when the child has ended, for the few callers that cannot await.
    let ended = DispatchSemaphore(value: 0)
}

/// A `baton up` running in the background.
final class BatonServer: Sendable {
    let child: ChildProcess

    init(child: ChildProcess) { self.child = child }

    var pid: Int32 { child.pid }
    /// Everything `baton up` logged so far (its log goes to stderr).
    var log: String { child.stderr }
    var isRunning: Bool { !child.hasExited }

    /// Graceful stop: SIGTERM, then SIGKILL if it has not ended within `timeout`.
    @discardableResult
    func stop(timeout: Duration = .seconds(20)) async -> Bool {
        guard isRunning else { return true }
        child.signal(SIGTERM)
        return await child.waitForExit(timeout: timeout)
    }

    /// A crash: SIGKILL, no chance to clean up.
    func crash() async {
        child.signal(SIGKILL)
        _ = await child.waitForExit(timeout: .seconds(30))
    }

}

// MARK: - Sandbox

/// One test's world: temp dir, pipelines folder, database, and the processes it started.
final class Sandbox: Sendable {
    let root: String
    let pipelines: String
    let db: String
    private let servers = Mutex<[BatonServer]>([])
    private let children = Mutex<[ChildProcess]>([])
    private let markers = Mutex<[String]>([])
    private let counter = Mutex(0)
    let binary: String

    /// Commands that accept `--db`, and those that accept `--pipelines`.
    static let takesDB: Set<String> = [
        "up", "pipelines", "trigger", "runs", "run", "logs", "cancel", "backfill", "pause", "unpause", "models",
    ]
    static let takesPipelines: Set<String> = ["up", "validate", "pipelines", "trigger", "backfill"]

    init(_ name: String = #function) throws {
        binary = try BatonBinary.require()
        let safe = name.filter { $0.isLetter || $0.isNumber }
        root = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-cli-\(safe.prefix(40))-\(UUID().uuidString.prefix(8))"
        ).path
        pipelines = root + "/pipelines"
        db = root + "/state/baton.db"
        try FileManager.default.createDirectory(atPath: pipelines, withIntermediateDirectories: true)
    }

    /// A token unique to this test for `sleep` arguments and process checks, such as
    /// `30.482130457` (sleep takes fractional seconds, so `sleep 30.482130457` sleeps ~30 s and
    /// can be found in the process table). `shutdown()` kills what still carries it.
    func uniqueSeconds(_ whole: Int) -> String {
        let marker = "\(whole).\(Int.random(in: 100_000_000...999_999_999))"
        markers.withLock { $0.append(marker) }
        return marker
    }

    func write(_ relativePath: String, _ text: String) throws {
        let path = root + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        // Write to a temp name and rename, so a watching `baton up` never reads half a file.
        let temporary = (path as NSString).deletingLastPathComponent + "/.tmp-\(UUID().uuidString)"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        if rename(temporary, path) != 0 { throw TestFailure("cannot rename \(temporary) to \(path)") }
    }

    func writePipeline(_ name: String, _ yaml: String) throws {
        try write("pipelines/\(name).yaml", yaml)
    }

    func append(_ relativePath: String, _ text: String) throws {
        let path = root + "/" + relativePath
        guard let handle = FileHandle(forWritingAtPath: path) else { return try write(relativePath, text) }
        defer { try? handle.close() }
        handle.seekToEndOfFile()
        handle.write(Data(text.utf8))
    }

    func exists(_ relativePath: String) -> Bool { FileManager.default.fileExists(atPath: root + "/" + relativePath) }

    private func nextOutputPaths() -> (String, String) {
        let index = counter.withLock { value -> Int in
            value += 1
            return value
        }
        return (root + "/.out-\(index).txt", root + "/.err-\(index).txt")
    }

    /// `baton ARGS`, with `--db` and `--pipelines` added for the commands that take them.
    func arguments(_ args: [String], addDefaults: Bool) -> [String] {
        guard addDefaults, let command = args.first else { return args }
        var result = args
        if Self.takesDB.contains(command) && !args.contains("--db") { result += ["--db", db] }
        if Self.takesPipelines.contains(command) && !args.contains("--pipelines") { result += ["--pipelines", pipelines] }
        return result
    }

    /// Runs `baton ARGS` to completion; a command still running after `timeout` is killed and
    /// reported as a failure.
    func baton(_ args: String..., timeout: Duration = .seconds(30), addDefaults: Bool = true) async throws
        -> CommandResult
    {
        try await baton(args, timeout: timeout, addDefaults: addDefaults)
    }

    func baton(_ args: [String], timeout: Duration = .seconds(30), addDefaults: Bool = true) async throws
        -> CommandResult
    {
        let (out, err) = nextOutputPaths()
        let child = try ChildProcess(
            executable: binary, arguments: arguments(args, addDefaults: addDefaults), directory: root,
            stdoutPath: out, stderrPath: err, environment: Self.environment)
        guard await child.waitForExit(timeout: timeout) else {
            throw TestFailure("timed out after \(timeout):\n\(child.result())")
        }
        return child.result()
    }

    static let environment: [String: String] = {
        var environment = ProcessInfo.processInfo.environment
        // The defaults must never leak in from the developer's shell.
        environment["BATON_DB"] = nil
        environment["BATON_PIPELINES"] = nil
        return environment
    }()

    /// Starts any `baton` command in the background (killed by `shutdown()` if still running).
    func spawn(_ args: [String]) throws -> ChildProcess {
        let (out, err) = nextOutputPaths()
        let child = try ChildProcess(
            executable: binary, arguments: arguments(args, addDefaults: true), directory: root, stdoutPath: out,
            stderrPath: err, environment: Self.environment)
        children.withLock { $0.append(child) }
        return child
    }

    /// Starts `baton up` in the background; `shutdown()` kills it if the test does not stop it.
    func startUp(_ extra: [String] = ["--slots", "4"]) throws -> BatonServer {
        let (out, err) = nextOutputPaths()
        // `baton up` also serves HTTP (8080 by default); tests run side by side, so each picks a free port.
        let port = extra.contains("--port") ? [] : ["--port", "0"]
        let child = try ChildProcess(
            executable: binary, arguments: arguments(["up"] + extra + port, addDefaults: true), directory: root,
            stdoutPath: out, stderrPath: err, environment: Self.environment)
        let server = BatonServer(child: child)
        servers.withLock { $0.append(server) }
        return server
    }

    /// Starts `baton up` and waits until it has loaded the pipelines folder.
    func startUpAndWait(_ extra: [String] = ["--slots", "4"]) async throws -> BatonServer {
        let server = try startUp(extra)
        try await waitUntil("baton up starts", timeout: .seconds(30)) {
            guard server.isRunning else { throw TestFailure("baton up exited early:\n\(server.child.result())") }
            return server.log.contains("baton up:")
        }
        return server
    }

    /// For `defer`: kills every `baton up` still running and every task process carrying one of
    /// this test's markers, then removes the temp dir.
    func shutdown() {
        for server in servers.withLock({ $0 }) { server.child.killForCleanup() }
        for child in children.withLock({ $0 }) { child.killForCleanup() }
        for marker in markers.withLock({ $0 }) {
            for pid in ProcessTable.pids(matching: marker) { kill(pid, SIGKILL) }
        }
        if ProcessInfo.processInfo.environment["BATON_KEEP_TEST_DIRS"] == nil {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    // MARK: Reading runs

    func runs(_ pipeline: String? = nil, limit: Int = 200) async throws -> [RunInfo] {
        var args = ["runs", "--json", "--limit", String(limit)]
        if let pipeline { args.insert(pipeline, at: 1) }
        let result = try await baton(args)
        guard result.exitCode == 0 else { throw TestFailure("baton runs failed: \(result)") }
        return try RunInfo.decoder.decode([RunInfo].self, from: Data(result.stdout.utf8))
    }

    func run(_ id: Int64) async throws -> RunInfo {
        let result = try await baton("run", "show", String(id), "--json")
        guard result.exitCode == 0 else { throw TestFailure("baton run show failed: \(result)") }
        return try RunInfo.decoder.decode(RunInfo.self, from: Data(result.stdout.utf8))
    }

    /// `baton trigger PIPELINE [--param ...]` (no wait); returns the new run's id.
    func trigger(_ pipeline: String, params: [String] = [], extra: [String] = []) async throws -> Int64 {
        var args = ["trigger", pipeline, "--json"] + extra
        for param in params { args += ["--param", param] }
        let result = try await baton(args)
        guard result.exitCode == 0 else { throw TestFailure("baton trigger failed: \(result)") }
        return try RunInfo.decoder.decode(RunInfo.self, from: Data(result.stdout.utf8)).id
    }

    /// `baton trigger PIPELINE --wait --json`: the finished run and the command's result.
    func triggerAndWait(_ pipeline: String, params: [String] = [], timeout: Duration = .seconds(30)) async throws
        -> (RunInfo, CommandResult)
    {
        var args = ["trigger", pipeline, "--wait", "--json"]
        for param in params { args += ["--param", param] }
        let result = try await baton(args, timeout: timeout)
        guard !result.looksLikeCrash else { throw TestFailure("baton crashed: \(result)") }
        guard let run = try? RunInfo.decoder.decode(RunInfo.self, from: Data(result.stdout.utf8)) else {
            throw TestFailure("no run JSON from trigger --wait: \(result)")
        }
        return (run, result)
    }

    /// `baton logs RUN TASK [--attempt N]`.
    func logs(_ run: Int64, _ task: String, attempt: Int? = nil) async throws -> String {
        var args = ["logs", String(run), task]
        if let attempt { args += ["--attempt", String(attempt)] }
        let result = try await baton(args)
        guard result.exitCode == 0 else { throw TestFailure("baton logs failed: \(result)") }
        return result.stdout
    }

    /// Waits until every given run (or every run) has ended; returns the runs.
    @discardableResult
    func waitForRuns(
        _ ids: [Int64]? = nil, pipeline: String? = nil, count: Int? = nil, timeout: Duration = .seconds(30)
    ) async throws -> [RunInfo] {
        var last: [RunInfo] = []
        try await waitUntil("runs end", timeout: timeout, detail: { last.map(\.summary).joined(separator: "\n") }) {
            last = try await self.runs(pipeline)
            if let ids { last = last.filter { ids.contains($0.id) } }
            if let count, last.count < count { return false }
            if let ids, last.count < ids.count { return false }
            return !last.isEmpty && last.allSatisfy(\.isTerminal)
        }
        return last
    }
}

// MARK: - JSON shapes (Sources/BatonCLI/Formatting.swift: RunJSON / TaskJSON)

struct TaskInfo: Decodable, Sendable {
    var task: String
    var state: String
    var attempts: Int
    var output: JSONValue?
    var reason: String?
    var started_at: Date?
    var ended_at: Date?
}

struct RunInfo: Decodable, Sendable {
    var id: Int64
    var pipeline: String
    var state: String
    var trigger: String
    var logical_date: Date
    var data_interval_start: Date
    var data_interval_end: Date
    var params: [String: JSONValue]
    var created_at: Date
    var started_at: Date?
    var ended_at: Date?
    var tasks: [TaskInfo]?

    static let terminalStates: Set<String> = ["success", "failed", "cancelled"]
    var isTerminal: Bool { Self.terminalStates.contains(state) }

    func task(_ name: String) -> TaskInfo? { tasks?.first { $0.task == name } }

    var summary: String {
        var text = "run \(id) \(pipeline) \(state) \(trigger) \(logical_date)"
        for task in tasks ?? [] { text += "\n  \(task.task): \(task.state) x\(task.attempts) \(task.reason ?? "")" }
        return text
    }

    /// The CLI prints dates as the REST API does, so its decoder reads them.
    static let decoder: JSONDecoder = APICoding.decoder()
}

// MARK: - Waiting and processes

/// Polls `condition` until it holds; fails with `what` (and `detail`) after `timeout`. The
/// deadline is generous because these tests share a small machine with other suites; the
/// poll interval keeps them fast when things work.
func waitUntil(
    _ what: String, timeout: Duration = .seconds(30), poll: Duration = .milliseconds(100),
    detail: () -> String = { "" }, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        if ContinuousClock.now >= deadline {
            let extra = detail()
            throw TestFailure("timed out after \(timeout) waiting until \(what)" + (extra.isEmpty ? "" : ":\n\(extra)"))
        }
        try await Task.sleep(for: poll)
    }
}

/// The live process table, read from /proc (what `pgrep -f` reads).
enum ProcessTable {
    /// Pids of live (not zombie) processes whose command line contains `marker`.
    static func pids(matching marker: String) -> [Int32] {
        processes(matching: marker).map(\.pid)
    }

    /// Live `sleep` processes (not the shells around them) whose arguments contain `marker`.
    static func sleeps(matching marker: String) -> [Int32] {
        processes(matching: marker).filter { $0.commandLine.hasPrefix("sleep ") }.map(\.pid)
    }

    /// Live (not zombie) processes whose command line (arguments joined by spaces) contains `marker`.
    static func processes(matching marker: String) -> [(pid: Int32, commandLine: String)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let own = getpid()
        var result: [(pid: Int32, commandLine: String)] = []
        for entry in entries {
            guard let pid = Int32(entry), pid != own,
                let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), !data.isEmpty
            else { continue }
            let commandLine = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            guard commandLine.contains(marker) else { continue }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"),
                stat[stat.index(after: close)...].split(separator: " ").first == "Z"
            {
                continue
            }
            result.append((pid, commandLine))
        }
        return result
    }
}

/// UTC dates for pipeline files and arguments.
enum UTC {
    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }

    /// Hour-based tests compute "the last N hours" up front; close to the top of the hour the
    /// scheduler could see one hour more than the test did. Waiting out the boundary (at most
    /// `margin`, rarely) keeps their counts exact. This is a precondition, not an assertion.
    static func avoidHourBoundary(margin: Double = 20) async throws {
        let now = Date()
        let untilNextHour = hourFloor(now).addingTimeInterval(3600).timeIntervalSince(now)
        if untilNextHour < margin {
            try await Task.sleep(for: .milliseconds(Int64((untilNextHour + 1) * 1000)))
        }
    }

    /// The start of the hour containing `date`.
    static func hourFloor(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 3600).rounded(.down) * 3600)
    }
}

/// `posix_spawn` with what `ChildProcess` needs: stdin from /dev/null, stdout and stderr to
/// files, a working directory, exactly the given environment, default signal handling and an
/// empty signal mask (a thread running Swift concurrency may have signals blocked, which a child
/// would inherit), and no other descriptor of the test process.
enum Spawn {
    private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    private typealias AddChdir = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32

    /// glibc 2.34 and 2.29 have these, but Swift's Glibc module does not declare them; looked up
    /// once per test process (kept as bit patterns, which are Sendable).
    private static let addCloseFromSymbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np").map { Int(bitPattern: $0) }
    private static let addChdirSymbol = dlsym(nil, "posix_spawn_file_actions_addchdir_np").map { Int(bitPattern: $0) }

    private static func symbol<T>(_ bits: Int?, _ name: String, as type: T.Type) throws -> T {
        guard let address = bits.flatMap({ UnsafeMutableRawPointer(bitPattern: $0) }) else { throw TestFailure("\(name) is missing from the C library (glibc 2.34 or later needed)") }
        return unsafeBitCast(address, to: type)
    }

    static func start(
        executable: String, arguments: [String], directory: String, stdoutPath: String, stderrPath: String,
        environment: [String: String]
    ) throws -> Int32 {
        let addCloseFrom = try symbol(addCloseFromSymbol, "posix_spawn_file_actions_addclosefrom_np", as: AddCloseFrom.self)
        let addChdir = try symbol(addChdirSymbol, "posix_spawn_file_actions_addchdir_np", as: AddChdir.self)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        func check(_ result: Int32, _ what: String) throws {
            guard result == 0 else { throw TestFailure("\(what) failed: \(String(cString: strerror(result)))") }
        }
        try check(posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0), "opening /dev/null for stdin")
        try check(posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644), "opening \(stdoutPath)")
        try check(posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644), "opening \(stderrPath)")
        try check(addCloseFrom(&actions, 3), "posix_spawn_file_actions_addclosefrom_np")
        try check(addChdir(&actions, directory), "posix_spawn_file_actions_addchdir_np(\(directory))")

        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        try check(posix_spawnattr_setsigmask(&attributes, &noSignals), "posix_spawnattr_setsigmask")
        try check(posix_spawnattr_setsigdefault(&attributes, &allSignals), "posix_spawnattr_setsigdefault")
        try check(posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)), "posix_spawnattr_setflags")

        let argv = ([executable] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        let envp = environment.map { strdup("\($0.key)=\($0.value)") }
        defer { envp.forEach { free($0) } }
        var pid: pid_t = 0
        let result = (argv + [nil]).withUnsafeBufferPointer { argvPointer in
            (envp + [nil]).withUnsafeBufferPointer { envpPointer in
                posix_spawn(&pid, executable, &actions, &attributes, argvPointer.baseAddress!, envpPointer.baseAddress!)
            }
        }
        try check(result, "spawning \(executable)")
        return pid
    }
}
