import BatonCore
import Foundation

/// One row of a feature view as the stores keep it: values stay in BatonFeatures' encoding,
/// which the store never needs to read.
public struct StoredFeatureRow: Sendable, Hashable {
    public var entityKey: String
    /// Epoch seconds.
    public var eventTime: Double
    public var values: [UInt8]

    public init(entityKey: String, eventTime: Double, values: [UInt8]) {
        self.entityKey = entityKey
        self.eventTime = eventTime
        self.values = values
    }
}

/// What a committed write did.
public struct FeatureWriteResult: Sendable, Hashable, Codable {
    /// Rows new to the offline store.
    public var inserted: Int
    /// Rows that replaced one with the same entity and event time.
    public var overwritten: Int

    public init(inserted: Int, overwritten: Int) {
        self.inserted = inserted
        self.overwritten = overwritten
    }
}

/// Counts about one view's stored rows.
public struct FeatureViewSummary: Sendable, Hashable, Codable {
    public var view: String
    public var rows: Int
    public var entities: Int
    public var firstEventTime: Double?
    public var lastEventTime: Double?
    public var lastWrittenAt: Double?

    public init(view: String, rows: Int, entities: Int, firstEventTime: Double?, lastEventTime: Double?, lastWrittenAt: Double?) {
        self.view = view
        self.rows = rows
        self.entities = entities
        self.firstEventTime = firstEventTime
        self.lastEventTime = lastEventTime
        self.lastWrittenAt = lastWrittenAt
    }
}

/// The feature store's tables: every row with its event time (offline) and the latest row per
/// entity (online); part of every store.
public protocol FeatureStore: Sendable {
    /// Writes a batch of one view in one transaction, with `changes` (the view's dataset update
    /// and its event). A row with the view, entity and event time of a stored one replaces it; the
    /// online table keeps each entity's latest row (a tie goes to the newer write). Nothing of
    /// the batch is stored when any part fails.
    func writeFeatureRows(view: String, rows: [StoredFeatureRow], writtenAt: Date, changes: [StoreChange]) async throws
        -> FeatureWriteResult
    /// Offline rows grouped by entity key and ordered by event time, in columns (a join reads a
    /// million rows at once); `from`/`to` bound the event time (inclusive, exclusive).
    func featureHistory(view: String, from: Double?, to: Double?) async throws -> ViewHistory
    /// The most recently written offline rows, newest first (for statistics).
    func recentFeatureRows(view: String, limit: Int) async throws -> [StoredFeatureRow]
    /// The online table of a view: each entity's latest row; with `writtenSince`, only rows
    /// written at or after that epoch second (to catch up with other processes' writes).
    func onlineFeatureRows(view: String, writtenSince: Double?) async throws -> [StoredFeatureRow]
    func onlineFeatureRow(view: String, entityKey: String) async throws -> StoredFeatureRow?
    func featureViewSummary(view: String) async throws -> FeatureViewSummary
}

extension FeatureStore {
    /// Offline rows ordered by entity key, then event time, one value per row (for small reads).
    public func featureRows(view: String, from: Double?, to: Double?) async throws -> [StoredFeatureRow] {
        try await featureHistory(view: view, from: from, to: to).rows.map {
            StoredFeatureRow(entityKey: $0.entityKey, eventTime: $0.time, values: $0.values)
        }
    }
}
