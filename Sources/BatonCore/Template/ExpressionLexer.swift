/// One token of a template expression or a condition.
struct ExpressionToken: Equatable {
    enum Kind: Equatable {
        case reference(TemplateReference)
        /// `and`, `or`, `not`, `in`, `true`, `false`, `null`.
        case keyword(String)
        case string(String)
        case number(Double)
        /// Operators and punctuation: `==`, `(`, `|`, `}}`, ...
        case symbol(String)
        case end
    }

    var kind: Kind
    /// Character offset in the source text.
    var offset: Int
    /// The token as written, for error messages.
    var text: String

    var isEnd: Bool { kind == .end }

    func isSymbol(_ symbol: String) -> Bool { kind == .symbol(symbol) }
    func isKeyword(_ keyword: String) -> Bool { kind == .keyword(keyword) }

    /// How an error message names this token.
    var quoted: String { isEnd ? "the end of the text" : "'\(text)'" }
}

/// The one lexer behind both languages, so a reference, string or number is
/// spelled the same way in `{{ ... }}` and in `when:`.
///
/// Offsets are `Character` indexes into the source, which is what an editor
/// column means to the person reading the error.
struct ExpressionLexer {
    enum Mode { case template, condition }

    static let keywords: Set<String> = ["and", "or", "not", "in", "true", "false", "null"]

    let source: String
    let characters: [Character]
    let end: Int
    let mode: Mode
    private var position: Int
    private var buffered: [ExpressionToken] = []

    init(source: String, characters: [Character], start: Int, end: Int, mode: Mode) {
        self.source = source
        self.characters = characters
        self.position = start
        self.end = end
        self.mode = mode
    }

    /// Looks `ahead` tokens past the next one without consuming. Template
    /// parsing never looks past `}}`, so it never lexes the literal text after a block.
    mutating func peek(_ ahead: Int = 0) throws(TemplateError) -> ExpressionToken {
        while buffered.count <= ahead { buffered.append(try lex()) }
        return buffered[ahead]
    }

    mutating func next() throws(TemplateError) -> ExpressionToken {
        let token = try peek()
        buffered.removeFirst()
        return token
    }

    func error(at offset: Int, _ message: String, fix: String) -> TemplateError {
        TemplateError(source: source, offset: offset, message: message, fix: fix)
    }

    // MARK: - Lexing

    private var generalFix: String {
        switch mode {
        case .template:
            return "a template expression is a dotted reference such as params.region, optionally followed by "
                + "filters like '| default(\"x\")'; to write a literal '{{', use {{ \"{{\" }}"
        case .condition:
            return "conditions combine references and literals with ==, !=, <, <=, >, >=, in, not in, and, or, not"
        }
    }

    private mutating func lex() throws(TemplateError) -> ExpressionToken {
        while position < end, characters[position].isWhitespace { position += 1 }
        guard position < end else { return ExpressionToken(kind: .end, offset: end, text: "") }
        let start = position
        let character = characters[start]

        if character.isIdentifierStart { return try lexWord() }
        if character.isASCIIDigit || (character == "-" && peekCharacter(1)?.isASCIIDigit == true) {
            return try lexNumber()
        }
        if character == "\"" || character == "'" {
            let (value, after) = try lexString(at: start)
            position = after
            return token(.string(value), from: start)
        }
        return try lexSymbol()
    }

    private func peekCharacter(_ ahead: Int) -> Character? {
        position + ahead < end ? characters[position + ahead] : nil
    }

    private func token(_ kind: ExpressionToken.Kind, from start: Int) -> ExpressionToken {
        ExpressionToken(kind: kind, offset: start, text: String(characters[start..<position]))
    }

    private mutating func symbol(_ text: String) -> ExpressionToken {
        let start = position
        position += text.count
        return token(.symbol(text), from: start)
    }

    private mutating func lexSymbol() throws(TemplateError) -> ExpressionToken {
        let start = position
        let character = characters[start]
        let following = peekCharacter(1)
        switch character {
        case "(", ")", "[", "]", ",":
            return symbol(String(character))
        case "=":
            if following == "=" {
                if peekCharacter(2) == "=" { throw unknownOperator("===", suggestion: "==", at: start) }
                return symbol("==")
            }
            if following == ">" { throw unknownOperator("=>", suggestion: ">=", at: start) }
            if following == "<" { throw unknownOperator("=<", suggestion: "<=", at: start) }
            throw unknownOperator("=", suggestion: "==", at: start)
        case "!":
            if following == "=" {
                if peekCharacter(2) == "=" { throw unknownOperator("!==", suggestion: "!=", at: start) }
                return symbol("!=")
            }
            return symbol("!")
        case "<":
            if following == ">" { throw unknownOperator("<>", suggestion: "!=", at: start) }
            return symbol(following == "=" ? "<=" : "<")
        case ">":
            return symbol(following == "=" ? ">=" : ">")
        case "&":
            if following == "&" { return symbol("&&") }
            throw unknownOperator("&", suggestion: "&&' or 'and", at: start)
        case "|":
            if following == "|" { return symbol("||") }
            // A single bar is the filter separator in templates only.
            if mode == .template { return symbol("|") }
            throw unknownOperator("|", suggestion: "||' or 'or", at: start)
        case "}":
            if following == "}" { return symbol("}}") }
            throw error(at: start, "unexpected '}'", fix: "close an expression with '}}'")
        default:
            throw error(at: start, "unexpected character '\(character)'", fix: generalFix)
        }
    }

    private func unknownOperator(_ text: String, suggestion: String, at offset: Int) -> TemplateError {
        error(
            at: offset, "unknown operator '\(text)' — did you mean '\(suggestion)'?",
            fix: "use '\(suggestion)'; the operators are ==, !=, <, <=, >, >=, in, not in, and, or, not")
    }

    private mutating func readIdentifier() -> String {
        let start = position
        while position < end, characters[position].isIdentifierCharacter { position += 1 }
        return String(characters[start..<position])
    }

    private mutating func readDigits() -> String {
        let start = position
        while position < end, characters[position].isASCIIDigit { position += 1 }
        return String(characters[start..<position])
    }

    /// A keyword, or a reference: a name followed by `.name`, `.0`, `["key"]` or `[0]`.
    private mutating func lexWord() throws(TemplateError) -> ExpressionToken {
        let start = position
        let first = readIdentifier()
        // Keywords never take a path, so `in["a"]` stays the operator `in` before a list.
        if Self.keywords.contains(first) { return token(.keyword(first), from: start) }

        var path = [first]
        while position < end {
            if characters[position] == "." {
                position += 1
                guard position < end else {
                    throw error(
                        at: position, "expected a name or an index after '.'",
                        fix: "remove the trailing '.' or finish the reference, e.g. tasks.train.output.accuracy")
                }
                let componentStart = position
                if characters[position].isIdentifierStart {
                    path.append(readIdentifier())
                } else if characters[position].isASCIIDigit {
                    let digits = readDigits()
                    if position < end, characters[position].isIdentifierCharacter {
                        let rest = readIdentifier()
                        throw error(
                            at: componentStart, "'\(digits + rest)' is not a valid reference component",
                            fix: "names start with a letter or '_' and indexes are whole numbers; "
                                + "write other keys in brackets: [\"\(digits + rest)\"]")
                    }
                    path.append(digits)
                } else {
                    throw error(
                        at: position, "expected a name or an index after '.'",
                        fix: "names use letters, digits, '_' and '-'; write other keys in brackets: "
                            + "output[\"some key\"]")
                }
            } else if characters[position] == "[" {
                let open = position
                position += 1
                while position < end, characters[position].isWhitespace { position += 1 }
                guard position < end else { throw unclosedBracket(at: open) }
                if characters[position] == "\"" || characters[position] == "'" {
                    let (key, after) = try lexString(at: position)
                    position = after
                    path.append(key)
                } else if characters[position].isASCIIDigit {
                    path.append(readDigits())
                } else {
                    throw error(
                        at: position, "expected a quoted key or an index inside '[ ]'",
                        fix: "write output[\"some key\"] or items[0]")
                }
                while position < end, characters[position].isWhitespace { position += 1 }
                guard position < end, characters[position] == "]" else { throw unclosedBracket(at: open) }
                position += 1
            } else {
                break
            }
        }
        let text = String(characters[start..<position])
        return token(.reference(TemplateReference(path: path, offset: start, text: text)), from: start)
    }

    private func unclosedBracket(at offset: Int) -> TemplateError {
        error(at: offset, "'[' is not closed", fix: "close it with ']', e.g. output[\"some key\"]")
    }

    private mutating func lexNumber() throws(TemplateError) -> ExpressionToken {
        let start = position
        if characters[position] == "-" { position += 1 }
        _ = readDigits()
        if position + 1 < end, characters[position] == ".", characters[position + 1].isASCIIDigit {
            position += 1
            _ = readDigits()
        }
        if position < end, characters[position] == "e" || characters[position] == "E" {
            var exponent = position + 1
            if exponent < end, characters[exponent] == "+" || characters[exponent] == "-" { exponent += 1 }
            if exponent < end, characters[exponent].isASCIIDigit {
                position = exponent
                _ = readDigits()
            }
        }
        // `1.2.3`, `1.` or `3abc` would otherwise split into confusing tokens.
        if position < end, characters[position].isIdentifierCharacter || characters[position] == "." {
            while position < end, characters[position].isIdentifierCharacter || characters[position] == "." {
                position += 1
            }
            let text = String(characters[start..<position])
            throw error(
                at: start, "malformed number '\(text)'",
                fix: "write numbers like 3, -1, 0.9 or 1e-3; quote text: \"\(text)\"")
        }
        let text = String(characters[start..<position])
        guard let value = Double(text), value.isFinite else {
            throw error(at: start, "number '\(text)' is out of range", fix: "use a number within ±1.7e308")
        }
        return token(.number(value), from: start)
    }

    /// Reads a single- or double-quoted string starting at `start`; returns its value and the offset after it.
    func lexString(at start: Int) throws(TemplateError) -> (String, Int) {
        let quote = characters[start]
        var value = ""
        var index = start + 1
        while index < end {
            let character = characters[index]
            if character == quote { return (value, index + 1) }
            if character == "\\" {
                guard index + 1 < end else { break }
                let escaped = characters[index + 1]
                switch escaped {
                case "\\", "\"", "'": value.append(escaped)
                case "n": value.append("\n")
                case "t": value.append("\t")
                case "r": value.append("\r")
                default:
                    throw error(
                        at: index, "unknown escape '\\\(escaped)' in string",
                        fix: "the escapes are \\\\, \\\", \\', \\n, \\t and \\r; write a backslash as \\\\")
                }
                index += 2
                continue
            }
            value.append(character)
            index += 1
        }
        throw error(
            at: start, "unterminated string",
            fix: "close the string with \(quote); escape a \(quote) inside it as \\\(quote)")
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
    fileprivate var isIdentifierStart: Bool { isASCII && (isLetter || self == "_") }
    fileprivate var isIdentifierCharacter: Bool { isASCII && (isLetter || isNumber || self == "_" || self == "-") }
}
