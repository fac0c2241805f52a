import Foundation

/// A fragment of HTML that is safe to send as is.
///
/// Every page is built from `HTML` values whose string interpolation escapes by default:
/// interpolating a `String` (a pipeline name, a param, a log line, a reason) escapes it, and
/// only another `HTML` value is inserted verbatim. Raw markup therefore has to be written as a
/// literal in the source or wrapped explicitly with `HTML(trusted:)`, which keeps the places
/// that could inject markup few and easy to review.
struct HTML: Sendable, Hashable, ExpressibleByStringInterpolation, CustomStringConvertible {
    private(set) var text: String

    /// Markup produced by this module itself (never user data).
    init(trusted text: String) { self.text = text }

    init(stringLiteral value: String) { text = value }

    init(stringInterpolation: StringInterpolation) { text = stringInterpolation.text }

    static let empty = HTML(trusted: "")

    var description: String { text }

    static func + (lhs: HTML, rhs: HTML) -> HTML { HTML(trusted: lhs.text + rhs.text) }

    static func += (lhs: inout HTML, rhs: HTML) { lhs.text += rhs.text }

    struct StringInterpolation: StringInterpolationProtocol {
        var text = ""

        init(literalCapacity: Int, interpolationCount: Int) {
            text.reserveCapacity(literalCapacity + interpolationCount * 16)
        }

        mutating func appendLiteral(_ literal: String) { text += literal }

        /// Text is always escaped, in element content and in quoted attribute values alike.
        mutating func appendInterpolation(_ value: String) { text += HTML.escape(value) }

        mutating func appendInterpolation(_ value: Substring) { text += HTML.escape(String(value)) }

        /// A missing value renders as nothing.
        mutating func appendInterpolation(_ value: String?) { text += HTML.escape(value ?? "") }

        mutating func appendInterpolation(_ value: HTML) { text += value.text }

        mutating func appendInterpolation(_ values: [HTML]) {
            for value in values { text += value.text }
        }

        mutating func appendInterpolation(_ value: Int) { text += String(value) }

        mutating func appendInterpolation(_ value: Int64) { text += String(value) }

        /// Coordinates and sizes in SVG: two decimals are plenty and keep pages small.
        mutating func appendInterpolation(_ value: Double) { text += HTML.number(value) }
    }

    /// Escapes the five characters that matter in HTML text and in quoted attributes.
    static func escape(_ value: String) -> String {
        guard value.contains(where: { "&<>\"'".contains($0) }) else { return value }
        var result = ""
        result.reserveCapacity(value.utf8.count + 16)
        for character in value {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "0" }
        let rounded = (value * 100).rounded() / 100
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(format: "%.2f", rounded)
    }

    /// Joins fragments with a separator.
    static func join(_ parts: [HTML], separator: HTML = .empty) -> HTML {
        HTML(trusted: parts.map(\.text).joined(separator: separator.text))
    }
}

/// URLs of the UI's pages. Names are percent-encoded as path segments, so a name can never
/// break out of its segment (or of the attribute, which escapes it again).
enum UIPath {
    /// RFC 3986's unreserved characters; built once, since every link on a page encodes.
    private static let unreserved: CharacterSet = {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return allowed
    }()

    static func segment(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    static func query(_ value: String) -> String { segment(value) }

    static func pipeline(_ name: String) -> String { "/pipelines/" + segment(name) }
    static func run(_ id: Int64) -> String { "/runs/\(id)" }
    static func task(run id: Int64, task: String, attempt: Int? = nil) -> String {
        "/runs/\(id)/tasks/" + segment(task) + (attempt.map { "?attempt=\($0)" } ?? "")
    }

    /// A path with query items, leaving out empty values.
    static func with(_ path: String, _ items: [(String, String?)]) -> String {
        let parts = items.compactMap { name, value -> String? in
            guard let value, !value.isEmpty else { return nil }
            return name + "=" + query(value)
        }
        return parts.isEmpty ? path : path + "?" + parts.joined(separator: "&")
    }

    /// Only same-site paths are followed after a login or an action, so a crafted link cannot
    /// send the user to another site (`//host` and `/\host` are other sites to a browser).
    static func safeLocal(_ target: String?, fallback: String = "/") -> String {
        guard let target, target.hasPrefix("/"), !target.hasPrefix("//"), !target.hasPrefix("/\\"),
            !target.contains(where: { $0.isNewline || $0 == "\0" })
        else { return fallback }
        return target
    }
}
