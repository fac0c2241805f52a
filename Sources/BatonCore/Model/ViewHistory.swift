/// One feature view's stored rows for a point-in-time join, grouped by entity and ordered by
/// event time, kept in columns: the encoded values of all rows share one byte array, so reading
/// a million rows makes a handful of allocations instead of two per row, and a join decodes
/// only the rows it picks.
///
/// Lives in the core because the store fills it (straight from its cursor) and the feature
/// module reads it; neither depends on the other.
public struct ViewHistory: Sendable {
    /// Each entity's rows: a range of row indexes.
    public private(set) var ranges: [String: Range<Int>] = [:]
    public private(set) var times: [Double] = []
    private var valueBytes: [UInt8] = []
    /// Where each row's values end in `valueBytes` (a row starts where the previous one ends).
    private var valueEnds: [Int] = []
    private var currentKey: String?
    private var currentKeyBytes: [UInt8] = []
    private var currentStart = 0

    public init() {}

    public var rowCount: Int { times.count }
    public var entityCount: Int { ranges.count }

    /// Sizes the columns for `rows` rows of about `bytesPerRow` encoded bytes.
    public mutating func reserve(rows: Int, bytesPerRow: Int) {
        times.reserveCapacity(rows)
        valueEnds.reserveCapacity(rows)
        valueBytes.reserveCapacity(rows * bytesPerRow)
    }

    /// Adds a row; rows must arrive ordered by entity key, then event time.
    public mutating func append(entityKey: String, time: Double, values: [UInt8]) {
        if entityKey != currentKey { startEntity(entityKey) }
        values.withUnsafeBytes { appendRow(time: time, values: $0) }
    }

    /// Adds a row whose key arrives as UTF-8 bytes (a database cursor's buffer): a String is made
    /// only when the entity changes, not for every row.
    public mutating func append(entityKeyUTF8 key: UnsafeRawBufferPointer, time: Double, values: UnsafeRawBufferPointer) {
        if currentKey == nil || !currentKeyBytes.elementsEqual(key) {
            startEntity(String(decoding: key, as: UTF8.self))
        }
        appendRow(time: time, values: values)
    }

    private mutating func appendRow(time: Double, values: UnsafeRawBufferPointer) {
        valueBytes.append(contentsOf: values)
        valueEnds.append(valueBytes.count)
        times.append(time)
    }

    private mutating func startEntity(_ key: String) {
        closeCurrent()
        currentKey = key
        currentKeyBytes = Array(key.utf8)
        currentStart = times.count
    }

    /// Call once after the last `append`.
    public mutating func finish() { closeCurrent() }

    private mutating func closeCurrent() {
        if let key = currentKey {
            assert(ranges[key] == nil, "ViewHistory: rows of entity \(key) arrived out of order")
            ranges[key] = currentStart..<times.count
        }
        currentKey = nil
    }

    /// The index of the entity's latest row at or before `time` and, with a ttl, no older than
    /// `time - ttl`; nil when there is none.
    public func latest(entityKey: String, atOrBefore time: Double, ttl: Double?) -> Int? {
        guard let range = ranges[entityKey], !range.isEmpty else { return nil }
        // Binary search for the first row after `time`; the one before it is the answer.
        var low = range.lowerBound
        var high = range.upperBound
        while low < high {
            let middle = (low + high) / 2
            if times[middle] <= time { low = middle + 1 } else { high = middle }
        }
        let found = low - 1
        guard found >= range.lowerBound else { return nil }
        if let ttl, times[found] < time - ttl { return nil }
        return found
    }

    public func time(at index: Int) -> Double { times[index] }

    /// The encoded values of row `index`, valid only inside `body`.
    public func withValues<Result>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> Result) rethrows -> Result {
        let start = index == 0 ? 0 : valueEnds[index - 1]
        return try valueBytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<valueEnds[index]])) }
    }

    public func values(at index: Int) -> [UInt8] { withValues(at: index) { Array($0) } }

    /// Every row in order, with its entity (for tests and small reads).
    public var rows: [(entityKey: String, time: Double, values: [UInt8])] {
        ranges.sorted { $0.value.lowerBound < $1.value.lowerBound }.flatMap { key, range in
            range.map { (key, times[$0], values(at: $0)) }
        }
    }
}
