import BatonCore
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One stored feature value.
public enum FeatureValue: Sendable, Hashable {
    case null
    case int(Int64)
    case float(Double)
    case string(String)
    case bool(Bool)

    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// The value as a number, for statistics (bools count as 0 and 1).
    public var number: Double? {
        switch self {
        case .int(let value): return Double(value)
        case .float(let value): return value
        case .bool(let value): return value ? 1 : 0
        case .null, .string: return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case .null: return .null
        case .int(let value): return .number(Double(value))
        case .float(let value): return value.isFinite ? .number(value) : .null
        case .string(let value): return .string(value)
        case .bool(let value): return .bool(value)
        }
    }

    /// Appends the value as JSON text (hand-written: online lookups answer in microseconds).
    public func appendJSON(to out: inout String) {
        switch self {
        case .null: out += "null"
        case .int(let value): out += String(value)
        case .float(let value): out += value.isFinite ? FeatureValue.shortest(value) : "null"
        case .bool(let value): out += value ? "true" : "false"
        case .string(let value): FeatureValue.appendQuoted(value, to: &out)
        }
    }

    /// CSV cell text: empty for null.
    public var csvText: String {
        switch self {
        case .null: return ""
        case .int(let value): return String(value)
        case .float(let value): return FeatureValue.shortest(value)
        case .bool(let value): return value ? "true" : "false"
        case .string(let value): return value
        }
    }

    static func shortest(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) + ".0" }
        return "\(value)"
    }

    public static func appendQuoted(_ text: String, to out: inout String) {
        out += "\""
        // Names and most values need no escaping: appended whole, not one scalar at a time
        // (which was most of an online lookup's cost).
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out += text
            out += "\""
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}

/// The compact binary form rows are stored in: per feature its name, a type tag and the value.
/// Names travel with values so a view that gains, drops or reorders features still reads its
/// old rows correctly (a missing feature reads as null).
public enum FeatureCodec {
    public static func encode(names: [String], values: [FeatureValue]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(8 + names.count * 16)
        appendVarint(UInt64(names.count), to: &out)
        for (name, value) in zip(names, values) {
            let bytes = Array(name.utf8)
            appendVarint(UInt64(bytes.count), to: &out)
            out += bytes
            switch value {
            case .null: out.append(0)
            case .int(let v):
                out.append(1)
                withUnsafeBytes(of: v.littleEndian) { out += $0 }
            case .float(let v):
                out.append(2)
                withUnsafeBytes(of: v.bitPattern.littleEndian) { out += $0 }
            case .string(let v):
                out.append(3)
                let utf8 = Array(v.utf8)
                appendVarint(UInt64(utf8.count), to: &out)
                out += utf8
            case .bool(let v): out.append(v ? 5 : 4)
            }
        }
        return out
    }

    /// Decodes into the order of `layout`; features the bytes lack are null.
    public static func decode(_ bytes: [UInt8], layout: FeatureLayout) -> [FeatureValue] {
        bytes.withUnsafeBufferPointer { decode($0, layout: layout) }
    }

    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>, layout: FeatureLayout) -> [FeatureValue] {
        var values = [FeatureValue](repeating: .null, count: layout.names.count)
        decode(bytes, layout: layout, into: &values, at: 0)
        return values
    }

    /// Decodes into `values[base ..< base + layout.names.count]` (features the row lacks are left
    /// as they are): a join fills its result in place instead of allocating per row.
    public static func decode(_ bytes: UnsafeBufferPointer<UInt8>, layout: FeatureLayout, into values: inout [FeatureValue], at base: Int) {
        var index = 0
        func varint() -> Int? {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count, shift < 64 {
                let byte = bytes[index]
                index += 1
                result |= UInt64(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return Int(truncatingIfNeeded: result) }
                shift += 7
            }
            return nil
        }
        guard let count = varint() else { return }
        for position in 0..<count {
            guard let nameLength = varint(), nameLength >= 0, index + nameLength < bytes.count else { return }
            let nameStart = index
            index += nameLength
            let target = layout.position(of: UnsafeBufferPointer(rebasing: bytes[nameStart..<index]), hint: position)
            let tag = bytes[index]
            index += 1
            var value = FeatureValue.null
            switch tag {
            case 1, 2:
                guard index + 8 <= bytes.count else { return }
                var raw: UInt64 = 0
                for shift in 0..<8 { raw |= UInt64(bytes[index + shift]) << (8 * UInt64(shift)) }
                index += 8
                value = tag == 1 ? .int(Int64(bitPattern: raw)) : .float(Double(bitPattern: raw))
            case 3:
                guard let length = varint(), length >= 0, index + length <= bytes.count else { return }
                value = .string(String(decoding: UnsafeBufferPointer(rebasing: bytes[index..<index + length]), as: UTF8.self))
                index += length
            case 4: value = .bool(false)
            case 5: value = .bool(true)
            default: value = .null
            }
            if let target { values[base + target] = value }
        }
    }

    static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(value & 0x7f) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }
}

/// The feature names a decoder fills, with their bytes for quick matching.
public struct FeatureLayout: Sendable {
    public let names: [String]
    let bytes: [[UInt8]]

    public init(_ names: [String]) {
        self.names = names
        self.bytes = names.map { Array($0.utf8) }
    }

    func position(of name: UnsafeBufferPointer<UInt8>, hint: Int) -> Int? {
        // Rows are written in the view's order, so the hint nearly always matches.
        if hint < bytes.count, bytes[hint].elementsEqual(name) { return hint }
        return bytes.firstIndex { $0.elementsEqual(name) }
    }
}

/// Event times as text: ISO 8601 in, ISO 8601 out, parsed by hand (ingestion reads millions).
public enum FeatureTime {
    /// Parses `2026-11-25`, `2026-11-25T10:00:00`, with optional fraction and `Z` or `±HH:MM`
    /// (no offset means UTC), or epoch seconds as a number.
    public static func parse(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let number = Double(trimmed), !trimmed.contains("-") || trimmed.hasPrefix("-") && !trimmed.dropFirst().contains("-") {
            return number.isFinite ? number : nil
        }
        let bytes = Array(trimmed.utf8)
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for _ in 0..<count {
                let byte = bytes[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
                index += 1
            }
            return value
        }
        func expect(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect(45), let month = digits(2), expect(45), let day = digits(2),
            (1...12).contains(month), (1...31).contains(day)
        else { return nil }
        var hour = 0, minute = 0, second = 0
        var fraction = 0.0
        var offset = 0
        if index < bytes.count {
            guard expect(84) || expect(32) || expect(116), let h = digits(2), expect(58), let m = digits(2) else { return nil }
            hour = h
            minute = m
            if expect(58) {
                guard let s = digits(2) else { return nil }
                second = s
                if expect(46) || expect(44) {
                    var scale = 0.1
                    var any = false
                    while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                        fraction += Double(bytes[index] - 48) * scale
                        scale /= 10
                        index += 1
                        any = true
                    }
                    guard any else { return nil }
                }
            }
            if expect(90) || expect(122) {
            } else if index < bytes.count {
                let sign: Int
                if expect(43) { sign = 1 } else if expect(45) { sign = -1 } else { return nil }
                guard let oh = digits(2) else { return nil }
                _ = expect(58)
                let om = digits(2) ?? 0
                offset = sign * (oh * 3600 + om * 60)
            }
            guard index == bytes.count, hour < 24, minute < 60, second <= 60 else { return nil }
        }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        return Double(seconds - offset) + fraction
    }

    public static func iso(_ seconds: Double) -> String {
        UTCTimestamp.iso(Date(timeIntervalSince1970: seconds), milliseconds: seconds != seconds.rounded(.down))
    }
}
