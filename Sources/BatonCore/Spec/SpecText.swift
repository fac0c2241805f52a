import Foundation

/// Writes a `PipelineSpec` back as pipeline-file text (JSON, which is YAML), one key per line.
///
/// Pipelines built in code (the Swift DSL) are checked by reading this text with
/// `PipelineParser`, so they get exactly the rules and messages of YAML files; `owners` says
/// which task each line belongs to, so a problem at a line can be reported at the code that
/// declared that task.
public enum SpecText {
    public struct Rendered: Sendable, Hashable {
        public var text: String
        /// For each line (index 0 is line 1), the task it belongs to; nil for pipeline-level lines.
        public var owners: [String?]
    }

    public static func render(_ spec: PipelineSpec) -> Rendered {
        var writer = Writer()
        writer.line("{", owner: nil)
        var fields: [(String, String)] = [("name", quoted(spec.name))]
        if let owner = spec.owner { fields.append(("owner", quoted(owner))) }
        if let description = spec.description { fields.append(("description", quoted(description))) }
        fields.append(("schedule", quoted(spec.schedule.description)))
        if spec.timezone != "UTC" { fields.append(("timezone", quoted(spec.timezone))) }
        if let start = spec.startDate { fields.append(("start_date", quoted(isoDate(start)))) }
        if spec.catchup { fields.append(("catchup", "true")) }
        if spec.maxActiveRuns != PipelineSpec.defaultMaxActiveRuns {
            fields.append(("max_active_runs", String(spec.maxActiveRuns)))
        }
        if !spec.params.isEmpty {
            let members = spec.params.map { param -> String in
                var entry: [(String, String)] = []
                if let value = param.defaultValue { entry.append(("default", json(value))) }
                entry.append(("type", quoted(param.type.rawValue)))
                if let description = param.description { entry.append(("description", quoted(description))) }
                if let allowed = param.allowedValues { entry.append(("enum", "[" + allowed.map(json).joined(separator: ", ") + "]")) }
                return "\(quoted(param.name)): {" + entry.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
            }
            fields.append(("params", "{" + members.joined(separator: ", ") + "}"))
        }
        if !spec.triggers.isEmpty {
            let items = spec.triggers.map { trigger in
                trigger.filter.isEmpty
                    ? "{\(quoted("event")): \(quoted(trigger.event))}"
                    : "{\(quoted("event")): \(quoted(trigger.event)), \(quoted("filter")): \(json(.object(trigger.filter)))}"
            }
            fields.append(("triggers", "[" + items.joined(separator: ", ") + "]"))
        }
        for (key, value) in fields { writer.line("  \(quoted(key)): \(value),", owner: nil) }
        writer.line("  \(quoted("tasks")): {", owner: nil)
        for (index, task) in spec.tasks.enumerated() {
            writer.line("    \(quoted(task.name)): {", owner: task.name)
            let taskFields = Self.fields(of: task)
            for (fieldIndex, (key, value)) in taskFields.enumerated() {
                let comma = fieldIndex == taskFields.count - 1 ? "" : ","
                writer.line("      \(quoted(key)): \(value)\(comma)", owner: task.name)
            }
            writer.line("    }" + (index == spec.tasks.count - 1 ? "" : ","), owner: task.name)
        }
        writer.line("  }", owner: nil)
        writer.line("}", owner: nil)
        return Rendered(text: writer.text, owners: writer.owners)
    }

    /// A task's keys that differ from the defaults.
    static func fields(of task: TaskSpec) -> [(String, String)] {
        var fields: [(String, String)] = []
        switch task.command {
        case .shell(let text): fields.append(("run", quoted(text)))
        case .argv(let items): fields.append(("run", list(items)))
        }
        if !task.env.isEmpty {
            fields.append(("env", "{" + task.env.map { "\(quoted($0.name)): \(quoted($0.value))" }.joined(separator: ", ") + "}"))
        }
        if let workdir = task.workdir { fields.append(("workdir", quoted(workdir))) }
        if !task.needs.isEmpty { fields.append(("needs", list(task.needs))) }
        if task.retries != 0 { fields.append(("retries", String(task.retries))) }
        if task.retryDelay != TaskSpec.defaultRetryDelay { fields.append(("retry_delay", number(task.retryDelay))) }
        if task.retryBackoff != TaskSpec.defaultRetryBackoff { fields.append(("retry_backoff", number(task.retryBackoff))) }
        if task.maxRetryDelay != TaskSpec.defaultMaxRetryDelay {
            fields.append(("max_retry_delay", number(task.maxRetryDelay)))
        }
        if let timeout = task.timeout { fields.append(("timeout", number(timeout))) }
        if task.triggerRule != .allSuccess { fields.append(("trigger_rule", quoted(task.triggerRule.rawValue))) }
        if let condition = task.when { fields.append(("when", quoted(condition))) }
        if !task.produces.isEmpty { fields.append(("produces", list(task.produces))) }
        if !task.requires.isEmpty {
            let items = task.requires.map { requirement -> String in
                var entry = [("dataset", quoted(requirement.dataset))]
                if let staleness = requirement.maxStaleness { entry.append(("max_staleness", number(staleness))) }
                if let schema = requirement.schema { entry.append(("schema", quoted(schema))) }
                if requirement.onViolation != .fail { entry.append(("on_violation", quoted(requirement.onViolation.rawValue))) }
                if requirement.waitTimeout != DatasetRequirement.defaultWaitTimeout {
                    entry.append(("wait_timeout", number(requirement.waitTimeout)))
                }
                return "{" + entry.map { "\(quoted($0.0)): \($0.1)" }.joined(separator: ", ") + "}"
            }
            fields.append(("requires", "[" + items.joined(separator: ", ") + "]"))
        }
        if let queue = task.queue { fields.append(("queue", quoted(queue))) }
        if let pool = task.pool { fields.append(("pool", quoted(pool))) }
        return fields
    }

    struct Writer {
        var text = ""
        var owners: [String?] = []

        mutating func line(_ content: String, owner: String?) {
            text += content + "\n"
            owners.append(owner)
        }
    }

    /// A double-quoted string that JSON and YAML read alike. Besides JSON's escapes, the
    /// characters YAML treats as line breaks or byte-order marks (U+0085, U+2028, U+2029,
    /// U+FEFF) are escaped, so a value can never end a line early or lose a character.
    public static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F || scalar.value == 0x85
                || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF:
                result += String(format: "\\u%04X", scalar.value)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    static func list(_ items: [String]) -> String { "[" + items.map(quoted).joined(separator: ", ") + "]" }

    /// A number YAML reads back as the same number: whole numbers without a fraction, others
    /// always with a dot (YAML 1.1 reads `1e-05` as text).
    static func number(_ value: Double) -> String {
        if value.rounded() == value, abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        var text = "\(value)"
        if !text.contains("."), let exponent = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            text.insert(contentsOf: ".0", at: exponent)
        }
        return text
    }

    /// A JSON value written with `quoted` strings and `number` numbers, keys sorted.
    static func json(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number): return Self.number(number)
        case .string(let text): return quoted(text)
        case .array(let items): return "[" + items.map(json).joined(separator: ", ") + "]"
        case .object(let members):
            return "{" + members.sorted { $0.key < $1.key }.map { "\(quoted($0.key)): \(json($0.value))" }
                .joined(separator: ", ") + "}"
        }
    }

    static func isoDate(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = date.timeIntervalSince1970.rounded() == date.timeIntervalSince1970
            ? [.withInternetDateTime] : [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
