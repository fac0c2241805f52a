import Foundation

/// What a filter clause or an order-by names: `metrics.acc`, `params.lr`, `tags.team`,
/// `attributes.status`, or a bare attribute such as `name`.
public struct SearchKey: Sendable, Hashable, CustomStringConvertible {
    public enum Entity: String, Sendable, Hashable {
        case metric, param, tag, attribute
    }

    public var entity: Entity
    public var key: String

    public var description: String { "\(entity.rawValue).\(key)" }

    /// Parses `entity.key`, where the key may be quoted with backquotes or double quotes
    /// (`tags.\`mlflow.runName\``); an unquoted key keeps everything after the first dot.
    static func parse(_ text: String) throws(MLflowError) -> SearchKey {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let dot = trimmed.firstIndex(of: ".") else {
            return SearchKey(entity: .attribute, key: unquote(trimmed))
        }
        let prefix = trimmed[..<dot].lowercased()
        let rest = unquote(String(trimmed[trimmed.index(after: dot)...]))
        let entity: Entity
        switch prefix {
        case "metric", "metrics": entity = .metric
        case "param", "params", "parameter", "parameters": entity = .param
        case "tag", "tags": entity = .tag
        case "attribute", "attributes", "attr", "run": entity = .attribute
        default:
            // `mlflow.runName` style keys without an entity are not valid MLflow either.
            throw .invalidParameter(
                "invalid identifier '\(trimmed)' in the filter: use metrics.KEY, params.KEY, tags.KEY or attributes.NAME")
        }
        guard !rest.isEmpty else { throw .invalidParameter("'\(trimmed)' names no key; write \(prefix).KEY") }
        return SearchKey(entity: entity, key: rest)
    }

    static func unquote(_ text: String) -> String {
        if text.count >= 2, let first = text.first, let last = text.last, first == last, first == "`" || first == "\"" {
            return String(text.dropFirst().dropLast())
        }
        return text
    }
}

/// A parsed MLflow search filter: clauses joined by AND.
public struct SearchFilter: Sendable, Hashable {
    public enum Comparator: String, Sendable, Hashable {
        case equal = "=", notEqual = "!=", greater = ">", greaterOrEqual = ">=", less = "<", lessOrEqual = "<="
        case like = "LIKE", ilike = "ILIKE", isIn = "IN", notIn = "NOT IN", isNull = "IS NULL", isNotNull = "IS NOT NULL"
    }

    public enum Value: Sendable, Hashable {
        case string(String)
        case number(Double)
        case list([String])
        case none
    }

    public struct Clause: Sendable, Hashable {
        public var key: SearchKey
        public var comparator: Comparator
        public var value: Value
    }

    public var clauses: [Clause]

    public static let matchAll = SearchFilter(clauses: [])

    /// Parses a filter string; empty or nil matches everything.
    public static func parse(_ text: String?) throws(MLflowError) -> SearchFilter {
        guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return .matchAll }
        var tokens = try tokenize(text)
        var clauses: [Clause] = []
        while true {
            clauses.append(try parseClause(&tokens, in: text))
            guard let next = tokens.first else { break }
            guard case .word(let word) = next, word.uppercased() == "AND" else {
                throw .invalidParameter("unexpected '\(next.text)' in filter '\(text)'; join conditions with AND")
            }
            tokens.removeFirst()
        }
        return SearchFilter(clauses: clauses)
    }

    enum Token: Equatable {
        case word(String)  // identifiers, numbers, keywords
        case quoted(String)  // 'string' or "string"
        case op(String)
        case open, close, comma

        var text: String {
            switch self {
            case .word(let w): return w
            case .quoted(let q): return "'\(q)'"
            case .op(let o): return o
            case .open: return "("
            case .close: return ")"
            case .comma: return ","
            }
        }
    }

    static func tokenize(_ text: String) throws(MLflowError) -> [Token] {
        var tokens: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace {
                i += 1
            } else if c == "'" || c == "\"" {
                let (value, next) = try quoted(chars, from: i, in: text)
                tokens.append(.quoted(value))
                i = next
            } else if c == "(" {
                tokens.append(.open)
                i += 1
            } else if c == ")" {
                tokens.append(.close)
                i += 1
            } else if c == "," {
                tokens.append(.comma)
                i += 1
            } else if "=!<>".contains(c) {
                var op = String(c)
                if i + 1 < chars.count, chars[i + 1] == "=" {
                    op.append("=")
                    i += 1
                }
                guard op != "!" else { throw .invalidParameter("'!' must be followed by '=' in filter '\(text)'") }
                tokens.append(.op(op == "==" ? "=" : op))
                i += 1
            } else {
                // A word runs to whitespace or an operator; backquoted parts may hold anything.
                var word = ""
                while i < chars.count {
                    let d = chars[i]
                    // `key` anywhere, and tags."key" after the dot, keep their quotes for SearchKey.
                    if d == "`" || (d == "\"" && word.hasSuffix(".")) {
                        let (value, next) = try quoted(chars, from: i, in: text)
                        word += "\(d)\(value)\(d)"
                        i = next
                        continue
                    }
                    if d.isWhitespace || "=!<>(),'\"".contains(d) { break }
                    word.append(d)
                    i += 1
                }
                tokens.append(.word(word))
            }
        }
        return tokens
    }

    /// The text between the quote at `start` and its closing twin, and the index after that.
    static func quoted(_ chars: [Character], from start: Int, in text: String) throws(MLflowError) -> (String, Int) {
        let quote = chars[start]
        guard let end = chars[(start + 1)...].firstIndex(of: quote) else {
            throw .invalidParameter("unterminated \(quote) in filter '\(text)'")
        }
        return (String(chars[(start + 1)..<end]), end + 1)
    }

    static func parseClause(_ tokens: inout [Token], in text: String) throws(MLflowError) -> Clause {
        guard case .word(let identifier)? = tokens.first else {
            throw .invalidParameter("expected a name such as metrics.accuracy in filter '\(text)'")
        }
        tokens.removeFirst()
        let key = try SearchKey.parse(identifier)
        guard let next = tokens.first else { throw .invalidParameter("'\(identifier)' has no comparison in filter '\(text)'") }
        tokens.removeFirst()
        let comparator: Comparator
        switch next {
        case .op(let op):
            guard let parsed = Comparator(rawValue: op) else { throw .invalidParameter("unknown operator '\(op)' in '\(text)'") }
            comparator = parsed
        case .word(let word):
            switch word.uppercased() {
            case "LIKE": comparator = .like
            case "ILIKE": comparator = .ilike
            case "IN": comparator = .isIn
            case "NOT":
                guard case .word(let w)? = tokens.first, w.uppercased() == "IN" else {
                    throw .invalidParameter("expected IN after NOT in filter '\(text)'")
                }
                tokens.removeFirst()
                comparator = .notIn
            case "IS":
                var negated = false
                if case .word(let w)? = tokens.first, w.uppercased() == "NOT" {
                    negated = true
                    tokens.removeFirst()
                }
                guard case .word(let w)? = tokens.first, w.uppercased() == "NULL" else {
                    throw .invalidParameter("expected NULL after IS in filter '\(text)'")
                }
                tokens.removeFirst()
                return Clause(key: key, comparator: negated ? .isNotNull : .isNull, value: .none)
            default:
                throw .invalidParameter("unknown comparison '\(word)' after '\(identifier)' in filter '\(text)'")
            }
        default:
            throw .invalidParameter("unexpected '\(next.text)' after '\(identifier)' in filter '\(text)'")
        }
        if comparator == .isIn || comparator == .notIn {
            guard tokens.first == .open else { throw .invalidParameter("IN needs a list such as ('a', 'b') in filter '\(text)'") }
            tokens.removeFirst()
            var items: [String] = []
            while let token = tokens.first, token != .close {
                tokens.removeFirst()
                switch token {
                case .quoted(let v), .word(let v): items.append(v)
                case .comma: continue
                default: throw .invalidParameter("unexpected '\(token.text)' in an IN list in filter '\(text)'")
                }
            }
            guard tokens.first == .close else { throw .invalidParameter("unclosed IN list in filter '\(text)'") }
            tokens.removeFirst()
            return Clause(key: key, comparator: comparator, value: .list(items))
        }
        guard let valueToken = tokens.first else {
            throw .invalidParameter("'\(identifier) \(comparator.rawValue)' has no value in filter '\(text)'")
        }
        tokens.removeFirst()
        switch valueToken {
        case .quoted(let v): return Clause(key: key, comparator: comparator, value: .string(v))
        case .word(let w):
            guard let number = Double(w) else {
                throw .invalidParameter("'\(w)' is not a value: quote strings ('\(w)') in filter '\(text)'")
            }
            return Clause(key: key, comparator: comparator, value: .number(number))
        default: throw .invalidParameter("unexpected '\(valueToken.text)' as a value in filter '\(text)'")
        }
    }

    /// Whether an object matches; `lookup` answers a key's value (nil when the object lacks it).
    /// A missing value matches only `!=`, `NOT IN` and `IS NULL`, so a model without a tag
    /// passes the client's `tag.x != 'true'`.
    public func matches(_ lookup: (SearchKey) -> SearchValue?) -> Bool {
        clauses.allSatisfy { clause in
            guard let value = lookup(clause.key) else {
                return clause.comparator == .notEqual || clause.comparator == .notIn || clause.comparator == .isNull
            }
            return Self.compare(value, clause.comparator, clause.value)
        }
    }

    static func compare(_ actual: SearchValue, _ comparator: Comparator, _ expected: Value) -> Bool {
        switch comparator {
        case .isNull: return false
        case .isNotNull: return true
        case .isIn, .notIn:
            guard case .list(let items) = expected else { return false }
            let contained = items.contains(actual.text)
            return comparator == .isIn ? contained : !contained
        case .like, .ilike:
            guard case .string(let pattern) = expected else { return false }
            return like(actual.text, pattern, caseInsensitive: comparator == .ilike)
        default: break
        }
        let order: ComparisonResult
        switch (actual, expected) {
        case (.number(let a), .number(let b)):
            order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        case (.number(let a), .string(let s)):
            guard let b = Double(s) else { return comparator == .notEqual }
            order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        case (.text(let a), .string(let b)):
            order = a < b ? .orderedAscending : a > b ? .orderedDescending : .orderedSame
        case (.text(let a), .number(let b)):
            if let x = Double(a) {
                order = x < b ? .orderedAscending : x > b ? .orderedDescending : .orderedSame
            } else {
                return comparator == .notEqual
            }
        default: return false
        }
        switch comparator {
        case .equal: return order == .orderedSame
        case .notEqual: return order != .orderedSame
        case .greater: return order == .orderedDescending
        case .greaterOrEqual: return order != .orderedAscending
        case .less: return order == .orderedAscending
        case .lessOrEqual: return order != .orderedDescending
        default: return false
        }
    }

    /// SQL LIKE: `%` any run of characters, `_` one character.
    static func like(_ text: String, _ pattern: String, caseInsensitive: Bool) -> Bool {
        let t = Array(caseInsensitive ? text.lowercased() : text)
        let p = Array(caseInsensitive ? pattern.lowercased() : pattern)
        var memo: [Int: Bool] = [:]
        func match(_ i: Int, _ j: Int) -> Bool {
            let key = i * (p.count + 1) + j
            if let known = memo[key] { return known }
            let result: Bool
            if j == p.count {
                result = i == t.count
            } else if p[j] == "%" {
                result = match(i, j + 1) || (i < t.count && match(i + 1, j))
            } else if i < t.count, p[j] == "_" || p[j] == t[i] {
                result = match(i + 1, j + 1)
            } else {
                result = false
            }
            memo[key] = result
            return result
        }
        return match(0, 0)
    }
}

/// A value an object offers to a filter or an ordering.
public enum SearchValue: Sendable, Hashable, Comparable {
    case number(Double)
    case text(String)

    var text: String {
        switch self {
        case .number(let n): return n.rounded() == n && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .text(let t): return t
        }
    }

    public static func < (lhs: SearchValue, rhs: SearchValue) -> Bool {
        switch (lhs, rhs) {
        case (.number(let a), .number(let b)): return a < b
        case (.text(let a), .text(let b)): return a < b
        case (.number, .text): return true
        case (.text, .number): return false
        }
    }
}

/// One `order_by` entry: `metrics.accuracy DESC`, `attributes.start_time`, `name ASC`.
public struct SearchOrder: Sendable, Hashable {
    public var key: SearchKey
    public var ascending: Bool

    public static func parse(_ texts: [String]) throws(MLflowError) -> [SearchOrder] {
        var orders: [SearchOrder] = []
        for text in texts {
            var parts = text.trimmingCharacters(in: .whitespaces).split(separator: " ").map(String.init)
            guard !parts.isEmpty else { continue }
            var ascending = true
            if parts.count > 1, let last = parts.last?.uppercased(), last == "ASC" || last == "DESC" {
                ascending = last == "ASC"
                parts.removeLast()
            }
            orders.append(SearchOrder(key: try SearchKey.parse(parts.joined(separator: " ")), ascending: ascending))
        }
        return orders
    }

    /// Sorts by the orders, then by `fallback`; objects lacking an ordered value go last, as in MLflow.
    static func sort<T>(
        _ items: [T], by orders: [SearchOrder], lookup: (T, SearchKey) -> SearchValue?, fallback: (T, T) -> Bool
    ) -> [T] {
        items.sorted { a, b in
            for order in orders {
                let x = lookup(a, order.key)
                let y = lookup(b, order.key)
                switch (x, y) {
                case (nil, nil): continue
                case (nil, _): return false
                case (_, nil): return true
                case (let x?, let y?):
                    if x == y { continue }
                    return order.ascending ? x < y : y < x
                }
            }
            return fallback(a, b)
        }
    }
}

/// Offset-based page tokens: opaque to the client, checked when they come back.
enum PageToken {
    static func encode(offset: Int) -> String {
        Data("offset:\(offset)".utf8).base64EncodedString()
    }

    static func decode(_ token: String?) throws(MLflowError) -> Int {
        guard let token, !token.isEmpty else { return 0 }
        guard let data = Data(base64Encoded: token), let text = String(data: data, encoding: .utf8), text.hasPrefix("offset:"),
            let offset = Int(text.dropFirst("offset:".count)), offset >= 0
        else {
            throw .invalidParameter("invalid page_token '\(token)': pass the next_page_token of the previous answer")
        }
        return offset
    }

    /// One page of `items` and the token for the next, if any.
    static func page<T>(_ items: [T], token: String?, maxResults: Int) throws(MLflowError) -> (items: [T], next: String?) {
        let offset = try decode(token)
        guard offset < items.count else { return ([], nil) }
        let end = min(items.count, offset + maxResults)
        return (Array(items[offset..<end]), end < items.count ? encode(offset: end) : nil)
    }
}
