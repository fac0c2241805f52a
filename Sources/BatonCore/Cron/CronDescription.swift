extension CronSchedule {
    /// A short English rendering for UIs, e.g. "every 15 minutes", "every day at 02:30",
    /// "at 09:00 on Monday through Friday". Best effort: unusual combinations fall back to a
    /// literal "at minute … past hour …" form rather than a wrong paraphrase.
    public var humanDescription: String {
        switch (timePhrase, dayPhrase) {
        case (.atTimes(let times), nil): "every day at \(times)"
        case (.atTimes(let times), .months(let months)): "at \(times) every day in \(months)"
        case (.atTimes(let times), .days(let days)): "at \(times) \(days)"
        case (.recurring(let text), nil): text
        case (.recurring(let text), .months(let months)): "\(text) in \(months)"
        case (.recurring(let text), .days(let days)): "\(text) \(days)"
        }
    }

    private enum TimePhrase {
        /// Specific clock times: "09:00 and 17:30".
        case atTimes(String)
        /// Repeats within a day: "every 15 minutes".
        case recurring(String)
    }

    private var timePhrase: TimePhrase {
        let minuteValues = minutes.values
        let hourValues = hours.values
        let everyHour = hours.count == 24
        let hourQualifier: String
        if everyHour {
            hourQualifier = ""
        } else if let first = hourValues.first, let last = hourValues.last, last - first + 1 == hourValues.count {
            hourQualifier = " between \(Self.clock(first, 0)) and \(Self.clock(last, 59))"
        } else if let (start, step) = Self.progression(hourValues) {
            hourQualifier = " of every \(Self.ordinal(step)) hour" + (start == 0 ? "" : " from \(Self.clock(start, 0))")
        } else {
            hourQualifier = " during hours \(Self.list(hourValues))"
        }

        if minutes.count == 60 { return .recurring("every minute" + hourQualifier) }
        if let (step, start) = Self.period(minuteValues, cycle: 60), step > 1 {
            let from = start == 0 ? "" : ", starting at minute \(start)"
            return .recurring("every \(step) minutes\(from)\(hourQualifier)")
        }
        if minuteValues.count == 1, let minute = minuteValues.first {
            if everyHour { return .recurring("every hour at minute \(minute)") }
            if let (step, start) = Self.period(hourValues, cycle: 24), step > 1 {
                let from = start == 0 ? "" : " starting at \(Self.clock(start, minute))"
                return .recurring("every \(step) hours at minute \(minute)\(from)")
            }
            if hourValues.count > 4, let first = hourValues.first, let last = hourValues.last,
                last - first + 1 == hourValues.count
            {
                return .recurring("every hour from \(Self.clock(first, minute)) to \(Self.clock(last, minute))")
            }
        }
        if everyHour {
            return .recurring("every hour at minutes \(Self.list(minuteValues))")
        }
        if minuteValues.count * hourValues.count <= 6 {
            let times = hourValues.flatMap { hour in minuteValues.map { Self.clock(hour, $0) } }
            return .atTimes(Self.join(times))
        }
        let minuteWord = minuteValues.count == 1 ? "minute" : "minutes"
        let hourWord = hourValues.count == 1 ? "hour" : "hours"
        return .recurring("at \(minuteWord) \(Self.list(minuteValues)) past \(hourWord) \(Self.list(hourValues))")
    }

    private enum DayPhrase {
        /// Every day of the listed months: "January and July".
        case months(String)
        /// Particular days: "on Monday through Friday", "on day 1 of the month".
        case days(String)
    }

    /// nil when the schedule runs every day of the year.
    private var dayPhrase: DayPhrase? {
        let monthList = months.count == 12 ? nil : Self.list(months.values, names: { Self.monthNames[$0 - 1] })
        // A field written as a restriction can still cover every value, and then restricts nothing.
        let restrictsDayOfMonth = !dayOfMonthIsWildcard && daysOfMonth.count < 31
        let restrictsWeekday = !dayOfWeekIsWildcard && daysOfWeek.count < 7
        let dayOfMonthPart = "on \(daysOfMonth.count == 1 ? "day" : "days") \(Self.list(daysOfMonth.values))"
        let weekdayPart = "on \(Self.weekdayList(daysOfWeek))"
        if !dayOfMonthIsWildcard, !dayOfWeekIsWildcard {
            // The OR rule: one field covering every day makes the schedule daily.
            guard restrictsDayOfMonth, restrictsWeekday else { return monthList.map(DayPhrase.months) }
            if let monthList { return .days("\(dayOfMonthPart) or \(weekdayPart) in \(monthList)") }
            return .days("\(dayOfMonthPart) of the month or \(weekdayPart)")
        }
        if restrictsDayOfMonth {
            if let (start, step) = Self.progression(daysOfMonth.values) {
                let from = start == 1 ? "" : " from day \(start)"
                return .days("on every \(Self.ordinal(step)) day of \(monthList ?? "the month")\(from)")
            }
            return .days("\(dayOfMonthPart) of \(monthList ?? "the month")")
        }
        if restrictsWeekday { return .days(weekdayPart + (monthList.map { " in \($0)" } ?? "")) }
        return monthList.map(DayPhrase.months)
    }

    private static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
        "November", "December",
    ]
    private static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// Weekdays listed Monday first, so weekends read "Saturday and Sunday".
    private static func weekdayList(_ days: CronBits) -> String {
        let order = [1, 2, 3, 4, 5, 6, 0]
        let positions = order.indices.filter { days.contains(order[$0]) }
        return list(positions, names: { weekdayNames[order[$0]] })
    }

    /// Step and start when `values` is exactly start, start+step, … and the step divides the
    /// cycle, i.e. the gaps are even across the wrap-around too.
    private static func period(_ values: [Int], cycle: Int) -> (step: Int, start: Int)? {
        guard values.count >= 2, let start = values.first else { return nil }
        let step = values[1] - start
        guard cycle % step == 0, start < step, values.count == cycle / step else { return nil }
        for (index, value) in values.enumerated() where value != start + index * step { return nil }
        return (step, start)
    }

    /// Start and step when `values` are evenly spaced by 2 or more, e.g. from `*/2` or `5/3`.
    private static func progression(_ values: [Int]) -> (start: Int, step: Int)? {
        guard values.count >= 3, let start = values.first else { return nil }
        let step = values[1] - start
        guard step >= 2 else { return nil }
        for (index, value) in values.enumerated() where value != start + index * step { return nil }
        return (start, step)
    }

    private static func ordinal(_ number: Int) -> String {
        switch (number % 10, number % 100) {
        case (1, let tens) where tens != 11: "\(number)st"
        case (2, let tens) where tens != 12: "\(number)nd"
        case (3, let tens) where tens != 13: "\(number)rd"
        default: "\(number)th"
        }
    }

    /// "1, 3 and 5 through 9": runs of three or more collapse to "a through b".
    private static func list(_ values: [Int], names: (Int) -> String = { "\($0)" }) -> String {
        var parts: [String] = []
        var index = 0
        while index < values.count {
            var end = index
            while end + 1 < values.count, values[end + 1] == values[end] + 1 { end += 1 }
            if end - index >= 2 {
                parts.append("\(names(values[index])) through \(names(values[end]))")
            } else {
                parts.append(contentsOf: values[index...end].map(names))
            }
            index = end + 1
        }
        return join(parts)
    }

    private static func join(_ parts: [String]) -> String {
        guard let last = parts.last else { return "" }
        return parts.count == 1 ? last : parts.dropLast().joined(separator: ", ") + " and " + last
    }

    private static func clock(_ hour: Int, _ minute: Int) -> String {
        func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(pad(hour)):\(pad(minute))"
    }
}
