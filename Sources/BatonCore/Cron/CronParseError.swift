/// One of the five fields of a cron expression, named as users see them in error messages.
public enum CronField: String, Sendable, Hashable, CaseIterable {
    case minute
    case hour
    case dayOfMonth = "day-of-month"
    case month
    case dayOfWeek = "day-of-week"
}

/// Why a cron expression was rejected, precise enough to show the user what to change.
public struct CronParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The expression as given.
    public var expression: String
    /// The field at fault; nil when the expression as a whole is wrong (field count, unknown preset).
    public var field: CronField?
    /// The offending field text or token, e.g. `24` or `5-2`.
    public var value: String
    /// What is wrong, e.g. "hour 24 is out of range 0-23".
    public var message: String
    /// How to fix it, e.g. "use a value between 0 and 23".
    public var fix: String

    public init(expression: String, field: CronField?, value: String, message: String, fix: String) {
        self.expression = expression
        self.field = field
        self.value = value
        self.message = message
        self.fix = fix
    }

    /// One line: the expression, what is wrong and how to fix it.
    public var description: String {
        "invalid cron expression '\(expression)': \(message); fix: \(fix)"
    }
}
