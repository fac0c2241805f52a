import Foundation
import Synchronization
import Testing

@testable import BatonStore

@Suite struct ChangeBellTests {
    let folder: String

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-bell-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    @Test func aCommandsCommitsRingAndTheServersOwnDoNot() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/baton.db"
        let server = try SQLiteStore(path: path)
        let hints = try #require(try server.externalChangeHints())
        let command = try SQLiteStore(path: path, announcesWrites: true)

        // Collected on a task of their own, so a missing hint cannot block the test.
        let count = Atomic<Int>(0)
        let listener = Task {
            for await _ in hints { count.add(1, ordering: .relaxed) }
        }
        defer { listener.cancel() }

        _ = try await server.createRun(sampleRun(sampleSpec()))
        try await Task.sleep(for: .milliseconds(300))
        #expect(count.load(ordering: .relaxed) == 0, "the server's own write must not wake it")

        let run = try await command.createRun(sampleRun(sampleSpec(), key: "manual__bell")).run
        try await waitUntil { count.load(ordering: .relaxed) >= 1 }
        #expect(try await command.requestCancel(runID: run.id))
        let before = count.load(ordering: .relaxed)
        try await waitUntil { count.load(ordering: .relaxed) > before }
    }

    @Test func deletingTheBellEndsTheHints() async throws {
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/baton.db"
        let server = try SQLiteStore(path: path)
        let hints = try #require(try server.externalChangeHints())
        let ended = Atomic<Bool>(false)
        let listener = Task {
            for await _ in hints {}
            ended.store(true, ordering: .relaxed)
        }
        defer { listener.cancel() }
        try FileManager.default.removeItem(atPath: ChangeBell.path(forDatabase: path))
        try await waitUntil { ended.load(ordering: .relaxed) }
    }

    @Test func aBellThatCannotBeWatchedIsAnErrorNamingItAndTheReason() throws {
        let bell = "/proc/baton-no-such-folder/baton.db.changes"
        let error = try #require(throws: ChangeBell.WatchError.self) { _ = try ChangeBell.listen(bell) }
        #expect(error.call == "inotify_add_watch")
        #expect(error.description.contains(bell), "\(error)")
        #expect(error.description.contains("No such file or directory"), "\(error)")
    }

    func waitUntil(seconds: Double = 10, _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw BellTestFailure() }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    struct BellTestFailure: Error, CustomStringConvertible {
        var description: String { "the condition did not hold within the deadline" }
    }
}
