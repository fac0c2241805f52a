import Foundation

/// Parses human durations such as `500ms`, `30s`, `5m`, `1h30m`, `2d`, `1 hour`, or a bare
/// number of seconds, into seconds.
public enum DurationText {
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var value: String
        public var description: String {
            "'\(value)' is not a duration; write a number with a unit, like 500ms, 30s, 5m, 1h30m or 2d"
        }
    }

    private static let units: [(names: [String], seconds: Double)] = [
        (["ms", "millisecond", "milliseconds"], 0.001),
        (["s", "sec", "secs", "second", "seconds"], 1),
        (["m", "min", "mins", "minute", "minutes"], 60),
        (["h", "hr", "hrs", "hour", "hours"], 3600),
        (["d", "day", "days"], 86400),
        (["w", "week", "weeks"], 604_800),
    ]

    public static func seconds(_ text: String) throws(ParseError) -> Double {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if let plain = Double(trimmed), plain >= 0, plain.isFinite { return plain }
        var total = 0.0
        var index = trimmed.startIndex
        var sawComponent = false
        while index < trimmed.endIndex {
            while index < trimmed.endIndex, trimmed[index] == " " { index = trimmed.index(after: index) }
            if index == trimmed.endIndex { break }
            let numberStart = index
            while index < trimmed.endIndex, trimmed[index].isNumber || trimmed[index] == "." {
                index = trimmed.index(after: index)
            }
            guard let number = Double(trimmed[numberStart..<index]) else { throw ParseError(value: text) }
            while index < trimmed.endIndex, trimmed[index] == " " { index = trimmed.index(after: index) }
            let unitStart = index
            while index < trimmed.endIndex, trimmed[index].isLetter { index = trimmed.index(after: index) }
            let unit = String(trimmed[unitStart..<index])
            guard let factor = units.first(where: { $0.names.contains(unit) })?.seconds else {
                throw ParseError(value: text)
            }
            total += number * factor
            sawComponent = true
        }
        guard sawComponent else { throw ParseError(value: text) }
        return total
    }

    /// A compact rendering such as `1h30m`, `45s` or `250ms`.
    public static func format(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 {
            return seconds.rounded() == seconds ? "\(Int(seconds))s" : String(format: "%.1fs", seconds)
        }
        var remaining = Int(seconds.rounded())
        var parts: [String] = []
        for (suffix, size) in [("d", 86400), ("h", 3600), ("m", 60), ("s", 1)] where remaining >= size {
            parts.append("\(remaining / size)\(suffix)")
            remaining %= size
        }
        return parts.joined()
    }
}
