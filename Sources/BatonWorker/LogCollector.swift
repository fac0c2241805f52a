import Dispatch
import Foundation
import Synchronization

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

#if canImport(Glibc)
    import Glibc
#endif

/// Copies a task's stdout and stderr (one pipe) into the attempt's log file, creating the file
/// only when the first byte arrives.
///
/// Handing the child the log file itself would cost a new inode for every attempt, and on a busy
/// ext4 that allocation costs more than spawning the task; most tasks in a wide fan-out print
/// nothing. Reading is event-driven (a dispatch read source on the pipe), never polled.
final class LogCollector: Sendable {
    let writeEnd: Int32
    private let readEnd: Int32
    private let path: String
    private let state = Mutex<(file: Int32, finished: Bool, waiters: [CheckedContinuation<Void, Never>])>((-1, false, []))
    // Dispatch sources are safe to use from any thread; the type just predates Sendable.
    nonisolated(unsafe) private let source: any DispatchSourceRead
    private static let queue = DispatchQueue(label: "baton.logs", attributes: .concurrent)

    init(path: String) throws {
        // Close-on-exec from the start (pipe2): a task spawned concurrently on another thread must
        // not inherit this write end, or this log would only end when that task does.
        let ends = try FileDescriptor.pipe(options: FileDescriptor.PipeOptions(rawValue: O_CLOEXEC))
        readEnd = ends.readEnd.rawValue
        writeEnd = ends.writeEnd.rawValue
        self.path = path
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        source = DispatchSource.makeReadSource(fileDescriptor: readEnd, queue: Self.queue)
        source.setEventHandler { [weak self] in self?.drain() }
        source.setCancelHandler { [readEnd] in close(readEnd) }
        source.activate()
    }

    /// Closes this process's copy of the write end, once the child holds its own.
    func closeWriteEnd() {
        close(writeEnd)
    }

    private func drain() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = read(readEnd, &buffer, buffer.count)
            if count > 0 {
                write(buffer, count: count)
                continue
            }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { return }
            // End of file: every writer (the task and anything it started) is gone.
            finish()
            return
        }
    }

    private func write(_ buffer: [UInt8], count: Int) {
        state.withLock { state in
            if state.file < 0 {
                try? FileManager.default.createDirectory(
                    atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                state.file = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            }
            guard state.file >= 0 else { return }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { Glibc.write(state.file, $0.baseAddress! + offset, count - offset) }
                if written <= 0 { break }
                offset += written
            }
        }
    }

    private func finish() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.finished else { return [] }
            state.finished = true
            if state.file >= 0 { close(state.file) }
            let waiting = state.waiters
            state.waiters = []
            return waiting
        }
        source.cancel()
        for waiter in waiters { waiter.resume() }
    }

    /// Waits until the pipe is drained, at most `timeout` seconds; a process that left the task's
    /// process group (a daemon) and still holds the pipe does not keep the attempt open.
    func finished(timeout: Double) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let done = self.state.withLock { state -> Bool in
                        if state.finished { return true }
                        state.waiters.append(continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(Int64(timeout * 1000)))
            }
            await group.next()
            group.cancelAll()
        }
        // Stop reading whatever happens; late output is dropped rather than written after the
        // attempt's end was recorded.
        Self.queue.async { self.finish() }
    }
}
