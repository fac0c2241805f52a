import Logging
import PostgresNIO
import Synchronization

extension PostgresStore {
    /// The channel every store notifies after bumping `baton_change_seq`.
    static let changeChannel = "baton_changes"
    static let changeListenerName = "baton change listener"

    /// Hints that another process (a `baton` command, another server) changed the database: a
    /// `LISTEN` on a connection of its own, outside the pool, so a server acts on a command's
    /// write at once instead of at its next poll. The first hint comes when the listener is up
    /// (changes made before it may have been missed); notifications of this store's own writes
    /// are skipped. While the connection is down the stream hints every 200 ms, the poll it
    /// stands in for, and reconnects with backoff; it ends when the store closes.
    public func externalChangeHints() throws -> AsyncStream<Void>? {
        let (hints, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let listener = Task { [self] in
            await listenForChanges(continuation)
            continuation.finish()
        }
        continuation.onTermination = { _ in listener.cancel() }
        changeListeners.withLock { $0.append(listener) }
        return hints
    }

    private func listenForChanges(_ hints: AsyncStream<Void>.Continuation) async {
        var failures = 0
        // A store closed before its listener started must not leave a connection open.
        func stopped() -> Bool { Task.isCancelled || closed.load(ordering: .relaxed) }
        while !stopped() {
            do {
                let connection = try await openChangeListenerConnection()
                var failure: (any Error)?
                do {
                    try await withTaskCancellationHandler {
                        try await connection.listen(on: Self.changeChannel) { notifications in
                            if failures > 0 { logger.info("listening for changes by other Baton processes again") }
                            failures = 0
                            hints.yield()
                            for try await notification in notifications where notification.payload != changeSource {
                                hints.yield()
                            }
                        }
                    } onCancel: {
                        // Ends the wait for the next notification.
                        Task { try? await connection.close() }
                    }
                } catch {
                    failure = error
                }
                try? await connection.close()
                if let failure { throw failure }
            } catch {
                if stopped() { return }
                if failures == 0 {
                    logger.warning(
                        "cannot listen for changes by other Baton processes on \(location.host):\(location.port)/\(location.database): \(error); they are noticed by polling every 0.2 seconds until it can")
                }
                failures += 1
            }
            // Stands in for the notifications while there is no listener, until the next try.
            let pause = Duration.seconds(min(30, 1 << min(failures, 5)))
            let resume = ContinuousClock.now + pause
            while ContinuousClock.now < resume, !stopped() {
                hints.yield()
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    private func openChangeListenerConnection() async throws -> PostgresConnection {
        var settings = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try Self.connectionTLS(location))
        // Shows in pg_stat_activity what the connection is for.
        settings.options.additionalStartupParameters = [("application_name", Self.changeListenerName)]
        guard let connection = try await Self.connect(settings, within: .seconds(10), logger: queryLogger) else {
            throw StoreError.postgres(statement: "(change listener connection)", sqlState: nil, message: "no answer within 10 seconds")
        }
        return connection
    }
}
