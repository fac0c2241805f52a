import BatonAPI
import BatonStore
import Foundation
import Logging
import ServiceLifecycle

/// Keeps the metric store bounded: deletes points older than the retention period when it
/// starts and then every `interval` (an hour by default), until graceful shutdown.
public struct MetricsRetentionService: Service {
    public let store: any MetricStore
    /// How long points are kept, in seconds.
    public let retention: TimeInterval
    public let interval: Duration
    let logger: Logger
    let clock: @Sendable () -> Date

    /// The default retention: 30 days.
    public static let defaultRetention: TimeInterval = 30 * 86400

    /// `clock` stands in for the current time, so tests can purge "a month later" at once.
    public init(
        store: any MetricStore, retention: TimeInterval = defaultRetention, interval: Duration = .seconds(3600),
        logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.retention = retention
        self.interval = interval
        self.logger = logger
        self.clock = clock
    }

    public func run() async throws {
        // A service that returns ends the whole service group, so this one only returns once
        // shutdown has begun (its sleep is cancelled then).
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await purgeOnce()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Deletes the points older than the retention period; returns how many (0 on failure,
    /// which is logged: the next round tries again).
    @discardableResult
    public func purgeOnce() async -> Int {
        let cutoff = clock().addingTimeInterval(-retention)
        do {
            let deleted = try await store.purgeMetrics(before: cutoff)
            if deleted > 0 {
                logger.info("purged \(deleted) metric points older than \(APICoding.isoString(cutoff))")
            }
            return deleted
        } catch {
            logger.error("could not purge old metric points: \(error)")
            return 0
        }
    }
}
