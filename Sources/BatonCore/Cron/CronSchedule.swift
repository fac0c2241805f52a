import Foundation

/// A 5-field cron schedule (minute hour day-of-month month day-of-week) evaluated in the
/// wall-clock time of a chosen time zone.
///
/// Daylight saving time: every scheduled wall-clock time fires exactly once. A time skipped by
/// a spring-forward jump fires at the instant of the jump; a time repeated by a fall-back fires
/// at its first occurrence only.
///
/// Equality compares the normalized expression text, so `@daily` and `0 0 * * *` are distinct
/// values even though they fire at the same times.
public struct CronSchedule: Sendable, Hashable, CustomStringConvertible {
    /// The expression with whitespace normalized (single spaces; presets lowercased).
    public let description: String

    let minutes: CronBits
    let hours: CronBits
    let daysOfMonth: CronBits
    let months: CronBits
    /// 0 = Sunday ... 6 = Saturday (7 is folded into 0 while parsing).
    let daysOfWeek: CronBits
    let dayOfMonthIsWildcard: Bool
    let dayOfWeekIsWildcard: Bool
    /// False for schedules that name only dates that never exist, such as 30 February.
    let canEverFire: Bool

    /// Presets in the order they are listed in error messages.
    static let presets: [(name: String, expression: String)] = [
        ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"),
    ]

    /// How far `nextFire`/`previousFire` search. Eight years covers the longest real wait
    /// (29 February across a non-leap century year, e.g. 2096 to 2104); schedules that can
    /// never fire are caught up front by `canEverFire`.
    static let horizonYears = 9

    private init(description: String, fields: [CronParsedField]) {
        self.description = description
        minutes = fields[0].bits
        hours = fields[1].bits
        daysOfMonth = fields[2].bits
        months = fields[3].bits
        daysOfWeek = fields[4].bits
        dayOfMonthIsWildcard = fields[2].isWildcard
        dayOfWeekIsWildcard = fields[4].isWildcard
        canEverFire = Self.someDateExists(
            daysOfMonth: daysOfMonth, months: months, dayOfWeekMatters: !dayOfWeekIsWildcard)
    }

    // MARK: - Parsing

    /// Parses a 5-field cron expression (minute hour day-of-month month day-of-week) or a preset:
    /// `@hourly`, `@daily` (`@midnight`), `@weekly`, `@monthly`, `@yearly` (`@annually`).
    /// `@once` is not a recurring schedule and is rejected here; callers handle it themselves.
    public static func parse(_ text: String) throws(CronParseError) -> CronSchedule {
        let expression = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let fields = expression.split(whereSeparator: \.isWhitespace).map(String.init)
        let normalized = fields.joined(separator: " ")
        guard let first = fields.first else {
            throw CronParseError(
                expression: expression, field: nil, value: "", message: "the cron expression is empty",
                fix: "write 5 fields (minute hour day-of-month month day-of-week), e.g. 0 * * * * for hourly, or a preset such as @daily")
        }
        if first.hasPrefix("@") {
            return try preset(first, fieldCount: fields.count, expression: expression)
        }
        guard fields.count == 5 else {
            throw CronParseError(
                expression: expression, field: nil, value: normalized,
                message: "expected 5 fields (minute hour day-of-month month day-of-week), got \(fields.count)",
                fix: fieldCountFix(fields))
        }
        var parsed: [CronParsedField] = []
        for (spec, field) in zip(CronFieldSpec.all, fields) {
            parsed.append(try CronFieldParser(expression: expression, spec: spec).parse(field))
        }
        return CronSchedule(description: normalized, fields: parsed)
    }

    private static func preset(_ token: String, fieldCount: Int, expression: String) throws(CronParseError) -> CronSchedule {
        let name = token.lowercased()
        let names = presets.map(\.name)
        guard let match = presets.first(where: { $0.name == name }) else {
            let list = names.joined(separator: ", ")
            let fix = Suggest.closest(to: name, in: names).map { "did you mean \($0)? presets are \(list)" }
                ?? "use one of the presets \(list), or 5 cron fields"
            throw CronParseError(expression: expression, field: nil, value: token, message: "unknown preset '\(token)'", fix: fix)
        }
        guard fieldCount == 1 else {
            throw CronParseError(
                expression: expression, field: nil, value: expression,
                message: "preset \(name) can't be combined with other fields",
                fix: "write just \(name), or 5 cron fields such as \(match.expression)")
        }
        // Presets are fixed, valid expressions.
        let fields = match.expression.split(separator: " ").map(String.init)
        var parsed: [CronParsedField] = []
        for (spec, field) in zip(CronFieldSpec.all, fields) {
            guard let value = try? CronFieldParser(expression: match.expression, spec: spec).parse(field) else {
                preconditionFailure("invalid built-in preset \(match.expression)")
            }
            parsed.append(value)
        }
        return CronSchedule(description: name, fields: parsed)
    }

    private static func fieldCountFix(_ fields: [String]) -> String {
        switch fields.count {
        case 1..<5:
            let padded = (fields + Array(repeating: "*", count: 5 - fields.count)).joined(separator: " ")
            return "write all 5 fields, using * for 'any', e.g. \(padded)"
        case 6:
            return "remove the extra field; if the first one is seconds (Quartz/Spring style), drop it: \(fields.dropFirst().joined(separator: " "))"
        case 7:
            return "if the fields include seconds and year (Quartz style), drop both: \(fields.dropFirst().dropLast().joined(separator: " "))"
        default:
            return "write exactly 5 fields separated by spaces, e.g. 0 * * * * for hourly"
        }
    }

    /// Whether the day fields can ever match. Only day-of-month alone can rule out every date
    /// (e.g. 30 February); a restricted day-of-week always matches some day.
    private static func someDateExists(daysOfMonth: CronBits, months: CronBits, dayOfWeekMatters: Bool) -> Bool {
        if dayOfWeekMatters { return true }
        // Leap years make 29 February exist.
        let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        return months.values.contains { month in daysOfMonth.values.contains { $0 <= longest[month] } }
    }

    // MARK: - Matching

    /// Vixie cron rule: when both day fields are restricted a day matches if either does;
    /// a wildcard field defers entirely to the other.
    func dayMatches(year: Int, month: Int, day: Int) -> Bool {
        if dayOfWeekIsWildcard { return daysOfMonth.contains(day) }
        let weekdayMatches = daysOfWeek.contains(CronCivil.weekday(year: year, month: month, day: day))
        if dayOfMonthIsWildcard { return weekdayMatches }
        return weekdayMatches || daysOfMonth.contains(day)
    }

    /// The earliest matching wall-clock minute at or after `start`, jumping whole months, days
    /// and hours at a time so that even rare schedules cost a handful of iterations.
    func nextMatch(onOrAfter start: CronLocalTime, throughYear lastYear: Int) -> CronLocalTime? {
        var (year, month, day, hour, minute) = (start.year, start.month, start.day, start.hour, start.minute)
        while year <= lastYear {
            guard let nextMonth = months.next(atOrAfter: month) else {
                (year, month, day, hour, minute) = (year + 1, 1, 1, 0, 0)
                continue
            }
            if nextMonth != month { (month, day, hour, minute) = (nextMonth, 1, 0, 0) }
            let length = CronCivil.daysInMonth(year: year, month: month)
            while day <= length, !dayMatches(year: year, month: month, day: day) { (day, hour, minute) = (day + 1, 0, 0) }
            if day > length {
                (month, day, hour, minute) = (month + 1, 1, 0, 0)
                continue
            }
            guard let nextHour = hours.next(atOrAfter: hour) else {
                (day, hour, minute) = (day + 1, 0, 0)
                continue
            }
            if nextHour != hour { (hour, minute) = (nextHour, 0) }
            guard let nextMinute = minutes.next(atOrAfter: minute) else {
                (hour, minute) = (hour + 1, 0)
                continue
            }
            return CronLocalTime(year: year, month: month, day: day, hour: hour, minute: nextMinute)
        }
        return nil
    }

    /// The latest matching wall-clock minute at or before `start`; the mirror of `nextMatch`.
    func previousMatch(onOrBefore start: CronLocalTime, downToYear firstYear: Int) -> CronLocalTime? {
        var (year, month, day, hour, minute) = (start.year, start.month, start.day, start.hour, start.minute)
        while year >= firstYear {
            guard let previousMonth = months.previous(atOrBefore: month) else {
                (year, month, day, hour, minute) = (year - 1, 12, 31, 23, 59)
                continue
            }
            if previousMonth != month { (month, day, hour, minute) = (previousMonth, 31, 23, 59) }
            let length = CronCivil.daysInMonth(year: year, month: month)
            if day > length { (day, hour, minute) = (length, 23, 59) }
            while day >= 1, !dayMatches(year: year, month: month, day: day) { (day, hour, minute) = (day - 1, 23, 59) }
            if day < 1 {
                (month, day, hour, minute) = (month - 1, 31, 23, 59)
                continue
            }
            guard let previousHour = hours.previous(atOrBefore: hour) else {
                (day, hour, minute) = (day - 1, 23, 59)
                continue
            }
            if previousHour != hour { (hour, minute) = (previousHour, 59) }
            guard let previousMinute = minutes.previous(atOrBefore: minute) else {
                (hour, minute) = (hour - 1, 59)
                continue
            }
            return CronLocalTime(year: year, month: month, day: day, hour: hour, minute: previousMinute)
        }
        return nil
    }

    // MARK: - Fire times

    /// Dates this far out (about ±3 million years) are treated as having no fire time, which
    /// keeps the integer arithmetic below far from overflow.
    private static let supportedSeconds = 1e14

    /// The first fire instant strictly after `instant`, in the wall-clock time of `timeZone`.
    /// nil only for schedules that can never fire, such as `0 0 30 2 *`.
    public func nextFire(after instant: Date, in timeZone: TimeZone) -> Date? {
        let after = instant.timeIntervalSince1970
        guard canEverFire, abs(after) < Self.supportedSeconds else { return nil }
        let mapper = CronZoneMapper(zone: timeZone)
        let second = Int(after.rounded(.down))
        // Every wall-clock minute up to the current one maps to an instant <= `instant`
        // (the mapping never decreases), so the search starts at the following minute.
        let localNow = second + mapper.offset(atSecond: second)
        var cursor = CronLocalTime(localSeconds: CronCivil.floorDivide(localNow, 60) * 60 + 60)
        let lastYear = cursor.year + Self.horizonYears
        while let match = nextMatch(onOrAfter: cursor, throughYear: lastYear) {
            let fire = mapper.instant(forLocal: match.localSeconds)
            // Not yet past `instant` only inside a repeated fall-back hour (those minutes already
            // fired at their first occurrence) or when several skipped times share one instant.
            if TimeInterval(fire) > after { return Date(timeIntervalSince1970: TimeInterval(fire)) }
            cursor = match
            cursor.minute += 1
        }
        return nil
    }

    /// The last fire instant strictly before `instant`, in the wall-clock time of `timeZone`.
    /// Returns exactly the instants `nextFire` produces. nil only for schedules that can never fire.
    public func previousFire(before instant: Date, in timeZone: TimeZone) -> Date? {
        let before = instant.timeIntervalSince1970
        guard canEverFire, abs(before) < Self.supportedSeconds else { return nil }
        let mapper = CronZoneMapper(zone: timeZone)
        let second = Int(before.rounded(.up))
        // A wall-clock time that fired before `instant` can be ahead of the current wall clock
        // if the offset has since dropped (fall-back), so bound it with the larger recent offset.
        let offset = max(mapper.offset(atSecond: second), mapper.offset(atSecond: second - 2 * 86_400))
        var cursor = CronLocalTime(localSeconds: CronCivil.floorDivide(second + offset - 1, 60) * 60)
        let firstYear = cursor.year - Self.horizonYears
        while let match = previousMatch(onOrBefore: cursor, downToYear: firstYear) {
            let fire = mapper.instant(forLocal: match.localSeconds)
            if TimeInterval(fire) < before { return Date(timeIntervalSince1970: TimeInterval(fire)) }
            cursor = match
            cursor.minute -= 1
        }
        return nil
    }
}
