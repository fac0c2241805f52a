/// A reference like `tasks.train.output.accuracy`, located in its source text
/// so the validator can point at it.
public struct TemplateReference: Sendable, Hashable, CustomStringConvertible {
    /// `["tasks", "train", "output", "accuracy"]`; array indexes appear as digits (`"0"`).
    public var path: [String]
    /// Character offset of the reference's first character within the source text (0-based).
    public var offset: Int
    /// The reference as written, e.g. `tasks.train.output["some key"]`.
    public var text: String

    public init(path: [String], offset: Int, text: String) {
        self.path = path
        self.offset = offset
        self.text = text
    }

    /// The first component (`tasks`, `params`, `event`, ...), which the validator checks statically.
    public var root: String { path.first ?? "" }

    public var description: String { text }
}

/// A syntax error in a template or a `when` condition.
public struct TemplateError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The whole text that failed to parse.
    public var source: String
    /// Character offset (0-based) of the offending spot within `source`.
    public var offset: Int
    public var message: String
    /// How to fix it; always present because a syntax error is always the author's to fix.
    public var fix: String

    public init(source: String, offset: Int, message: String, fix: String) {
        self.source = source
        self.offset = offset
        self.message = message
        self.fix = fix
    }

    /// 1-based line of `offset`; templates in `run:` blocks often span lines.
    public var line: Int { location.line }
    /// 1-based column of `offset` within its line, counted in characters.
    public var column: Int { location.column }

    private var location: (line: Int, column: Int, lineText: String) {
        var line = 1
        var column = 1
        var lineText = ""
        var index = 0
        for character in source {
            if character == "\n" {
                if index >= offset { break }
                line += 1
                column = 1
                lineText = ""
            } else {
                if index < offset { column += 1 }
                lineText.append(character)
            }
            index += 1
        }
        return (line, column, lineText)
    }

    /// The message, the offending line with a caret under the offset, and the fix.
    public var description: String {
        let (line, column, lineText) = location
        let position = source.contains("\n") ? "line \(line), column \(column)" : "column \(column)"
        // Copy tabs from the source line so the caret lines up however tabs render.
        let padding = String(lineText.prefix(column - 1).map { $0 == "\t" ? "\t" : " " })
        return "\(message) (at \(position))\n    \(lineText)\n    \(padding)^\n    fix: \(fix)"
    }
}

/// Thrown by `Template.render` when a reference has no value and no `default` filter.
public struct UnresolvedReferenceError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reference as written, e.g. `tasks.train.output.accuracy`.
    public var reference: String
    /// Character offset of the reference within the template source.
    public var offset: Int

    public init(reference: String, offset: Int = 0) {
        self.reference = reference
        self.offset = offset
    }

    public var description: String {
        "'\(reference)' has no value; check the name and that the upstream task writes it, "
            + "or add '| default(...)' to use a fallback"
    }
}

/// Thrown by `Condition.evaluate` when values cannot be compared the way the condition asks.
public struct ConditionEvaluationError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var fix: String

    public init(message: String, fix: String) {
        self.message = message
        self.fix = fix
    }

    public var description: String { "\(message)\n    fix: \(fix)" }
}
