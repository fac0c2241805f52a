import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// UTC timestamps as text, the one formatter for run keys, task environments, API documents,
/// the UI and the CLI. Written by hand: Foundation's ISO 8601 format style costs microseconds
/// per date, and every task launch and every page of runs formats several.
public enum UTCTimestamp {
    /// `2026-11-25T10:00:00Z`, or `2026-11-25T10:00:00.123Z` with milliseconds.
    public static func iso(_ date: Date, milliseconds: Bool = false) -> String {
        let (parts, millis) = components(date)
        let text = "\(day(parts))T\(time(parts))"
        return milliseconds ? "\(text).\(pad(Int32(millis), 3))Z" : "\(text)Z"
    }

    /// `2026-11-25 10:00:00`, for people (always UTC).
    public static func readable(_ date: Date) -> String {
        let (parts, _) = components(date)
        return "\(day(parts)) \(time(parts))"
    }

    private static func components(_ date: Date) -> (tm, Int) {
        let totalMilliseconds = (date.timeIntervalSince1970 * 1000).rounded(.down)
        var seconds = time_t((totalMilliseconds / 1000).rounded(.down))
        let milliseconds = Int(totalMilliseconds - Double(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return (parts, milliseconds)
    }

    private static func day(_ parts: tm) -> String {
        "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))"
    }

    private static func time(_ parts: tm) -> String {
        "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))"
    }

    private static func pad(_ value: Int32, _ width: Int) -> String {
        let text = String(value)
        return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}
