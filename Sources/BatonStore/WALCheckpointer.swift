import Foundation
import GRDB

/// Copies SQLite's write-ahead log back into the database file on a timer, off the commit path.
///
/// By default SQLite does this inside whichever commit pushes the log past 1,000 pages: that
/// commit then copies megabytes and waits for the disk, and one request in a few hundred took
/// 10 to 16 ms instead of 0.2 ms (measured with `runs/log-metric` on one connection). Here the
/// store's connections never checkpoint; this separate connection runs a passive checkpoint a few
/// times a second, which copies what no reader still needs and never blocks a writer. A crash
/// loses nothing either way: a committed transaction is in the log until it is copied.
final class WALCheckpointer: Sendable {
    private let loop: Task<Void, Never>

    init(path: String, interval: Duration = .milliseconds(250)) throws {
        var configuration = Configuration()
        configuration.label = "baton.checkpoint"
        let connection = try DatabaseQueue(path: path, configuration: configuration)
        // GRDB runs the statement on the connection's own dispatch queue, so the checkpoint's
        // disk wait never holds one of Swift's few cooperative threads.
        loop = Task.detached(priority: .utility) {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                // Failures (an exclusive transaction, a disk error) are retried on the next tick;
                // a real disk problem surfaces in the store's own writes.
                _ = try? await connection.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)")
                }
            }
        }
    }

    deinit { loop.cancel() }
}
