import Foundation

/// A wall-clock minute with no time zone attached. Fields may briefly hold out-of-range values
/// (minute 60, day 0, month 13) while searching; the matchers treat those as "carry/borrow".
struct CronLocalTime: Sendable, Hashable, CustomStringConvertible {
    var year: Int
    var month: Int
    var day: Int
    var hour: Int
    var minute: Int

    /// Seconds since 1970-01-01 00:00 of the same wall clock, as if the zone were UTC.
    var localSeconds: Int {
        CronCivil.days(year: year, month: month, day: day) * 86_400 + hour * 3_600 + minute * 60
    }

    /// The wall-clock minute containing `localSeconds`.
    init(localSeconds: Int) {
        let days = CronCivil.floorDivide(localSeconds, 86_400)
        let secondOfDay = localSeconds - days * 86_400
        (year, month, day) = CronCivil.date(days: days)
        hour = secondOfDay / 3_600
        minute = secondOfDay % 3_600 / 60
    }

    init(year: Int, month: Int, day: Int, hour: Int, minute: Int) {
        (self.year, self.month, self.day, self.hour, self.minute) = (year, month, day, hour, minute)
    }

    var description: String {
        func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(pad(month))-\(pad(day)) \(pad(hour)):\(pad(minute))"
    }
}

/// Proleptic Gregorian arithmetic (H. Hinnant's civil-date algorithms). Used instead of
/// `Calendar` because the scheduler calls `nextFire` on every tick and these are a few integer
/// operations, while `Calendar` lookups cost microseconds each.
enum CronCivil {
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func date(days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// 0 = Sunday ... 6 = Saturday, as in cron.
    static func weekday(year: Int, month: Int, day: Int) -> Int {
        // 1970-01-01 was a Thursday.
        let remainder = (days(year: year, month: month, day: day) + 4) % 7
        return remainder < 0 ? remainder + 7 : remainder
    }

    static func floorDivide(_ value: Int, _ divisor: Int) -> Int {
        let quotient = value / divisor
        return value % divisor != 0 && (value < 0) != (divisor < 0) ? quotient - 1 : quotient
    }

    static func isLeapYear(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeapYear(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }
}

/// Maps wall-clock times in a zone to instants, with the DST rules cron users expect:
/// a skipped wall-clock time maps to the instant the clock jumps, a repeated one maps to its
/// first occurrence. The map never decreases, which is what lets fire times be found by walking
/// wall-clock matches in order.
struct CronZoneMapper {
    let zone: TimeZone

    func offset(atSecond second: Int) -> Int {
        zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(second)))
    }

    /// The instant (whole seconds since 1970) at which wall-clock `local` fires.
    func instant(forLocal local: Int) -> Int {
        // Real offsets are within -12h...+14h, so a day either side brackets any transition
        // that can affect this wall-clock time.
        let before = offset(atSecond: local - 86_400)
        let after = offset(atSecond: local + 86_400)
        // A candidate is real if the zone actually uses that offset at the resulting instant;
        // two real candidates mean the wall-clock time repeats, and the first one wins.
        var earliest = Int.max
        if offset(atSecond: local - before) == before { earliest = local - before }
        if after != before, offset(atSecond: local - after) == after { earliest = min(earliest, local - after) }
        if earliest != .max { return earliest }
        return gapTransition(local: local, before: before, after: after)
    }

    /// `local` does not exist: the clock jumped over it. The transition instant lies in
    /// (local - after, local - before]; binary search it rather than trusting
    /// `nextDaylightSavingTimeTransition`, which is about DST only and not every offset change.
    private func gapTransition(local: Int, before: Int, after: Int) -> Int {
        var low = local - max(before, after)
        var high = local - min(before, after)
        let lowOffset = offset(atSecond: low)
        // Defensive: with no bracketing offset change this is not a plain gap (e.g. two
        // transitions within two days); fall back to the current offset instead of looping.
        guard low < high, offset(atSecond: high) != lowOffset else { return local - offset(atSecond: local) }
        while high - low > 1 {
            let middle = low + (high - low) / 2
            if offset(atSecond: middle) == lowOffset { low = middle } else { high = middle }
        }
        return high
    }
}
