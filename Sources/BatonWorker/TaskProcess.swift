import BatonCore
import Foundation
import Subprocess
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Everything needed to start one attempt.
public struct AttemptRequest: Sendable {
    /// argv[0] is resolved through PATH when it has no slash.
    public var arguments: [String]
    public var environment: [String: String]
    public var workingDirectory: String
    public var logPath: String
    /// Where the task may write its JSON output (`BATON_OUTPUT`).
    public var outputPath: String
    public var timeout: Double?
    public var maxOutputBytes: Int
    public var maxLogBytes: Int

    public init(
        arguments: [String], environment: [String: String], workingDirectory: String, logPath: String,
        outputPath: String, timeout: Double?, maxOutputBytes: Int = 64 * 1024, maxLogBytes: Int = 16 * 1024 * 1024
    ) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.logPath = logPath
        self.outputPath = outputPath
        self.timeout = timeout
        self.maxOutputBytes = maxOutputBytes
        self.maxLogBytes = maxLogBytes
    }
}

/// How an attempt ended.
public struct AttemptOutcome: Sendable, Hashable {
    public enum Status: Sendable, Hashable {
        case succeeded
        case exited(code: Int32)
        case signalled(signal: Int32)
        case timedOut(after: Double)
        case stopped
        /// Baton was shutting down; the attempt was stopped and will run again.
        case interrupted
        case failedToStart(String)
        case badOutput(String)
        /// An in-process task (a Swift closure in a BatonKit worker) threw this error.
        case threw(String)
    }

    public var status: Status
    public var output: JSONValue?
    public var exitCode: Int32?
    public var duration: Double
    /// What a failed task said went wrong (the first line it wrote to `BATON_ERROR`).
    public var detail: String?

    public init(status: Status, output: JSONValue? = nil, exitCode: Int32? = nil, duration: Double, detail: String? = nil) {
        self.status = status
        self.output = output
        self.exitCode = exitCode
        self.duration = duration
        self.detail = detail
    }

    public var succeeded: Bool { status == .succeeded }

    /// A sentence for the run view and the log.
    public var reason: String? {
        switch status {
        case .succeeded: return nil
        case .exited(let code): return "exited with code \(code)" + (detail.map { ": \($0)" } ?? "")
        case .signalled(let signal): return "killed by signal \(signal)"
        case .timedOut(let after): return "timed out after \(DurationText.format(after)); the process group was killed"
        case .stopped: return "stopped"
        case .interrupted: return "interrupted: Baton was shutting down; the task will run again"
        case .failedToStart(let message): return "could not start: \(message)"
        case .badOutput(let message): return message
        case .threw(let message): return "threw \(message)"
        }
    }
}

/// A running attempt that can be told to stop.
public final class AttemptHandle: Sendable {
    private let state = Mutex<(pid: Int32?, stopRequested: Bool, timedOut: Bool, stopper: (@Sendable () -> Void)?)>(
        (nil, false, false, nil))

    public init() {}

    var pid: Int32? { state.withLock { $0.pid } }
    var stopRequested: Bool { state.withLock { $0.stopRequested } }
    var timedOut: Bool { state.withLock { $0.timedOut } }

    /// Records the timeout and kills the process group, grandchildren included.
    func markTimedOut() {
        let pid: Int32? = state.withLock {
            $0.timedOut = true
            return $0.pid
        }
        if let pid { ProcessGroup.terminate(pid, grace: 2) }
    }

    func setPID(_ pid: Int32) -> Bool {
        state.withLock {
            $0.pid = pid
            return $0.stopRequested
        }
    }

    /// Registers how to stop an attempt that runs without a process (in-process tasks); returns
    /// true when a stop was already requested.
    func setStopper(_ stopper: @escaping @Sendable () -> Void) -> Bool {
        state.withLock {
            $0.stopper = stopper
            return $0.stopRequested
        }
    }

    /// Terminates the attempt's whole process group: SIGTERM, then SIGKILL after `grace` seconds.
    /// An in-process task is cancelled instead.
    public func stop(grace: Double = 5) {
        let (pid, stopper) = state.withLock {
            $0.stopRequested = true
            return ($0.pid, $0.stopper)
        }
        if let pid { ProcessGroup.terminate(pid, grace: grace) }
        stopper?()
    }
}

/// Signals to a task's process group.
public enum ProcessGroup {
    public static func terminate(_ pgid: Int32, grace: Double) {
        guard pgid > 1 else { return }
        kill(-pgid, SIGTERM)
        kill(-pgid, SIGCONT)
        Thread.detachNewThread {
            Thread.sleep(forTimeInterval: grace)
            kill(-pgid, SIGKILL)
        }
    }

    public static func killNow(_ pgid: Int32) {
        guard pgid > 1 else { return }
        kill(-pgid, SIGKILL)
    }

    /// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), used
    /// to make sure a pid recorded before a crash still names the same process.
    public static func startTicks(of pid: Int32) -> Int64? {
        // Read with plain syscalls: this runs for every attempt, and Foundation's file reading
        // costs several times more than the read itself.
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        let bytes = buffer[0..<count]
        // The command name (field 2) may hold spaces and parentheses; fields resume after the last ')'.
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " "))
        // Field 3 (state) is fields[0], so field 22 is fields[19].
        guard fields.count > 19 else { return nil }
        return Int64(String(decoding: fields[19], as: UTF8.self))
    }
}

/// Runs attempts as child processes.
public struct TaskProcessRunner: Sendable {
    public init() {}

    /// Starts the attempt, waits for it to end (or time out, or be stopped through `handle`),
    /// and reads its output file.
    public func run(
        _ request: AttemptRequest, handle: AttemptHandle, onStart: @escaping @Sendable (Int32) async -> Void = { _ in }
    ) async -> AttemptOutcome {
        let started = ContinuousClock.now
        func elapsed() -> Double {
            let duration = ContinuousClock.now - started
            return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        let logFD: FileDescriptor
        do {
            logFD = try Self.openLog(request.logPath)
        } catch {
            return AttemptOutcome(
                status: .failedToStart("cannot open log \(request.logPath): \(error)"), output: nil, exitCode: nil,
                duration: elapsed())
        }
        unlink(request.outputPath)
        let errorPath = Self.errorPath(request)
        unlink(errorPath)
        guard let program = request.arguments.first else {
            try? logFD.close()
            return AttemptOutcome(status: .failedToStart("empty command"), output: nil, exitCode: nil, duration: 0)
        }
        var options = PlatformOptions()
        // A group of its own, so a timeout or cancel reaches grandchildren (sh -> python3) too.
        options.processGroupID = 0
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        var environmentEntries: [Environment.Key: String] = [:]
        for (key, value) in request.environment { environmentEntries[Environment.Key(stringLiteral: key)] = value }
        environmentEntries["BATON_ERROR"] = errorPath
        let environment = environmentEntries
        let platformOptions = options

        let status: TerminationStatus
        do {
            status = try await withThrowingTaskGroup(of: TerminationStatus?.self) { group in
                group.addTask {
                    let result = try await Subprocess.run(
                        executable, arguments: Arguments(Array(request.arguments.dropFirst())),
                        environment: .custom(environment),
                        workingDirectory: FilePath(request.workingDirectory), platformOptions: platformOptions,
                        input: .none, output: .fileDescriptor(logFD, closeAfterSpawningProcess: false),
                        error: .fileDescriptor(logFD, closeAfterSpawningProcess: false)
                    ) { execution in
                        let pid = execution.processIdentifier.value
                        await onStart(pid)
                        if handle.setPID(pid) { ProcessGroup.terminate(pid, grace: 5) }
                    }
                    return result.terminationStatus
                }
                if let timeout = request.timeout {
                    group.addTask {
                        try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
                        guard !Task.isCancelled else { return nil }
                        handle.markTimedOut()
                        return nil
                    }
                }
                while let next = try await group.next() {
                    if let status = next {
                        group.cancelAll()
                        return status
                    }
                }
                throw CancellationError()
            }
        } catch {
            try? logFD.close()
            if Task.isCancelled {
                if let pid = handle.pid { ProcessGroup.killNow(pid) }
                appendLine("baton: interrupted: Baton was shutting down; the task will run again", to: request.logPath)
                return AttemptOutcome(status: .interrupted, duration: elapsed())
            }
            let message = "\(program): \(error)"
            appendLine("baton: could not start the task: \(message)", to: request.logPath)
            return AttemptOutcome(status: .failedToStart(message), output: nil, exitCode: nil, duration: elapsed())
        }
        // Whatever the main process left behind in its group goes with it.
        if let pid = handle.pid { kill(-pid, SIGKILL) }
        try? logFD.close()
        let duration = elapsed()
        enforceLogLimit(request.logPath, limit: request.maxLogBytes)

        if handle.timedOut {
            appendLine("baton: timed out after \(DurationText.format(request.timeout ?? 0)); killed the process group", to: request.logPath)
            return AttemptOutcome(status: .timedOut(after: request.timeout ?? duration), output: nil, exitCode: nil, duration: duration)
        }
        if Task.isCancelled {
            appendLine("baton: interrupted: Baton was shutting down; the task will run again", to: request.logPath)
            return AttemptOutcome(status: .interrupted, duration: duration)
        }
        if handle.stopRequested {
            return AttemptOutcome(status: .stopped, output: nil, exitCode: nil, duration: duration)
        }
        switch status {
        case .exited(let code) where code == 0:
            switch readOutput(request) {
            case .success(let output):
                return AttemptOutcome(status: .succeeded, output: output, exitCode: 0, duration: duration)
            case .failure(let problem):
                appendLine("baton: \(problem.message)", to: request.logPath)
                return AttemptOutcome(status: .badOutput(problem.message), output: nil, exitCode: 0, duration: duration)
            }
        case .exited(let code):
            return AttemptOutcome(
                status: .exited(code: code), output: nil, exitCode: code, duration: duration,
                detail: Self.readError(errorPath))
        case .signaled(let signal):
            return AttemptOutcome(status: .signalled(signal: signal), output: nil, exitCode: nil, duration: duration)
        }
    }

    /// Opens the attempt's log for appending. The folder is created only when missing: creating
    /// directories costs more than spawning the task itself on a busy ext4.
    static func openLog(_ path: String) throws -> FileDescriptor {
        func open() throws -> FileDescriptor {
            try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .append, .closeOnExec],
                permissions: [.ownerReadWrite, .groupRead, .otherRead])
        }
        do {
            return try open()
        } catch Errno.noSuchFileOrDirectory {
            try FileManager.default.createDirectory(
                atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            return try open()
        }
    }

    /// Where a failing task may say why (`BATON_ERROR`), next to its output file.
    static func errorPath(_ request: AttemptRequest) -> String { request.outputPath + ".error" }

    /// The first line of what the task wrote to `BATON_ERROR`, bounded: it becomes part of the
    /// failure reason shown in `baton run show` and the UI.
    static func readError(_ path: String) -> String? {
        defer { unlink(path) }
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let data = handle.readData(ofLength: 2048)
        let line = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first
            .map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard !line.isEmpty else { return nil }
        return line.count > 500 ? String(line.prefix(497)) + "..." : line
    }

    struct OutputProblem: Error { var message: String }

    func readOutput(_ request: AttemptRequest) -> Result<JSONValue?, OutputProblem> {
        var info = stat()
        guard stat(request.outputPath, &info) == 0 else { return .success(nil) }
        defer { unlink(request.outputPath) }
        if Int(info.st_size) > request.maxOutputBytes {
            return .failure(
                OutputProblem(
                    message: "the task's output (BATON_OUTPUT) is \(info.st_size) bytes, over the \(request.maxOutputBytes)-byte limit; "
                        + "pass large data through files or datasets and keep outputs small"))
        }
        guard let data = FileManager.default.contents(atPath: request.outputPath) else { return .success(nil) }
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .success(nil) }
        do {
            let value = try JSONValue.parse(data)
            guard case .object = value else {
                return .failure(
                    OutputProblem(
                        message: "the task's output (BATON_OUTPUT) must be a JSON object, got a \(value.kindName)"))
            }
            return .success(value)
        } catch {
            let preview = String(decoding: data.prefix(80), as: UTF8.self)
            return .failure(
                OutputProblem(message: "the task's output (BATON_OUTPUT) is not valid JSON: \(preview)"))
        }
    }

    /// Keeps a runaway log bounded: the first and last halves of the limit stay, with a marker between.
    func enforceLogLimit(_ path: String, limit: Int) {
        var info = stat()
        guard stat(path, &info) == 0, Int(info.st_size) > limit,
            let handle = FileHandle(forReadingAtPath: path)
        else { return }
        let half = limit / 2
        let head = handle.readData(ofLength: half)
        try? handle.seek(toOffset: UInt64(Int(info.st_size) - half))
        let tail = handle.readDataToEndOfFile()
        try? handle.close()
        var combined = head
        combined.append(
            Data("\n[baton: log truncated: \(Int(info.st_size) - 2 * half) bytes omitted, limit \(limit) bytes]\n".utf8))
        combined.append(tail)
        try? combined.write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    func appendLine(_ line: String, to path: String) { Self.appendToLog(line, path: path) }

    /// Adds one of Baton's own lines to an attempt's log, creating the log (and its folder) if
    /// the attempt never got as far as a process.
    public static func appendToLog(_ line: String, path: String) {
        guard let descriptor = try? openLog(path) else { return }
        _ = try? descriptor.writeAll(Array((line + "\n").utf8))
        try? descriptor.close()
    }
}
