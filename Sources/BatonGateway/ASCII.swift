/// ASCII helpers for HTTP field names, tokens and values, working on bytes without making
/// lowercased or trimmed copies: the gateway's answer parser and the server's raw request
/// parser use them on every field of every request.
public enum ASCII {
    /// `byte` with A–Z lowercased.
    @inlinable public static func lowercased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// Whether `bytes` equal `lowercase` (given in lowercase) up to the case of ASCII letters.
    @inlinable public static func equalsIgnoringCase<Bytes: Collection>(_ bytes: Bytes, _ lowercase: String) -> Bool
    where Bytes.Element == UInt8 {
        guard bytes.count == lowercase.utf8.count else { return false }
        for (byte, expected) in zip(bytes, lowercase.utf8) where lowercased(byte) != expected { return false }
        return true
    }

    /// `bytes` without leading and trailing spaces and tabs (HTTP's optional whitespace).
    @inlinable public static func trimmed<Bytes: BidirectionalCollection>(_ bytes: Bytes) -> Bytes.SubSequence
    where Bytes.Element == UInt8 {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start = bytes.index(after: start) }
        while end > start, bytes[bytes.index(before: end)] == 0x20 || bytes[bytes.index(before: end)] == 0x09 {
            end = bytes.index(before: end)
        }
        return bytes[start..<end]
    }
}
