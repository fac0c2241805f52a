import Foundation

/// What a `Step` closure knows about its attempt, read from the variables Baton gives every
/// task (`BATON_PARAMS`, `BATON_INPUTS`, `BATON_RUN_ID`, ...).
public struct TaskContext: Sendable {
    public let pipeline: String
    public let task: String
    public let runID: Int64
    /// 1 for the first attempt.
    public let attempt: Int
    /// The start of the run's data interval (Airflow's convention).
    public let logicalDate: Date
    public let dataIntervalStart: Date
    public let dataIntervalEnd: Date
    public let owner: String?
    /// The run's params: defaults overlaid with the values it was triggered with.
    public let params: [String: JSONValue]
    /// The outputs of the direct upstreams (`needs`), by task name, as they returned them.
    public let inputs: [String: JSONValue]
    /// The event that started the run, if one did.
    public let event: JSONValue?
    /// Every variable a command task would see, including the task's `env`.
    public let environment: [String: String]
    /// The task's working directory (the process's own is shared by every step it runs).
    public let workingDirectory: String
    let logSink: @Sendable (String) -> Void
    let published = PublishedNames()

    /// The logical date as `YYYY-MM-DD`, like `{{ ds }}`.
    public var ds: String { String(Self.iso(logicalDate).prefix(10)) }

    /// Writes a line to the attempt's log (`baton logs RUN TASK`, the UI). Output of `print`
    /// goes to the worker's own standard output instead, since every step shares the process.
    public func log(_ message: String) { logSink(message) }

    /// The output of upstream `task`, decoded (dates as ISO 8601 text).
    public func input<Value: Decodable>(_ task: String, as type: Value.Type = Value.self) throws(TaskContextError) -> Value {
        guard let value = inputs[task] else {
            throw TaskContextError(
                pipeline: pipeline, task: self.task, kind: .unknownInput, name: task,
                detail: inputs.isEmpty
                    ? "it has no upstream outputs; add '\(task)' to the step's needs"
                    : "its inputs are \(inputs.keys.sorted().joined(separator: ", ")); add '\(task)' to the step's needs")
        }
        do {
            return try Self.decode(value, as: type)
        } catch {
            throw TaskContextError(
                pipeline: pipeline, task: self.task, kind: .badInput, name: task,
                detail: "cannot decode it as \(Value.self): \(Self.explain(error)); the value is \(Self.preview(value))")
        }
    }

    /// The param `name`, decoded.
    public func param<Value: Decodable>(_ name: String, as type: Value.Type = Value.self) throws(TaskContextError) -> Value {
        guard let value = params[name] else {
            throw TaskContextError(
                pipeline: pipeline, task: task, kind: .unknownParam, name: name,
                detail: params.isEmpty
                    ? "the pipeline declares no params; add Param(\"\(name)\", default: ...) to it"
                    : "its params are \(params.keys.sorted().joined(separator: ", "))")
        }
        do {
            return try Self.decode(value, as: type)
        } catch {
            throw TaskContextError(
                pipeline: pipeline, task: task, kind: .badParam, name: name,
                detail: "cannot decode it as \(Value.self): \(Self.explain(error)); the value is \(Self.preview(value))")
        }
    }

    /// Reads the context from Baton's task variables.
    init(
        environment: [String: String], workingDirectory: String, log: @escaping @Sendable (String) -> Void
    ) throws(TaskContextError) {
        let pipeline = environment["BATON_PIPELINE"] ?? ""
        let task = environment["BATON_TASK"] ?? ""
        func fail(_ variable: String, _ detail: String) -> TaskContextError {
            TaskContextError(pipeline: pipeline, task: task, kind: .badVariable, name: variable, detail: detail)
        }
        func required(_ name: String) throws(TaskContextError) -> String {
            guard let value = environment[name], !value.isEmpty else {
                throw fail(name, "it is not set; steps run through Baton, which sets it")
            }
            return value
        }
        func object(_ name: String) throws(TaskContextError) -> [String: JSONValue] {
            guard let text = environment[name], !text.isEmpty else { return [:] }
            guard case .object(let members)? = try? JSONValue.parse(text) else {
                throw fail(name, "it is not a JSON object: \(text.prefix(80))")
            }
            return members
        }
        func date(_ name: String) throws(TaskContextError) -> Date {
            let text = try required(name)
            guard let value = Self.parseISO(text) else { throw fail(name, "'\(text)' is not an ISO 8601 date") }
            return value
        }
        _ = try required("BATON_PIPELINE")
        _ = try required("BATON_TASK")
        self.pipeline = pipeline
        self.task = task
        guard let runID = Int64(try required("BATON_RUN_ID")) else { throw fail("BATON_RUN_ID", "it is not a number") }
        self.runID = runID
        attempt = Int(environment["BATON_ATTEMPT"] ?? "") ?? 1
        logicalDate = try date("BATON_LOGICAL_DATE")
        dataIntervalStart = try date("BATON_DATA_INTERVAL_START")
        dataIntervalEnd = try date("BATON_DATA_INTERVAL_END")
        owner = environment["BATON_OWNER"]
        params = try object("BATON_PARAMS")
        inputs = try object("BATON_INPUTS").mapValues(TaskOutput.unwrap)
        if let text = environment["BATON_EVENT"], !text.isEmpty {
            guard let value = try? JSONValue.parse(text) else { throw fail("BATON_EVENT", "it is not JSON") }
            event = value
        } else {
            event = nil
        }
        self.environment = environment
        self.workingDirectory = workingDirectory
        logSink = log
    }

    static func decode<Value: Decodable>(_ value: JSONValue, as type: Value.Type) throws -> Value {
        let data = Data(value.compactJSON.utf8)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: data)
    }

    /// Decoding errors name the coding path; the rest say what they say.
    static func explain(_ error: any Error) -> String {
        guard let decoding = error as? DecodingError else { return "\(error)" }
        func path(_ context: DecodingError.Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "" : " at \(keys.hasPrefix(".") ? String(keys.dropFirst()) : keys)"
        }
        switch decoding {
        case .keyNotFound(let key, let context): return "no key '\(key.stringValue)'\(path(context))"
        case .typeMismatch(let expected, let context): return "expected \(expected)\(path(context))"
        case .valueNotFound(let expected, let context): return "expected \(expected), found null\(path(context))"
        case .dataCorrupted(let context): return context.debugDescription + path(context)
        @unknown default: return "\(error)"
        }
    }

    static func preview(_ value: JSONValue) -> String {
        let text = value.compactJSON
        return text.count > 200 ? String(text.prefix(197)) + "..." : text
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }

    static func parseISO(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }
}

/// A step could not read what Baton gave it.
public struct TaskContextError: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// A `BATON_*` variable is missing or malformed.
        case badVariable
        case unknownInput, badInput, unknownParam, badParam
    }

    public var pipeline: String
    public var task: String
    public var kind: Kind
    /// The input, param or variable concerned.
    public var name: String
    public var detail: String

    public var description: String {
        let what: String
        switch kind {
        case .badVariable: what = "cannot read \(name)"
        case .unknownInput: what = "has no input '\(name)'"
        case .badInput: what = "got an input '\(name)' it cannot read"
        case .unknownParam: what = "has no param '\(name)'"
        case .badParam: what = "got a param '\(name)' it cannot read"
        }
        return "step '\(task)' of \(pipeline) \(what): \(detail)"
    }
}

/// A step's return value could not become its output.
public struct TaskOutputError: Error, Sendable, Hashable, CustomStringConvertible {
    public var task: String
    public var detail: String

    public var description: String { "step '\(task)' returned a value that is not JSON: \(detail)" }
}

/// Outputs as the Python SDK stores them, so steps and Python tasks exchange data: an object
/// is the output as it is; anything else (and an object whose only key is `value`) is wrapped
/// as `{"value": ...}` and unwrapped again for the downstream task.
enum TaskOutput {
    static func encode<Value: Encodable>(_ value: Value, task: String) throws(TaskOutputError) -> JSONValue {
        let json: JSONValue
        do {
            json = try Self.json(value)
        } catch {
            throw TaskOutputError(task: task, detail: error.detail)
        }
        if case .object(let members) = json, Set(members.keys) != ["value"] { return json }
        return .object(["value": json])
    }

    /// A value as JSON, dates as ISO 8601 text.
    static func json<Value: Encodable>(_ value: Value) throws(TaskOutputError) -> JSONValue {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        do {
            return try JSONValue.parse(try encoder.encode(value))
        } catch {
            throw TaskOutputError(task: "", detail: TaskContext.explain(error))
        }
    }

    static func unwrap(_ output: JSONValue) -> JSONValue {
        if case .object(let members) = output, members.count == 1, let value = members["value"] { return value }
        return output
    }
}
