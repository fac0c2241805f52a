import BatonCore
import Foundation
import Yams

/// Reads deployment definitions: YAML files in the pipelines folder whose top level is
/// `deployments:` (and no `tasks:`), and one deployment's JSON body from the API (JSON is YAML,
/// so both go through the same checks and report line and column).
public enum DeploymentParser {
    public struct Outcome: Sendable {
        public var deployments: [DeploymentSpec] = []
        public var issues: [ValidationIssue] = []
    }

    static let deploymentKeys = [
        "owner", "description", "model", "command", "workdir", "health", "replicas", "env", "sticky", "rollout", "slo", "drift",
        "alerts",
    ]
    static let rolloutKeys = ["steps", "analysis"]
    static let stepKeys = ["percent", "duration"]
    static let analysisKeys = [
        "interval", "min_requests", "max_error_rate", "max_error_rate_increase", "max_p99_latency_ms", "max_p99_latency_ratio",
        "metrics",
    ]
    static let metricKeys = ["name", "min", "max"]
    static let sloKeys = ["max_error_rate", "max_p99_latency_ms", "window"]
    static let driftKeys = ["max_psi", "window"]
    static let alertKeys = ["webhook"]
    public static let maxReplicas = 32

    /// Whether the text is a deployments file (decided by its top-level keys).
    public static func isDefinitionFile(_ text: String) -> Bool {
        // Cheap test first: most files in the folder are pipelines.
        guard text.contains("deployments") else { return false }
        guard let node = try? Yams.compose(yaml: text), let mapping = node.mapping else { return false }
        let keys = Set(mapping.keys.compactMap { $0.scalar?.string })
        return keys.contains("deployments") && !keys.contains("tasks")
    }

    /// Names used in URLs, replica ids and file names.
    public static func isValidName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, text.count <= 64, first.isASCII, CharacterSet.letters.contains(first) else {
            return false
        }
        return text.unicodeScalars.allSatisfy {
            $0.isASCII && ($0 == "_" || $0 == "-" || CharacterSet.alphanumerics.contains($0))
        }
    }

    /// Parses a deployments file; `directory` resolves relative `workdir`s.
    public static func parse(_ text: String, file: String, directory: String, sourceFile: String? = nil) -> Outcome {
        var outcome = Outcome()
        let root: Node
        switch PipelineParser.compose(text, file: file) {
        case .failure(let issue):
            outcome.issues.append(issue)
            return outcome
        case .success(nil): return outcome
        case .success(let composed?): root = composed
        }
        guard let top = root.mapping else {
            outcome.issues.append(
                ValidationIssue(file: file, line: 1, column: 1, message: "a deployments file must be a mapping", fix: "start it with `deployments:`"))
            return outcome
        }
        for (keyNode, value) in top {
            let key = keyNode.scalar?.string ?? ""
            guard key == "deployments" else {
                outcome.issues.append(
                    issue(file, keyNode, key, "unknown top-level key '\(key)' in a deployments file", value: key,
                          fix: "a deployments file holds only `deployments:`; put other definitions in their own files"))
                continue
            }
            guard let entries = value.mapping else {
                outcome.issues.append(
                    issue(file, value, "deployments", "`deployments` must map names to deployments",
                          fix: "write `deployments:` then `  churn:` with its keys indented below"))
                continue
            }
            for (nameNode, body) in entries {
                var reader = Reader(file: file, directory: directory)
                if let spec = reader.deployment(nameNode: nameNode, body: body, sourceFile: sourceFile ?? file) {
                    outcome.deployments.append(spec)
                }
                outcome.issues += reader.issues
            }
        }
        return outcome
    }

    /// Parses one deployment's JSON body (the keys of one entry of a deployments file).
    public static func parseJSON(_ text: String, name: String) -> Result<DeploymentSpec, DeploymentError> {
        let file = "request body"
        let root: Node
        switch PipelineParser.compose(text, file: file) {
        case .failure(let issue): return .failure(.invalidSpec([issue]))
        case .success(nil):
            return .failure(.invalidSpec([ValidationIssue(file: file, line: 0, column: 0, message: "the body is empty", fix: "send a JSON object")]))
        case .success(let composed?): root = composed
        }
        var reader = Reader(file: file, directory: FileManager.default.currentDirectoryPath)
        let nameNode = Node.scalar(.init(name))
        guard let spec = reader.deployment(nameNode: nameNode, body: root, sourceFile: nil), reader.issues.isEmpty else {
            return .failure(.invalidSpec(reader.issues))
        }
        return .success(spec)
    }

    static func issue(_ file: String, _ node: Node?, _ field: String, _ message: String, value: String? = nil, fix: String? = nil)
        -> ValidationIssue
    {
        ValidationIssue(
            file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, field: field, message: message, value: value,
            fix: fix)
    }

    /// Reads one deployment, collecting every problem rather than stopping at the first.
    struct Reader {
        let file: String
        let directory: String
        var issues: [ValidationIssue] = []

        mutating func problem(_ node: Node?, _ field: String, _ message: String, value: String? = nil, fix: String? = nil) {
            issues.append(DeploymentParser.issue(file, node, field, message, value: value, fix: fix))
        }

        mutating func string(_ node: Node, _ field: String) -> String? {
            guard let text = node.scalar?.string, node.mapping == nil, node.sequence == nil else {
                problem(node, field, "`\(field.split(separator: ".").last ?? "")` must be a text value", fix: "write it on one line after the colon")
                return nil
            }
            return text
        }

        mutating func number(_ node: Node, _ field: String, range: ClosedRange<Double>, fix: String) -> Double? {
            let text = node.scalar?.string ?? ""
            guard let value = Double(text), range.contains(value) else {
                problem(node, field, "'\(text)' is not a number between \(Self.shown(range.lowerBound)) and \(Self.shown(range.upperBound))",
                        value: text, fix: fix)
                return nil
            }
            return value
        }

        static func shown(_ value: Double) -> String {
            value == value.rounded() && abs(value) < 1e12 ? String(Int(value)) : String(value)
        }

        mutating func duration(_ node: Node, _ field: String, minimum: Double = 0) -> Double? {
            let text = node.scalar?.string ?? ""
            do {
                let seconds = try DurationText.seconds(text)
                guard seconds >= minimum else {
                    problem(node, field, "'\(text)' is too short; use at least \(DurationText.format(minimum))", value: text,
                            fix: "write a duration such as 30s, 5m or 1h")
                    return nil
                }
                return seconds
            } catch {
                problem(node, field, error.description, value: text, fix: "write a duration such as 30s, 5m or 1h")
                return nil
            }
        }

        mutating func mapping(_ node: Node, _ field: String, keys: [String]) -> [(String, Node, Node)]? {
            guard let mapping = node.mapping else {
                problem(node, field, "`\(field)` must be a mapping", fix: "indent its keys below it, or write `{key: value}`")
                return nil
            }
            var result: [(String, Node, Node)] = []
            for (keyNode, value) in mapping {
                let key = keyNode.scalar?.string ?? ""
                guard keys.contains(key) else {
                    problem(keyNode, "\(field).\(key)", "unknown key '\(key)'", value: key, fix: Suggest.hint(for: key, in: keys))
                    continue
                }
                result.append((key, keyNode, value))
            }
            return result
        }

        mutating func deployment(nameNode: Node, body: Node, sourceFile: String?) -> DeploymentSpec? {
            let name = nameNode.scalar?.string ?? ""
            guard DeploymentParser.isValidName(name) else {
                problem(nameNode, "deployments", "'\(name)' is not a valid deployment name", value: name,
                        fix: "start with a letter and use letters, digits, '_' and '-' (at most 64)")
                return nil
            }
            let base = "deployments.\(name)"
            let before = issues.count
            guard let entries = mapping(body, base, keys: DeploymentParser.deploymentKeys) else { return nil }
            var spec = DeploymentSpec(
                name: name, model: "", command: "", sourceFile: sourceFile, line: nameNode.mark?.line ?? 0)
            var sawModel = false
            var sawCommand = false
            for (key, _, value) in entries {
                let field = "\(base).\(key)"
                switch key {
                case "owner": spec.owner = string(value, field)
                case "description": spec.description = string(value, field)
                case "model":
                    sawModel = true
                    guard let text = string(value, field) else { continue }
                    guard ModelReference(parsing: text) != nil else {
                        problem(value, field, "'\(text)' is not a model reference", value: text,
                                fix: "write models:/NAME@ALIAS (such as models:/churn@champion) or models:/NAME/VERSION")
                        continue
                    }
                    spec.model = text
                case "command":
                    sawCommand = true
                    guard let text = string(value, field) else { continue }
                    guard !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                        problem(value, field, "the command is empty", fix: "give the shell command that starts one replica")
                        continue
                    }
                    spec.command = text
                case "workdir":
                    guard let text = string(value, field) else { continue }
                    let url = text.hasPrefix("/") ? URL(fileURLWithPath: text) : URL(fileURLWithPath: directory).appendingPathComponent(text)
                    spec.workdir = url.standardizedFileURL.path
                case "health":
                    guard let text = string(value, field) else { continue }
                    guard text.hasPrefix("/"), !text.contains(" ") else {
                        problem(value, field, "'\(text)' is not a path", value: text, fix: "write a path such as /health")
                        continue
                    }
                    spec.health = text
                case "replicas":
                    let text = value.scalar?.string ?? ""
                    guard let count = Int(text), (1...DeploymentParser.maxReplicas).contains(count) else {
                        problem(value, field, "'\(text)' is not a replica count between 1 and \(DeploymentParser.maxReplicas)", value: text,
                                fix: "write a whole number such as 2")
                        continue
                    }
                    spec.replicas = count
                case "env":
                    guard let pairs = value.mapping else {
                        problem(value, field, "`env` must map variable names to values", fix: "write `env: {LOG_LEVEL: info}`")
                        continue
                    }
                    for (variable, text) in pairs {
                        let variableName = variable.scalar?.string ?? ""
                        guard !variableName.isEmpty, variableName.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }),
                            !(variableName.first?.isNumber ?? true)
                        else {
                            problem(variable, "\(field).\(variableName)", "'\(variableName)' is not an environment variable name",
                                    value: variableName, fix: "use letters, digits and '_', not starting with a digit")
                            continue
                        }
                        if variableName.hasPrefix("BATON_") {
                            problem(variable, "\(field).\(variableName)", "BATON_ variables are set by Baton", value: variableName,
                                    fix: "rename the variable; Baton passes BATON_PORT, BATON_MODEL_DIR and the others itself")
                            continue
                        }
                        if let text = string(text, "\(field).\(variableName)") { spec.env[variableName] = text }
                    }
                case "sticky": spec.sticky = string(value, field)
                case "rollout": rollout(value, field, into: &spec.rollout)
                case "slo":
                    var slo = SLOSpec()
                    for (sloKey, _, sloValue) in mapping(value, field, keys: DeploymentParser.sloKeys) ?? [] {
                        let sloField = "\(field).\(sloKey)"
                        switch sloKey {
                        case "max_error_rate": slo.maxErrorRate = number(sloValue, sloField, range: 0...1, fix: "write a share such as 0.02")
                        case "max_p99_latency_ms":
                            slo.maxP99LatencyMs = number(sloValue, sloField, range: 0...3_600_000, fix: "write milliseconds such as 300")
                        default: slo.windowSeconds = duration(sloValue, sloField, minimum: 1) ?? slo.windowSeconds
                        }
                    }
                    spec.slo = slo
                case "drift":
                    var drift = DriftSpec()
                    for (driftKey, _, driftValue) in mapping(value, field, keys: DeploymentParser.driftKeys) ?? [] {
                        let driftField = "\(field).\(driftKey)"
                        if driftKey == "max_psi" {
                            drift.maxPSI = number(driftValue, driftField, range: 0...100, fix: "write a PSI such as 0.2")
                        } else {
                            drift.windowSeconds = duration(driftValue, driftField, minimum: 1) ?? drift.windowSeconds
                        }
                    }
                    spec.drift = drift
                default:
                    for (_, _, alertValue) in mapping(value, field, keys: DeploymentParser.alertKeys) ?? [] {
                        guard let url = string(alertValue, "\(field).webhook") else { continue }
                        guard url.hasPrefix("http://") || url.hasPrefix("https://"), URL(string: url) != nil else {
                            problem(alertValue, "\(field).webhook", "'\(url)' is not an http(s) URL", value: url,
                                    fix: "write a URL such as http://127.0.0.1:9000/hook")
                            continue
                        }
                        spec.alertWebhook = url
                    }
                }
            }
            if !sawModel {
                problem(nameNode, "\(base).model", "a deployment needs `model`", fix: "add `model: models:/NAME@champion`")
            }
            if !sawCommand {
                problem(nameNode, "\(base).command", "a deployment needs `command`",
                        fix: "add the shell command that starts one replica, listening on $BATON_PORT")
            }
            return issues.count == before ? spec : nil
        }

        mutating func rollout(_ node: Node, _ field: String, into rollout: inout RolloutSpec) {
            for (key, _, value) in mapping(node, field, keys: DeploymentParser.rolloutKeys) ?? [] {
                let rolloutField = "\(field).\(key)"
                if key == "steps" {
                    guard let items = value.sequence else {
                        problem(value, rolloutField, "`steps` must be a list",
                                fix: "write `- {percent: 10, duration: 30m}` per step")
                        continue
                    }
                    var previous = 0.0
                    for (index, item) in items.enumerated() {
                        let stepField = "\(rolloutField).\(index)"
                        var percent: Double?
                        var seconds: Double?
                        for (stepKey, _, stepValue) in mapping(item, stepField, keys: DeploymentParser.stepKeys) ?? [] {
                            if stepKey == "percent" {
                                percent = number(stepValue, "\(stepField).percent", range: 0.1...100, fix: "write a share of traffic such as 10")
                                if let value = percent, value <= previous {
                                    problem(stepValue, "\(stepField).percent", "steps must raise the canary's share; \(Self.shown(value)) follows \(Self.shown(previous))",
                                            value: Self.shown(value), fix: "order the steps by increasing percent")
                                }
                                previous = percent ?? previous
                            } else {
                                seconds = duration(stepValue, "\(stepField).duration", minimum: 0.05)
                            }
                        }
                        guard let percent, let seconds else {
                            let present = Set(item.mapping?.keys.compactMap { $0.scalar?.string } ?? [])
                            if !present.contains("percent") || !present.contains("duration") {
                                problem(item, stepField, "a step needs both `percent` and `duration`", fix: "write `{percent: 10, duration: 30m}`")
                            }
                            continue
                        }
                        rollout.steps.append(RolloutStep(percent: percent, durationSeconds: seconds))
                    }
                } else {
                    var analysis = AnalysisSpec()
                    for (analysisKey, _, analysisValue) in mapping(value, rolloutField, keys: DeploymentParser.analysisKeys) ?? [] {
                        let analysisField = "\(rolloutField).\(analysisKey)"
                        switch analysisKey {
                        case "interval": analysis.intervalSeconds = duration(analysisValue, analysisField, minimum: 0.05) ?? analysis.intervalSeconds
                        case "min_requests":
                            analysis.minRequests = number(analysisValue, analysisField, range: 0...1_000_000_000, fix: "write a count such as 50")
                                .map { Int($0) } ?? analysis.minRequests
                        case "max_error_rate":
                            analysis.maxErrorRate = number(analysisValue, analysisField, range: 0...1, fix: "write a share such as 0.01")
                        case "max_error_rate_increase":
                            analysis.maxErrorRateIncrease = number(analysisValue, analysisField, range: 0...1, fix: "write a share such as 0.005")
                        case "max_p99_latency_ms":
                            analysis.maxP99LatencyMs = number(analysisValue, analysisField, range: 0...3_600_000, fix: "write milliseconds such as 250")
                        case "max_p99_latency_ratio":
                            analysis.maxP99LatencyRatio = number(analysisValue, analysisField, range: 1...1000, fix: "write a ratio such as 1.5")
                        default:
                            guard let items = analysisValue.sequence else {
                                problem(analysisValue, analysisField, "`metrics` must be a list", fix: "write `- {name: churn.accuracy, min: 0.6}`")
                                continue
                            }
                            for (index, item) in items.enumerated() {
                                let metricField = "\(analysisField).\(index)"
                                var threshold = MetricThreshold(name: "")
                                for (metricKey, _, metricValue) in mapping(item, metricField, keys: DeploymentParser.metricKeys) ?? [] {
                                    switch metricKey {
                                    case "name": threshold.name = string(metricValue, "\(metricField).name") ?? ""
                                    case "min": threshold.min = number(metricValue, "\(metricField).min", range: -1e300...1e300, fix: "write a number")
                                    default: threshold.max = number(metricValue, "\(metricField).max", range: -1e300...1e300, fix: "write a number")
                                    }
                                }
                                guard !threshold.name.isEmpty, threshold.min != nil || threshold.max != nil else {
                                    problem(item, metricField, "a metric check needs `name` and `min` or `max`",
                                            fix: "write `{name: churn.accuracy, min: 0.6}`")
                                    continue
                                }
                                analysis.metrics.append(threshold)
                            }
                        }
                    }
                    rollout.analysis = analysis
                }
            }
        }
    }
}
