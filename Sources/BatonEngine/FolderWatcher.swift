import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reports changes in a folder tree through inotify, so edited pipeline files reload at once.
/// The engine also rescans on a slow timer, in case a watch could not be placed.
public final class FolderWatcher: Sendable {
    public let changes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let descriptor: Int32
    /// One of the watches: removing it wakes the reading thread when the watcher stops.
    private let firstWatch: Int32
    /// (stop was asked, the thread has closed the descriptor); under the lock, so `stop` never
    /// touches a descriptor number the process may have reused.
    private let state = StopState()

    private final class StopState: Sendable {
        let lock = Mutex((stopping: false, closed: false))
    }

    public init?(directory: String) {
        #if os(Linux)
            let fd = inotify_init1(Int32(IN_CLOEXEC))
            guard fd >= 0 else { return nil }
            descriptor = fd
            let mask = UInt32(IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF)
            var watched = 0
            var folders = [directory]
            if let enumerator = FileManager.default.enumerator(atPath: directory) {
                while let item = enumerator.nextObject() as? String {
                    var isDirectory: ObjCBool = false
                    let path = (directory as NSString).appendingPathComponent(item)
                    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue,
                        !item.split(separator: "/").contains(where: { $0.hasPrefix(".") })
                    {
                        folders.append(path)
                    }
                }
            }
            var first: Int32 = -1
            for folder in folders {
                let watch = inotify_add_watch(fd, folder, mask)
                guard watch >= 0 else { continue }
                if first < 0 { first = watch }
                watched += 1
            }
            guard watched > 0 else {
                close(fd)
                return nil
            }
            firstWatch = first
            (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let continuation = self.continuation
            let state = self.state
            // Closing the descriptor would not wake a thread blocked in read; `stop` removes a
            // watch instead (the kernel queues IN_IGNORED) and this thread closes it, as
            // ChangeBell's does.
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0, !state.lock.withLock({ $0.stopping }) else { break }
                    continuation.yield()
                }
                state.lock.withLock { value in
                    value.closed = true
                    close(fd)
                }
                continuation.finish()
            }
            thread.name = "baton-folder-watcher"
            thread.start()
        #else
            return nil
        #endif
    }

    /// Whether the reading thread has ended and closed its descriptor.
    var readerEnded: Bool { state.lock.withLock { $0.closed } }

    public func stop() {
        state.lock.withLock { value in
            guard !value.stopping else { return }
            value.stopping = true
            if !value.closed { _ = inotify_rm_watch(descriptor, firstWatch) }
        }
        continuation.finish()
    }

    deinit { stop() }
}
