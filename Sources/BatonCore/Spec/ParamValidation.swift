/// Checks run parameters against a pipeline's declared params.
public enum ParamValidation {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var param: String
        public var message: String
        public var description: String { "param '\(param)': \(message)" }
    }

    /// Converts a `--param key=value` text to the param's declared type.
    public static func coerce(_ text: String, for spec: ParamSpec) throws(Failure) -> JSONValue {
        switch spec.type {
        case .string: return .string(text)
        case .integer:
            guard let value = Int(text) else {
                throw Failure(param: spec.name, message: "expected a whole number, got '\(text)'")
            }
            return .number(Double(value))
        case .number:
            guard let value = Double(text), value.isFinite else {
                throw Failure(param: spec.name, message: "expected a number, got '\(text)'")
            }
            return .number(value)
        case .boolean:
            switch text.lowercased() {
            case "true", "yes", "1", "on": return .bool(true)
            case "false", "no", "0", "off": return .bool(false)
            default: throw Failure(param: spec.name, message: "expected true or false, got '\(text)'")
            }
        case .array, .object, .any:
            if let parsed = try? JSONValue.parse(text) { return try check(parsed, against: spec) }
            if spec.type == .any { return .string(text) }
            throw Failure(param: spec.name, message: "expected a JSON \(spec.type.rawValue), got '\(text)'")
        }
    }

    /// Verifies a value's type (and allowed values), normalising integral numbers.
    @discardableResult
    public static func check(_ value: JSONValue, against spec: ParamSpec) throws(Failure) -> JSONValue {
        let matches: Bool
        switch (spec.type, value) {
        case (.any, _), (.string, .string), (.number, .number), (.boolean, .bool), (.array, .array),
            (.object, .object):
            matches = true
        case (.integer, .number(let number)): matches = number.rounded() == number
        case (_, .null): matches = true
        default: matches = false
        }
        guard matches else {
            throw Failure(
                param: spec.name,
                message: "expected \(spec.type.rawValue), got \(value.kindName) \(value.compactJSON)")
        }
        if let allowed = spec.allowedValues, value != .null, !allowed.contains(value) {
            throw Failure(
                param: spec.name,
                message: "\(value.compactJSON) is not one of \(allowed.map(\.compactJSON).joined(separator: ", "))")
        }
        return value
    }

    /// Validates a full set of overrides: unknown names and wrong types are errors.
    public static func validate(_ overrides: [String: JSONValue], for pipeline: PipelineSpec) throws(Failure)
        -> [String: JSONValue]
    {
        var result: [String: JSONValue] = [:]
        for (name, value) in overrides {
            guard let spec = pipeline.param(named: name) else {
                let known = pipeline.params.map(\.name)
                throw Failure(
                    param: name,
                    message: "pipeline '\(pipeline.name)' has no such param; "
                        + (known.isEmpty ? "it declares none" : Suggest.hint(for: name, in: known)))
            }
            result[name] = try check(value, against: spec)
        }
        return pipeline.resolvedParams(result)
    }
}
