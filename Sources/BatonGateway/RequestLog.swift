import Synchronization

/// Which version answered each recent request of one deployment, so an outcome reported later
/// (`POST /serve/{deployment}/feedback` with the request's id) counts for the variant that
/// produced it. Bounded: the oldest request is forgotten when the log is full, and a report for
/// it must name its version itself.
final class RequestLog: Sendable {
    struct Entry {
        var version: String
        /// Metrics already reported for the request: a repeated report is not counted twice.
        var reported: [String] = []
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Request ids in arrival order; `next` is the slot the next id overwrites.
        var order: [String] = []
        var next = 0
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    func record(requestID: String, version: String) {
        state.withLock { state in
            if state.entries.updateValue(Entry(version: version), forKey: requestID) != nil {
                // A caller reusing its own request id: the newest answer counts, the slot stays.
                return
            }
            if state.order.count < capacity {
                state.order.append(requestID)
            } else {
                state.entries.removeValue(forKey: state.order[state.next])
                state.order[state.next] = requestID
                state.next = (state.next + 1) % capacity
            }
        }
    }

    /// Marks `metric` reported for the request. Nil: the request is unknown (never answered
    /// here, or forgotten); `duplicate`: it was reported before and is not counted again.
    func claim(requestID: String, metric: String) -> FeedbackClaim? {
        state.withLock { state in
            guard var entry = state.entries[requestID] else { return nil }
            if entry.reported.contains(metric) { return FeedbackClaim(version: entry.version, duplicate: true) }
            entry.reported.append(metric)
            state.entries[requestID] = entry
            return FeedbackClaim(version: entry.version, duplicate: false)
        }
    }

    /// Takes a claim back when its report could not be stored, so a retry counts.
    func unclaim(requestID: String, metric: String) {
        state.withLock { state in
            state.entries[requestID]?.reported.removeAll { $0 == metric }
        }
    }

    func version(of requestID: String) -> String? {
        state.withLock { $0.entries[requestID]?.version }
    }
}

/// The version a reported outcome belongs to, and whether it was reported before.
public struct FeedbackClaim: Sendable, Equatable {
    public var version: String
    public var duplicate: Bool

    public init(version: String, duplicate: Bool) {
        self.version = version
        self.duplicate = duplicate
    }
}
