import Foundation
import Testing

@testable import BatonCore

/// Parses ISO 8601 with an explicit offset, so expectations read as the wall clock users see.
private func at(_ text: String) -> Date {
    guard let date = try? Date(text, strategy: .iso8601) else { fatalError("bad test date \(text)") }
    return date
}

private func zone(_ identifier: String) -> TimeZone {
    guard let zone = TimeZone(identifier: identifier) else { fatalError("unknown zone \(identifier)") }
    return zone
}

private let utc = zone("UTC")
private let newYork = zone("America/New_York")

private func cron(_ text: String) -> CronSchedule {
    do {
        return try CronSchedule.parse(text)
    } catch {
        fatalError("\(error)")
    }
}

private let hourly = cron("0 * * * *")
private let daily = cron("0 0 * * *")

private func interval(_ start: String, _ end: String) -> DataInterval {
    DataInterval(start: at(start), end: at(end))
}

/// Hourly UTC intervals starting at the given hours of 2026-03-10.
private func hours(_ range: ClosedRange<Int>) -> [DataInterval] {
    range.map { hour in
        let start = at("2026-03-10T00:00:00Z").addingTimeInterval(Double(hour) * 3600)
        return DataInterval(start: start, end: start.addingTimeInterval(3600))
    }
}

private func due(
    _ schedule: CronSchedule = hourly, in zone: TimeZone = utc, catchup: Bool, startDate: Date? = nil,
    lastScheduledEnd: Date? = nil, now: Date, maxCatchup: Int = 100
) -> IntervalPlanner.Plan {
    IntervalPlanner.due(
        schedule, in: zone, catchup: catchup, startDate: startDate, lastScheduledEnd: lastScheduledEnd, now: now,
        maxCatchup: maxCatchup)
}

@Suite struct IntervalPlannerDueTests {
    @Test func withoutCatchupOnlyTheLatestCompletedInterval() {
        let plan = due(catchup: false, startDate: at("2026-03-01T00:00:00Z"), now: at("2026-03-10T10:30:00Z"))
        #expect(plan.intervals == hours(9...9))
        #expect(plan.skippedOlder == false)
    }

    @Test func withoutCatchupOrStartDateOnlyTheLatest() {
        #expect(due(catchup: false, now: at("2026-03-10T10:30:00Z")).intervals == hours(9...9))
        #expect(due(catchup: true, now: at("2026-03-10T10:30:00Z")).intervals == hours(9...9), "no anchor to catch up from")
    }

    @Test func anIntervalIsDueTheMomentItEnds() {
        #expect(due(catchup: false, now: at("2026-03-10T10:00:00Z")).intervals == hours(9...9))
        #expect(due(catchup: false, now: at("2026-03-10T09:59:59Z")).intervals == hours(8...8))
    }

    @Test func nothingWhenTheLatestIsAlreadyScheduled() {
        let plan = due(catchup: false, lastScheduledEnd: at("2026-03-10T10:00:00Z"), now: at("2026-03-10T10:30:00Z"))
        #expect(plan.intervals.isEmpty)
        #expect(plan.skippedOlder == false)
        #expect(
            due(catchup: true, startDate: at("2026-03-01T00:00:00Z"), lastScheduledEnd: at("2026-03-10T10:00:00Z"),
                now: at("2026-03-10T10:59:00Z")).intervals.isEmpty)
    }

    @Test func withoutCatchupMissedIntervalsAreNotFilledIn() {
        let plan = due(catchup: false, lastScheduledEnd: at("2026-03-10T06:00:00Z"), now: at("2026-03-10T10:30:00Z"))
        #expect(plan.intervals == hours(9...9))
        #expect(plan.skippedOlder == false)
    }

    @Test func catchupCreatesEveryIntervalSinceStartDateOldestFirst() {
        let plan = due(catchup: true, startDate: at("2026-03-10T05:00:00Z"), now: at("2026-03-10T10:30:00Z"))
        #expect(plan.intervals == hours(5...9))
        #expect(plan.skippedOlder == false)
    }

    @Test func catchupFromAStartDateBetweenFireTimes() {
        let plan = due(catchup: true, startDate: at("2026-03-10T05:30:00Z"), now: at("2026-03-10T10:30:00Z"))
        #expect(plan.intervals == hours(6...9), "an interval starting before start_date is never scheduled")
    }

    @Test func catchupIsBoundedByMaxCatchupKeepingTheNewest() {
        let bounded = due(catchup: true, startDate: at("2026-03-10T00:00:00Z"), now: at("2026-03-10T10:30:00Z"), maxCatchup: 3)
        #expect(bounded.intervals == hours(7...9))
        #expect(bounded.skippedOlder == true)

        let exact = due(catchup: true, startDate: at("2026-03-10T00:00:00Z"), now: at("2026-03-10T10:30:00Z"), maxCatchup: 10)
        #expect(exact.intervals == hours(0...9))
        #expect(exact.skippedOlder == false, "exactly maxCatchup intervals leaves nothing out")

        let oneShort = due(catchup: true, startDate: at("2026-03-10T00:00:00Z"), now: at("2026-03-10T10:30:00Z"), maxCatchup: 9)
        #expect(oneShort.intervals == hours(1...9))
        #expect(oneShort.skippedOlder == true)

        let zero = due(catchup: true, startDate: at("2026-03-10T00:00:00Z"), now: at("2026-03-10T10:30:00Z"), maxCatchup: 0)
        #expect(zero.intervals == hours(9...9), "the latest interval is always due")
        #expect(zero.skippedOlder == true)
    }

    @Test func startDateInTheFutureSchedulesNothing() {
        for catchup in [true, false] {
            let plan = due(catchup: catchup, startDate: at("2026-03-11T00:00:00Z"), now: at("2026-03-10T10:30:00Z"))
            #expect(plan.intervals.isEmpty)
            #expect(plan.skippedOlder == false)
        }
        // The first interval starting at start_date has not ended yet.
        #expect(due(catchup: true, startDate: at("2026-03-10T10:00:00Z"), now: at("2026-03-10T10:30:00Z")).intervals.isEmpty)
        #expect(due(catchup: true, startDate: at("2026-03-10T10:00:00Z"), now: at("2026-03-10T11:00:00Z")).intervals == hours(10...10))
    }

    @Test func lastScheduledEndMakesTheNextCallCreateOnlyNewIntervals() {
        let start = at("2026-03-10T00:00:00Z")
        var scheduled: [DataInterval] = []
        var lastEnd: Date?
        for now in ["2026-03-10T03:10:00Z", "2026-03-10T03:50:00Z", "2026-03-10T04:00:00Z", "2026-03-10T07:20:00Z"] {
            let plan = due(catchup: true, startDate: start, lastScheduledEnd: lastEnd, now: at(now))
            #expect(plan.skippedOlder == false)
            scheduled += plan.intervals
            lastEnd = plan.intervals.last?.end ?? lastEnd
        }
        #expect(scheduled == hours(0...6), "contiguous, oldest first, no duplicates")
    }

    @Test func catchupAfterDowntimeResumesFromLastScheduledEnd() {
        let plan = due(
            catchup: true, startDate: at("2026-03-01T00:00:00Z"), lastScheduledEnd: at("2026-03-10T06:00:00Z"),
            now: at("2026-03-10T10:30:00Z"))
        #expect(plan.intervals == hours(6...9))
    }

    @Test func catchupAfterDowntimeIsBoundedToo() {
        let plan = due(
            catchup: true, lastScheduledEnd: at("2026-03-09T00:00:00Z"), now: at("2026-03-10T10:30:00Z"), maxCatchup: 5)
        #expect(plan.intervals == hours(5...9))
        #expect(plan.skippedOlder == true)
    }

    @Test func dailyCatchup() {
        let plan = due(daily, catchup: true, startDate: at("2026-03-01T00:00:00Z"), now: at("2026-03-04T08:00:00Z"))
        #expect(
            plan.intervals == [
                interval("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"),
                interval("2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"),
                interval("2026-03-03T00:00:00Z", "2026-03-04T00:00:00Z"),
            ])
    }

    @Test func dailyInNewYorkAcrossTheSpringChangeHasA23HourInterval() {
        let plan = due(
            daily, in: newYork, catchup: true, startDate: at("2026-03-06T00:00:00-05:00"),
            now: at("2026-03-10T12:00:00-04:00"))
        #expect(
            plan.intervals == [
                interval("2026-03-06T00:00:00-05:00", "2026-03-07T00:00:00-05:00"),
                interval("2026-03-07T00:00:00-05:00", "2026-03-08T00:00:00-05:00"),
                interval("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00"),
                interval("2026-03-09T00:00:00-04:00", "2026-03-10T00:00:00-04:00"),
            ])
        #expect(plan.intervals.map { $0.end.timeIntervalSince($0.start) / 3600 } == [24, 24, 23, 24])
    }

    @Test func dailyInNewYorkAcrossTheAutumnChangeHasA25HourInterval() {
        let plan = due(
            daily, in: newYork, catchup: true, startDate: at("2026-10-31T00:00:00-04:00"),
            now: at("2026-11-02T09:00:00-05:00"))
        #expect(
            plan.intervals == [
                interval("2026-10-31T00:00:00-04:00", "2026-11-01T00:00:00-04:00"),
                interval("2026-11-01T00:00:00-04:00", "2026-11-02T00:00:00-05:00"),
            ])
        #expect(plan.intervals.map { $0.end.timeIntervalSince($0.start) / 3600 } == [24, 25])
    }

    @Test func latestCompletedInNewYorkIsMidnightToMidnightLocal() {
        // Midnight of March 9 in New York (EDT) is 04:00 UTC; the day before started at 05:00 UTC (EST).
        let latest = IntervalPlanner.latestCompleted(daily, in: newYork, now: at("2026-03-09T04:00:00Z"))
        #expect(latest == interval("2026-03-08T05:00:00Z", "2026-03-09T04:00:00Z"))
        let before = IntervalPlanner.latestCompleted(daily, in: newYork, now: at("2026-03-09T03:59:00Z"))
        #expect(before == interval("2026-03-07T05:00:00Z", "2026-03-08T05:00:00Z"))
    }

    @Test func intervalDescriptionIsUTC() {
        #expect(
            interval("2026-03-08T00:00:00-05:00", "2026-03-09T00:00:00-04:00").description
                == "2026-03-08T05:00:00Z .. 2026-03-09T04:00:00Z")
    }
}

@Suite struct IntervalPlannerBackfillTests {
    private func backfill(
        _ schedule: CronSchedule = daily, in zone: TimeZone = utc, from: String, to: String, limit: Int = 100
    ) -> [DataInterval] {
        IntervalPlanner.intervals(schedule, in: zone, from: at(from), to: at(to), limit: limit)
    }

    @Test func dailyRangeStartsWithinFromInclusiveToExclusive() {
        #expect(
            backfill(from: "2026-01-01T00:00:00Z", to: "2026-01-04T00:00:00Z") == [
                interval("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
                interval("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"),
                interval("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"),
            ])
    }

    @Test func unalignedBoundsTakeIntervalsStartingInside() {
        #expect(
            backfill(from: "2026-01-01T12:00:00Z", to: "2026-01-03T06:00:00Z") == [
                interval("2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"),
                interval("2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"),
            ])
    }

    @Test func hourlyRangeIsContiguous() {
        let result = backfill(hourly, from: "2026-03-10T00:00:00Z", to: "2026-03-10T10:00:00Z")
        #expect(result == hours(0...9))
    }

    @Test func limitBoundsTheCount() {
        #expect(backfill(hourly, from: "2026-03-10T00:00:00Z", to: "2026-03-11T00:00:00Z", limit: 5) == hours(0...4))
    }

    @Test func emptyOrInvertedRangeHasNoIntervals() {
        #expect(backfill(from: "2026-01-02T00:00:00Z", to: "2026-01-02T00:00:00Z").isEmpty)
        #expect(backfill(from: "2026-01-05T00:00:00Z", to: "2026-01-02T00:00:00Z").isEmpty)
        #expect(backfill(from: "2026-01-02T01:00:00Z", to: "2026-01-02T23:00:00Z").isEmpty, "no fire time inside")
    }

    @Test func dailyBackfillInNewYorkAcrossDST() {
        let result = backfill(in: newYork, from: "2026-03-07T00:00:00-05:00", to: "2026-03-10T00:00:00-04:00")
        #expect(result.map { $0.end.timeIntervalSince($0.start) / 3600 } == [24, 23, 24])
        #expect(result.first?.start == at("2026-03-07T00:00:00-05:00"))
        #expect(result.last?.end == at("2026-03-10T00:00:00-04:00"))
    }

    @Test func backfillAndCatchupAgree() {
        let caughtUp = due(catchup: true, startDate: at("2026-03-10T00:00:00Z"), now: at("2026-03-10T10:30:00Z"))
        #expect(backfill(hourly, from: "2026-03-10T00:00:00Z", to: "2026-03-10T10:00:00Z") == caughtUp.intervals)
    }
}
