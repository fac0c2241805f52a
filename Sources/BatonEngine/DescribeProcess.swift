import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A child process that reads pipelines from user code (`python -m baton.describe`, a BatonKit
/// executable's `describe`), so that code never runs inside Baton.
///
/// Its answer goes to a file of its own, so whatever the user's code prints cannot corrupt it;
/// its stdout and stderr go to a second file, read when something went wrong. At the time
/// limit the process is killed with its process group.
final class DescribeProcess {
    enum Ending {
        case answered(Data)
        /// Exited unsuccessfully, or without writing an answer; `log` is the end of its output.
        case failed(status: Int32, log: String)
        case timedOut
        case couldNotStart(String)
    }

    let answerPath: String
    let logPath: String
    private let started: Result<Process, DescribeFailure>
    private let exited = DispatchSemaphore(value: 0)

    struct DescribeFailure: Error { var message: String }

    /// Starts `executable` with `arguments(answerPath)`.
    init(executable: String, arguments: (String) -> [String], environment: [String: String], directory: String) {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-describe-\(getpid())-\(UUID().uuidString.prefix(8))").path
        answerPath = scratch + ".json"
        logPath = scratch + ".log"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments(answerPath)
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardInput = FileHandle.nullDevice
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        guard let log = FileHandle(forWritingAtPath: logPath) else {
            started = .failure(DescribeFailure(message: "cannot create \(logPath)"))
            return
        }
        defer { try? log.close() }
        process.standardOutput = log
        process.standardError = log
        let exited = self.exited
        process.terminationHandler = { _ in exited.signal() }
        do {
            try process.run()
            started = .success(process)
        } catch {
            started = .failure(DescribeFailure(message: "\(error)"))
        }
    }

    /// Waits for the process (killing it at `timeout` seconds) and reads its answer.
    func wait(timeout: Double) -> Ending {
        defer {
            unlink(answerPath)
            unlink(logPath)
        }
        let process: Process
        switch started {
        case .failure(let failure): return .couldNotStart(failure.message)
        case .success(let running): process = running
        }
        if exited.wait(timeout: .now() + timeout) == .timedOut {
            // Describers move into a process group of their own first, so their children go too.
            let pid = process.processIdentifier
            if kill(-pid, SIGKILL) != 0 { kill(pid, SIGKILL) }
            exited.wait()
            return .timedOut
        }
        let log = String(decoding: FileManager.default.contents(atPath: logPath)?.suffix(4000) ?? Data(), as: UTF8.self)
        guard process.terminationStatus == 0, let data = FileManager.default.contents(atPath: answerPath) else {
            return .failed(status: process.terminationStatus, log: log)
        }
        return .answered(data)
    }
}
