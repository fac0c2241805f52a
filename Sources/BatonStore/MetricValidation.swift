import Foundation

/// Why a metric point was refused, naming the field at fault and the value found there.
public enum MetricValidationError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The name is empty, too long, or uses characters outside `[A-Za-z_][A-Za-z0-9_.:-]*`.
    case invalidName(String)
    /// More tags than `MetricLimits.maxTags` on one point.
    case tooManyTags(count: Int)
    /// A tag key that is empty, too long or holds control characters.
    case invalidTagKey(String)
    /// A tag value that is too long or holds control characters.
    case invalidTagValue(key: String, value: String)
    /// NaN, an infinity, or a magnitude beyond `MetricLimits.maxMagnitude`.
    case invalidValue(Double)

    /// The field at fault as the REST API names it: `name`, `tags`, `tags.KEY` or `value`.
    public var field: String {
        switch self {
        case .invalidName: return "name"
        case .tooManyTags: return "tags"
        case .invalidTagKey(let key): return key.isEmpty ? "tags" : "tags.\(MetricLimits.shown(key))"
        case .invalidTagValue(let key, _): return "tags.\(MetricLimits.shown(key))"
        case .invalidValue: return "value"
        }
    }

    public var description: String {
        switch self {
        case .invalidName(let name):
            return "metric name '\(MetricLimits.shown(name))' is not valid: use 1 to \(MetricLimits.maxNameLength) "
                + "characters of letters, digits, _ . : -, starting with a letter or _ (like pipeline.duration)"
        case .tooManyTags(let count):
            return "a metric point has \(count) tags; at most \(MetricLimits.maxTags) are allowed"
        case .invalidTagKey(let key):
            return "tag key '\(MetricLimits.shown(key))' is not valid: use 1 to \(MetricLimits.maxTagKeyLength) "
                + "characters without control characters"
        case .invalidTagValue(let key, let value):
            return "the value '\(MetricLimits.shown(value))' of tag '\(MetricLimits.shown(key))' is not valid: use at most "
                + "\(MetricLimits.maxTagValueLength) characters without control characters"
        case .invalidValue(let value):
            return "metric value \(value) is not valid: send a finite number between -1e100 and 1e100"
        }
    }
}

/// The bounds every metric point must keep, checked by the store before anything is written
/// (and by the API first, so its errors can name the point in a batch).
public enum MetricLimits {
    public static let maxNameLength = 200
    public static let maxTags = 20
    public static let maxTagKeyLength = 200
    public static let maxTagValueLength = 200
    /// Values are bounded well inside Double's range so that sums over any realistic number of
    /// points stay finite, and every aggregate can be sent as JSON (which has no infinity).
    public static let maxMagnitude = 1e100

    /// Throws unless `name` matches `[A-Za-z_][A-Za-z0-9_.:-]*` with at most 200 characters.
    public static func validateName(_ name: String) throws(MetricValidationError) {
        let scalars = name.unicodeScalars
        guard let first = scalars.first, scalars.count <= maxNameLength, isNameStart(first),
            scalars.allSatisfy(isNameCharacter)
        else { throw .invalidName(name) }
    }

    /// Throws unless `key` is a usable tag key (as a point's tag or a query's filter).
    public static func validateTagKey(_ key: String) throws(MetricValidationError) {
        guard !key.isEmpty, key.unicodeScalars.count <= maxTagKeyLength, !hasControlCharacters(key) else {
            throw .invalidTagKey(key)
        }
    }

    /// Throws unless the tags stay within the count and length bounds.
    public static func validateTags(_ tags: [String: String]) throws(MetricValidationError) {
        guard tags.count <= maxTags else { throw .tooManyTags(count: tags.count) }
        // Sorted, so the error names the same tag every time.
        for key in tags.keys.sorted() {
            try validateTagKey(key)
            let value = tags[key] ?? ""
            // Empty values are allowed: the engine tags runs of pipelines without an owner with "".
            guard value.unicodeScalars.count <= maxTagValueLength, !hasControlCharacters(value) else {
                throw .invalidTagValue(key: key, value: value)
            }
        }
    }

    /// Throws unless the value is finite and within `maxMagnitude`.
    public static func validateValue(_ value: Double) throws(MetricValidationError) {
        guard value.isFinite, abs(value) <= maxMagnitude else { throw .invalidValue(value) }
    }

    /// Checks every bound of one point.
    public static func validate(_ point: MetricPoint) throws(MetricValidationError) {
        try validateName(point.name)
        try validateTags(point.tags)
        try validateValue(point.value)
    }

    static func isNameStart(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_")
    }

    static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        isNameStart(scalar) || ("0"..."9").contains(scalar) || scalar == "." || scalar == ":" || scalar == "-"
    }

    static func hasControlCharacters(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }

    /// A value as quoted in an error message: long values are cut so the message stays short.
    static func shown(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(77)) + "..."
    }
}
