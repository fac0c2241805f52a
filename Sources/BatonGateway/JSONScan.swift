import NIOCore

/// Reads the few numbers the gateway records straight from the bytes of a JSON body, without
/// building a document: a full parse (Foundation or Codable) of every request and answer would
/// cost more than the proxying itself. Malformed JSON simply yields nothing; the replica, not the
/// gateway, judges the request.
struct JSONScan {
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    /// Nesting deeper than this is skipped as malformed, so a hostile body cannot recurse deeply.
    private static let maxDepth = 32

    private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    static let predictionKeys: [[UInt8]] = ["prediction", "predictions", "churn_probability", "score"].map { Array($0.utf8) }
    static let nestedListKeys: [[UInt8]] = ["predictions", "results"].map { Array($0.utf8) }
    static let rowListKeys: [[UInt8]] = ["instances", "rows"].map { Array($0.utf8) }

    /// The first number in the answer's `prediction`, `predictions`, `churn_probability` or
    /// `score` field: at the top level, in the first element of an array of objects, or in the
    /// first object of `predictions` or `results`.
    static func prediction(in buffer: ByteBuffer) -> Double? {
        buffer.withUnsafeReadableBytes { bytes in
            var scan = JSONScan(bytes)
            return scan.topLevelPrediction()
        }
    }

    /// The value of a top-level field as text (a string's contents or a number's digits), for
    /// sticky routing.
    static func field(_ name: String, in buffer: ByteBuffer) -> String? {
        let key = Array(name.utf8)
        return buffer.withUnsafeReadableBytes { bytes -> String? in
            var scan = JSONScan(bytes)
            scan.skipSpace()
            guard scan.consume(UInt8(ascii: "{")) else { return nil }
            var result: String?
            _ = scan.forEachMember { scan, name in
                guard scan.equal(name, key) else { return scan.skipValue(depth: 1) }
                scan.skipSpace()
                if let text = scan.string() {
                    result = String(decoding: UnsafeRawBufferPointer(rebasing: scan.bytes[text]), as: UTF8.self)
                } else if let number = scan.numberRange() {
                    result = String(decoding: UnsafeRawBufferPointer(rebasing: scan.bytes[number]), as: UTF8.self)
                }
                return false
            }
            return result
        }
    }

    /// Calls `visit` with each numeric top-level field of the request, and each numeric field of
    /// the objects in a top-level `instances` or `rows` array (at most `maxRows` of them), in order.
    static func numericInputs(in buffer: ByteBuffer, maxRows: Int, visit: (String, Double) -> Void) {
        buffer.withUnsafeReadableBytes { bytes in
            var scan = JSONScan(bytes)
            scan.skipSpace()
            guard scan.consume(UInt8(ascii: "{")) else { return }
            _ = scan.forEachMember { scan, name in
                scan.skipSpace()
                if let value = scan.number() {
                    visit(scan.text(name), value)
                    return true
                }
                guard Self.rowListKeys.contains(where: { scan.equal(name, $0) }), scan.consume(UInt8(ascii: "[")) else {
                    return scan.skipValue(depth: 1)
                }
                var rows = 0
                return scan.forEachElement { scan in
                    rows += 1
                    scan.skipSpace()
                    guard rows <= maxRows, scan.consume(UInt8(ascii: "{")) else { return scan.skipValue(depth: 2) }
                    return scan.forEachMember { scan, field in
                        scan.skipSpace()
                        if let value = scan.number() {
                            visit(scan.text(field), value)
                            return true
                        }
                        return scan.skipValue(depth: 3)
                    }
                }
            }
        }
    }

    // MARK: - Predictions

    private mutating func topLevelPrediction() -> Double? {
        skipSpace()
        if consume(UInt8(ascii: "[")) {
            skipSpace()
            if let number = number() { return number }
            guard consume(UInt8(ascii: "{")) else { return nil }
            return predictionInObject(depth: 2, allowNestedLists: false)
        }
        guard consume(UInt8(ascii: "{")) else { return nil }
        return predictionInObject(depth: 1, allowNestedLists: true)
    }

    /// Scans an object whose `{` was consumed for a prediction field.
    private mutating func predictionInObject(depth: Int, allowNestedLists: Bool) -> Double? {
        var found: Double?
        _ = forEachMember { scan, name in
            scan.skipSpace()
            let isPrediction = Self.predictionKeys.contains { scan.equal(name, $0) }
            if isPrediction, let value = scan.number() {
                found = value
                return false
            }
            let isList = allowNestedLists && Self.nestedListKeys.contains { scan.equal(name, $0) }
            if (isPrediction || isList), scan.consume(UInt8(ascii: "[")) {
                scan.skipSpace()
                if isPrediction, let value = scan.number() {
                    found = value
                    return false
                }
                if scan.consume(UInt8(ascii: "{")), let value = scan.predictionInObject(depth: depth + 2, allowNestedLists: false) {
                    found = value
                    return false
                }
                // Something else: the rest of this field no longer matters, and a partly read
                // value cannot be skipped reliably, so stop here.
                return false
            }
            return scan.skipValue(depth: depth)
        }
        return found
    }

    // MARK: - Walking

    /// Calls `body` with each member's key range, positioned before its value, after the
    /// object's `{`; `body` reads or skips the value and returns whether to go on. Returns false
    /// on malformed input or when `body` stopped.
    private mutating func forEachMember(_ body: (inout JSONScan, Range<Int>) -> Bool) -> Bool {
        skipSpace()
        if consume(UInt8(ascii: "}")) { return true }
        while true {
            skipSpace()
            guard let name = string() else { return false }
            skipSpace()
            guard consume(UInt8(ascii: ":")) else { return false }
            guard body(&self, name) else { return false }
            skipSpace()
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "}"))
        }
    }

    /// Like `forEachMember`, for an array whose `[` was consumed.
    private mutating func forEachElement(_ body: (inout JSONScan) -> Bool) -> Bool {
        skipSpace()
        if consume(UInt8(ascii: "]")) { return true }
        while true {
            guard body(&self) else { return false }
            skipSpace()
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "]"))
        }
    }

    /// Skips one value of any kind. False on malformed input or excessive nesting.
    private mutating func skipValue(depth: Int) -> Bool {
        guard depth < Self.maxDepth else { return false }
        skipSpace()
        guard position < bytes.count else { return false }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            return forEachMember { scan, _ in scan.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            position += 1
            return forEachElement { scan in scan.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            return string() != nil
        default:
            // Numbers, true, false, null: everything up to a delimiter.
            let start = position
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") || Self.isSpace(byte) { break }
                position += 1
            }
            return position > start
        }
    }

    /// A string's contents (escapes left as they are), after its closing quote.
    private mutating func string() -> Range<Int>? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\\") {
                position += 2
                continue
            }
            if byte == UInt8(ascii: "\"") {
                position += 1
                return start..<(position - 1)
            }
            position += 1
        }
        return nil
    }

    /// A number's bytes, if a number starts here.
    private mutating func numberRange() -> Range<Int>? {
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            let isNumberByte =
                (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
            guard isNumberByte else { break }
            position += 1
        }
        return position > start ? start..<position : nil
    }

    /// A number, if one starts here; otherwise the position is unchanged.
    private mutating func number() -> Double? {
        let start = position
        guard let range = numberRange() else { return nil }
        // Short digit runs are the common case and parse without building a String.
        if let fast = Self.simpleDecimal(bytes, range) { return fast }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            position = start
            return nil
        }
        return value
    }

    /// `-?digits(.digits)?` with at most 15 significant digits, which a Double holds exactly, so
    /// the result equals what `Double(String)` would give within one rounding of the division.
    private static func simpleDecimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Double? {
        var index = range.lowerBound
        var negative = false
        if bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var mantissa: Int64 = 0
        var digits = 0
        var scale = 0
        var seenPoint = false
        while index < range.upperBound {
            let byte = bytes[index]
            if byte == UInt8(ascii: ".") {
                guard !seenPoint else { return nil }
                seenPoint = true
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                mantissa = mantissa * 10 + Int64(byte - UInt8(ascii: "0"))
                digits += 1
                if seenPoint { scale += 1 }
            } else {
                return nil
            }
            index += 1
        }
        guard digits > 0, digits <= 15 else { return nil }
        let value = Double(mantissa) / powersOfTen[scale]
        return negative ? -value : value
    }

    private static let powersOfTen: [Double] = (0...15).map { power in (0..<power).reduce(1.0) { value, _ in value * 10 } }

    // MARK: - Bytes

    private mutating func skipSpace() {
        while position < bytes.count, Self.isSpace(bytes[position]) { position += 1 }
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    private func equal(_ range: Range<Int>, _ key: [UInt8]) -> Bool {
        guard range.count == key.count else { return false }
        for offset in 0..<key.count where bytes[range.lowerBound + offset] != key[offset] { return false }
        return true
    }

    private func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}
