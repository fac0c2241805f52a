import Foundation

/// A binned distribution: `edges` ascending with `shares.count + 1` entries, `shares` summing to 1.
/// Bin `i` holds values in `edges[i] ..< edges[i + 1]`; the first and last bins are open-ended, so
/// a live value below the baseline's minimum or above its maximum still lands in a bin.
public struct Bins: Sendable, Codable, Hashable {
    public var edges: [Double]
    public var shares: [Double]

    public init(edges: [Double], shares: [Double]) throws(StatisticsError) {
        guard edges.count == shares.count + 1, !shares.isEmpty else {
            throw .malformedBins("bins need one more edge than shares (got \(edges.count) edges, \(shares.count) shares)")
        }
        guard zip(edges, edges.dropFirst()).allSatisfy({ $0 <= $1 }) else {
            throw .malformedBins("bin edges must be ascending: \(edges)")
        }
        guard shares.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
            throw .malformedBins("bin shares must be finite and not negative: \(shares)")
        }
        self.edges = edges
        self.shares = shares
    }

    /// Quantile bins of a baseline sample: `count` bins holding about equal shares. Repeated
    /// values can make quantiles coincide; such bins are merged, so there may be fewer than
    /// `count` (a constant sample has one). Non-finite values are ignored.
    public static func fromSample(_ values: [Double], count: Int = 10) throws(StatisticsError) -> Bins {
        let sorted = values.filter(\.isFinite).sorted()
        guard !sorted.isEmpty else { throw .emptySample("a baseline needs at least one finite value") }
        guard count >= 1 else { throw .malformedBins("a baseline needs at least one bin (asked for \(count))") }
        var edges = [sorted[0]]
        for step in 1..<count {
            let edge = sorted[min(sorted.count - 1, Int((Double(step) / Double(count) * Double(sorted.count)).rounded(.down)))]
            if edge > edges[edges.count - 1] { edges.append(edge) }
        }
        // The maximum closes the last bin. When it equals the last quantile edge (a frequent top
        // value) the last bin is `[max, max]` and holds just that value, instead of lumping it
        // with everything below.
        edges.append(sorted[sorted.count - 1])
        var counts = [Int](repeating: 0, count: edges.count - 1)
        for value in sorted { counts[binIndex(of: value, edges: edges)] += 1 }
        return try Bins(edges: edges, shares: counts.map { Double($0) / Double(sorted.count) })
    }

    /// Which bin a value falls in (see the type's comment for the open ends).
    public func index(of value: Double) -> Int { Self.binIndex(of: value, edges: edges) }

    static func binIndex(of value: Double, edges: [Double]) -> Int {
        // Binary search for the number of inner edges at or below the value.
        var low = 1
        var high = edges.count - 1
        while low < high {
            let middle = (low + high) / 2
            if edges[middle] <= value { low = middle + 1 } else { high = middle }
        }
        return low - 1
    }
}

/// Why a statistic could not be computed.
public enum StatisticsError: Error, Sendable, Equatable, CustomStringConvertible {
    case malformedBins(String)
    case emptySample(String)

    public var description: String {
        switch self {
        case .malformedBins(let message), .emptySample(let message): message
        }
    }
}

/// The population stability index: how far a live distribution moved from a baseline.
public enum PopulationStability {
    /// Stands in for an empty bin's share on either side: `ln(0)` would make one empty bin
    /// dominate (or break) the sum. 1e-4 is the usual choice; it caps one bin's contribution at
    /// about `share · 9.2`.
    public static let epsilon = 1e-4

    /// `Σ (live − base) · ln(live / base)` over the baseline's bins, with live values binned
    /// like the baseline and shares below `epsilon` raised to it. 0 means no shift; by the usual
    /// reading, below 0.1 is stable, 0.1 to 0.2 a moderate shift and above 0.2 a significant one.
    /// Returns 0 for an empty live sample (nothing to compare yet).
    public static func psi(baseline: Bins, live: [Double]) -> Double {
        let finite = live.filter(\.isFinite)
        guard !finite.isEmpty else { return 0 }
        var counts = [Int](repeating: 0, count: baseline.shares.count)
        for value in finite { counts[baseline.index(of: value)] += 1 }
        let total = baseline.shares.reduce(0, +)
        var sum = 0.0
        for (index, count) in counts.enumerated() {
            let base = max(total > 0 ? baseline.shares[index] / total : 0, epsilon)
            let current = max(Double(count) / Double(finite.count), epsilon)
            sum += (current - base) * log(current / base)
        }
        return sum
    }
}

/// A mean with its 95 % confidence interval.
public struct MeanEstimate: Sendable, Codable, Hashable {
    public var count: Int
    public var mean: Double
    /// Sample variance (n − 1 in the denominator); 0 for fewer than two values.
    public var variance: Double
    public var standardError: Double
    public var low: Double
    public var high: Double

    enum CodingKeys: String, CodingKey {
        case count, mean, variance
        case standardError = "standard_error"
        case low = "ci_low"
        case high = "ci_high"
    }
}

/// The difference `b − a` of two estimates with its 95 % confidence interval.
public struct DifferenceEstimate: Sendable, Codable, Hashable {
    public var difference: Double
    public var standardError: Double
    public var low: Double
    public var high: Double
    /// Whether the interval excludes 0.
    public var significant: Bool { low > 0 || high < 0 }

    enum CodingKeys: String, CodingKey {
        case difference
        case standardError = "standard_error"
        case low = "ci_low"
        case high = "ci_high"
    }
}

/// A/B summary math. Intervals use the normal approximation (z = 1.96): business metrics in an
/// A/B test come in hundreds or thousands per variant, where Student's t and the normal agree
/// to within a percent; with a handful of values the intervals are somewhat too narrow.
public enum ABStatistics {
    public static let z95 = 1.959963984540054

    /// Mean and interval from the values themselves.
    public static func mean(_ values: [Double]) -> MeanEstimate {
        var sum = 0.0
        var squares = 0.0
        for value in values {
            sum += value
            squares += value * value
        }
        return mean(count: values.count, sum: sum, sumOfSquares: squares)
    }

    /// Mean and interval from running sums, so a store can keep three numbers per variant
    /// instead of every value.
    public static func mean(count: Int, sum: Double, sumOfSquares: Double) -> MeanEstimate {
        guard count > 0 else { return MeanEstimate(count: 0, mean: 0, variance: 0, standardError: 0, low: 0, high: 0) }
        let n = Double(count)
        let mean = sum / n
        let variance = count > 1 ? max(0, (sumOfSquares - n * mean * mean) / (n - 1)) : 0
        let standardError = (variance / n).squareRoot()
        return MeanEstimate(
            count: count, mean: mean, variance: variance, standardError: standardError,
            low: mean - z95 * standardError, high: mean + z95 * standardError)
    }

    /// Welch's difference of two means, `b − a`: the standard errors add without assuming equal
    /// variances.
    public static func difference(_ a: MeanEstimate, _ b: MeanEstimate) -> DifferenceEstimate {
        let standardError = (a.standardError * a.standardError + b.standardError * b.standardError).squareRoot()
        let difference = b.mean - a.mean
        return DifferenceEstimate(
            difference: difference, standardError: standardError,
            low: difference - z95 * standardError, high: difference + z95 * standardError)
    }

    /// A proportion (`successes` of `trials`) with its Wilson score interval, which stays inside
    /// 0...1 and behaves at 0 and 1 successes, where the plain normal interval collapses.
    public static func proportion(successes: Int, trials: Int) -> MeanEstimate {
        guard trials > 0 else { return MeanEstimate(count: 0, mean: 0, variance: 0, standardError: 0, low: 0, high: 0) }
        let n = Double(trials)
        let p = Double(successes) / n
        let z2 = z95 * z95
        let centre = (p + z2 / (2 * n)) / (1 + z2 / n)
        let half = z95 / (1 + z2 / n) * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        return MeanEstimate(
            count: trials, mean: p, variance: p * (1 - p), standardError: (p * (1 - p) / n).squareRoot(),
            low: max(0, centre - half), high: min(1, centre + half))
    }

    /// The difference of two proportions, `b − a`, with the normal (Wald) interval: fine for
    /// the sample sizes an A/B test needs to say anything at all.
    public static func proportionDifference(
        successesA: Int, trialsA: Int, successesB: Int, trialsB: Int
    ) -> DifferenceEstimate {
        let pa = trialsA > 0 ? Double(successesA) / Double(trialsA) : 0
        let pb = trialsB > 0 ? Double(successesB) / Double(trialsB) : 0
        let va = trialsA > 0 ? pa * (1 - pa) / Double(trialsA) : 0
        let vb = trialsB > 0 ? pb * (1 - pb) / Double(trialsB) : 0
        let standardError = (va + vb).squareRoot()
        return DifferenceEstimate(
            difference: pb - pa, standardError: standardError,
            low: pb - pa - z95 * standardError, high: pb - pa + z95 * standardError)
    }
}
