/// Quotes `s` as exactly one POSIX shell word that expands to `s` verbatim.
///
/// Words made only of `[A-Za-z0-9_./:@%+=,-]` are left bare so rendered
/// commands stay readable; nothing in that set is special to `sh` mid-word.
/// Everything else goes in single quotes, inside which `sh` interprets nothing,
/// so the only character needing care is `'` itself, written as `'\''`.
public func shellQuote(_ s: String) -> String {
    if !s.isEmpty, s.unicodeScalars.allSatisfy(isShellSafe) { return s }
    // Scalars, not Characters: a quote followed by a combining mark is one
    // Character that is not "'", yet the shell still sees the quote byte.
    var quoted = String.UnicodeScalarView()
    quoted.append("'")
    for scalar in s.unicodeScalars {
        if scalar == "'" {
            quoted.append(contentsOf: "'\\''".unicodeScalars)
        } else {
            quoted.append(scalar)
        }
    }
    quoted.append("'")
    return String(quoted)
}

private func isShellSafe(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar {
    case "a"..."z", "A"..."Z", "0"..."9": return true
    case "_", ".", "/", ":", "@", "%", "+", "=", ",", "-": return true
    default: return false
    }
}

/// Where a template block sits within the shell text around it.
public enum ShellQuoteContext: Sendable, Hashable {
    /// A bare word position: `shellQuote` makes the value exactly one word.
    case unquoted
    /// Inside '...': a value quoted again would show its quotes, and a `'` in it ends the quoting.
    case singleQuoted
    /// Inside "...": `shellQuote` does not protect `$(...)` or backquotes here.
    case doubleQuoted
    /// Right after a backslash, which would escape the value's opening quote.
    case escaped
    /// In a `#` comment, which a newline in the value would end.
    case comment
}

extension Template {
    /// The shell context of each block, in source order, so the validator can
    /// reject `echo "{{ params.x }}"`: `shellQuote` only protects bare words.
    /// This follows `sh` quoting, backslashes and comments; it does not parse
    /// here-documents or `$'...'`.
    public var shellContexts: [(reference: TemplateReference, context: ShellQuoteContext)] {
        enum State { case unquoted, single, double }
        var state = State.unquoted
        var escapeNext = false
        var inComment = false
        // Whether the previous character ends a word, so a `#` starts a comment.
        var atWordStart = true
        var result: [(reference: TemplateReference, context: ShellQuoteContext)] = []
        for segment in segments {
            switch segment {
            case .expression(let expression):
                let context: ShellQuoteContext
                if inComment {
                    context = .comment
                } else if escapeNext {
                    context = .escaped
                } else {
                    switch state {
                    case .unquoted: context = .unquoted
                    case .single: context = .singleQuoted
                    case .double: context = .doubleQuoted
                    }
                }
                result.append((expression.reference, context))
                // The value is one word by itself, so the state around it is unchanged.
                escapeNext = false
                atWordStart = false
            case .text(let text):
                for character in text {
                    if inComment {
                        if character == "\n" {
                            inComment = false
                            atWordStart = true
                        }
                        continue
                    }
                    if escapeNext {
                        escapeNext = false
                        atWordStart = false
                        continue
                    }
                    switch state {
                    case .unquoted:
                        switch character {
                        case "\\": escapeNext = true
                        case "'": state = .single
                        case "\"": state = .double
                        case "#" where atWordStart: inComment = true
                        default: break
                        }
                        atWordStart = character.isWhitespace || ";&|()".contains(character)
                    case .single:
                        if character == "'" { state = .unquoted }
                    case .double:
                        if character == "\\" { escapeNext = true } else if character == "\"" { state = .unquoted }
                    }
                }
            }
        }
        return result
    }
}
