import Foundation
import Yams

/// Datasets and teams declared in a catalog file: a YAML file in the pipelines folder whose top
/// level has `datasets:` (and optionally `teams:`) instead of `tasks:`.
public struct CatalogSpec: Sendable, Hashable {
    public var datasets: [DatasetSpec] = []
    public var teams: [TeamSpec] = []

    public init(datasets: [DatasetSpec] = [], teams: [TeamSpec] = []) {
        self.datasets = datasets
        self.teams = teams
    }
}

extension PipelineParser {
    public struct CatalogOutcome: Sendable {
        public var catalog: CatalogSpec
        public var issues: [ValidationIssue]
    }

    static let datasetKeys = ["owner", "description", "schema_version", "freshness", "availability", "webhook"]
    static let teamKeys = ["webhook"]

    /// Whether the text is a catalog file rather than a pipeline (decided by its top-level keys).
    public static func isCatalog(_ text: String) -> Bool {
        guard let node = try? Yams.compose(yaml: text), let mapping = node.mapping else { return false }
        let keys = Set(mapping.keys.compactMap { $0.scalar?.string })
        return (keys.contains("datasets") || keys.contains("teams")) && !keys.contains("tasks")
    }

    /// Parses a catalog file, reporting every problem with its location.
    public static func parseCatalog(_ text: String, file: String) -> CatalogOutcome {
        var issues: [ValidationIssue] = []
        var catalog = CatalogSpec()
        func problem(_ node: Node?, _ field: String, _ message: String, value: String? = nil, fix: String? = nil) {
            issues.append(
                ValidationIssue(
                    file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, field: field,
                    message: message, value: value, fix: fix))
        }
        let root: Node
        switch PipelineParser.compose(text, file: file) {
        case .failure(let issue): return CatalogOutcome(catalog: catalog, issues: [issue])
        case .success(nil): return CatalogOutcome(catalog: catalog, issues: [])
        case .success(let composed?): root = composed
        }
        guard let top = root.mapping else { return CatalogOutcome(catalog: catalog, issues: issues) }
        for (keyNode, value) in top {
            let key = keyNode.scalar?.string ?? ""
            switch key {
            case "datasets":
                guard let entries = value.mapping else {
                    problem(value, "datasets", "`datasets` must map dataset names to their contracts",
                            fix: "write `datasets: {clean_customers: {owner: data_engineering, freshness: 1h}}`")
                    continue
                }
                for (nameNode, body) in entries {
                    guard let name = nameNode.scalar?.string, isValidPipelineName(name) else {
                        problem(nameNode, "datasets", "'\(nameNode.scalar?.string ?? "?")' is not a valid dataset name",
                                fix: "use letters, digits, '_', '-' and '.'")
                        continue
                    }
                    let field = "datasets.\(name)"
                    var dataset = DatasetSpec(name: name, sourceFile: file)
                    guard let fields = body.mapping else {
                        if body.null == nil {
                            problem(body, field, "a dataset must be a mapping of its contract (owner, freshness, ...)")
                        }
                        catalog.datasets.append(dataset)
                        continue
                    }
                    for (fieldKey, fieldValue) in fields {
                        let fieldName = fieldKey.scalar?.string ?? ""
                        let text = fieldValue.scalar?.string ?? ""
                        switch fieldName {
                        case "owner": dataset.owner = text
                        case "description": dataset.description = text
                        case "webhook":
                            if let url = URL(string: text), ["http", "https"].contains(url.scheme ?? "") {
                                dataset.webhook = text
                            } else {
                                problem(fieldValue, "\(field).webhook", "'\(text)' is not an http(s) URL", value: text)
                            }
                        case "schema_version":
                            if SchemaVersion(text) != nil {
                                dataset.schemaVersion = SchemaVersion(text).map { _ in text }
                            } else {
                                problem(fieldValue, "\(field).schema_version", "'\(text)' is not a version like 2.3.0", value: text)
                            }
                        case "freshness":
                            do {
                                dataset.freshness = try DurationText.seconds(text)
                            } catch {
                                problem(fieldValue, "\(field).freshness", error.description, value: text)
                            }
                        case "availability":
                            if let share = DatasetSpec.availabilityShare(text) {
                                dataset.availability = share
                            } else {
                                problem(fieldValue, "\(field).availability", "'\(text)' is not a percentage", value: text,
                                        fix: "write a target such as 99.9%")
                            }
                        default:
                            problem(fieldKey, field, "unknown dataset key '\(fieldName)'", value: fieldName,
                                    fix: Suggest.hint(for: fieldName, in: datasetKeys))
                        }
                    }
                    catalog.datasets.append(dataset)
                }
            case "teams":
                guard let entries = value.mapping else {
                    problem(value, "teams", "`teams` must map team names to settings",
                            fix: "write `teams: {data_engineering: {webhook: http://chat.example/hooks/de}}`")
                    continue
                }
                for (nameNode, body) in entries {
                    let name = nameNode.scalar?.string ?? ""
                    var team = TeamSpec(name: name)
                    for (fieldKey, fieldValue) in body.mapping ?? [:] {
                        let fieldName = fieldKey.scalar?.string ?? ""
                        if fieldName == "webhook", let text = fieldValue.scalar?.string,
                            let url = URL(string: text), ["http", "https"].contains(url.scheme ?? "")
                        {
                            team.webhook = text
                        } else {
                            problem(fieldKey, "teams.\(name)", "unknown or invalid team setting '\(fieldName)'",
                                    fix: Suggest.hint(for: fieldName, in: teamKeys))
                        }
                    }
                    catalog.teams.append(team)
                }
            default:
                problem(keyNode, "", "unknown catalog key '\(key)'", value: key,
                        fix: Suggest.hint(for: key, in: ["datasets", "teams"]))
            }
        }
        return CatalogOutcome(catalog: catalog, issues: issues)
    }
}
