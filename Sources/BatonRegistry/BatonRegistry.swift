import BatonCore
import Foundation

/// BatonRegistry owns experiment tracking and the model registry: experiments, runs with their
/// params, metrics and tags, artifacts on disk, MLflow 3 logged models, registered models,
/// versions, aliases, stages and approvals, with MLflow's semantics and error codes so the
/// official MLflow client works against Baton unchanged. Persistence is the store's
/// (`RegistryStore`); the HTTP routes are the server's.
enum BatonRegistryModule {}

/// An error in MLflow's shape: `{"error_code": "...", "message": "..."}` with the HTTP status
/// the MLflow client expects. Every expected error is a 4xx, because the client retries 5xx
/// answers for minutes.
public struct MLflowError: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: String
    public var message: String
    public var status: Int

    public init(code: String, message: String, status: Int) {
        self.code = code
        self.message = message
        self.status = status
    }

    public var description: String { "\(code): \(message)" }

    public static func notFound(_ message: String) -> MLflowError {
        MLflowError(code: "RESOURCE_DOES_NOT_EXIST", message: message, status: 404)
    }

    public static func alreadyExists(_ message: String) -> MLflowError {
        MLflowError(code: "RESOURCE_ALREADY_EXISTS", message: message, status: 400)
    }

    public static func invalidParameter(_ message: String) -> MLflowError {
        MLflowError(code: "INVALID_PARAMETER_VALUE", message: message, status: 400)
    }

    public static func invalidState(_ message: String) -> MLflowError {
        MLflowError(code: "INVALID_STATE", message: message, status: 400)
    }

    public static func tooLarge(_ message: String) -> MLflowError {
        MLflowError(code: "RESOURCE_LIMIT_EXCEEDED", message: message, status: 400)
    }

    public static func missing(_ field: String) -> MLflowError {
        .invalidParameter("Missing value for required parameter '\(field)'.")
    }

    public var json: JSONValue { .object(["error_code": .string(code), "message": .string(message)]) }
}

/// The Baton task a request comes from, when the MLflow client runs inside one: its runs and
/// model versions are linked to the pipeline run for lineage.
public struct TaskOrigin: Sendable, Hashable {
    public var runID: Int64
    public var pipeline: String?
    public var task: String
    public var attempt: Int

    public init(runID: Int64, pipeline: String? = nil, task: String, attempt: Int) {
        self.runID = runID
        self.pipeline = pipeline
        self.task = task
        self.attempt = attempt
    }
}

/// A request's parameters, from a JSON body or a query string, read with MLflow's leniency:
/// numbers may arrive as strings (protobuf's JSON writes 64-bit integers that way) and
/// NaN/Infinity as the strings "NaN"/"Infinity".
public struct MLflowParams: Sendable {
    public var values: [String: JSONValue]

    public init(_ values: [String: JSONValue]) { self.values = values }

    public init(query: [(String, String)]) {
        var values: [String: JSONValue] = [:]
        for (name, value) in query {
            switch values[name] {
            case nil: values[name] = .string(value)
            case .array(let items)?: values[name] = .array(items + [.string(value)])
            case let existing?: values[name] = .array([existing, .string(value)])
            }
        }
        self.values = values
    }

    public func string(_ name: String) -> String? {
        switch values[name] {
        case .string(let s)?: return s
        case .number(let n)?: return SearchValue.number(n).text
        case .bool(let b)?: return b ? "true" : "false"
        default: return nil
        }
    }

    public func required(_ name: String) throws(MLflowError) -> String {
        guard let value = string(name), !value.isEmpty else { throw .missing(name) }
        return value
    }

    /// The run id, from `run_id` or the legacy `run_uuid` the client also sends.
    public func runID() throws(MLflowError) -> String {
        if let id = string("run_id"), !id.isEmpty { return id }
        if let id = string("run_uuid"), !id.isEmpty { return id }
        throw .missing("run_id")
    }

    public func int64(_ name: String) throws(MLflowError) -> Int64? {
        switch values[name] {
        case nil, .null?: return nil
        case .number(let n)?:
            guard n.rounded() == n, abs(n) < 9.2e18 else { throw .invalidParameter("'\(name)' must be a whole number, got \(n)") }
            return Int64(n)
        case .string(let s)?:
            guard let n = Int64(s) else { throw .invalidParameter("'\(name)' must be a whole number, got '\(s)'") }
            return n
        default: throw .invalidParameter("'\(name)' must be a whole number")
        }
    }

    public func int(_ name: String, default value: Int, max: Int) throws(MLflowError) -> Int {
        guard let n = try int64(name) else { return value }
        guard n >= 1, n <= Int64(max) else {
            throw .invalidParameter("'\(name)' must be between 1 and \(max), got \(n)")
        }
        return Int(n)
    }

    public func double(_ name: String) throws(MLflowError) -> Double? {
        switch values[name] {
        case nil, .null?: return nil
        case .number(let n)?: return n
        case .string(let s)?: return try Self.parseDouble(s, field: name)
        default: throw .invalidParameter("'\(name)' must be a number")
        }
    }

    static func parseDouble(_ text: String, field: String) throws(MLflowError) -> Double {
        switch text {
        case "NaN", "nan": return .nan
        case "Infinity", "inf", "+Infinity": return .infinity
        case "-Infinity", "-inf": return -.infinity
        default:
            guard let n = Double(text) else { throw .invalidParameter("'\(field)' must be a number, got '\(text)'") }
            return n
        }
    }

    public func bool(_ name: String) -> Bool? {
        switch values[name] {
        case .bool(let b)?: return b
        case .string(let s)?: return s.lowercased() == "true"
        default: return nil
        }
    }

    public func strings(_ name: String) -> [String] {
        switch values[name] {
        case .array(let items)?:
            return items.compactMap {
                if case .string(let s) = $0 { return s }
                if case .number(let n) = $0 { return SearchValue.number(n).text }
                return nil
            }
        case .string(let s)?: return [s]
        default: return []
        }
    }

    /// A list of `{"key", "value"}` objects (tags, params).
    public func keyValues(_ name: String) throws(MLflowError) -> [(key: String, value: String)] {
        guard case .array(let items)? = values[name] else { return [] }
        var result: [(key: String, value: String)] = []
        for (index, item) in items.enumerated() {
            let entry = MLflowParams(item.objectValue ?? [:])
            guard let key = entry.string("key"), !key.isEmpty else {
                throw .invalidParameter("\(name)[\(index)] has no key")
            }
            result.append((key, entry.string("value") ?? ""))
        }
        return result
    }

    public func objects(_ name: String) -> [MLflowParams] {
        guard case .array(let items)? = values[name] else { return [] }
        return items.map { MLflowParams($0.objectValue ?? [:]) }
    }
}
