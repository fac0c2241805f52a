/// A set of small non-negative integers (0...63) as a bit mask, so "next allowed value" is one
/// instruction instead of a loop on the scheduler's hot path.
struct CronBits: Sendable, Hashable {
    var raw: UInt64 = 0

    func contains(_ value: Int) -> Bool {
        value >= 0 && value < 64 && raw & (1 << UInt64(value)) != 0
    }

    mutating func insert(_ value: Int) {
        raw |= 1 << UInt64(value)
    }

    /// Smallest member >= `value`; out-of-range arguments are allowed so callers can carry.
    func next(atOrAfter value: Int) -> Int? {
        guard value < 64 else { return nil }
        let masked = value <= 0 ? raw : raw & (~UInt64(0) << UInt64(value))
        return masked == 0 ? nil : masked.trailingZeroBitCount
    }

    /// Largest member <= `value`; out-of-range arguments are allowed so callers can borrow.
    func previous(atOrBefore value: Int) -> Int? {
        guard value >= 0 else { return nil }
        let masked = value >= 63 ? raw : raw & ((1 << UInt64(value + 1)) - 1)
        return masked == 0 ? nil : 63 - masked.leadingZeroBitCount
    }

    var count: Int { raw.nonzeroBitCount }

    var values: [Int] { (0..<64).filter(contains) }

    static func range(_ lower: Int, _ upper: Int) -> CronBits {
        var bits = CronBits()
        for value in lower...upper { bits.insert(value) }
        return bits
    }
}

/// What one field accepts.
struct CronFieldSpec: Sendable {
    let field: CronField
    let lower: Int
    let upper: Int
    /// Upper bound for `*` and `a/n`. Differs from `upper` only for day-of-week, where 7 is
    /// merely an alias of Sunday and must not make `*/2` pick Sunday twice.
    let cycleUpper: Int
    /// Accepted names; `names[i]` means `i + nameBase`.
    let names: [String]
    let nameBase: Int

    static let minute = CronFieldSpec(field: .minute, lower: 0, upper: 59, cycleUpper: 59, names: [], nameBase: 0)
    static let hour = CronFieldSpec(field: .hour, lower: 0, upper: 23, cycleUpper: 23, names: [], nameBase: 0)
    static let dayOfMonth = CronFieldSpec(
        field: .dayOfMonth, lower: 1, upper: 31, cycleUpper: 31, names: [], nameBase: 0)
    static let month = CronFieldSpec(
        field: .month, lower: 1, upper: 12, cycleUpper: 12,
        names: ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], nameBase: 1)
    static let dayOfWeek = CronFieldSpec(
        field: .dayOfWeek, lower: 0, upper: 7, cycleUpper: 6,
        names: ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"], nameBase: 0)

    static let all: [CronFieldSpec] = [.minute, .hour, .dayOfMonth, .month, .dayOfWeek]

    var name: String { field.rawValue }
    var span: Int { cycleUpper - lower + 1 }
}

/// The parsed form of one field.
struct CronParsedField: Sendable {
    var bits: CronBits
    /// True when the field is a plain `*` (or `*/1`). Cron's day-of-month/day-of-week OR rule
    /// keys off how the field was written, not off which values it happens to cover.
    var isWildcard: Bool
}

/// Parses single fields; every failure names the field, the offending token and a fix.
struct CronFieldParser {
    let expression: String
    let spec: CronFieldSpec

    func parse(_ text: String) throws(CronParseError) -> CronParsedField {
        let items = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if items.contains(where: \.isEmpty) {
            let cleaned = items.filter { !$0.isEmpty }.joined(separator: ",")
            throw error(
                value: text, "\(spec.name) list '\(text)' has an empty item",
                fix: cleaned.isEmpty ? "write at least one value, e.g. *" : "remove the extra comma: \(cleaned)")
        }
        var result = CronParsedField(bits: CronBits(), isWildcard: false)
        for item in items {
            try parseItem(item, into: &result)
        }
        return result
    }

    private func parseItem(_ item: String, into result: inout CronParsedField) throws(CronParseError) {
        let parts = item.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2 else {
            throw error(value: item, "\(spec.name) item '\(item)' has more than one '/'", fix: "write one step, e.g. */5 or 1-10/2")
        }
        let rangeText = parts[0]
        var step = 1
        if parts.count == 2 {
            let stepText = parts[1]
            guard !stepText.isEmpty else {
                throw error(value: item, "\(spec.name) step is missing after '/' in '\(item)'", fix: "add a step, e.g. \(rangeText.isEmpty ? "*" : rangeText)/2")
            }
            guard stepText.allSatisfy(\.isCronDigit) else {
                throw error(value: stepText, "\(spec.name) step '\(stepText)' in '\(item)' is not a number", fix: "use a whole number step, e.g. \(rangeText.isEmpty ? "*" : rangeText)/2")
            }
            step = Int(stepText) ?? Int.max
            guard step > 0 else {
                throw error(value: item, "\(spec.name) step 0 in '\(item)' never advances", fix: "use a step of at least 1, e.g. \(rangeText.isEmpty ? "*" : rangeText)/5, or * for every \(unitSingular)")
            }
            // Steps restart every cycle (*/90 fires only at minute 0), so a step beyond the
            // cycle is almost certainly a misunderstanding worth reporting.
            guard step <= spec.span else {
                throw error(
                    value: item, "\(spec.name) step \(stepText) is larger than the \(spec.span) values of the field",
                    fix: "use a step between 1 and \(spec.span); steps restart every \(cycleName), so longer intervals can't be expressed in this field")
            }
        }

        let lower: Int
        let upper: Int
        if rangeText == "*" {
            lower = spec.lower
            upper = spec.cycleUpper
            if step == 1 { result.isWildcard = true }
        } else if rangeText.isEmpty {
            throw error(value: item, "\(spec.name) item '\(item)' has nothing before '/'", fix: "write */\(step) or a range like \(spec.lower)-\(spec.cycleUpper)/\(step)")
        } else if rangeText.contains("-") {
            let bounds = rangeText.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
            guard bounds.count == 2, !bounds[0].isEmpty, !bounds[1].isEmpty else {
                throw error(value: rangeText, "\(spec.name) range '\(rangeText)' is malformed", fix: "write a range as start-end, e.g. \(spec.lower)-\(spec.lower + 4); negative values aren't allowed")
            }
            lower = try value(bounds[0])
            upper = try value(bounds[1])
            guard lower <= upper else {
                throw error(
                    value: rangeText, "\(spec.name) range \(rangeText) is reversed (\(bounds[0]) comes after \(bounds[1]))",
                    fix: "ranges don't wrap around; write \(bounds[1])-\(bounds[0]), or \(bounds[0])-\(render(spec.cycleUpper, like: bounds[0])),\(render(spec.lower, like: bounds[1]))-\(bounds[1]) to wrap past the end")
            }
        } else {
            lower = try value(rangeText)
            // `a/n` means "from a to the end of the cycle in steps of n".
            upper = parts.count == 2 ? max(lower, spec.cycleUpper) : lower
        }
        for value in stride(from: lower, through: upper, by: step) {
            // Day-of-week 7 is Sunday; fold it so matching only deals with 0...6.
            result.bits.insert(spec.field == .dayOfWeek && value == 7 ? 0 : value)
        }
    }

    /// One number or name.
    private func value(_ token: String) throws(CronParseError) -> Int {
        if token.allSatisfy(\.isCronDigit) {
            let number = Int(token) ?? Int.max
            guard (spec.lower...spec.upper).contains(number) else {
                throw error(value: token, "\(spec.name) \(token) is out of range \(spec.lower)-\(spec.upper)", fix: rangeFix(number))
            }
            return number
        }
        if token.allSatisfy(\.isCronLetter) {
            guard !spec.names.isEmpty else {
                throw error(value: token, "\(spec.name) value '\(token)' is not a number", fix: "use a number between \(spec.lower) and \(spec.upper); names are only allowed in the month and day-of-week fields")
            }
            if let index = spec.names.firstIndex(of: token.uppercased()) { return index + spec.nameBase }
            let prefix = String(token.uppercased().prefix(3))
            let guess = spec.names.contains(prefix) ? prefix : Suggest.closest(to: token.uppercased(), in: spec.names)
            let choices = "use \(spec.names.first!)-\(spec.names.last!) or \(spec.lower)-\(spec.upper)"
            throw error(
                value: token, "'\(token)' is not a \(spec.name) name",
                fix: guess.map { "did you mean \($0)? \(choices)" } ?? choices)
        }
        let fix = token == "?" ? "'?' is Quartz syntax; use * instead" : syntaxHint
        throw error(value: token, "\(spec.name) value '\(token)' is not valid", fix: fix)
    }

    private func rangeFix(_ number: Int) -> String {
        var fix = "use a value between \(spec.lower) and \(spec.upper)"
        switch spec.field {
        case .minute: fix += ", such as \(min(number, spec.upper))"
        case .hour: fix += number == 24 ? "; midnight is hour 0" : ", such as \(min(number, spec.upper))"
        case .dayOfMonth: fix += number == 0 ? "; days of the month start at 1" : ", such as \(min(number, spec.upper))"
        case .month: fix += number == 0 ? "; months start at 1 (JAN)" : ", or a name JAN-DEC"
        case .dayOfWeek: fix += " (0 and 7 are both Sunday), or a name SUN-SAT"
        }
        return fix
    }

    /// Keeps suggestions in the user's notation: FRI-MON wraps as FRI-SAT,SUN-MON, not 5-6,0-1.
    private func render(_ value: Int, like token: String) -> String {
        guard token.allSatisfy(\.isCronLetter), spec.names.indices.contains(value - spec.nameBase) else { return "\(value)" }
        return spec.names[value - spec.nameBase]
    }

    private var syntaxHint: String {
        var hint = "use *, a number (\(spec.lower)-\(spec.upper)), a range (1-5), a step (*/2 or 1-10/2) or a list (1,3,5)"
        if let first = spec.names.first, let last = spec.names.last { hint += "; names \(first)-\(last) also work" }
        return hint
    }

    private var unitSingular: String {
        switch spec.field {
        case .minute: "minute"
        case .hour: "hour"
        case .dayOfMonth, .dayOfWeek: "day"
        case .month: "month"
        }
    }

    private var cycleName: String {
        switch spec.field {
        case .minute: "hour"
        case .hour: "day"
        case .dayOfMonth: "month"
        case .month: "year"
        case .dayOfWeek: "week"
        }
    }

    private func error(value: String, _ message: String, fix: String) -> CronParseError {
        CronParseError(expression: expression, field: spec.field, value: value, message: message, fix: fix)
    }
}

extension Character {
    fileprivate var isCronDigit: Bool { isASCII && isNumber }
    fileprivate var isCronLetter: Bool { isASCII && isLetter }
}
