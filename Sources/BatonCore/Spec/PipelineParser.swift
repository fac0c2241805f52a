import Foundation
import Yams

/// Turns the text of one pipeline file into a `PipelineSpec`, collecting every problem
/// (not just the first) with its line, column, offending value and a fix.
public struct PipelineParser {
    /// The result of reading one file: a spec when it has no errors, and all issues found.
    public struct Outcome: Sendable {
        public var spec: PipelineSpec?
        public var issues: [ValidationIssue]
        public var errors: [ValidationIssue] { issues.filter { $0.severity == .error } }
    }

    static let pipelineKeys = [
        "name", "owner", "description", "schedule", "timezone", "start_date", "catchup", "max_active_runs",
        "params", "tasks", "triggers",
    ]
    static let taskKeys = [
        "run", "env", "workdir", "needs", "retries", "retry_delay", "retry_backoff", "max_retry_delay", "timeout",
        "trigger_rule", "when", "description", "produces", "requires", "queue", "pool",
    ]
    static let requirementKeys = ["dataset", "max_staleness", "schema", "on_violation", "wait_timeout"]
    static let triggerKeys = ["event", "filter"]
    static let paramKeys = ["default", "type", "description", "enum"]
    /// Names a template may start with besides `params` and `tasks`.
    public static let templateVariables = [
        "logical_date", "data_interval_start", "data_interval_end", "run_id", "pipeline", "task", "attempt", "ds",
        "ts", "event",
    ]
    /// Queue and pool names: short identifiers, since they appear in flags and URLs.
    public static func isValidWorkName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, text.count <= 64, first.properties.isAlphabetic, first.isASCII
        else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) }
    }

    static func isValidPipelineName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first != ".", first != "-" else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-".unicodeScalars.contains($0)) }
    }

    static func isValidIdentifier(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCII, CharacterSet.letters.contains(first) || first == "_"
        else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-".unicodeScalars.contains($0)) }
    }

    let file: String
    let text: String
    /// Declared datasets, when known: `produces` and `requires` must name one of them.
    let datasets: Set<String>?
    private var issues: [ValidationIssue] = []

    private init(file: String, text: String, datasets: Set<String>?) {
        self.file = file
        self.text = text
        self.datasets = datasets
    }

    /// Parses and validates `text`, read from `file` (used in messages and as `sourceFile`).
    /// With `datasets`, dataset names in `produces` and `requires` are checked against them.
    public static func parse(_ text: String, file: String, datasets: Set<String>? = nil) -> Outcome {
        var parser = PipelineParser(file: file, text: text, datasets: datasets)
        let spec = parser.run()
        let hasErrors = parser.issues.contains { $0.severity == .error }
        return Outcome(spec: hasErrors ? nil : spec, issues: parser.issues)
    }

    // MARK: - Reporting

    private mutating func error(
        _ node: Node?, field: String?, _ message: String, value: String? = nil, fix: String? = nil,
        columnOffset: Int = 0
    ) {
        let mark = node?.mark
        issues.append(
            ValidationIssue(
                file: file, line: mark?.line ?? 0, column: (mark?.column ?? 0) + columnOffset, severity: .error,
                field: field, message: message, value: value, fix: fix))
    }

    private mutating func warning(_ node: Node?, field: String?, _ message: String, fix: String? = nil) {
        let mark = node?.mark
        issues.append(
            ValidationIssue(
                file: file, line: mark?.line ?? 0, column: mark?.column ?? 0, severity: .warning, field: field,
                message: message, fix: fix))
    }

    // MARK: - Top level

    private mutating func run() -> PipelineSpec? {
        let root: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else {
                issues.append(
                    ValidationIssue(
                        file: file, line: 0, column: 0, message: "the file is empty",
                        fix: "declare at least `name` and `tasks`"))
                return nil
            }
            root = composed
        } catch let yamlError as YamlError {
            issues.append(Self.issue(for: yamlError, file: file))
            return nil
        } catch {
            issues.append(ValidationIssue(file: file, line: 0, column: 0, message: "cannot read YAML: \(error)"))
            return nil
        }
        guard let mapping = root.mapping else {
            error(root, field: nil, "a pipeline file must be a mapping of keys such as name, schedule and tasks",
                  fix: "start the file with `name: my_pipeline`")
            return nil
        }
        let fields = checkKeys(mapping, allowed: Self.pipelineKeys, context: nil, what: "pipeline key")

        let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        var spec = PipelineSpec(name: stem, sourceFile: file)
        if let node = fields["name"] {
            if let name = string(node, field: "name") {
                if !Self.isValidPipelineName(name) {
                    error(node, field: "name", "pipeline name '\(name)' has characters Baton does not allow",
                          value: name, fix: "use letters, digits, '_', '-' and '.', such as customer_data_pipeline")
                }
                spec.name = name
            }
        }
        if let node = fields["owner"] { spec.owner = string(node, field: "owner") }
        if let node = fields["description"] { spec.description = string(node, field: "description") }
        if let node = fields["timezone"], let zone = string(node, field: "timezone") {
            if TimeZone(identifier: zone) == nil {
                let known = TimeZone.knownTimeZoneIdentifiers
                error(node, field: "timezone", "unknown time zone '\(zone)'", value: zone,
                      fix: Suggest.closest(to: zone, in: known).map { "did you mean '\($0)'?" }
                        ?? "use an IANA name such as UTC, Europe/Berlin or America/New_York")
            } else {
                spec.timezone = zone
            }
        }
        if let node = fields["schedule"] { spec.schedule = schedule(node) }
        if let node = fields["start_date"] {
            spec.startDate = date(node, field: "start_date", timezone: TimeZone(identifier: spec.timezone) ?? .gmt)
        }
        if let node = fields["catchup"] { spec.catchup = bool(node, field: "catchup") ?? false }
        if let node = fields["max_active_runs"] {
            if let value = int(node, field: "max_active_runs", minimum: 1) { spec.maxActiveRuns = value }
        }
        if let node = fields["params"] { spec.params = params(node) }
        if let node = fields["triggers"] { spec.triggers = triggers(node) }
        if let node = fields["tasks"] {
            spec.tasks = tasks(node)
        } else {
            error(root, field: "tasks", "the pipeline has no `tasks`",
                  fix: "add `tasks:` with at least one task, such as `hello: {run: echo hello}`")
        }
        validateGraph(spec, tasksNode: fields["tasks"])
        return spec
    }

    /// The YAML document in `text` (nil when it is empty), or the issue saying where and why it
    /// is not YAML; every definition file is read through this, so all report syntax alike.
    public static func compose(_ text: String, file: String) -> Result<Node?, ValidationIssue> {
        do {
            return .success(try Yams.compose(yaml: text))
        } catch let yamlError as YamlError {
            return .failure(issue(for: yamlError, file: file))
        } catch {
            return .failure(ValidationIssue(file: file, line: 0, column: 0, message: "cannot read YAML: \(error)"))
        }
    }

    public static func issue(for yamlError: YamlError, file: String) -> ValidationIssue {
        switch yamlError {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
            .composer(let context, let problem, let mark, _):
            var message = "YAML syntax error: \(problem)"
            if let context { message += " \(context.text) (at line \(context.mark.line))" }
            return ValidationIssue(
                file: file, line: mark.line, column: mark.column, message: message,
                fix: "check indentation (spaces, not tabs), colons after keys, and matching quotes and brackets")
        case .duplicatedKeysInMapping(let duplicates, let context):
            return ValidationIssue(
                file: file, line: context.mark.line, column: context.mark.column,
                message: "duplicate key \(duplicates.joined(separator: ", "))", fix: "keep one of them")
        default:
            return ValidationIssue(file: file, line: 0, column: 0, message: "cannot read YAML: \(yamlError)")
        }
    }

    /// Reports unknown keys and returns the known ones by name.
    private mutating func checkKeys(
        _ mapping: Node.Mapping, allowed: [String], context: String?, what: String
    ) -> [String: Node] {
        var fields: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                error(keyNode, field: context, "a \(what) must be a plain word")
                continue
            }
            if allowed.contains(key) {
                if fields[key] != nil {
                    error(keyNode, field: context.map { "\($0).\(key)" } ?? key, "duplicate key '\(key)'",
                          fix: "keep one of them")
                }
                fields[key] = value
            } else {
                error(keyNode, field: context, "unknown \(what) '\(key)'", value: key,
                      fix: Suggest.hint(for: key, in: allowed))
            }
        }
        return fields
    }

    // MARK: - Scalars

    private mutating func string(_ node: Node, field: String) -> String? {
        guard let scalar = node.scalar else {
            error(node, field: field, "expected text, found a \(Self.kind(node))")
            return nil
        }
        return scalar.string
    }

    private mutating func int(_ node: Node, field: String, minimum: Int) -> Int? {
        guard let scalar = node.scalar, let value = Int(scalar.string.trimmingCharacters(in: .whitespaces)) else {
            error(node, field: field, "expected a whole number, found '\(Self.text(node))'", value: Self.text(node),
                  fix: "write a number such as \(max(minimum, 1))")
            return nil
        }
        if value < minimum {
            error(node, field: field, "\(value) is below the minimum \(minimum)", value: String(value),
                  fix: "use \(minimum) or more")
            return nil
        }
        return value
    }

    private mutating func number(_ node: Node, field: String, minimum: Double) -> Double? {
        guard let scalar = node.scalar, let value = Double(scalar.string), value.isFinite else {
            error(node, field: field, "expected a number, found '\(Self.text(node))'", value: Self.text(node))
            return nil
        }
        if value < minimum {
            error(node, field: field, "\(value) is below the minimum \(minimum)", fix: "use \(minimum) or more")
            return nil
        }
        return value
    }

    private mutating func bool(_ node: Node, field: String) -> Bool? {
        switch node.scalar?.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            error(node, field: field, "expected true or false, found '\(Self.text(node))'", value: Self.text(node),
                  fix: "write true or false")
            return nil
        }
    }

    private mutating func duration(_ node: Node, field: String) -> Double? {
        guard let scalar = node.scalar else {
            error(node, field: field, "expected a duration such as 30s or 5m, found a \(Self.kind(node))")
            return nil
        }
        do {
            return try DurationText.seconds(scalar.string)
        } catch {
            self.error(node, field: field, error.description, value: scalar.string,
                       fix: "write a number with a unit, like 500ms, 30s, 5m, 1h30m or 2d")
            return nil
        }
    }

    private mutating func date(_ node: Node, field: String, timezone: TimeZone) -> Date? {
        guard let text = node.scalar?.string, let value = Self.parseDate(text, timezone: timezone) else {
            error(node, field: field, "'\(Self.text(node))' is not a date", value: Self.text(node),
                  fix: "write a date like 2026-01-31 or 2026-01-31T06:00:00 (read in the pipeline's timezone) or with an offset like 2026-01-31T06:00:00Z")
            return nil
        }
        return value
    }

    /// Parses ISO 8601 dates and date-times; without an offset the text is wall-clock time in `timezone`.
    public static func parseDate(_ text: String, timezone: TimeZone) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: " ", with: "T")
        let withOffset = ISO8601DateFormatter()
        withOffset.formatOptions = [.withInternetDateTime]
        if let date = withOffset.date(from: trimmed) { return date }
        withOffset.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = withOffset.date(from: trimmed) { return date }
        let local = DateFormatter()
        local.locale = Locale(identifier: "en_US_POSIX")
        local.timeZone = timezone
        for format in ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd"] {
            local.dateFormat = format
            if let date = local.date(from: trimmed) { return date }
        }
        return nil
    }

    private mutating func schedule(_ node: Node) -> ScheduleSpec {
        guard let text = string(node, field: "schedule")?.trimmingCharacters(in: .whitespaces) else { return .none }
        switch text.lowercased() {
        case "", "none", "null", "~": return .none
        case "@once": return .once
        default: break
        }
        do {
            _ = try CronSchedule.parse(text)
            return .cron(text)
        } catch {
            self.error(node, field: "schedule", error.message, value: error.value.isEmpty ? text : error.value,
                       fix: error.fix)
            return .none
        }
    }

    // MARK: - Params

    private mutating func params(_ node: Node) -> [ParamSpec] {
        guard let mapping = node.mapping else {
            error(node, field: "params", "`params` must be a mapping of name to default value",
                  fix: "write `params: {region: eu}`")
            return []
        }
        var result: [ParamSpec] = []
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar?.string, Self.isValidIdentifier(name) else {
                error(keyNode, field: "params", "param name '\(Self.text(keyNode))' is not a valid identifier",
                      fix: "use letters, digits and '_', starting with a letter")
                continue
            }
            let field = "params.\(name)"
            if let long = valueNode.mapping, long.keys.contains(where: { ["default", "type"].contains($0.string ?? "") }) {
                let fields = checkKeys(long, allowed: Self.paramKeys, context: field, what: "param key")
                let defaultValue = fields["default"].map(Self.json)
                var type = ParamType.inferred(from: defaultValue)
                if let typeNode = fields["type"], let typeName = string(typeNode, field: "\(field).type") {
                    if let declared = ParamType(rawValue: typeName) {
                        type = declared
                    } else {
                        error(typeNode, field: "\(field).type", "unknown param type '\(typeName)'", value: typeName,
                              fix: Suggest.hint(for: typeName, in: ParamType.allCases.map(\.rawValue)))
                    }
                }
                var allowed: [JSONValue]?
                if let enumNode = fields["enum"] {
                    if let items = enumNode.sequence {
                        allowed = items.map(Self.json)
                    } else {
                        error(enumNode, field: "\(field).enum", "`enum` must be a list of allowed values")
                    }
                }
                var spec = ParamSpec(
                    name: name, defaultValue: defaultValue, type: type,
                    description: fields["description"].flatMap { string($0, field: "\(field).description") },
                    allowedValues: allowed)
                if let value = defaultValue, value != .null {
                    do {
                        spec.defaultValue = try ParamValidation.check(value, against: spec)
                    } catch {
                        self.error(fields["default"], field: "\(field).default", error.description)
                    }
                }
                result.append(spec)
            } else {
                let value = Self.json(valueNode)
                result.append(ParamSpec(name: name, defaultValue: value, type: .inferred(from: value)))
            }
        }
        return result
    }

    // MARK: - Tasks

    private mutating func tasks(_ node: Node) -> [TaskSpec] {
        guard let mapping = node.mapping else {
            error(node, field: "tasks", "`tasks` must be a mapping of task name to task",
                  fix: "write tasks as `name: {run: command}` entries, not a list")
            return []
        }
        if mapping.count == 0 {
            error(node, field: "tasks", "the pipeline has no tasks", fix: "add at least one task")
        }
        var result: [TaskSpec] = []
        for (keyNode, valueNode) in mapping {
            guard let name = keyNode.scalar?.string, Self.isValidIdentifier(name) else {
                error(keyNode, field: "tasks", "task name '\(Self.text(keyNode))' is not valid",
                      value: Self.text(keyNode), fix: "use letters, digits, '_' and '-', starting with a letter")
                continue
            }
            if let task = task(name: name, node: valueNode) { result.append(task) }
        }
        return result
    }

    private mutating func task(name: String, node: Node) -> TaskSpec? {
        let field = "tasks.\(name)"
        let fields: [String: Node]
        if let scalar = node.scalar {
            // `name: command` is shorthand for `name: {run: command}`.
            fields = ["run": .scalar(scalar)]
        } else if let mapping = node.mapping {
            fields = checkKeys(mapping, allowed: Self.taskKeys, context: field, what: "task key")
        } else {
            error(node, field: field, "a task must be a mapping with at least `run`",
                  fix: "write `\(name): {run: echo hello}`")
            return nil
        }
        var task = TaskSpec(name: name, command: .shell(""))
        if let runNode = fields["run"] {
            if let scalar = runNode.scalar {
                task.command = .shell(scalar.string)
                if scalar.string.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    error(runNode, field: "\(field).run", "the command is empty", fix: "give the command to run")
                }
            } else if let items = runNode.sequence {
                let argv = items.compactMap { $0.scalar?.string }
                if argv.count != items.count || argv.isEmpty {
                    error(runNode, field: "\(field).run", "an argv list must hold one or more plain strings",
                          fix: "write `run: [python3, train.py, --epochs, \"3\"]`")
                }
                task.command = .argv(argv)
            } else {
                error(runNode, field: "\(field).run", "`run` must be a command string or a list of arguments")
            }
        } else {
            error(node, field: field, "task '\(name)' has no `run`",
                  fix: "add `run:` with a command, such as `run: python3 scripts/\(name).py`")
        }
        if let envNode = fields["env"] {
            if let mapping = envNode.mapping {
                for (key, value) in mapping {
                    guard let envName = key.scalar?.string, Self.isValidIdentifier(envName), !envName.contains("-")
                    else {
                        error(key, field: "\(field).env", "'\(Self.text(key))' is not a valid environment variable name",
                              fix: "use letters, digits and '_', starting with a letter")
                        continue
                    }
                    guard let scalar = value.scalar else {
                        error(value, field: "\(field).env.\(envName)", "an environment value must be text")
                        continue
                    }
                    task.env.append(EnvEntry(name: envName, value: scalar.string))
                }
            } else {
                error(envNode, field: "\(field).env", "`env` must be a mapping of NAME: value")
            }
        }
        if let node = fields["workdir"] { task.workdir = string(node, field: "\(field).workdir") }
        for (key, assign) in [("queue", { (value: String) in task.queue = value }), ("pool", { task.pool = $0 })] {
            guard let node = fields[key], let value = string(node, field: "\(field).\(key)") else { continue }
            if Self.isValidWorkName(value) {
                assign(value)
            } else {
                error(
                    node, field: "\(field).\(key)",
                    "'\(value)' is not a valid \(key) name: use letters, digits, '_', '-' and '.', starting with a letter (for example `gpu`)")
            }
        }
        if let node = fields["description"] { _ = string(node, field: "\(field).description") }
        if let needsNode = fields["needs"] {
            if let scalar = needsNode.scalar {
                task.needs = [scalar.string]
            } else if let items = needsNode.sequence {
                task.needs = items.compactMap { item in
                    guard let value = item.scalar?.string else {
                        error(item, field: "\(field).needs", "each entry of `needs` must be a task name")
                        return nil
                    }
                    return value
                }
            } else {
                error(needsNode, field: "\(field).needs", "`needs` must be a task name or a list of task names")
            }
        }
        if let node = fields["retries"], let value = int(node, field: "\(field).retries", minimum: 0) {
            task.retries = value
        }
        if let node = fields["retry_delay"], let value = duration(node, field: "\(field).retry_delay") {
            task.retryDelay = value
        }
        if let node = fields["retry_backoff"], let value = number(node, field: "\(field).retry_backoff", minimum: 1) {
            task.retryBackoff = value
        }
        if let node = fields["max_retry_delay"], let value = duration(node, field: "\(field).max_retry_delay") {
            task.maxRetryDelay = value
        }
        if let node = fields["timeout"], let value = duration(node, field: "\(field).timeout") {
            if value <= 0 {
                error(node, field: "\(field).timeout", "a timeout must be longer than zero", value: Self.text(node),
                      fix: "write e.g. 10m")
            } else {
                task.timeout = value
            }
        }
        if let node = fields["trigger_rule"], let text = string(node, field: "\(field).trigger_rule") {
            if let rule = TriggerRule(rawValue: text) {
                task.triggerRule = rule
            } else {
                error(node, field: "\(field).trigger_rule", "unknown trigger rule '\(text)'", value: text,
                      fix: Suggest.hint(for: text, in: TriggerRule.allCases.map(\.rawValue)))
            }
        }
        if let node = fields["when"] {
            if let scalar = node.scalar {
                task.when = scalar.string
            } else if let boolean = node.bool {
                task.when = boolean ? "true" : "false"
            } else {
                error(node, field: "\(field).when", "`when` must be a condition such as `params.deploy == true`")
            }
        }
        if let node = fields["produces"] {
            // Each name is checked at its own node, so an unknown one in a block list is reported
            // on its own line, not at the list's first item.
            let items = node.sequence.map { Array($0) } ?? [node]
            let names = items.compactMap { $0.scalar?.string }
            if names.count == items.count {
                task.produces = names
                for (name, item) in zip(names, items) { checkDataset(name, node: item, field: "\(field).produces") }
            } else {
                error(node, field: "\(field).produces", "`produces` must be a dataset name or a list of them",
                      fix: "write `produces: [clean_customers]`")
            }
        }
        if let node = fields["requires"] { task.requires = requirements(node, field: "\(field).requires") }
        taskNodes[name] = fields
        return task
    }

    private var taskNodes: [String: [String: Node]] = [:]

    // MARK: - Handoffs

    private mutating func checkDataset(_ name: String, node: Node, field: String) {
        guard let datasets, !datasets.contains(name) else { return }
        error(node, field: field, "unknown dataset '\(name)'", value: name,
              fix: datasets.isEmpty
                ? "declare it in a datasets file (a YAML file with `datasets:`) in the pipelines folder"
                : Suggest.hint(for: name, in: datasets.sorted()) + " (or declare it under `datasets:`)")
    }

    private mutating func requirements(_ node: Node, field: String) -> [DatasetRequirement] {
        guard let items = node.sequence else {
            error(node, field: field, "`requires` must be a list of datasets",
                  fix: "write `requires: [{dataset: clean_customers, max_staleness: 2h}]`")
            return []
        }
        var result: [DatasetRequirement] = []
        for (index, item) in items.enumerated() {
            let itemField = "\(field)[\(index)]"
            if let name = item.scalar?.string {
                checkDataset(name, node: item, field: itemField)
                result.append(DatasetRequirement(dataset: name))
                continue
            }
            guard let mapping = item.mapping else {
                error(item, field: itemField, "each requirement is a dataset name or a mapping with `dataset`")
                continue
            }
            let fields = checkKeys(mapping, allowed: Self.requirementKeys, context: itemField, what: "requirement key")
            guard let datasetNode = fields["dataset"], let name = string(datasetNode, field: "\(itemField).dataset") else {
                error(item, field: itemField, "the requirement names no `dataset`", fix: "add `dataset: NAME`")
                continue
            }
            checkDataset(name, node: datasetNode, field: "\(itemField).dataset")
            var requirement = DatasetRequirement(dataset: name)
            if let node = fields["max_staleness"], let value = duration(node, field: "\(itemField).max_staleness") {
                requirement.maxStaleness = value
            }
            if let node = fields["schema"], let text = string(node, field: "\(itemField).schema") {
                do {
                    _ = try VersionRange(text)
                    requirement.schema = text
                } catch {
                    self.error(node, field: "\(itemField).schema", error.description, value: text,
                               fix: "write a range such as \">=2.0 <3\", \"^2.3\" or \"2.x\"")
                }
            }
            if let node = fields["on_violation"], let text = string(node, field: "\(itemField).on_violation") {
                if let policy = ViolationPolicy(rawValue: text) {
                    requirement.onViolation = policy
                } else {
                    error(node, field: "\(itemField).on_violation", "unknown policy '\(text)'", value: text,
                          fix: Suggest.hint(for: text, in: ViolationPolicy.allCases.map(\.rawValue)))
                }
            }
            if let node = fields["wait_timeout"], let value = duration(node, field: "\(itemField).wait_timeout") {
                requirement.waitTimeout = value
            }
            result.append(requirement)
        }
        return result
    }

    /// A trigger on a name no event can have (empty, spaces, '/') would never fire.
    private mutating func checkEventName(_ name: String, node: Node, field: String) {
        guard !EventTriggerSpec.isValidEventName(name) else { return }
        error(node, field: field, "event name '\(name)' can never be published", value: name,
              fix: "use 1-200 letters, digits, '.', '_', '-' or ':', like data.customers.updated",
              columnOffset: Self.openingQuoteWidth(node))
    }

    private mutating func triggers(_ node: Node) -> [EventTriggerSpec] {
        guard let items = node.sequence else {
            error(node, field: "triggers", "`triggers` must be a list",
                  fix: "write `triggers: [{event: data.customers.updated}]`")
            return []
        }
        var result: [EventTriggerSpec] = []
        for (index, item) in items.enumerated() {
            let field = "triggers[\(index)]"
            if let name = item.scalar?.string {
                checkEventName(name, node: item, field: field)
                result.append(EventTriggerSpec(event: name))
                continue
            }
            guard let mapping = item.mapping else {
                error(item, field: field, "each trigger is an event name or a mapping with `event`")
                continue
            }
            let fields = checkKeys(mapping, allowed: Self.triggerKeys, context: field, what: "trigger key")
            guard let eventNode = fields["event"], let name = string(eventNode, field: "\(field).event"), !name.isEmpty
            else {
                error(item, field: field, "the trigger names no `event`", fix: "add `event: data.customers.updated`")
                continue
            }
            checkEventName(name, node: eventNode, field: "\(field).event")
            var filter: [String: JSONValue] = [:]
            if let filterNode = fields["filter"] {
                if case .object(let members) = Self.json(filterNode) {
                    filter = members
                } else {
                    error(filterNode, field: "\(field).filter", "`filter` must map payload fields to values",
                          fix: "write `filter: {region: eu}`")
                }
            }
            result.append(EventTriggerSpec(event: name, filter: filter))
        }
        return result
    }

    // MARK: - Graph and templates

    private mutating func validateGraph(_ spec: PipelineSpec, tasksNode: Node?) {
        let names = spec.tasks.map(\.name)
        for task in spec.tasks {
            let fields = taskNodes[task.name] ?? [:]
            for dependency in task.needs where !names.contains(dependency) {
                let others = names.filter { $0 != task.name }
                // With no other task to choose from, "valid values: " would list nothing.
                error(fields["needs"], field: "tasks.\(task.name).needs", "unknown task '\(dependency)' in needs",
                      value: dependency,
                      fix: others.isEmpty
                        ? "declare a task '\(dependency)' under `tasks:` or remove it from `needs`"
                        : Suggest.hint(for: dependency, in: others))
            }
            if task.needs.contains(task.name) {
                error(fields["needs"], field: "tasks.\(task.name).needs", "task '\(task.name)' needs itself",
                      fix: "remove '\(task.name)' from its own needs")
            }
        }
        let graph = TaskGraph(tasks: spec.tasks)
        // A task needing itself was reported above; look for longer cycles without those
        // self-edges, or the first self-edge found would hide a real cycle elsewhere.
        let withoutSelfEdges = spec.tasks.map { task in
            var copy = task
            copy.needs.removeAll { $0 == task.name }
            return copy
        }
        if let cycle = TaskGraph(tasks: withoutSelfEdges).findCycle() {
            let first = taskNodes[cycle[0]]?["needs"] ?? tasksNode
            error(first, field: "tasks", "dependency cycle: \(cycle.joined(separator: " -> "))",
                  fix: "remove one of these `needs` so the tasks form a DAG")
        }
        for task in spec.tasks {
            let fields = taskNodes[task.name] ?? [:]
            let ancestors = graph.ancestors(of: task.name)
            switch task.command {
            case .shell(let text):
                checkTemplate(text, node: fields["run"], field: "tasks.\(task.name).run", spec: spec, task: task.name,
                              ancestors: ancestors)
                checkShellQuoting(text, node: fields["run"], field: "tasks.\(task.name).run")
            case .argv(let items):
                for item in items {
                    checkTemplate(item, node: fields["run"], field: "tasks.\(task.name).run", spec: spec,
                                  task: task.name, ancestors: ancestors)
                }
            }
            for entry in task.env {
                checkTemplate(entry.value, node: fields["env"], field: "tasks.\(task.name).env.\(entry.name)",
                              spec: spec, task: task.name, ancestors: ancestors)
            }
            if let condition = task.when {
                do {
                    let parsed = try Condition.parse(condition)
                    for reference in parsed.references {
                        checkReference(reference, node: fields["when"], field: "tasks.\(task.name).when", spec: spec,
                                       task: task.name, ancestors: ancestors)
                    }
                } catch {
                    self.error(fields["when"], field: "tasks.\(task.name).when", error.message, value: condition,
                               fix: error.fix, columnOffset: error.offset + Self.openingQuoteWidth(fields["when"]))
                }
            }
        }
    }

    private mutating func checkTemplate(
        _ text: String, node: Node?, field: String, spec: PipelineSpec, task: String, ancestors: Set<String>
    ) {
        do {
            let template = try Template.parse(text)
            for reference in template.references {
                checkReference(reference, node: node, field: field, spec: spec, task: task, ancestors: ancestors)
            }
        } catch {
            self.error(node, field: field, error.message, value: text, fix: error.fix)
        }
    }

    /// Baton quotes each substituted value as one shell word. Inside the author's own quotes
    /// that protection breaks (`"{{ x }}"` still expands `$(...)`; `'{{ x }}'` ends the quote),
    /// so such placements are rejected rather than silently unsafe.
    private mutating func checkShellQuoting(_ text: String, node: Node?, field: String) {
        guard let template = try? Template.parse(text) else { return }
        for (reference, context) in template.shellContexts {
            let place: String
            switch context {
            case .unquoted, .comment: continue
            case .singleQuoted: place = "inside single quotes"
            case .doubleQuoted: place = "inside double quotes"
            case .escaped: place = "right after a backslash"
            }
            error(node, field: field, "{{ \(reference.text) }} is \(place); the shell would not treat the value as plain data",
                  value: reference.text,
                  fix: "remove the quotes around {{ \(reference.text) }}: Baton already quotes substituted values as one word, or pass the value through `env:` and use \"$NAME\"")
        }
    }

    /// What `{{ models.NAME.ALIAS.FIELD }}` may read of a registry version.
    public static let modelTemplateFields = [
        "version", "uri", "source", "run_id", "artifact_uri", "artifact_path", "stage", "model",
    ]

    private mutating func checkReference(
        _ reference: TemplateReference, node: Node?, field: String, spec: PipelineSpec, task: String,
        ancestors: Set<String>
    ) {
        guard let root = reference.path.first else { return }
        let roots = ["params", "tasks", "models"] + Self.templateVariables
        switch root {
        case "models":
            // models.NAME.ALIAS.FIELD: the registry version an alias points at when the task runs.
            let fields = Self.modelTemplateFields
            if reference.path.count != 4 || !fields.contains(reference.path[3]) {
                let field3 = reference.path.count >= 4 ? reference.path[3] : ""
                error(node, field: field,
                      "'\(reference.text)' must name a model, an alias and a field, like models.churn.champion.version",
                      value: reference.text,
                      fix: reference.path.count == 4
                        ? Suggest.hint(for: field3, in: fields)
                        : "write models.MODEL.ALIAS.FIELD with FIELD one of \(fields.joined(separator: ", "))")
            }
        case "params":
            if reference.path.count >= 2, spec.param(named: reference.path[1]) == nil {
                let names = spec.params.map(\.name)
                error(node, field: field, "unknown param '\(reference.path[1])' in '\(reference.text)'",
                      value: reference.text,
                      fix: names.isEmpty
                        ? "declare it under `params:` with a default value"
                        : Suggest.hint(for: reference.path[1], in: names) + " or declare it under `params:`")
            }
        case "tasks":
            guard reference.path.count >= 2 else {
                error(node, field: field, "'\(reference.text)' must name a task, like tasks.train.output.accuracy",
                      value: reference.text)
                return
            }
            let upstream = reference.path[1]
            if spec.task(named: upstream) == nil {
                error(node, field: field, "unknown task '\(upstream)' in '\(reference.text)'", value: reference.text,
                      fix: Suggest.hint(for: upstream, in: spec.tasks.map(\.name)))
            } else if !ancestors.contains(upstream) {
                error(node, field: field,
                      "task '\(task)' reads the output of '\(upstream)', which is not upstream of it",
                      value: reference.text, fix: "add '\(upstream)' to the `needs` of '\(task)'")
            } else if reference.path.count >= 3, reference.path[2] != "output" {
                error(node, field: field, "'\(reference.text)' must read the task's output, as tasks.\(upstream).output.KEY",
                      value: reference.text, fix: "write tasks.\(upstream).output.\(reference.path.dropFirst(2).joined(separator: "."))")
            }
        default:
            if !roots.contains(root) {
                error(node, field: field, "unknown template variable '\(root)' in '\(reference.text)'",
                      value: reference.text, fix: Suggest.hint(for: root, in: roots))
            }
        }
    }

    // MARK: - Helpers

    /// A quoted scalar's mark points at its opening quote, one column before its first character,
    /// which is where offsets into the value's text count from.
    static func openingQuoteWidth(_ node: Node?) -> Int {
        switch node?.scalar?.style {
        case .singleQuoted?, .doubleQuoted?: return 1
        default: return 0
        }
    }

    static func kind(_ node: Node) -> String {
        switch node {
        case .scalar: return "value"
        case .mapping: return "mapping"
        case .sequence: return "list"
        case .alias: return "alias"
        }
    }

    static func text(_ node: Node) -> String {
        if let scalar = node.scalar { return scalar.string }
        return kind(node)
    }

    /// Converts a YAML node to JSON, honouring YAML's implicit typing of plain scalars.
    static func json(_ node: Node) -> JSONValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain { return .string(scalar.string) }
            if node.null != nil { return .null }
            if let value = node.bool { return .bool(value) }
            if let value = node.int { return .number(Double(value)) }
            if let value = node.float { return .number(value) }
            return .string(scalar.string)
        case .mapping(let mapping):
            var members: [String: JSONValue] = [:]
            for (key, value) in mapping { members[key.scalar?.string ?? "\(key)"] = json(value) }
            return .object(members)
        case .sequence(let sequence):
            return .array(sequence.map(json))
        case .alias:
            return .null
        }
    }
}

