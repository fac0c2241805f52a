import Foundation

/// The span of time a scheduled run processes. Baton follows Airflow: a run's logical date is
/// the start of its interval, and the run is created once the interval has ended.
public struct DataInterval: Sendable, Hashable, CustomStringConvertible {
    public var start: Date
    public var end: Date

    public init(start: Date, end: Date) {
        self.start = start
        self.end = end
    }

    public var description: String { "\(Self.iso(start)) .. \(Self.iso(end))" }

    /// UTC ISO 8601 with seconds, the form used in run keys, env vars and templates.
    public static func iso(_ date: Date) -> String {
        UTCTimestamp.iso(date)
    }
}

/// Decides which intervals of a cron schedule are due, given what was already scheduled.
public enum IntervalPlanner {
    public struct Plan: Sendable, Hashable {
        /// Oldest first.
        public var intervals: [DataInterval]
        /// Older missed intervals left out because of the catch-up bound.
        public var skippedOlder: Bool
    }

    /// The latest interval that has fully ended at `now`.
    public static func latestCompleted(_ cron: CronSchedule, in zone: TimeZone, now: Date) -> DataInterval? {
        guard let end = cron.previousFire(before: now.addingTimeInterval(0.001), in: zone),
            let start = cron.previousFire(before: end, in: zone)
        else { return nil }
        return DataInterval(start: start, end: end)
    }

    /// Intervals to create now. With `catchup`, every interval since the last scheduled one
    /// (or since `startDate` the first time), newest `maxCatchup` at most; without it, only the
    /// latest completed interval if it is new.
    public static func due(
        _ cron: CronSchedule, in zone: TimeZone, catchup: Bool, startDate: Date?, lastScheduledEnd: Date?, now: Date,
        maxCatchup: Int
    ) -> Plan {
        guard let latest = latestCompleted(cron, in: zone, now: now) else { return Plan(intervals: [], skippedOlder: false) }
        if let lastScheduledEnd, latest.end <= lastScheduledEnd { return Plan(intervals: [], skippedOlder: false) }
        if let startDate, latest.start < startDate { return Plan(intervals: [], skippedOlder: false) }
        let anchor: Date? = lastScheduledEnd ?? (catchup ? startDate : nil)
        guard catchup, let anchor else { return Plan(intervals: [latest], skippedOlder: false) }
        var intervals = [latest]
        var skipped = false
        while let first = intervals.first, first.start > anchor {
            guard let previousStart = cron.previousFire(before: first.start, in: zone) else { break }
            let candidate = DataInterval(start: previousStart, end: first.start)
            if candidate.start < anchor { break }
            if intervals.count >= max(1, maxCatchup) {
                skipped = true
                break
            }
            intervals.insert(candidate, at: 0)
        }
        return Plan(intervals: intervals, skippedOlder: skipped)
    }

    /// Intervals that start within `[from, to)`, oldest first, for backfills (an interval may end
    /// after `to`; callers drop those that have not ended yet).
    public static func intervals(_ cron: CronSchedule, in zone: TimeZone, from: Date, to: Date, limit: Int) -> [DataInterval] {
        var result: [DataInterval] = []
        guard var start = cron.nextFire(after: from.addingTimeInterval(-0.001), in: zone) else { return [] }
        while result.count < limit, let end = cron.nextFire(after: start, in: zone), start < to {
            result.append(DataInterval(start: start, end: end))
            start = end
        }
        return result
    }
}
