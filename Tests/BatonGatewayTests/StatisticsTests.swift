import Foundation
import NIOCore
import Testing

@testable import BatonGateway

@Suite("Statistics: PSI, bins, A/B intervals, JSON scanning, latency histogram")
struct StatisticsTests {
    @Test("quantile bins of a uniform sample hold equal shares")
    func quantileBins() throws {
        let bins = try Bins.fromSample((0..<1000).map(Double.init), count: 10)
        #expect(bins.shares.count == 10)
        #expect(bins.shares.allSatisfy { abs($0 - 0.1) < 1e-9 })
        #expect(bins.edges.first == 0)
        #expect(bins.edges.last == 999)
        #expect(bins.index(of: -5) == 0)
        #expect(bins.index(of: 5000) == 9)
        // Ties merge bins instead of making empty ones.
        let tied = try Bins.fromSample([1, 1, 1, 1, 2], count: 10)
        #expect(tied.edges == [1, 2, 2])
        #expect(tied.shares == [0.8, 0.2])
        let constant = try Bins.fromSample([3, 3, 3], count: 10)
        #expect(constant.shares == [1])
        #expect(throws: StatisticsError.self) { try Bins.fromSample([], count: 10) }
        #expect(throws: StatisticsError.self) { try Bins(edges: [0, 1], shares: [0.5, 0.5]) }
    }

    @Test("PSI is 0 for the same distribution and matches the formula for a known shift")
    func psi() throws {
        let bins = try Bins(edges: [0, 1, 2], shares: [0.5, 0.5])
        #expect(PopulationStability.psi(baseline: bins, live: [0.5, 1.5, 0.2, 1.9]) == 0)
        // A quarter in the first bin, three quarters in the second:
        // (0.25 − 0.5)·ln(0.5) + (0.75 − 0.5)·ln(1.5) = 0.27465.
        let shifted = PopulationStability.psi(baseline: bins, live: [0.5, 1.5, 1.6, 1.7])
        #expect(abs(shifted - 0.274653) < 1e-5)
        // An empty live bin uses epsilon instead of ln(0).
        let oneSided = PopulationStability.psi(baseline: bins, live: [1.5, 1.5])
        let expected = (1e-4 - 0.5) * log(1e-4 / 0.5) + (1 - 0.5) * log(1 / 0.5)
        #expect(abs(oneSided - expected) < 1e-9)
        #expect(PopulationStability.psi(baseline: bins, live: []) == 0)
        // A sample of the baseline's own distribution stays well below 0.1; a shifted one does not.
        let baseline = try Bins.fromSample((0..<5000).map { Double($0 % 1000) }, count: 10)
        #expect(PopulationStability.psi(baseline: baseline, live: (0..<1000).map { Double(($0 * 7) % 1000) }) < 0.01)
        #expect(PopulationStability.psi(baseline: baseline, live: (0..<1000).map { Double($0 % 1000) + 300 }) > 0.2)
    }

    @Test("means, Welch differences and proportions have the textbook intervals")
    func confidenceIntervals() {
        let a = ABStatistics.mean([1, 2, 3, 4, 5])
        #expect(a.mean == 3)
        #expect(abs(a.variance - 2.5) < 1e-12)
        #expect(abs(a.standardError - 0.707107) < 1e-6)
        #expect(abs(a.low - (3 - 1.959964 * 0.707107)) < 1e-5)
        #expect(abs(a.high - 4.385903) < 1e-5)
        let b = ABStatistics.mean(count: 4, sum: 20, sumOfSquares: 104)  // 4, 4, 6, 6: mean 5, variance 4/3
        #expect(b.mean == 5)
        #expect(abs(b.variance - 4.0 / 3) < 1e-12)
        let difference = ABStatistics.difference(a, b)
        let se = (2.5 / 5 + (4.0 / 3) / 4).squareRoot()
        #expect(difference.difference == 2)
        #expect(abs(difference.standardError - se) < 1e-12)
        #expect(abs(difference.low - (2 - 1.959964 * se)) < 1e-5)
        #expect(difference.significant)
        // Wilson interval of 50/100: [0.4038, 0.5962].
        let half = ABStatistics.proportion(successes: 50, trials: 100)
        #expect(abs(half.low - 0.4038) < 1e-4)
        #expect(abs(half.high - 0.5962) < 1e-4)
        let none = ABStatistics.proportion(successes: 0, trials: 20)
        #expect(none.low == 0)
        #expect(abs(none.high - 0.1611) < 1e-4)
        let lift = ABStatistics.proportionDifference(successesA: 50, trialsA: 100, successesB: 60, trialsB: 100)
        #expect(abs(lift.difference - 0.1) < 1e-12)
        #expect(abs(lift.standardError - 0.07) < 1e-12)
        #expect(abs(lift.low - (0.1 - 1.959964 * 0.07)) < 1e-5)
        #expect(!lift.significant)
        #expect(ABStatistics.mean([]).count == 0)
        #expect(ABStatistics.mean([7]).standardError == 0)
    }

    @Test("the prediction is found in the usual answer shapes")
    func predictionScanning() {
        func scan(_ text: String) -> Double? { JSONScan.prediction(in: ByteBuffer(string: text)) }
        #expect(scan(#"{"prediction": 0.42}"#) == 0.42)
        #expect(scan(#"{"model": "churn", "churn_probability": 0.7, "prediction": 1}"#) == 0.7)
        #expect(scan(#"{"predictions": [0.1, 0.2]}"#) == 0.1)
        #expect(scan(#"{"predictions": [{"score": 0.3, "label": "x"}]}"#) == 0.3)
        #expect(scan(#"{"results": [{"id": "a", "churn_probability": 0.55}], "score": 9}"#) == 0.55)
        #expect(scan(#"[{"prediction": -1.5e-3}]"#) == -0.0015)
        #expect(scan(#"{"meta": {"prediction": 5}, "score": 0.25}"#) == 0.25)
        #expect(scan(#"{"label": "churn"}"#) == nil)
        #expect(scan(#"{"prediction": "yes"}"#) == nil)
        #expect(scan("not json") == nil)
        #expect(scan(#"{"prediction": "#) == nil)
        #expect(scan(#"{"a": "x\"y", "score": 1.5e19}"#) == 1.5e19)
        #expect(scan(#"{"score": 12345678.123456789}"#) == 12345678.123456789)
    }

    @Test("numeric inputs come from the top level and from instances or rows")
    func inputScanning() {
        func inputs(_ text: String) -> [String] {
            var found: [String] = []
            JSONScan.numericInputs(in: ByteBuffer(string: text), maxRows: 2) { found.append("\($0)=\($1)") }
            return found
        }
        #expect(inputs(#"{"tenure": 12, "plan": "pro", "charges": 70.25, "flag": true}"#) == ["tenure=12.0", "charges=70.25"])
        #expect(inputs(#"{"instances": [{"a": 1}, {"a": 2, "b": "x"}, {"a": 3}], "k": 4}"#) == ["a=1.0", "a=2.0", "k=4.0"])
        #expect(inputs(#"{"rows": [[1, 2]], "nested": {"z": 1}}"#) == [])
        #expect(inputs("[1, 2]") == [])
        #expect(JSONScan.field("customer_id", in: ByteBuffer(string: #"{"x": {"customer_id": 1}, "customer_id": "c-9"}"#)) == "c-9")
        #expect(JSONScan.field("customer_id", in: ByteBuffer(string: #"{"customer_id": 77}"#)) == "77")
        #expect(JSONScan.field("customer_id", in: ByteBuffer(string: #"{"other": 77}"#)) == nil)
    }

    @Test("latency percentiles come from log buckets within 9 %")
    func latencyHistogram() {
        var histogram = LatencyHistogram()
        for micros in 1...1000 { histogram.record(nanos: Int64(micros) * 1000) }
        let p50 = histogram.percentileMs(0.5)
        let p99 = histogram.percentileMs(0.99)
        #expect(p50 >= 0.5 && p50 <= 0.5 * 1.095, "p50 \(p50)")
        #expect(p99 >= 0.99 && p99 <= 1.0, "p99 \(p99)")
        var other = LatencyHistogram()
        other.record(nanos: 2_000_000_000)
        histogram.merge(other)
        #expect(histogram.total == 1001)
        #expect(histogram.percentileMs(1) == 2000)
        #expect(LatencyHistogram.bucket(nanos: 1) == 0)
        #expect(LatencyHistogram.bucket(nanos: Int64.max) == LatencyHistogram.bucketCount - 1)
    }

    @Test("sticky rolls are spread evenly and fixed")
    func stickyRolls() {
        let rolls = (0..<10_000).map { Route.roll(key: "customer-\($0)") }
        let below = rolls.filter { $0 < 10 }.count
        #expect(below > 800 && below < 1200, "\(below) of 10000 keys under 10 %")
        #expect(Route.roll(key: "customer-1") == Route.roll(key: "customer-1"))
    }
}

@Suite struct RequestLogTests {
    @Test("the request log remembers the newest requests, forgets the oldest and counts a metric once")
    func boundedAndOnce() {
        let log = RequestLog(capacity: 3)
        for index in 1...4 { log.record(requestID: "r\(index)", version: index % 2 == 0 ? "2" : "1") }
        #expect(log.version(of: "r1") == nil, "the oldest is forgotten when the log is full")
        #expect(log.version(of: "r4") == "2")
        #expect(log.claim(requestID: "r3", metric: "converted") == FeedbackClaim(version: "1", duplicate: false))
        #expect(log.claim(requestID: "r3", metric: "converted") == FeedbackClaim(version: "1", duplicate: true))
        #expect(log.claim(requestID: "r3", metric: "revenue") == FeedbackClaim(version: "1", duplicate: false))
        log.unclaim(requestID: "r3", metric: "revenue")
        #expect(log.claim(requestID: "r3", metric: "revenue")?.duplicate == false, "a claim taken back counts again")
        #expect(log.claim(requestID: "r1", metric: "converted") == nil)
        // A caller reusing its id: the newest answer counts and no slot is spent.
        log.record(requestID: "r4", version: "1")
        log.record(requestID: "r5", version: "1")
        #expect(log.version(of: "r4") == "1")
        #expect(log.version(of: "r2") == nil)
        #expect(log.version(of: "r3") == "1")
    }
}
