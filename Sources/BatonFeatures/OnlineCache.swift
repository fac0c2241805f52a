import Foundation
import Synchronization

/// The latest row of an entity in a view.
public struct OnlineEntry: Sendable, Hashable {
    public var time: Double
    /// In the view's feature order when the entry was cached.
    public var values: [FeatureValue]

    public init(time: Double, values: [FeatureValue]) {
        self.time = time
        self.values = values
    }
}

/// The online store's memory: the latest values per entity and view, a cache of the store's
/// online table. It is filled from the store at start and updated after each committed write,
/// never before, so it never shows a value the store could lose.
public final class OnlineFeatureCache: Sendable {
    private let views = Mutex<[String: [String: OnlineEntry]]>([:])
    private let changes = Atomic<UInt64>(0)

    public init() {}

    /// Moves on after every change to the entries, once the change can be read: an answer
    /// made from entries read after `generation` returned `g` is current while it still
    /// returns `g`.
    public var generation: UInt64 { changes.load(ordering: .acquiring) }

    /// Marks answers made so far as stale without changing the entries (new definitions).
    public func invalidateAnswers() {
        changes.wrappingAdd(1, ordering: .releasing)
    }

    /// Replaces a view's entries (a rebuild from the store).
    public func replace(view: String, entries: [String: OnlineEntry]) {
        views.withLock { $0[view] = entries }
        invalidateAnswers()
    }

    public func remove(view: String) {
        views.withLock { $0[view] = nil }
        invalidateAnswers()
    }

    /// Applies committed rows: an entity's entry moves to a row at least as recent. Large
    /// batches go in slices, so lookups running meanwhile never wait long for the lock.
    public func apply(view: String, rows: [FeatureRow]) {
        var start = 0
        repeat {
            let slice = rows[start..<min(rows.count, start + 2048)]
            views.withLock { all in
                // Taken out and put back, so the dictionary is mutated in place, not copied.
                var entries = all.removeValue(forKey: view) ?? [:]
                for row in slice {
                    if let existing = entries[row.entityKey], existing.time > row.eventTime { continue }
                    entries[row.entityKey] = OnlineEntry(time: row.eventTime, values: row.values)
                }
                all[view] = entries
            }
            invalidateAnswers()
            start += 2048
        } while start < rows.count
    }

    public func entry(view: String, entityKey: String) -> OnlineEntry? {
        views.withLock { $0[view]?[entityKey] }
    }

    /// Entries of several views for one entity key each, under one lock.
    public func entries(_ requests: [(view: String, entityKey: String)]) -> [OnlineEntry?] {
        views.withLock { all in requests.map { all[$0.view]?[$0.entityKey] } }
    }

    public func count(view: String) -> Int { views.withLock { $0[view]?.count ?? 0 } }

    public func cachedViews() -> [String] { views.withLock { Array($0.keys) } }
}

/// Statistics of one feature over a set of rows.
public struct FeatureStatistics: Sendable, Hashable, Codable {
    public var name: String
    public var type: FeatureValueType
    public var count: Int
    public var nulls: Int
    public var min: Double?
    public var max: Double?
    public var mean: Double?
    /// Ten equal-width bins from `min` to `max` (numbers), or the most frequent values (strings).
    public var histogram: [Int]
    public var topValues: [String: Int]

    public var nullShare: Double { count == 0 ? 0 : Double(nulls) / Double(count) }

    enum CodingKeys: String, CodingKey {
        case name, type, count, nulls, min, max, mean, histogram
        case topValues = "top_values"
    }

    public static func compute(features: [FeatureSpec], rows: [[FeatureValue]], bins: Int = 10) -> [FeatureStatistics] {
        features.enumerated().map { index, feature in
            var stats = FeatureStatistics(name: feature.name, type: feature.type, count: rows.count, nulls: 0, histogram: [], topValues: [:])
            var numbers: [Double] = []
            var counts: [String: Int] = [:]
            for row in rows {
                let value = index < row.count ? row[index] : .null
                if value.isNull {
                    stats.nulls += 1
                } else if case .string(let text) = value {
                    counts[text, default: 0] += 1
                } else if let number = value.number, number.isFinite {
                    numbers.append(number)
                }
            }
            if let low = numbers.min(), let high = numbers.max() {
                stats.min = low
                stats.max = high
                stats.mean = numbers.reduce(0, +) / Double(numbers.count)
                var histogram = [Int](repeating: 0, count: bins)
                let width = (high - low) / Double(bins)
                for number in numbers {
                    let bin = width > 0 ? Swift.min(bins - 1, Int((number - low) / width)) : 0
                    histogram[bin] += 1
                }
                stats.histogram = histogram
            }
            if !counts.isEmpty {
                stats.topValues = Dictionary(uniqueKeysWithValues: counts.sorted { $0.value > $1.value || ($0.value == $1.value && $0.key < $1.key) }.prefix(10).map { ($0.key, $0.value) })
            }
            return stats
        }
    }
}
