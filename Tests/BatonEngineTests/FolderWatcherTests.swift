import Foundation
import Testing

@testable import BatonEngine

@Suite struct FolderWatcherTests {
    /// Closing the descriptor under a thread blocked in `read` left the thread waiting for the
    /// next file event (and then reading whatever the number had been reused for).
    @Test func stoppingEndsTheReadingThreadWithoutAFileEvent() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-watch-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/nested", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let watcher = try #require(FolderWatcher(directory: folder))

        // It reports a change first, so the thread is known to be reading.
        let changed = Task { for await _ in watcher.changes { return true }; return false }
        try "name: x\n".write(toFile: folder + "/nested/x.yaml", atomically: true, encoding: .utf8)
        #expect(await changed.value)

        #expect(!watcher.readerEnded)
        watcher.stop()
        let deadline = ContinuousClock.now + .seconds(10)
        while !watcher.readerEnded {
            guard ContinuousClock.now < deadline else { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(watcher.readerEnded, "the reading thread should end once the watcher stops")
    }
}
