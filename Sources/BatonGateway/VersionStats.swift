import Foundation
import Metrics
import Synchronization

/// Latency counts in fixed, log-spaced buckets: eight per doubling from 10 µs up to about 335 s,
/// so any two histograms merge by adding counts and a percentile is one pass over 202 counters.
/// A percentile is reported as its bucket's upper bound (capped at the largest latency seen),
/// which is at most 9 % above the true value.
struct LatencyHistogram: Sendable {
    static let bucketCount = 202
    static let firstBoundNanos = 10_000.0
    static let perDoubling = 8.0

    /// Empty until the first value, so idle window slots cost nothing.
    private(set) var counts: [Int] = []
    private(set) var total = 0
    private(set) var maxNanos: Int64 = 0

    static func bucket(nanos: Int64) -> Int {
        guard Double(nanos) >= firstBoundNanos else { return 0 }
        let index = 1 + Int((log2(Double(nanos) / firstBoundNanos) * perDoubling).rounded(.down))
        return min(index, bucketCount - 1)
    }

    /// The upper bound of a bucket, in nanoseconds.
    static func upperBoundNanos(_ bucket: Int) -> Double {
        firstBoundNanos * exp2(Double(bucket) / perDoubling)
    }

    mutating func record(nanos: Int64) {
        if counts.isEmpty { counts = [Int](repeating: 0, count: Self.bucketCount) }
        counts[Self.bucket(nanos: nanos)] += 1
        total += 1
        maxNanos = max(maxNanos, nanos)
    }

    mutating func merge(_ other: LatencyHistogram) {
        guard other.total > 0 else { return }
        if counts.isEmpty { counts = [Int](repeating: 0, count: Self.bucketCount) }
        for index in other.counts.indices { counts[index] += other.counts[index] }
        total += other.total
        maxNanos = max(maxNanos, other.maxNanos)
    }

    /// The `share` quantile (0...1) in milliseconds; 0 without values.
    func percentileMs(_ share: Double) -> Double {
        guard total > 0 else { return 0 }
        let rank = max(1, Int((share * Double(total)).rounded(.up)))
        var seen = 0
        for (index, count) in counts.enumerated() {
            seen += count
            if seen >= rank { return min(Self.upperBoundNanos(index), Double(maxNanos)) / 1e6 }
        }
        return Double(maxNanos) / 1e6
    }

    var buckets: [LatencyBucket] {
        counts.indices.compactMap { index in
            counts[index] > 0 ? LatencyBucket(upperMs: Self.upperBoundNanos(index) / 1e6, count: counts[index]) : nil
        }
    }
}

/// Running count, sum, minimum and maximum of the predictions.
struct PredictionMoments: Sendable {
    var count = 0
    var sum = 0.0
    var min = Double.infinity
    var max = -Double.infinity

    mutating func record(_ value: Double) {
        count += 1
        sum += value
        min = Swift.min(min, value)
        max = Swift.max(max, value)
    }

    mutating func merge(_ other: PredictionMoments) {
        count += other.count
        sum += other.sum
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
    }
}

/// One interval of the sliding window.
struct WindowSlot: Sendable {
    var epoch = -1
    var requests = 0
    var errors = 0
    var latency = LatencyHistogram()
    var predictions = PredictionMoments()
}

/// A uniform random sample of at most `capacity` values from a stream (Vitter's algorithm R),
/// so memory stays bounded however many requests arrive.
struct Reservoir: Sendable {
    let capacity: Int
    private(set) var values: [Double] = []
    private(set) var seen = 0

    init(capacity: Int) { self.capacity = capacity }

    mutating func add(_ value: Double, random: inout Xorshift) {
        seen += 1
        if values.count < capacity {
            values.append(value)
        } else {
            let slot = Int(random.next() % UInt64(seen))
            if slot < capacity { values[slot] = value }
        }
    }
}

/// A small, fast generator for reservoir sampling: `SystemRandomNumberGenerator` is a system
/// call per number, too slow to run for every input field of every request.
struct Xorshift: Sendable {
    private var state: UInt64

    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
}

/// One drift interval: reservoirs of input fields and of predictions.
struct DriftSlot: Sendable {
    var epoch = -1
    var requests = 0
    var fields: [String: Reservoir] = [:]
    var predictions = Reservoir(capacity: VersionRecorder.reservoirCapacity)
}

/// Everything recorded for one version of one deployment, behind one lock. The lock is held
/// for a few hundred nanoseconds per request; versions never share one.
final class VersionRecorder: Sendable {
    /// The sliding window for `stats(since:)`: 60 slots of 10 s, the last ten minutes.
    static let windowSlotSeconds = 10
    static let windowSlots = 60
    /// The drift window: 6 slots of 10 minutes, the last hour.
    static let driftSlotSeconds = 600
    static let driftSlots = 6
    /// Values kept per input field (and for predictions) per drift slot.
    static let reservoirCapacity = 512
    /// Input fields tracked per version; fields first seen after this many are ignored. With the
    /// slot count and capacity above this bounds the drift memory of a version at
    /// 6 × (64 + 1) × 512 × 8 bytes ≈ 1.6 MB.
    static let maxFields = 64

    let deployment: String
    let version: String
    private let state: Mutex<State>
    private let requestsCounter: Counter
    private let errorsCounter: Counter
    private let latencyTimer: Metrics.Timer

    struct State: Sendable {
        var requests = 0
        var errors = 0
        var latency = LatencyHistogram()
        var predictions = PredictionMoments()
        var window = [WindowSlot](repeating: WindowSlot(), count: VersionRecorder.windowSlots)
        var drift = [DriftSlot](repeating: DriftSlot(), count: VersionRecorder.driftSlots)
        var random: Xorshift
    }

    init(deployment: String, version: String) {
        self.deployment = deployment
        self.version = version
        state = Mutex(State(random: Xorshift(seed: UInt64.random(in: 1...UInt64.max))))
        let dimensions = [("deployment", deployment), ("version", version)]
        requestsCounter = Counter(label: "baton_serve_requests_total", dimensions: dimensions)
        errorsCounter = Counter(label: "baton_serve_errors_total", dimensions: dimensions)
        latencyTimer = Metrics.Timer(label: "baton_serve_latency_seconds", dimensions: dimensions)
    }

    /// One finished request: its latency, whether it failed, and its prediction if one was found.
    func record(nanos: Int64, failed: Bool, prediction: Double?, now seconds: Int) {
        let windowEpoch = seconds / Self.windowSlotSeconds
        let driftEpoch = seconds / Self.driftSlotSeconds
        state.withLock { state in
            state.requests += 1
            if failed { state.errors += 1 }
            state.latency.record(nanos: nanos)
            let index = windowEpoch % Self.windowSlots
            if state.window[index].epoch != windowEpoch { state.window[index] = WindowSlot(epoch: windowEpoch) }
            state.window[index].requests += 1
            if failed { state.window[index].errors += 1 }
            state.window[index].latency.record(nanos: nanos)
            if let prediction {
                state.predictions.record(prediction)
                state.window[index].predictions.record(prediction)
                let driftIndex = Self.freshDriftSlot(&state, epoch: driftEpoch)
                state.drift[driftIndex].predictions.add(prediction, random: &state.random)
            }
        }
        requestsCounter.increment()
        if failed { errorsCounter.increment() }
        latencyTimer.recordNanoseconds(nanos)
    }

    /// The numeric inputs of one request.
    func recordInputs(_ inputs: [(String, Double)], now seconds: Int) {
        let driftEpoch = seconds / Self.driftSlotSeconds
        state.withLock { state in
            let index = Self.freshDriftSlot(&state, epoch: driftEpoch)
            state.drift[index].requests += 1
            for (name, value) in inputs {
                if state.drift[index].fields[name] == nil {
                    guard state.drift[index].fields.count < Self.maxFields else { continue }
                    state.drift[index].fields[name] = Reservoir(capacity: Self.reservoirCapacity)
                }
                state.drift[index].fields[name]!.add(value, random: &state.random)
            }
        }
    }

    private static func freshDriftSlot(_ state: inout State, epoch: Int) -> Int {
        let index = epoch % driftSlots
        if state.drift[index].epoch != epoch { state.drift[index] = DriftSlot(epoch: epoch) }
        return index
    }

    func reset() {
        state.withLock { state in
            let random = state.random
            state = State(random: random)
        }
    }

    /// Totals since the start (or the last reset), or over the last `window` when given
    /// (rounded up to whole 10 s slots; at most ten minutes back).
    func snapshot(window: Duration?, now seconds: Int) -> VersionStatsSnapshot {
        let (requests, errors, latency, predictions, sample) = state.withLock { state in
            let sample = Self.mergedDrift(state, since: nil, now: seconds).predictions
            guard let window else { return (state.requests, state.errors, state.latency, state.predictions, sample) }
            let currentEpoch = seconds / Self.windowSlotSeconds
            let slotCount = min(Self.windowSlots, max(1, Int((Double(window.components.seconds) / Double(Self.windowSlotSeconds)).rounded(.up))))
            var requests = 0
            var errors = 0
            var latency = LatencyHistogram()
            var predictions = PredictionMoments()
            for slot in state.window where slot.epoch > currentEpoch - slotCount && slot.epoch <= currentEpoch {
                requests += slot.requests
                errors += slot.errors
                latency.merge(slot.latency)
                predictions.merge(slot.predictions)
            }
            return (requests, errors, latency, predictions, sample)
        }
        return VersionStatsSnapshot(
            version: version, requests: requests, errors: errors,
            errorRate: requests > 0 ? Double(errors) / Double(requests) : 0,
            p50Ms: latency.percentileMs(0.5), p90Ms: latency.percentileMs(0.9), p99Ms: latency.percentileMs(0.99),
            maxMs: Double(latency.maxNanos) / 1e6, latencyBuckets: latency.buckets,
            prediction: PredictionSummary(moments: predictions, sample: sample))
    }

    /// The sliding window slot by slot, oldest first, idle slots included as zeros: the last ten
    /// minutes in 10 s steps, for charts.
    func timeline(now seconds: Int) -> [(slotStart: Int, requests: Int, errors: Int, p99Ms: Double)] {
        state.withLock { state in
            let currentEpoch = seconds / Self.windowSlotSeconds
            return (0..<Self.windowSlots).reversed().compactMap { back in
                let epoch = currentEpoch - back
                guard epoch >= 0 else { return nil }
                let slot = state.window[epoch % Self.windowSlots]
                guard slot.epoch == epoch else { return (epoch * Self.windowSlotSeconds, 0, 0, 0) }
                return (epoch * Self.windowSlotSeconds, slot.requests, slot.errors, slot.latency.percentileMs(0.99))
            }
        }
    }

    /// The inputs and predictions sampled over the drift window (or the part of it since `since`).
    func driftWindow(since: Duration?, now seconds: Int) -> InputDistribution {
        state.withLock { state in Self.mergedDrift(state, since: since, now: seconds) }
    }

    private static func mergedDrift(_ state: State, since: Duration?, now seconds: Int) -> InputDistribution {
        let currentEpoch = seconds / driftSlotSeconds
        let slotCount = since.map { min(driftSlots, max(1, Int((Double($0.components.seconds) / Double(driftSlotSeconds)).rounded(.up)))) } ?? driftSlots
        var result = InputDistribution(requests: 0, fields: [:], predictions: [])
        for slot in state.drift where slot.epoch > currentEpoch - slotCount && slot.epoch <= currentEpoch {
            result.requests += slot.requests
            result.predictions += slot.predictions.values
            for (name, reservoir) in slot.fields { result.fields[name, default: []] += reservoir.values }
        }
        return result
    }
}

/// One latency bucket with values: latencies up to `upperMs` (and above the previous bucket's bound).
public struct LatencyBucket: Sendable, Codable, Hashable {
    public var upperMs: Double
    public var count: Int

    enum CodingKeys: String, CodingKey {
        case upperMs = "upper_ms"
        case count
    }
}

/// The distribution of a version's numeric predictions.
public struct PredictionSummary: Sendable, Codable, Hashable {
    public var count: Int
    public var mean: Double
    public var min: Double
    public var max: Double
    /// Ten equal-width bins over the sampled predictions of the drift window; empty without
    /// predictions.
    public var bins: [PredictionBin]

    /// A summary with no predictions.
    public static let none = PredictionSummary(count: 0, mean: 0, min: 0, max: 0, bins: [])

    public init(count: Int, mean: Double, min: Double, max: Double, bins: [PredictionBin]) {
        self.count = count
        self.mean = mean
        self.min = min
        self.max = max
        self.bins = bins
    }

    init(moments: PredictionMoments, sample: [Double]) {
        count = moments.count
        mean = moments.count > 0 ? moments.sum / Double(moments.count) : 0
        min = moments.count > 0 ? moments.min : 0
        max = moments.count > 0 ? moments.max : 0
        bins = Self.equalWidthBins(sample, count: 10)
    }

    static func equalWidthBins(_ values: [Double], count: Int) -> [PredictionBin] {
        guard let low = values.min(), let high = values.max() else { return [] }
        guard high > low else { return [PredictionBin(low: low, high: high, count: values.count)] }
        let width = (high - low) / Double(count)
        var counts = [Int](repeating: 0, count: count)
        for value in values { counts[Swift.min(count - 1, Int((value - low) / width))] += 1 }
        return counts.indices.map { PredictionBin(low: low + Double($0) * width, high: low + Double($0 + 1) * width, count: counts[$0]) }
    }
}

/// Sampled predictions from `low` up to `high`.
public struct PredictionBin: Sendable, Codable, Hashable {
    public var low: Double
    public var high: Double
    public var count: Int
}

/// What one version of a deployment did: since the start or the last reset, or over a recent
/// window (`Gateway.stats(deployment:since:)`).
public struct VersionStatsSnapshot: Sendable, Codable, Hashable {
    public var version: String
    public var requests: Int
    /// Answers with a 5xx status, refused connections and timeouts.
    public var errors: Int
    public var errorRate: Double
    /// Latency percentiles in milliseconds (bucket upper bounds: at most 9 % high).
    public var p50Ms: Double
    public var p90Ms: Double
    public var p99Ms: Double
    public var maxMs: Double
    /// The buckets with values, in ascending order.
    public var latencyBuckets: [LatencyBucket]
    public var prediction: PredictionSummary

    /// Figures as other sources (or tests) know them; what they do not know stays empty.
    public init(
        version: String = "", requests: Int, errors: Int, errorRate: Double, p50Ms: Double, p90Ms: Double? = nil, p99Ms: Double,
        maxMs: Double? = nil, latencyBuckets: [LatencyBucket] = [], prediction: PredictionSummary = .none
    ) {
        self.version = version
        self.requests = requests
        self.errors = errors
        self.errorRate = errorRate
        self.p50Ms = p50Ms
        self.p90Ms = p90Ms ?? p99Ms
        self.p99Ms = p99Ms
        self.maxMs = maxMs ?? p99Ms
        self.latencyBuckets = latencyBuckets
        self.prediction = prediction
    }

    enum CodingKeys: String, CodingKey {
        case version, requests, errors
        case errorRate = "error_rate"
        case p50Ms = "p50_ms"
        case p90Ms = "p90_ms"
        case p99Ms = "p99_ms"
        case maxMs = "max_ms"
        case latencyBuckets = "latency_buckets"
        case prediction
    }
}

/// Live values for drift: a bounded random sample per numeric input field and of the
/// predictions over the drift window (see `VersionRecorder` for the bounds).
public struct InputDistribution: Sendable, Codable, Hashable {
    /// Requests whose inputs were sampled.
    public var requests: Int
    public var fields: [String: [Double]]
    public var predictions: [Double]
}

/// One 10 s slot of a version's recent traffic.
public struct TimelinePoint: Sendable, Hashable {
    public var start: Date
    public var requests: Int
    public var errors: Int
    /// 0 for a slot without requests.
    public var p99Ms: Double

    public init(start: Date, requests: Int, errors: Int, p99Ms: Double) {
        self.start = start
        self.requests = requests
        self.errors = errors
        self.p99Ms = p99Ms
    }
}
