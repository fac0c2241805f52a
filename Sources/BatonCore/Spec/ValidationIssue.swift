/// One problem found in a pipeline file, located precisely enough to fix it.
public struct ValidationIssue: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable { case error, warning }

    public var file: String
    /// 1-based; 0 when the problem concerns the whole file.
    public var line: Int
    public var column: Int
    public var severity: Severity
    /// Dotted path of the offending field, e.g. `tasks.train.retries`.
    public var field: String?
    public var message: String
    /// The offending value as written, when there is one.
    public var value: String?
    /// How to fix it.
    public var fix: String?

    public init(
        file: String, line: Int, column: Int, severity: Severity = .error, field: String? = nil, message: String,
        value: String? = nil, fix: String? = nil
    ) {
        self.file = file
        self.line = line
        self.column = column
        self.severity = severity
        self.field = field
        self.message = message
        self.value = value
        self.fix = fix
    }

    public var description: String {
        var text = line > 0 ? "\(file):\(line):\(column): " : "\(file): "
        text += "\(severity.rawValue): "
        if let field { text += "\(field): " }
        text += message
        if let value, !message.contains(value) { text += " (value: \(value))" }
        if let fix { text += "\n    fix: \(fix)" }
        return text
    }
}

/// Suggests the closest known word for a misspelling.
public enum Suggest {
    public static func closest(to word: String, in candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        let lowered = word.lowercased()
        for candidate in candidates {
            let distance = editDistance(lowered, candidate.lowercased())
            // Close enough to be a typo, and not a replacement of most of the word.
            let limit = max(1, min(candidate.count, lowered.count) / 3)
            guard distance <= limit, distance < lowered.count else { continue }
            if best == nil || distance < best!.1 { best = (candidate, distance) }
        }
        return best?.0
    }

    /// "did you mean 'x'?" or a list of the valid choices.
    public static func hint(for word: String, in candidates: [String]) -> String {
        if let match = closest(to: word, in: candidates) { return "did you mean '\(match)'?" }
        return "valid values: \(candidates.joined(separator: ", "))"
    }

    /// Edits between `a` and `b`, counting a swap of two neighbouring characters as one edit
    /// (optimal string alignment): `trian` is one typo away from `train`, not two, which matters
    /// for short names where the limit in `closest` is a single edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var beforePrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], beforePrevious[j - 2] + 1)
                }
            }
            (beforePrevious, previous, current) = (previous, current, beforePrevious)
        }
        return previous[b.count]
    }
}
