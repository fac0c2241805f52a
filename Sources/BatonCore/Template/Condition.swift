/// A comparison operator in a condition.
public enum ComparisonOperator: String, Sendable, Hashable, CaseIterable {
    case equal = "=="
    case notEqual = "!="
    case less = "<"
    case lessOrEqual = "<="
    case greater = ">"
    case greaterOrEqual = ">="
    case isIn = "in"
    case isNotIn = "not in"
}

/// A task's `when:` condition, e.g.
/// `tasks.eval.output.accuracy >= 0.9 and params.force != true`.
///
/// Semantics, chosen because outputs and payloads often carry numbers and
/// booleans as strings:
/// - A missing reference evaluates as null, so `when: tasks.x.output.flag` is
///   false when the key is absent. `references` lets the validator check root names statically.
/// - `==` compares JSON values structurally, with two coercions: a string equals
///   a number when it parses as that number (`"0.90" == 0.9`, surrounding
///   whitespace ignored), and exactly `"true"`/`"false"` equal the booleans.
///   Nothing else coerces: `"" == 0`, `null == false` and `"1" == true` are false.
/// - `<`, `<=`, `>`, `>=` order two numbers, a number and a numeric string
///   (numerically), two numeric strings (numerically) or two other strings
///   (by character, which orders ISO-8601 dates correctly). Anything else,
///   including a missing value, is an evaluation error naming both kinds.
/// - `x in list` uses `==` above; `"sub" in "string"` tests a substring;
///   `"key" in object` tests a key; anything `in` null is false.
/// - Truthiness: null, false, 0, "", [] and {} are false; everything else is
///   true, including the string "false".
/// - `not` binds looser than comparisons (`not a == b` is `not (a == b)`),
///   `and` binds tighter than `or`; `&&`, `||` and `!` are aliases.
public indirect enum Condition: Sendable, Hashable {
    case literal(JSONValue)
    case reference(TemplateReference)
    case list([Condition])
    case not(Condition)
    case and(Condition, Condition)
    case or(Condition, Condition)
    case comparison(Condition, ComparisonOperator, Condition)

    /// Parses a condition, optionally wrapped in a single `{{ ... }}`; offsets
    /// in errors and references count from the start of `text`, wrapper included.
    public static func parse(_ text: String) throws(TemplateError) -> Condition {
        let characters = Array(text)
        var start = 0
        var end = characters.count
        while start < end, characters[start].isWhitespace { start += 1 }
        while end > start, characters[end - 1].isWhitespace { end -= 1 }
        if end - start >= 4, characters[start] == "{", characters[start + 1] == "{",
            characters[end - 2] == "}", characters[end - 1] == "}"
        {
            start += 2
            end -= 2
        }
        var parser = ConditionParser(
            lexer: ExpressionLexer(source: text, characters: characters, start: start, end: end, mode: .condition))
        return try parser.parseCondition()
    }

    /// Every reference in source order, for static validation of root names.
    public var references: [TemplateReference] {
        var result: [TemplateReference] = []
        collectReferences(into: &result)
        return result
    }

    private func collectReferences(into result: inout [TemplateReference]) {
        switch self {
        case .literal: break
        case .reference(let reference): result.append(reference)
        case .list(let items): for item in items { item.collectReferences(into: &result) }
        case .not(let operand): operand.collectReferences(into: &result)
        case .and(let left, let right), .or(let left, let right), .comparison(let left, _, let right):
            left.collectReferences(into: &result)
            right.collectReferences(into: &result)
        }
    }

    /// Evaluates the condition; `resolve` returns nil for a missing value, which counts as null.
    public func evaluate(resolve: (TemplateReference) throws -> JSONValue?) throws -> Bool {
        try value(resolve: resolve).isTruthy
    }

    /// Evaluates with references looked up as paths in `context`.
    public func evaluate(in context: JSONValue) throws(ConditionEvaluationError) -> Bool {
        do {
            return try evaluate { context.value(at: $0.path) }
        } catch let error as ConditionEvaluationError {
            throw error
        } catch {
            // Unreachable: the resolver above cannot throw, so only evaluation errors arrive here.
            throw ConditionEvaluationError(message: "\(error)", fix: "report this as a bug in Baton")
        }
    }

    private func value(resolve: (TemplateReference) throws -> JSONValue?) throws -> JSONValue {
        switch self {
        case .literal(let value):
            return value
        case .reference(let reference):
            return try resolve(reference) ?? .null
        case .list(let items):
            var values: [JSONValue] = []
            for item in items { values.append(try item.value(resolve: resolve)) }
            return .array(values)
        case .not(let operand):
            return .bool(!(try operand.value(resolve: resolve).isTruthy))
        case .and(let left, let right):
            guard try left.value(resolve: resolve).isTruthy else { return .bool(false) }
            return .bool(try right.value(resolve: resolve).isTruthy)
        case .or(let left, let right):
            if try left.value(resolve: resolve).isTruthy { return .bool(true) }
            return .bool(try right.value(resolve: resolve).isTruthy)
        case .comparison(let left, let op, let right):
            let lhs = try Operand(left, resolve: resolve)
            let rhs = try Operand(right, resolve: resolve)
            return .bool(try Self.compare(lhs, op, rhs))
        }
    }

    /// An evaluated operand that remembers how it was written, for error messages.
    private struct Operand {
        var expression: Condition
        var value: JSONValue
        var isMissing: Bool

        init(_ expression: Condition, resolve: (TemplateReference) throws -> JSONValue?) throws {
            self.expression = expression
            if case .reference(let reference) = expression {
                let resolved = try resolve(reference)
                value = resolved ?? .null
                isMissing = resolved == nil
            } else {
                value = try expression.value(resolve: resolve)
                isMissing = false
            }
        }

        var summary: String {
            if isMissing { return "\(expression) (missing)" }
            switch expression {
            case .literal, .list: return "\(expression) (\(value.kindName))"
            default: break
            }
            var shown = value.compactJSON
            if shown.count > 40 { shown = String(shown.prefix(37)) + "..." }
            return "\(expression) (\(value.kindName) \(shown))"
        }
    }

    private static func compare(_ lhs: Operand, _ op: ComparisonOperator, _ rhs: Operand) throws -> Bool {
        switch op {
        case .equal: return lhs.value.looselyEquals(rhs.value)
        case .notEqual: return !lhs.value.looselyEquals(rhs.value)
        case .isIn: return try contains(rhs, lhs)
        case .isNotIn: return try !contains(rhs, lhs)
        case .less, .lessOrEqual, .greater, .greaterOrEqual:
            guard let order = order(lhs.value, rhs.value) else {
                let missing = [lhs, rhs].filter(\.isMissing).map(\.expression.description)
                let fix =
                    if let first = missing.first {
                        "'\(first)' has no value; guard it first, e.g. '\(first) != null and ...'"
                    } else {
                        "compare two numbers or two strings; numeric strings count as numbers"
                    }
                throw ConditionEvaluationError(
                    message: "cannot compare \(lhs.summary) with \(rhs.summary) using '\(op.rawValue)'", fix: fix)
            }
            switch op {
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .greater: return order > 0
            default: return order >= 0
            }
        }
    }

    /// -1, 0 or 1; nil when the two values have no order.
    private static func order(_ lhs: JSONValue, _ rhs: JSONValue) -> Int? {
        func sign<T: Comparable>(_ a: T, _ b: T) -> Int { a < b ? -1 : (a == b ? 0 : 1) }
        switch (lhs, rhs) {
        case (.number(let a), .number(let b)):
            return sign(a, b)
        case (.string(let a), .number(let b)):
            return a.numericValue.map { sign($0, b) }
        case (.number(let a), .string(let b)):
            return b.numericValue.map { sign(a, $0) }
        case (.string(let a), .string(let b)):
            if let x = a.numericValue, let y = b.numericValue { return sign(x, y) }
            return sign(a, b)
        default:
            return nil
        }
    }

    private static func contains(_ container: Operand, _ element: Operand) throws -> Bool {
        switch container.value {
        case .array(let items):
            return items.contains { element.value.looselyEquals($0) }
        case .null:
            return false
        case .string(let text):
            guard case .string(let needle) = element.value else {
                throw ConditionEvaluationError(
                    message: "cannot look for \(element.summary) in the string \(container.summary)",
                    fix: "'in' with a string on the right tests for a substring, so the left side must be a string")
            }
            return text.contains(needle)
        case .object(let members):
            guard case .string(let key) = element.value else {
                throw ConditionEvaluationError(
                    message: "cannot look for \(element.summary) among the keys of \(container.summary)",
                    fix: "'in' with an object on the right tests for a key, so the left side must be a string")
            }
            return members[key] != nil
        default:
            throw ConditionEvaluationError(
                message: "cannot look for \(element.summary) in \(container.summary)",
                fix: "the right side of 'in' must be a list, a string or an object")
        }
    }
}

extension Condition: CustomStringConvertible {
    /// The condition in canonical form, with `and` inside `or` parenthesized so precedence is visible in logs.
    public var description: String {
        switch self {
        case .literal(let value):
            if case .string = value { return value.compactJSON }
            return value == .null ? "null" : value.templateText
        case .reference(let reference):
            return reference.text
        case .list(let items):
            return "[" + items.map(\.description).joined(separator: ", ") + "]"
        case .not(let operand):
            return "not " + operand.parenthesized(unless: operand.isAtomic || operand.isNot)
        case .and(let left, let right):
            return left.parenthesized(unless: left.bindsAtLeastAsTightAsAnd)
                + " and " + right.parenthesized(unless: right.bindsAtLeastAsTightAsAnd && !right.isAnd)
        case .or(let left, let right):
            return left.parenthesized(unless: !left.isAnd) + " or "
                + right.parenthesized(unless: !right.isAnd && !right.isOr)
        case .comparison(let left, let op, let right):
            return left.parenthesized(unless: left.isAtomic) + " \(op.rawValue) "
                + right.parenthesized(unless: right.isAtomic)
        }
    }

    private func parenthesized(unless bare: Bool) -> String { bare ? description : "(\(description))" }

    private var isAtomic: Bool {
        switch self {
        case .literal, .reference, .list: return true
        default: return false
        }
    }

    private var isNot: Bool { if case .not = self { true } else { false } }
    private var isAnd: Bool { if case .and = self { true } else { false } }
    private var isOr: Bool { if case .or = self { true } else { false } }
    private var bindsAtLeastAsTightAsAnd: Bool { !isOr }
}

extension JSONValue {
    /// Truthiness for conditions: null, false, 0, "", [] and {} are false.
    public var isTruthy: Bool {
        switch self {
        case .null: return false
        case .bool(let value): return value
        case .number(let value): return value != 0 && !value.isNaN
        case .string(let value): return !value.isEmpty
        case .array(let value): return !value.isEmpty
        case .object(let value): return !value.isEmpty
        }
    }

    /// `==` in conditions: structural, except that strings holding a number or
    /// `true`/`false` equal that number or boolean (outputs often arrive as text).
    public func looselyEquals(_ other: JSONValue) -> Bool {
        switch (self, other) {
        case (.string(let text), .number(let number)), (.number(let number), .string(let text)):
            return text.numericValue == number
        case (.string(let text), .bool(let flag)), (.bool(let flag), .string(let text)):
            return text == (flag ? "true" : "false")
        case (.array(let a), .array(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.looselyEquals($1) }
        case (.object(let a), .object(let b)):
            return a.count == b.count
                && a.allSatisfy { key, value in b[key].map { value.looselyEquals($0) } ?? false }
        default:
            return self == other
        }
    }
}

extension String {
    /// The number this string spells in decimal (`"42"`, `" -0.5\n"`, `"1e3"`), ignoring
    /// surrounding whitespace; nil for anything else, including `"inf"`, `"nan"` and hex,
    /// which `Double.init` would otherwise accept.
    var numericValue: Double? {
        let scalars = Array(
            unicodeScalars.drop { $0.properties.isWhitespace }.reversed()
                .drop { $0.properties.isWhitespace }.reversed())
        var index = 0
        func digits() -> Int {
            let start = index
            while index < scalars.count, ("0"..."9").contains(scalars[index]) { index += 1 }
            return index - start
        }
        if index < scalars.count, scalars[index] == "-" || scalars[index] == "+" { index += 1 }
        var mantissaDigits = digits()
        if index < scalars.count, scalars[index] == "." {
            index += 1
            mantissaDigits += digits()
        }
        guard mantissaDigits > 0 else { return nil }
        if index < scalars.count, scalars[index] == "e" || scalars[index] == "E" {
            index += 1
            if index < scalars.count, scalars[index] == "-" || scalars[index] == "+" { index += 1 }
            guard digits() > 0 else { return nil }
        }
        guard index == scalars.count else { return nil }
        var text = String.UnicodeScalarView()
        text.append(contentsOf: scalars)
        return Double(String(text))
    }
}

/// Recursive descent over: or → and → not → comparison → primary.
private struct ConditionParser {
    var lexer: ExpressionLexer

    private static let comparisonSymbols: [String: ComparisonOperator] = [
        "==": .equal, "!=": .notEqual, "<": .less, "<=": .lessOrEqual, ">": .greater, ">=": .greaterOrEqual,
    ]
    private static let operatorsFix = "compare with ==, !=, <, <=, >, >=, in or not in, and combine with and, or, not"

    private static func comparisonOperator(_ token: ExpressionToken) -> ComparisonOperator? {
        guard case .symbol(let symbol) = token.kind else { return nil }
        return comparisonSymbols[symbol]
    }

    mutating func parseCondition() throws(TemplateError) -> Condition {
        let first = try lexer.peek()
        if first.isEnd {
            throw lexer.error(
                at: first.offset, "empty condition",
                fix: "write a condition such as params.deploy == true, or remove 'when'")
        }
        let condition = try parseOr(after: nil)
        let trailing = try lexer.peek()
        guard trailing.isEnd else { throw unexpectedAfterOperand(trailing) }
        return condition
    }

    private func unexpectedAfterOperand(_ token: ExpressionToken) -> TemplateError {
        switch token.kind {
        case .symbol(")"):
            return lexer.error(
                at: token.offset, "unexpected ')' without a matching '('",
                fix: "remove the ')' or add the '(' it closes")
        case .symbol("}}"):
            return lexer.error(
                at: token.offset, "unexpected '}}' inside the condition",
                fix: "wrap the whole condition in one {{ ... }}, or write it without braces")
        case .symbol("|"):
            return lexer.error(
                at: token.offset, "filters are not available in conditions",
                fix: "compare the value directly; a missing value is null, e.g. 'params.x == null or params.x'")
        case .keyword("not"):
            return lexer.error(
                at: token.offset, "expected 'in' after 'not' here",
                fix: "write 'x not in [...]', or put 'not' before the whole comparison: 'not (a == b)'")
        default:
            return lexer.error(
                at: token.offset, "expected an operator or the end of the condition, found \(token.quoted)",
                fix: Self.operatorsFix)
        }
    }

    private mutating func parseOr(after previous: ExpressionToken?) throws(TemplateError) -> Condition {
        var left = try parseAnd(after: previous)
        while true {
            let token = try lexer.peek()
            guard token.isKeyword("or") || token.isSymbol("||") else { return left }
            _ = try lexer.next()
            left = .or(left, try parseAnd(after: token))
        }
    }

    private mutating func parseAnd(after previous: ExpressionToken?) throws(TemplateError) -> Condition {
        var left = try parseNot(after: previous)
        while true {
            let token = try lexer.peek()
            guard token.isKeyword("and") || token.isSymbol("&&") else { return left }
            _ = try lexer.next()
            left = .and(left, try parseNot(after: token))
        }
    }

    private mutating func parseNot(after previous: ExpressionToken?) throws(TemplateError) -> Condition {
        let token = try lexer.peek()
        if token.isKeyword("not") || token.isSymbol("!") {
            _ = try lexer.next()
            return .not(try parseNot(after: token))
        }
        return try parseComparison(after: previous)
    }

    private mutating func parseComparison(after previous: ExpressionToken?) throws(TemplateError) -> Condition {
        let left = try parsePrimary(after: previous)
        let token = try lexer.peek()
        let op: ComparisonOperator
        if let comparison = Self.comparisonOperator(token) {
            op = comparison
            _ = try lexer.next()
        } else if token.isKeyword("in") {
            op = .isIn
            _ = try lexer.next()
        } else if token.isKeyword("not"), try lexer.peek(1).isKeyword("in") {
            op = .isNotIn
            _ = try lexer.next()
            _ = try lexer.next()
        } else {
            return left
        }
        let operatorToken = ExpressionToken(kind: token.kind, offset: token.offset, text: op.rawValue)
        let right = try parsePrimary(after: operatorToken)
        let following = try lexer.peek()
        let chainsNotIn = following.isKeyword("not") ? try lexer.peek(1).isKeyword("in") : false
        if Self.comparisonOperator(following) != nil || following.isKeyword("in") || chainsNotIn {
            throw lexer.error(
                at: following.offset, "comparisons cannot be chained",
                fix: "split it with 'and', e.g. 'a < b and b < c'")
        }
        if op == .isIn || op == .isNotIn, case .literal(let value) = right {
            switch value {
            case .string, .null: break
            default:
                throw lexer.error(
                    at: token.offset, "the right side of '\(op.rawValue)' must be a list, a string or a reference",
                    fix: "write a list, e.g. 'params.region \(op.rawValue) [\"eu\", \"us\"]'")
            }
        }
        return .comparison(left, op, right)
    }

    private mutating func parsePrimary(after previous: ExpressionToken?) throws(TemplateError) -> Condition {
        let token = try lexer.next()
        switch token.kind {
        case .reference(let reference):
            if let literal = misspelledLiteral(reference.text) {
                throw lexer.error(
                    at: token.offset, "'\(reference.text)' is not a literal",
                    fix: "did you mean '\(literal)'? Literals are true, false, null, numbers and quoted strings")
            }
            return .reference(reference)
        case .string(let value): return .literal(.string(value))
        case .number(let value): return .literal(.number(value))
        case .keyword("true"): return .literal(.bool(true))
        case .keyword("false"): return .literal(.bool(false))
        case .keyword("null"): return .literal(.null)
        case .symbol("("):
            let inner = try parseOr(after: token)
            let close = try lexer.next()
            guard close.isSymbol(")") else {
                throw lexer.error(
                    at: close.offset,
                    "expected ')' to close the '(' at column \(token.offset + 1), "
                        + "found \(close.quoted)",
                    fix: "add the missing ')'")
            }
            return inner
        case .symbol("["):
            return try parseList(open: token)
        default:
            throw missingOperand(found: token, after: previous)
        }
    }

    private mutating func parseList(open: ExpressionToken) throws(TemplateError) -> Condition {
        var items: [Condition] = []
        if try lexer.peek().isSymbol("]") {
            _ = try lexer.next()
            return .list(items)
        }
        while true {
            let separator = items.isEmpty ? open : ExpressionToken(kind: .symbol(","), offset: 0, text: ",")
            items.append(try parsePrimary(after: separator))
            let token = try lexer.next()
            if token.isSymbol("]") { return .list(items) }
            guard token.isSymbol(",") else {
                throw lexer.error(
                    at: token.offset,
                    "expected ',' or ']' in the list opened at column \(open.offset + 1), "
                        + "found \(token.quoted)",
                    fix: "separate items with ',' and close the list with ']', e.g. [\"eu\", \"us\"]")
            }
            // A trailing comma is allowed, as in YAML flow lists.
            if try lexer.peek().isSymbol("]") {
                _ = try lexer.next()
                return .list(items)
            }
        }
    }

    private func missingOperand(found token: ExpressionToken, after previous: ExpressionToken?) -> TemplateError {
        let example = "e.g. params.deploy, tasks.eval.output.accuracy, 0.9, \"eu\", true or ( ... )"
        guard let previous else {
            return lexer.error(
                at: token.offset, "expected a value or reference, found \(token.quoted)",
                fix: "start with a value, \(example)")
        }
        return lexer.error(
            at: token.offset, "expected an operand after '\(previous.text)', found \(token.quoted)",
            fix: "put a value after '\(previous.text)', \(example)")
    }
}
