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
private let berlin = zone("Europe/Berlin")
private let kolkata = zone("Asia/Kolkata")

private func cron(_ text: String) -> CronSchedule {
    do {
        return try CronSchedule.parse(text)
    } catch {
        fatalError("\(error)")
    }
}

/// The next `count` fire times after `start`.
private func fires(_ text: String, after start: Date, in zone: TimeZone, count: Int) -> [Date] {
    let schedule = cron(text)
    var result: [Date] = []
    var cursor = start
    while result.count < count, let next = schedule.nextFire(after: cursor, in: zone) {
        result.append(next)
        cursor = next
    }
    return result
}

private func parseError(_ text: String) -> CronParseError? {
    do {
        _ = try CronSchedule.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct CronParsingTests {
    @Test(arguments: [
        ("@hourly", "0 * * * *"), ("@daily", "0 0 * * *"), ("@midnight", "0 0 * * *"), ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"), ("@yearly", "0 0 1 1 *"), ("@annually", "0 0 1 1 *"),
    ])
    func presetsExpandToTheirExpressions(preset: String, expression: String) {
        let start = at("2026-01-15T10:17:00Z")
        #expect(fires(preset, after: start, in: berlin, count: 5) == fires(expression, after: start, in: berlin, count: 5))
        #expect(cron(preset).description == preset)
    }

    @Test func presetsAreCaseInsensitiveAndNormalized() {
        #expect(cron("  @Daily ").description == "@daily")
        #expect(cron("@DAILY").nextFire(after: at("2026-05-05T13:00:00Z"), in: utc) == at("2026-05-06T00:00:00Z"))
    }

    @Test func descriptionNormalizesWhitespace() {
        #expect(cron("  */5\t1-3  * *   mon ").description == "*/5 1-3 * * mon")
    }

    @Test func wildcardsAndSteps() {
        let schedule = cron("*/15 */6 */10 */5 */2")
        #expect(schedule.minutes.values == [0, 15, 30, 45])
        #expect(schedule.hours.values == [0, 6, 12, 18])
        #expect(schedule.daysOfMonth.values == [1, 11, 21, 31])
        #expect(schedule.months.values == [1, 6, 11])
        // 7 is only an alias of Sunday, so */2 must not reach it.
        #expect(schedule.daysOfWeek.values == [0, 2, 4, 6])
        #expect(cron("* * * * *").minutes.count == 60)
        #expect(cron("*/1 * * * *").minutes.count == 60)
    }

    @Test func rangesWithStepsAndStartSteps() {
        #expect(cron("1-10/3 * * * *").minutes.values == [1, 4, 7, 10])
        #expect(cron("5/20 * * * *").minutes.values == [5, 25, 45])
        #expect(cron("0 9-17 * * *").hours.values == Array(9...17))
        #expect(cron("0 0 * * 1/2").daysOfWeek.values == [1, 3, 5])
        #expect(cron("59 23 31 12 7").minutes.values == [59])
    }

    @Test func lists() {
        let schedule = cron("0,30 1,3,5-7 1,15 1-3,12 *")
        #expect(schedule.minutes.values == [0, 30])
        #expect(schedule.hours.values == [1, 3, 5, 6, 7])
        #expect(schedule.daysOfMonth.values == [1, 15])
        #expect(schedule.months.values == [1, 2, 3, 12])
    }

    @Test func namesAreCaseInsensitive() {
        #expect(cron("0 0 * JAN-mar,Dec *").months.values == [1, 2, 3, 12])
        #expect(cron("0 0 * * mon-FRI").daysOfWeek.values == [1, 2, 3, 4, 5])
        #expect(cron("0 0 * * sun,Sat").daysOfWeek.values == [0, 6])
        #expect(cron("0 0 * feb/3 *").months.values == [2, 5, 8, 11])
    }

    @Test func dayOfWeekSevenIsSunday() {
        #expect(cron("0 0 * * 7").daysOfWeek.values == [0])
        #expect(cron("0 0 * * 5-7").daysOfWeek.values == [0, 5, 6])
        #expect(cron("0 0 * * 0-7").daysOfWeek.values == Array(0...6))
        // 2026-01-04 is a Sunday.
        #expect(cron("0 12 * * 7").nextFire(after: at("2026-01-01T00:00:00Z"), in: utc) == at("2026-01-04T12:00:00Z"))
    }

    @Test func onlyPlainStarCountsAsWildcardForTheDayRule() {
        #expect(cron("0 0 * * *").dayOfMonthIsWildcard)
        #expect(cron("0 0 */1 * *").dayOfMonthIsWildcard)
        #expect(!cron("0 0 */2 * *").dayOfMonthIsWildcard)
        #expect(!cron("0 0 1-31 * *").dayOfMonthIsWildcard)
        #expect(!cron("0 0 * * 0-7").dayOfWeekIsWildcard)
    }
}

@Suite struct CronErrorTests {
    @Test func outOfRangeNamesFieldValueAndFix() {
        let error = parseError("0 24 * * *")
        #expect(error?.field == .hour)
        #expect(error?.value == "24")
        #expect(error?.message == "hour 24 is out of range 0-23")
        #expect(error?.fix.contains("between 0 and 23") == true)
        #expect(error?.expression == "0 24 * * *")
        #expect(error?.description.contains("hour 24 is out of range 0-23") == true)
    }

    @Test(arguments: [
        ("60 * * * *", CronField.minute, "60"), ("* * 0 * *", .dayOfMonth, "0"), ("* * 32 * *", .dayOfMonth, "32"),
        ("* * * 13 *", .month, "13"), ("* * * 0 *", .month, "0"), ("* * * * 8", .dayOfWeek, "8"),
        ("1-61 * * * *", .minute, "61"), ("99999999999999999999 * * * *", .minute, "99999999999999999999"),
    ])
    func outOfRange(expression: String, field: CronField, value: String) {
        let error = parseError(expression)
        #expect(error?.field == field)
        #expect(error?.value == value)
        #expect(error?.message.contains("out of range") == true)
        #expect(error?.fix.isEmpty == false)
    }

    @Test func stepZero() throws {
        #expect(throws: CronParseError.self) { try CronSchedule.parse("*/0 * * * *") }
        let error = try #require(parseError("*/0 * * * *"))
        #expect(error.field == .minute)
        #expect(error.value == "*/0")
        #expect(error.message.contains("step 0"))
        #expect(error.fix.contains("at least 1"))
        #expect(parseError("0 1-5/0 * * *")?.field == .hour)
    }

    @Test func stepLongerThanTheCycle() {
        let error = parseError("*/90 * * * *")
        #expect(error?.field == .minute)
        #expect(error?.value == "*/90")
        #expect(error?.message.contains("larger than the 60 values") == true)
        #expect(parseError("*/60 * * * *") == nil)
    }

    @Test func reversedRange() throws {
        let error = try #require(parseError("0 5-2 * * *"))
        #expect(error.field == .hour)
        #expect(error.value == "5-2")
        #expect(error.message.contains("reversed"))
        #expect(error.fix.contains("2-5"))
        #expect(error.fix.contains("5-23,0-2"))
        // Suggestions keep the user's names.
        #expect(parseError("0 0 * * FRI-MON")?.fix.contains("FRI-SAT,SUN-MON") == true)
    }

    @Test(arguments: [
        ("5x * * * *", CronField.minute, "5x"), ("* * ? * *", .dayOfMonth, "?"), ("* MON * * *", .hour, "MON"),
        ("* * * * L", .dayOfWeek, "L"), ("* * * * 1#2", .dayOfWeek, "1#2"), ("*/x * * * *", .minute, "x"),
        ("* * * JANUARY *", .month, "JANUARY"), ("-5 * * * *", .minute, "-5"), ("1- * * * *", .minute, "1-"),
        ("*/5/2 * * * *", .minute, "*/5/2"), ("*/ * * * *", .minute, "*/"), ("/5 * * * *", .minute, "/5"),
        ("*-5 * * * *", .minute, "*"),
    ])
    func junk(expression: String, field: CronField, value: String) {
        let error = parseError(expression)
        #expect(error?.field == field)
        #expect(error?.value == value)
        #expect(error?.fix.isEmpty == false)
    }

    @Test func junkMessagesAreHelpful() {
        #expect(parseError("* * ? * *")?.fix.contains("Quartz") == true)
        #expect(parseError("* MON * * *")?.fix.contains("only allowed in the month and day-of-week") == true)
        #expect(parseError("0 0 * * MONN")?.fix.contains("did you mean MON?") == true)
        #expect(parseError("0 0 * JANUARY *")?.fix.contains("did you mean JAN?") == true)
    }

    @Test func emptyListItem() {
        for expression in ["1,,2 * * * *", "1, * * * *", ",1 * * * *"] {
            let error = parseError(expression)
            #expect(error?.field == .minute)
            #expect(error?.message.contains("empty item") == true)
            #expect(error?.fix.contains("remove the extra comma") == true)
        }
        #expect(parseError("0 0 * * 1,,5")?.value == "1,,5")
        #expect(parseError("0 0 * * 1,,5")?.fix.contains("1,5") == true)
    }

    @Test func wrongFieldCount() throws {
        let six = try #require(parseError("0 30 2 * * *"))
        #expect(six.field == nil)
        #expect(six.message == "expected 5 fields (minute hour day-of-month month day-of-week), got 6")
        #expect(six.fix.contains("30 2 * * *"))
        let four = try #require(parseError("30 2 * *"))
        #expect(four.message.hasSuffix("got 4"))
        #expect(four.fix.contains("30 2 * * *"))
        #expect(parseError("0 0 12 * * ? 2026")?.fix.contains("0 12 * * ?") == true)
        #expect(parseError("")?.message == "the cron expression is empty")
        #expect(parseError("   ")?.field == nil)
    }

    @Test func unknownPresetSuggestsPresets() throws {
        let error = try #require(parseError("@dayly"))
        #expect(error.field == nil)
        #expect(error.value == "@dayly")
        #expect(error.message == "unknown preset '@dayly'")
        #expect(error.fix.contains("did you mean @daily?"))
        #expect(error.fix.contains("@hourly"))
        #expect(error.fix.contains("@annually"))
        // @once is the caller's business, not a cron schedule.
        #expect(parseError("@once")?.message == "unknown preset '@once'")
        #expect(parseError("@reboot")?.fix.contains("@weekly") == true)
        #expect(parseError("@daily 5")?.message.contains("can't be combined") == true)
    }
}

@Suite struct CronFireTimeTests {
    @Test func utcBasics() {
        let schedule = cron("30 2 * * *")
        #expect(schedule.nextFire(after: at("2026-01-01T02:29:59Z"), in: utc) == at("2026-01-01T02:30:00Z"))
        // Strictly after: a fire time itself is not returned again.
        #expect(schedule.nextFire(after: at("2026-01-01T02:30:00Z"), in: utc) == at("2026-01-02T02:30:00Z"))
        #expect(schedule.nextFire(after: at("2026-01-01T02:29:59.999Z"), in: utc) == at("2026-01-01T02:30:00Z"))
        #expect(schedule.previousFire(before: at("2026-01-01T02:30:00Z"), in: utc) == at("2025-12-31T02:30:00Z"))
        #expect(schedule.previousFire(before: at("2026-01-01T02:30:00.001Z"), in: utc) == at("2026-01-01T02:30:00Z"))
        #expect(
            fires("*/20 * * * *", after: at("2026-12-31T23:30:00Z"), in: utc, count: 3)
                == [at("2026-12-31T23:40:00Z"), at("2027-01-01T00:00:00Z"), at("2027-01-01T00:20:00Z")])
        #expect(cron("* * * * *").nextFire(after: at("2026-04-01T10:00:30Z"), in: utc) == at("2026-04-01T10:01:00Z"))
    }

    @Test func dayOfMonthOrDayOfWeekWhenBothRestricted() {
        // 2026-01-02 and 2026-01-09 are Fridays; the 13th is a Tuesday.
        #expect(
            fires("0 0 13 * 5", after: at("2026-01-01T00:00:00Z"), in: utc, count: 4)
                == ["2026-01-02", "2026-01-09", "2026-01-13", "2026-01-16"].map { at("\($0)T00:00:00Z") })
        #expect(
            fires("0 0 13 * *", after: at("2026-01-01T00:00:00Z"), in: utc, count: 2)
                == ["2026-01-13", "2026-02-13"].map { at("\($0)T00:00:00Z") })
        #expect(
            fires("0 0 * * 5", after: at("2026-01-01T00:00:00Z"), in: utc, count: 2)
                == ["2026-01-02", "2026-01-09"].map { at("\($0)T00:00:00Z") })
        // A stepped day-of-month is a restriction, so the OR rule applies (Mondays are 5, 12, 19).
        #expect(
            fires("0 0 */10 * MON", after: at("2026-01-01T00:00:00Z"), in: utc, count: 5)
                == ["2026-01-05", "2026-01-11", "2026-01-12", "2026-01-19", "2026-01-21"].map { at("\($0)T00:00:00Z") })
        #expect(cron("0 0 13 * 5").previousFire(before: at("2026-01-13T00:00:00Z"), in: utc) == at("2026-01-09T00:00:00Z"))
    }

    @Test func leapDay() {
        let schedule = cron("0 0 29 2 *")
        #expect(schedule.nextFire(after: at("2026-03-01T00:00:00Z"), in: utc) == at("2028-02-29T00:00:00Z"))
        #expect(schedule.previousFire(before: at("2028-01-01T00:00:00Z"), in: utc) == at("2024-02-29T00:00:00Z"))
        // 2100 is not a leap year: the longest wait there is.
        #expect(schedule.nextFire(after: at("2096-03-01T00:00:00Z"), in: utc) == at("2104-02-29T00:00:00Z"))
        #expect(schedule.previousFire(before: at("2104-01-01T00:00:00Z"), in: utc) == at("2096-02-29T00:00:00Z"))
    }

    @Test func thirtyFirstSkipsShortMonths() {
        #expect(
            fires("0 0 31 * *", after: at("2026-01-31T00:00:00Z"), in: utc, count: 6)
                == ["03-31", "05-31", "07-31", "08-31", "10-31", "12-31"].map { at("2026-\($0)T00:00:00Z") })
        #expect(cron("0 0 31 * *").previousFire(before: at("2026-07-01T00:00:00Z"), in: utc) == at("2026-05-31T00:00:00Z"))
    }

    @Test func impossibleDatesNeverFire() {
        for expression in ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 FEB *"] {
            #expect(cron(expression).nextFire(after: at("2026-01-01T00:00:00Z"), in: newYork) == nil)
            #expect(cron(expression).previousFire(before: at("2026-01-01T00:00:00Z"), in: newYork) == nil)
        }
        // The OR rule rescues it: Mondays in February still match.
        #expect(cron("0 0 30 2 1").nextFire(after: at("2026-01-01T00:00:00Z"), in: utc) == at("2026-02-02T00:00:00Z"))
    }

    @Test func kolkataHasAHalfHourOffsetAndNoDST() {
        // 00:00Z is already 05:30 in Kolkata, so the next 02:30 is the following night.
        #expect(cron("30 2 * * *").nextFire(after: at("2026-06-01T00:00:00Z"), in: kolkata) == at("2026-06-02T02:30:00+05:30"))
        #expect(cron("30 2 * * *").nextFire(after: at("2026-06-01T00:00:00Z"), in: kolkata) == at("2026-06-01T21:00:00Z"))
        #expect(cron("30 2 * * *").previousFire(before: at("2026-06-01T00:00:00Z"), in: kolkata) == at("2026-05-31T21:00:00Z"))
        // Friday 2026-06-05 09:00 IST, then Monday.
        #expect(
            fires("0 9 * * 1-5", after: at("2026-06-05T08:00:00+05:30"), in: kolkata, count: 2)
                == [at("2026-06-05T09:00:00+05:30"), at("2026-06-08T09:00:00+05:30")])
        #expect(
            fires("0 0 1 * *", after: at("2026-01-15T00:00:00Z"), in: kolkata, count: 2)
                == [at("2026-02-01T00:00:00+05:30"), at("2026-03-01T00:00:00+05:30")])
    }

    @Test func sameWallClockDifferentZones() {
        let start = at("2026-07-01T00:00:00Z")
        #expect(cron("0 9 * * *").nextFire(after: start, in: newYork) == at("2026-07-01T09:00:00-04:00"))
        #expect(cron("0 9 * * *").nextFire(after: start, in: berlin) == at("2026-07-01T09:00:00+02:00"))
        #expect(cron("0 9 * * *").nextFire(after: start, in: TimeZone(secondsFromGMT: -3 * 3600)!) == at("2026-07-01T09:00:00-03:00"))
    }
}

@Suite struct CronDaylightSavingTests {
    // New York 2026: 02:00 EST jumps to 03:00 EDT on 03-08 (07:00Z); 02:00 EDT falls back to
    // 01:00 EST on 11-01 (06:00Z).

    @Test func newYorkSkippedTimeFiresAtTheJump() {
        let schedule = cron("30 2 * * *")
        #expect(
            fires("30 2 * * *", after: at("2026-03-07T12:00:00-05:00"), in: newYork, count: 3)
                == [at("2026-03-08T03:00:00-04:00"), at("2026-03-09T02:30:00-04:00"), at("2026-03-10T02:30:00-04:00")])
        #expect(schedule.previousFire(before: at("2026-03-09T00:00:00-04:00"), in: newYork) == at("2026-03-08T07:00:00Z"))
        #expect(schedule.previousFire(before: at("2026-03-08T07:00:00Z"), in: newYork) == at("2026-03-07T02:30:00-05:00"))
    }

    @Test func newYorkSkippedTimesCollapseToOneFire() {
        #expect(
            fires("*/30 * * * *", after: at("2026-03-08T00:45:00-05:00"), in: newYork, count: 4)
                == [at("2026-03-08T01:00:00-05:00"), at("2026-03-08T01:30:00-05:00"), at("2026-03-08T03:00:00-04:00"),
                    at("2026-03-08T03:30:00-04:00")])
        // 02:00 and 03:00 both land on the jump; it fires once.
        #expect(
            fires("0 2,3 * * *", after: at("2026-03-07T12:00:00-05:00"), in: newYork, count: 3)
                == [at("2026-03-08T03:00:00-04:00"), at("2026-03-09T02:00:00-04:00"), at("2026-03-09T03:00:00-04:00")])
        #expect(
            fires("* * * * *", after: at("2026-03-08T01:58:00-05:00"), in: newYork, count: 3)
                == [at("2026-03-08T01:59:00-05:00"), at("2026-03-08T03:00:00-04:00"), at("2026-03-08T03:01:00-04:00")])
        #expect(cron("* * * * *").previousFire(before: at("2026-03-08T03:01:00-04:00"), in: newYork) == at("2026-03-08T03:00:00-04:00"))
        #expect(cron("* * * * *").previousFire(before: at("2026-03-08T03:00:00-04:00"), in: newYork) == at("2026-03-08T01:59:00-05:00"))
    }

    @Test func newYorkRepeatedHourFiresOnceAtFirstOccurrence() {
        #expect(
            fires("0 * * * *", after: at("2026-10-31T23:30:00-04:00"), in: newYork, count: 4)
                == [at("2026-11-01T00:00:00-04:00"), at("2026-11-01T01:00:00-04:00"), at("2026-11-01T02:00:00-05:00"),
                    at("2026-11-01T03:00:00-05:00")])
        #expect(
            fires("30 1 * * *", after: at("2026-10-31T12:00:00-04:00"), in: newYork, count: 2)
                == [at("2026-11-01T01:30:00-04:00"), at("2026-11-02T01:30:00-05:00")])
        // Asked from inside the second 01:xx, the repeated 01:30 is not a new fire time.
        #expect(cron("30 1 * * *").nextFire(after: at("2026-11-01T01:15:00-05:00"), in: newYork) == at("2026-11-02T01:30:00-05:00"))
        #expect(cron("* * * * *").nextFire(after: at("2026-11-01T01:59:00-04:00"), in: newYork) == at("2026-11-01T02:00:00-05:00"))
        #expect(cron("* * * * *").nextFire(after: at("2026-11-01T01:20:30-05:00"), in: newYork) == at("2026-11-01T02:00:00-05:00"))
    }

    @Test func newYorkPreviousFireAcrossTheRepeatedHour() {
        let hourly = cron("0 * * * *")
        #expect(hourly.previousFire(before: at("2026-11-01T02:00:00-05:00"), in: newYork) == at("2026-11-01T01:00:00-04:00"))
        #expect(hourly.previousFire(before: at("2026-11-01T01:30:00-05:00"), in: newYork) == at("2026-11-01T01:00:00-04:00"))
        #expect(hourly.previousFire(before: at("2026-11-01T01:00:00-04:00"), in: newYork) == at("2026-11-01T00:00:00-04:00"))
        #expect(cron("* * * * *").previousFire(before: at("2026-11-01T01:30:00-05:00"), in: newYork) == at("2026-11-01T01:59:00-04:00"))
        #expect(cron("30 1 * * *").previousFire(before: at("2026-11-02T00:00:00-05:00"), in: newYork) == at("2026-11-01T01:30:00-04:00"))
    }

    // Berlin 2026: 02:00 CET jumps to 03:00 CEST on 03-29 (01:00Z); 03:00 CEST falls back to
    // 02:00 CET on 10-25 (01:00Z).

    @Test func berlinSpringForward() {
        #expect(
            fires("30 2 * * *", after: at("2026-03-28T12:00:00+01:00"), in: berlin, count: 2)
                == [at("2026-03-29T03:00:00+02:00"), at("2026-03-30T02:30:00+02:00")])
        #expect(
            fires("0 * * * *", after: at("2026-03-29T00:30:00+01:00"), in: berlin, count: 3)
                == [at("2026-03-29T01:00:00+01:00"), at("2026-03-29T03:00:00+02:00"), at("2026-03-29T04:00:00+02:00")])
    }

    @Test func berlinFallBack() {
        #expect(
            fires("30 2 * * *", after: at("2026-10-24T12:00:00+02:00"), in: berlin, count: 2)
                == [at("2026-10-25T02:30:00+02:00"), at("2026-10-26T02:30:00+01:00")])
        #expect(
            fires("*/30 * * * *", after: at("2026-10-25T01:45:00+02:00"), in: berlin, count: 5)
                == [at("2026-10-25T02:00:00+02:00"), at("2026-10-25T02:30:00+02:00"), at("2026-10-25T03:00:00+01:00"),
                    at("2026-10-25T03:30:00+01:00"), at("2026-10-25T04:00:00+01:00")])
        #expect(cron("30 2 * * *").previousFire(before: at("2026-10-26T00:00:00+01:00"), in: berlin) == at("2026-10-25T02:30:00+02:00"))
    }

    @Test func dailyIntervalsAroundDSTAreNot24Hours() {
        let daily = cron("0 0 * * *")
        let march8 = at("2026-03-08T00:00:00-05:00")
        let march9 = daily.nextFire(after: march8, in: newYork)
        #expect(march9.map { $0.timeIntervalSince(march8) } == TimeInterval(23 * 3600))
        let november1 = at("2026-11-01T00:00:00-04:00")
        #expect(daily.nextFire(after: november1, in: newYork).map { $0.timeIntervalSince(november1) } == TimeInterval(25 * 3600))
    }

    /// previousFire must return exactly the instants nextFire produces, in reverse, including
    /// through both DST transitions, or interval planning would invent or lose intervals.
    @Test(arguments: ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney"])
    func previousFireMirrorsNextFireOverAYear(zoneIdentifier: String) throws {
        let zone = zone(zoneIdentifier)
        let start = at("2026-01-01T00:00:00Z")
        let end = at("2027-01-01T00:00:00Z")
        for expression in ["*/30 * * * *", "30 2 * * *", "0 * * * *", "15,45 1-3 * * 0"] {
            let schedule = cron(expression)
            var fires: [Date] = []
            var cursor = start
            while let next = schedule.nextFire(after: cursor, in: zone), next < end {
                fires.append(next)
                cursor = next
            }
            #expect(fires.count > 50, "\(expression)")
            var mismatches = 0
            for index in fires.indices.dropFirst() {
                let current = fires[index]
                let previous = fires[index - 1]
                if current <= previous || schedule.previousFire(before: current, in: zone) != previous
                    || schedule.previousFire(before: previous.addingTimeInterval(0.5), in: zone) != previous
                    || schedule.nextFire(after: current.addingTimeInterval(-0.5), in: zone) != current
                {
                    mismatches += 1
                    if mismatches <= 3 { Issue.record("\(expression) in \(zoneIdentifier): mismatch at \(current)") }
                }
            }
            #expect(mismatches == 0, "\(expression) in \(zoneIdentifier)")
        }
    }

    /// An independent oracle: scan real time minute by minute with `Calendar`, and call an
    /// instant a fire time if its wall clock matches and is that wall clock's first occurrence,
    /// or if the clock jumps at it over a matching wall-clock time.
    @Test(arguments: ["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Australia/Sydney"])
    func nextFireAgreesWithABruteForceScanAroundTransitions(zoneIdentifier: String) throws {
        let zone = zone(zoneIdentifier)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var utcCalendar = Calendar(identifier: .gregorian)
        utcCalendar.timeZone = utc
        func offset(_ date: Date) -> TimeInterval { TimeInterval(zone.secondsFromGMT(for: date)) }
        func matches(_ schedule: CronSchedule, wallClock: Date) -> Bool {
            // The wall clock encoded as if it were UTC, so Calendar does no zone conversion.
            let parts = utcCalendar.dateComponents([.month, .day, .hour, .minute, .weekday], from: wallClock)
            guard let month = parts.month, let day = parts.day, let hour = parts.hour, let minute = parts.minute,
                let weekday = parts.weekday
            else { return false }
            guard schedule.minutes.contains(minute), schedule.hours.contains(hour), schedule.months.contains(month)
            else { return false }
            let byDay = schedule.daysOfMonth.contains(day)
            let byWeekday = schedule.daysOfWeek.contains(weekday - 1)
            if schedule.dayOfWeekIsWildcard { return byDay }
            if schedule.dayOfMonthIsWildcard { return byWeekday }
            return byDay || byWeekday
        }

        var transitions: [Date] = []
        var cursor = at("2026-01-01T00:00:00Z")
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next < at("2027-01-01T00:00:00Z") {
            transitions.append(next)
            cursor = next
        }
        #expect(transitions.count == 2)
        for expression in ["* * * * *", "*/30 * * * *", "30 2 * * *", "0 * * * *", "0 2,3 * * *", "45 1 * * *", "15,45 1-3 * * 0"] {
            let schedule = cron(expression)
            for transition in transitions {
                let start = transition.addingTimeInterval(-36 * 3600)
                let end = transition.addingTimeInterval(36 * 3600)
                var expected: [Date] = []
                var instant = start
                while instant < end {
                    let wallClock = instant.addingTimeInterval(offset(instant))
                    // Seen before if the wall clock already occurred under the larger offset of a day ago.
                    let dayAgoOffset = offset(instant.addingTimeInterval(-86_400))
                    let earlierOccurrence = wallClock.addingTimeInterval(-dayAgoOffset)
                    let isRepeat = dayAgoOffset > offset(instant) && earlierOccurrence < instant
                        && offset(earlierOccurrence) == dayAgoOffset
                    let previousOffset = offset(instant.addingTimeInterval(-60))
                    var fires = !isRepeat && matches(schedule, wallClock: wallClock)
                    if !fires, previousOffset < offset(instant) {
                        // The clock jumps here: wall-clock minutes from before-offset up to now never happen.
                        var skipped = instant.addingTimeInterval(previousOffset)
                        while skipped < wallClock, !fires {
                            fires = matches(schedule, wallClock: skipped)
                            skipped.addTimeInterval(60)
                        }
                    }
                    if fires { expected.append(instant) }
                    instant.addTimeInterval(60)
                }
                var actual: [Date] = []
                var previous = start.addingTimeInterval(-1)
                while let next = schedule.nextFire(after: previous, in: zone), next < end {
                    actual.append(next)
                    previous = next
                }
                #expect(actual == expected, "\(expression) in \(zoneIdentifier) around \(transition)")
            }
        }
    }

    @Test func everyHalfHourCountsOverAYearInNewYork() {
        // 365 days of 48 wall-clock half hours; 02:00 and 02:30 on the spring day collapse into
        // the 03:00 fire, and the repeated fall-back half hours add nothing.
        let schedule = cron("*/30 * * * *")
        var count = 0
        var cursor = at("2026-01-01T00:00:00-05:00").addingTimeInterval(-1)
        let end = at("2027-01-01T00:00:00-05:00")
        while let next = schedule.nextFire(after: cursor, in: newYork), next < end {
            count += 1
            cursor = next
        }
        #expect(count == 365 * 48 - 2)
    }
}

@Suite struct CronHumanDescriptionTests {
    @Test(arguments: [
        ("* * * * *", "every minute"),
        ("*/15 * * * *", "every 15 minutes"),
        ("5/15 * * * *", "every 15 minutes, starting at minute 5"),
        ("0 * * * *", "every hour at minute 0"),
        ("@hourly", "every hour at minute 0"),
        ("30 2 * * *", "every day at 02:30"),
        ("@daily", "every day at 00:00"),
        ("0 9 * * 1-5", "at 09:00 on Monday through Friday"),
        ("0 9,17 * * *", "every day at 09:00 and 17:00"),
        ("0 0 * * 0", "at 00:00 on Sunday"),
        ("0 10 * * SAT,SUN", "at 10:00 on Saturday and Sunday"),
        ("0 0 1 * *", "at 00:00 on day 1 of the month"),
        ("0 0 1 1 *", "at 00:00 on day 1 of January"),
        ("0 0 1,15 * *", "at 00:00 on days 1 and 15 of the month"),
        ("0 */2 * * *", "every 2 hours at minute 0"),
        ("0 9-17 * * 1-5", "every hour from 09:00 to 17:00 on Monday through Friday"),
        ("*/5 9-17 * * *", "every 5 minutes between 09:00 and 17:59"),
        ("0,30 * * * *", "every 30 minutes"),
        ("0,20 * * * *", "every hour at minutes 0 and 20"),
        ("0 0 13 * 5", "at 00:00 on day 13 of the month or on Friday"),
        ("0 6 * JAN,JUL *", "at 06:00 every day in January and July"),
        ("*/10 * * 12 *", "every 10 minutes in December"),
        ("7,8,9 1,5,9,23 * * *", "at minutes 7 through 9 past hours 1, 5, 9 and 23"),
        ("0 0 */2 * *", "at 00:00 on every 2nd day of the month"),
        ("30 6 5/3 JAN *", "at 06:30 on every 3rd day of January from day 5"),
        ("* */2 * * *", "every minute of every 2nd hour"),
        ("*/20 1/3 * * *", "every 20 minutes of every 3rd hour from 01:00"),
        ("0 0 1 * 1", "at 00:00 on day 1 of the month or on Monday"),
        ("0 0 1 JAN MON", "at 00:00 on day 1 or on Monday in January"),
    ])
    func describes(expression: String, expected: String) {
        #expect(cron(expression).humanDescription == expected)
    }
}

@Suite struct CronPerformanceTests {
    /// Not a benchmark: a generous bound that only catches minute-by-minute scans or similar.
    @Test func tenThousandConsecutiveFiresAreFast() {
        let schedule = cron("* * * * *")
        let clock = ContinuousClock()
        // Spans the spring-forward jump, where every-minute fires stay one real minute apart.
        let start = at("2026-03-05T00:00:00Z")
        var cursor = start
        let elapsed = clock.measure {
            for _ in 0..<10_000 {
                guard let next = schedule.nextFire(after: cursor, in: newYork) else { break }
                cursor = next
            }
        }
        #expect(cursor == start.addingTimeInterval(10_000 * 60))
        #expect(elapsed < .seconds(5))
    }

    @Test func rareSchedulesJumpInsteadOfScanning() {
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<200 {
                _ = cron("0 0 29 2 *").nextFire(after: at("2096-03-01T00:00:00Z"), in: berlin)
                _ = cron("59 23 31 12 *").previousFire(before: at("2026-12-31T00:00:00Z"), in: berlin)
            }
        }
        #expect(elapsed < .seconds(5))
    }
}
