import BatonStore
import Foundation

/// Group commit for run data: requests that arrive while a transaction is being written wait
/// for the next one, so 16 clients logging metrics pay for one commit between them instead of
/// 16, and every answer still comes after its data is committed.
actor RunDataWriter {
    typealias Waiter = CheckedContinuation<RunDataRefusal?, any Error>

    let store: any Store
    /// Bounds one transaction; the rest wait for the next.
    let maxBatches = 512
    private var pending: [(batch: RunDataBatch, waiter: Waiter)] = []
    private var flushing = false

    init(store: any Store) { self.store = store }

    /// Commits the batch (with whatever else is waiting) and answers its refusal, if any.
    func submit(_ batch: RunDataBatch) async throws -> RunDataRefusal? {
        try await withCheckedThrowingContinuation { (waiter: Waiter) in
            pending.append((batch, waiter))
            if !flushing {
                flushing = true
                Task { await self.flush() }
            }
        }
    }

    private func flush() async {
        while !pending.isEmpty {
            let taken = Array(pending.prefix(maxBatches))
            pending.removeFirst(taken.count)
            do {
                let refusals = try await store.logRunData(taken.map(\.batch))
                for (index, item) in taken.enumerated() {
                    item.waiter.resume(returning: index < refusals.count ? refusals[index] : nil)
                }
            } catch {
                for item in taken { item.waiter.resume(throwing: error) }
            }
        }
        flushing = false
    }
}
