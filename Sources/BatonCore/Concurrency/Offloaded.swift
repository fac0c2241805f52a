import Dispatch

/// Runs work that takes milliseconds or more (a join over a million rows, reading a view's
/// history, a long SQLite transaction) or that blocks (waiting for a process, a socket) on a
/// Dispatch worker thread and awaits its result.
///
/// `baton up` runs Swift concurrency on NIO's event loops, so such work done inline holds an
/// event loop and stalls every connection on it: online lookups waited up to 0.4 s behind a
/// training-set read. Short work (a single-row transaction, an in-memory lookup) stays inline,
/// where the hop would cost more than the work.
public func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .userInitiated).async {
            continuation.resume(with: Result { try work() })
        }
    }
}
