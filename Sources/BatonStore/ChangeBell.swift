import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Tells a running server at once that a `baton` command wrote to the same SQLite database.
///
/// The server's engine otherwise notices such writes (a run triggered, a cancel, an event
/// published with `--db`) only on its next poll of the change counter. A command that writes
/// opens and closes `<database>.changes` after each commit; the server watches that file with
/// inotify and checks the counter on the spot, keeping the poll as a slow safety net (a
/// filesystem without inotify, a deleted bell file). The server's own writes never ring: it
/// would only wake itself.
///
/// PostgreSQL stores have no bell: the writer may be on another machine, and the server polls
/// its change sequence instead.
public enum ChangeBell {
    /// The bell file beside a database.
    public static func path(forDatabase database: String) -> String { database + ".changes" }

    /// Rings the bell. Best effort: a command's write has already committed, and a bell that
    /// cannot ring (a read-only folder) only leaves the change to the server's poll.
    static func ring(_ bell: String) {
        let descriptor = open(bell, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        if descriptor >= 0 { close(descriptor) }
    }

    /// Why a bell cannot be watched; the server then polls, and says so with this.
    public struct WatchError: Error, CustomStringConvertible {
        public var bell: String
        public var call: String
        public var code: Int32

        public var description: String {
            let reason = String(cString: strerror(code))
            let fix =
                switch code {
                case EMFILE: " (raise fs.inotify.max_user_instances)"
                case ENOSPC: " (raise fs.inotify.max_user_watches)"
                default: ""
                }
            return "cannot watch the change bell \(bell): \(call) failed: \(reason)\(fix)"
        }
    }

    /// A stream that yields each time another process rings `bell` (rings that arrive together
    /// may yield once), or nil on a system without inotify. The stream ends when the bell file is
    /// deleted or the consumer stops iterating.
    public static func listen(_ bell: String) throws(WatchError) -> AsyncStream<Void>? {
        #if os(Linux)
            // The watch needs the file to exist; creating it is not a ring, nobody listens yet.
            ring(bell)
            let descriptor = inotify_init1(Int32(IN_CLOEXEC))
            guard descriptor >= 0 else { throw WatchError(bell: bell, call: "inotify_init1", code: errno) }
            let watch = inotify_add_watch(descriptor, bell, UInt32(IN_CLOSE_WRITE | IN_DELETE_SELF))
            guard watch >= 0 else {
                let code = errno
                close(descriptor)
                throw WatchError(bell: bell, call: "inotify_add_watch", code: code)
            }
            let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            // Whether the reading thread has closed the descriptor; under the lock, so a consumer
            // that stops never touches a descriptor number the process may have reused.
            let ended = Mutex(false)
            // A thread blocked in read, as FolderWatcher does. Closing the descriptor would not
            // wake it; removing the watch does (the kernel queues IN_IGNORED), and the thread
            // then closes the descriptor itself.
            let thread = Thread {
                var buffer = [UInt8](repeating: 0, count: 4096)
                reading: while true {
                    let count = read(descriptor, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { break }
                    // Each event is a fixed header (wd, mask, cookie, len) and len bytes of name;
                    // a watched file's own events carry no name.
                    var offset = 0
                    while offset + 16 <= count {
                        let mask = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self) }
                        let length = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self) }
                        if mask & UInt32(IN_DELETE_SELF | IN_IGNORED) != 0 { break reading }
                        offset += 16 + Int(length)
                    }
                    continuation.yield()
                }
                ended.withLock { closed in
                    closed = true
                    close(descriptor)
                }
                continuation.finish()
            }
            thread.name = "baton-change-bell"
            continuation.onTermination = { _ in
                ended.withLock { closed in
                    if !closed { _ = inotify_rm_watch(descriptor, watch) }
                }
            }
            thread.start()
            return stream
        #else
            return nil
        #endif
    }
}
