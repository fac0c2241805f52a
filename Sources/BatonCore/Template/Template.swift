/// A filter applied to a template value with `|`, left to right.
public enum TemplateFilter: Sendable, Hashable {
    /// `default(x)`: used when the value is missing or null.
    case defaultValue(JSONValue)
    /// `tojson`: compact JSON, so a string renders with its quotes.
    case toJSON
    case upper
    case lower

    public static let knownNames = ["default", "tojson", "upper", "lower"]

    public var name: String {
        switch self {
        case .defaultValue: return "default"
        case .toJSON: return "tojson"
        case .upper: return "upper"
        case .lower: return "lower"
        }
    }

    /// Missing values (nil) pass through every filter but `default`, so
    /// `x | upper | default("n/a")` still falls back.
    func apply(to value: JSONValue?) -> JSONValue? {
        switch self {
        case .defaultValue(let fallback):
            guard let value, value != .null else { return fallback }
            return value
        case .toJSON: return value.map { .string($0.compactJSON) }
        case .upper: return value.map { .string($0.templateText.uppercased()) }
        case .lower: return value.map { .string($0.templateText.lowercased()) }
        }
    }
}

/// One `{{ reference | filter ... }}` block.
public struct TemplateExpression: Sendable, Hashable {
    public var reference: TemplateReference
    public var filters: [TemplateFilter]

    public init(reference: TemplateReference, filters: [TemplateFilter] = []) {
        self.reference = reference
        self.filters = filters
    }

    /// Whether a missing value is tolerated, so the validator need not insist the reference exists.
    public var hasDefault: Bool {
        filters.contains { if case .defaultValue = $0 { true } else { false } }
    }
}

/// Text with `{{ expr }}` blocks, as used in `run`, `env` and other task fields.
///
/// Values substituted at run time come from untrusted places (params, upstream
/// outputs, event payloads), so `render` passes each substituted value, and
/// never the literal text, through the caller's quoting function.
public struct Template: Sendable, Hashable {
    public enum Segment: Sendable, Hashable {
        case text(String)
        case expression(TemplateExpression)
    }

    public var source: String
    public var segments: [Segment]

    public init(source: String, segments: [Segment]) {
        self.source = source
        self.segments = segments
    }

    public var expressions: [TemplateExpression] {
        segments.compactMap { if case .expression(let expression) = $0 { expression } else { nil } }
    }

    /// Every reference in source order, for static validation of root names.
    public var references: [TemplateReference] { expressions.map(\.reference) }

    /// No references, so rendering always yields the same text.
    public var isLiteral: Bool { expressions.isEmpty }

    /// Parses `text`; errors carry the offset, what is wrong and how to fix it.
    public static func parse(_ text: String) throws(TemplateError) -> Template {
        let characters = Array(text)
        var segments: [Segment] = []
        var literal = ""
        var index = 0
        while index < characters.count {
            if characters[index] == "{", index + 1 < characters.count, characters[index + 1] == "{" {
                let (block, next) = try parseBlock(source: text, characters: characters, open: index)
                switch block {
                case .text(let escaped): literal += escaped
                case .expression:
                    if !literal.isEmpty { segments.append(.text(literal)) }
                    literal = ""
                    segments.append(block)
                }
                index = next
            } else {
                // A lone `}}` is ordinary text: shell and JSON snippets contain it.
                literal.append(characters[index])
                index += 1
            }
        }
        if !literal.isEmpty { segments.append(.text(literal)) }
        return Template(source: text, segments: segments)
    }

    /// Parses the block opening at `open`; returns it and the offset just past its `}}`.
    private static func parseBlock(
        source: String, characters: [Character], open: Int
    ) throws(TemplateError) -> (Segment, Int) {
        var lexer = ExpressionLexer(
            source: source, characters: characters, start: open + 2, end: characters.count, mode: .template)
        let unclosed = TemplateError(
            source: source, offset: open, message: "'{{' is not closed",
            fix: "close the expression with '}}', e.g. {{ params.region }}")

        let first = try lexer.next()
        let reference: TemplateReference
        switch first.kind {
        case .reference(let value):
            if let literal = misspelledLiteral(value.text) {
                throw lexer.error(
                    at: first.offset, "'\(value.text)' is not a value here",
                    fix: "a block holds a reference such as params.region; for the literal \(literal), "
                        + "write it outside {{ }}")
            }
            reference = value
        case .end:
            throw unclosed
        case .symbol("}}"):
            throw lexer.error(
                at: open, "empty template expression '{{ }}'",
                fix: "put a reference inside, e.g. {{ params.region }}, or remove the braces")
        case .string(let text):
            // `{{ "{{" }}` is how a literal `{{` is written (Go templates in shell commands need it).
            let close = try lexer.next()
            if close.isSymbol("}}") { return (.text(text), close.offset + 2) }
            if close.isEnd { throw unclosed }
            throw lexer.error(
                at: first.offset, "a quoted string in '{{ }}' cannot have filters or operators",
                fix: "write literal text outside {{ }}; a block holds a reference such as params.region")
        default:
            throw lexer.error(
                at: first.offset, "expected a reference such as params.region, found \(first.quoted)",
                fix: "write literal text outside {{ }}; a block holds a reference like tasks.train.output.accuracy "
                    + "or params.region")
        }

        var filters: [TemplateFilter] = []
        while true {
            let token = try lexer.next()
            switch token.kind {
            case .symbol("}}"):
                return (.expression(TemplateExpression(reference: reference, filters: filters)), token.offset + 2)
            case .symbol("|"):
                filters.append(try parseFilter(&lexer, unclosed: unclosed))
            case .end:
                throw unclosed
            default:
                throw lexer.error(
                    at: token.offset, "expected '}}' or '|' after '\(reference.text)', found \(token.quoted)",
                    fix: "close the expression with '}}' (it opened at column \(open + 1)); "
                        + "a block holds one reference and optional filters such as '| default(\"x\")'")
            }
        }
    }

    private static func parseFilter(
        _ lexer: inout ExpressionLexer, unclosed: TemplateError
    ) throws(TemplateError) -> TemplateFilter {
        let known = TemplateFilter.knownNames.joined(separator: ", ")
        let nameToken = try lexer.next()
        guard case .reference(let nameReference) = nameToken.kind, nameReference.path.count == 1 else {
            if nameToken.isEnd { throw unclosed }
            throw lexer.error(
                at: nameToken.offset, "expected a filter name after '|', found \(nameToken.quoted)",
                fix: "the filters are \(known)")
        }
        let name = nameReference.text
        guard TemplateFilter.knownNames.contains(name) else {
            var fix = "the filters are \(known)"
            if let match = Suggest.closest(to: name, in: TemplateFilter.knownNames) {
                fix = "did you mean '\(match)'? " + fix
            }
            throw lexer.error(at: nameToken.offset, "unknown filter '\(name)'", fix: fix)
        }

        let hasArguments = try lexer.peek().isSymbol("(")
        guard name == "default" else {
            if hasArguments {
                throw lexer.error(
                    at: try lexer.peek().offset, "filter '\(name)' takes no arguments",
                    fix: "write '| \(name)' without parentheses")
            }
            switch name {
            case "tojson": return .toJSON
            case "upper": return .upper
            default: return .lower
            }
        }

        let needsValue = "give the fallback in parentheses, e.g. '| default(\"none\")' or '| default(0)'"
        guard hasArguments else {
            throw lexer.error(at: nameToken.offset, "filter 'default' needs a value", fix: needsValue)
        }
        _ = try lexer.next()
        let argument = try lexer.next()
        let fallback: JSONValue
        switch argument.kind {
        case .string(let value): fallback = .string(value)
        case .number(let value): fallback = .number(value)
        case .keyword("true"): fallback = .bool(true)
        case .keyword("false"): fallback = .bool(false)
        case .keyword("null"): fallback = .null
        case .end: throw unclosed
        case .symbol(")"):
            throw lexer.error(at: nameToken.offset, "filter 'default' needs a value", fix: needsValue)
        case .reference(let reference):
            let hint = misspelledLiteral(reference.text).map { "write \($0); " } ?? ""
            throw lexer.error(
                at: argument.offset, "the value of 'default' must be a literal, found '\(reference.text)'",
                fix: hint + "quote text (\"\(reference.text)\"), or use a number, true, false or null")
        default:
            throw lexer.error(
                at: argument.offset, "the value of 'default' must be a literal, found \(argument.quoted)",
                fix: "use a quoted string, a number, true, false or null")
        }
        let close = try lexer.next()
        guard close.isSymbol(")") else {
            if close.isEnd { throw unclosed }
            throw lexer.error(
                at: close.offset, "expected ')' after the value of 'default', found \(close.quoted)",
                fix: "'default' takes exactly one value, e.g. '| default(\"none\")'")
        }
        return .defaultValue(fallback)
    }

    /// Renders the template, passing each substituted value (never the literal
    /// text) through `quoting`. `resolve` returns nil when a reference has no
    /// value, which throws `UnresolvedReferenceError` unless a `default` filter applies.
    public func render(
        quoting: (String) -> String = { $0 },
        resolve: (TemplateReference) throws -> JSONValue?
    ) throws -> String {
        var output = ""
        for segment in segments {
            switch segment {
            case .text(let text):
                output += text
            case .expression(let expression):
                output += quoting(try expression.text(for: try resolve(expression.reference)))
            }
        }
        return output
    }

    /// Renders with references looked up as paths in `context`, e.g.
    /// `{"params": {...}, "tasks": {...}}`.
    public func render(
        in context: JSONValue, quoting: (String) -> String = { $0 }
    ) throws(UnresolvedReferenceError) -> String {
        var output = ""
        for segment in segments {
            switch segment {
            case .text(let text):
                output += text
            case .expression(let expression):
                output += quoting(try expression.text(for: context.value(at: expression.reference.path)))
            }
        }
        return output
    }
}

extension TemplateExpression {
    /// The unquoted text substituted for this block, given the reference's value.
    public func text(for resolved: JSONValue?) throws(UnresolvedReferenceError) -> String {
        var value = resolved
        for filter in filters { value = filter.apply(to: value) }
        guard let value else { throw UnresolvedReferenceError(reference: reference.text, offset: reference.offset) }
        return value.templateText
    }
}

/// Python and YAML spellings people type for JSON's literals.
func misspelledLiteral(_ word: String) -> String? {
    switch word {
    case "True", "TRUE", "yes", "Yes": return "true"
    case "False", "FALSE", "no", "No": return "false"
    case "None", "none", "nil", "Null", "NULL": return "null"
    default: return nil
    }
}
