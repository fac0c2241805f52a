import Synchronization

/// One-entity online lookups answered already, as JSON, keyed by service and join key text.
/// An answer holds while the online cache's generation is the one it was made at (any write or
/// new definitions move it on) and until the first value in it passes its view's `ttl`.
/// Bounded by the bytes kept: when full, everything is dropped and refilled by later lookups,
/// which costs only the work the cache saves.
final class LookupAnswers: Sendable {
    static let maxBytes = 16 << 20

    private struct Answer {
        var json: String
        var generation: UInt64
        var validUntil: Double
        /// What it counts against `maxBytes`: its text, its key and a little bookkeeping.
        var size: Int
    }

    private struct State {
        var answers: [String: Answer] = [:]
        var bytes = 0
    }

    private let state = Mutex(State())

    func answer(key: String, generation: UInt64, now: Double) -> String? {
        state.withLock { state in
            guard let answer = state.answers[key], answer.generation == generation, now <= answer.validUntil else { return nil }
            return answer.json
        }
    }

    func keep(_ json: String, key: String, generation: UInt64, validUntil: Double) {
        let answer = Answer(json: json, generation: generation, validUntil: validUntil, size: json.utf8.count + key.utf8.count + 64)
        state.withLock { state in
            if let old = state.answers[key] {
                state.bytes -= old.size
            } else if state.bytes + answer.size > Self.maxBytes {
                state.answers.removeAll()
                state.bytes = 0
            }
            state.answers[key] = answer
            state.bytes += answer.size
        }
    }
}
