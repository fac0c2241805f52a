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
    private let stopped = Mutex(false)

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
            for folder in folders where inotify_add_watch(fd, folder, mask) >= 0 { watched += 1 }
            guard watched > 0 else {
                close(fd)
                return nil
            }
            (changes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            let continuation = self.continuation
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 64 * 1024)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count <= 0 {
                        if count < 0 && errno == EINTR { continue }
                        break
                    }
                    continuation.yield()
                }
                continuation.finish()
            }
            thread.name = "baton-folder-watcher"
            thread.start()
        #else
            return nil
        #endif
    }

    public func stop() {
        let wasStopped = stopped.withLock { value in
            defer { value = true }
            return value
        }
        guard !wasStopped else { return }
        continuation.finish()
        close(descriptor)
    }

    deinit { stop() }
}
