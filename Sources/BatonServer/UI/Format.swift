import BatonCore
import Foundation

/// How values read on the pages: dates, durations, states and JSON.
enum Format {
    /// Times are shown in UTC, the zone logical dates and intervals are defined in, so a
    /// run's times and its interval read alike; the `datetime` attribute carries the instant.
    static func time(_ date: Date?, seconds: Bool = true) -> HTML {
        guard let date else { return "<span class=\"muted\">—</span>" }
        let iso = isoString(date)
        return "<time datetime=\"\(iso)\" title=\"\(iso)\">\(dateText(date, seconds: seconds))</time>"
    }

    static func dateText(_ date: Date, seconds: Bool = true) -> String {
        let text = UTCTimestamp.readable(date)
        return seconds ? text : String(text.prefix(16))
    }

    /// Only the clock part, for axes and dense tables.
    static func clockText(_ date: Date) -> String {
        String(UTCTimestamp.readable(date).suffix(8))
    }

    static func isoString(_ date: Date) -> String {
        UTCTimestamp.iso(date)
    }

    /// "0.8s", "12s", "3m 05s", "5m", "1h 02m", "2d 03h".
    static func duration(_ seconds: Double?) -> String {
        guard let seconds, seconds.isFinite else { return "—" }
        let value = max(0, seconds)
        if value < 10 { return String(format: "%.1fs", value) }
        let whole = Int(value.rounded())
        if whole < 60 { return "\(whole)s" }
        if whole < 3600 { return whole % 60 == 0 ? "\(whole / 60)m" : String(format: "%dm %02ds", whole / 60, whole % 60) }
        if whole < 86400 {
            let minutes = (whole % 3600) / 60
            return minutes == 0 ? "\(whole / 3600)h" : String(format: "%dh %02dm", whole / 3600, minutes)
        }
        return String(format: "%dd %02dh", whole / 86400, (whole % 86400) / 3600)
    }

    /// "in 23 min", "5 min ago".
    static func relative(_ date: Date, now: Date = Date()) -> String {
        let delta = date.timeIntervalSince(now)
        let magnitude = abs(delta)
        let text: String
        if magnitude < 45 { return delta >= 0 ? "in a moment" : "just now" }
        else if magnitude < 3600 { text = "\(Int((magnitude / 60).rounded())) min" }
        else if magnitude < 86400 {
            let hours = Int((magnitude / 3600).rounded())
            text = hours == 1 ? "1 hour" : "\(hours) hours"
        } else {
            let days = Int((magnitude / 86400).rounded())
            text = days == 1 ? "1 day" : "\(days) days"
        }
        return delta >= 0 ? "in \(text)" : "\(text) ago"
    }

    /// A state name as words: `up_for_retry` reads "up for retry".
    static func stateWords(_ state: String) -> String { state.replacingOccurrences(of: "_", with: " ") }

    /// The CSS class that colours a state, the same on every page. Unknown states get a
    /// neutral class; the name is reduced to safe characters first.
    static func stateClass(_ state: String?) -> String {
        guard let state, !state.isEmpty else { return "st-none" }
        let safe = state.lowercased().filter { $0.isASCII && ($0.isLetter || $0 == "_") }
        return "st-" + safe
    }

    /// A pill with a coloured dot and the state's name.
    static func badge(_ state: String, live: String? = nil) -> HTML {
        let liveAttribute: HTML = live.map { " data-live-state=\"\($0)\"" } ?? .empty
        return "<span class=\"badge \(stateClass(state))\"\(liveAttribute)><span class=\"dot\" aria-hidden=\"true\"></span><span class=\"label\">\(stateWords(state))</span></span>"
    }

    /// Values as people typed them in YAML: strings bare, everything else as compact JSON.
    static func value(_ value: JSONValue?) -> String {
        guard let value else { return "" }
        if case .string(let text) = value { return text }
        return value.compactJSON
    }

    /// Indented JSON for outputs, with sorted keys so the same output always reads the same.
    static func prettyJSON(_ value: JSONValue) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return value.compactJSON }
        return String(decoding: data, as: UTF8.self)
    }

    static func truncated(_ text: String, _ limit: Int) -> String {
        text.count <= limit ? text : String(text.prefix(limit - 1)) + "…"
    }

    static func plural(_ count: Int, _ word: String, _ plural: String? = nil) -> String {
        "\(count) " + (count == 1 ? word : (plural ?? word + "s"))
    }

    static func command(_ command: TaskCommand) -> String {
        switch command {
        case .shell(let text): return text
        case .argv(let items): return items.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        }
    }
}

/// The order states are listed in legends and summaries.
enum StateOrder {
    static let run = ["running", "queued", "success", "failed", "cancelled"]
    static let task = [
        "running", "queued", "pending", "up_for_retry", "success", "failed", "upstream_failed", "skipped", "cancelled",
    ]
    static let attempt = ["running", "success", "failed", "timed_out", "lost", "cancelled", "interrupted"]
}
