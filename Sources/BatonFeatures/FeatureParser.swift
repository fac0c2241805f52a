import BatonCore
import Foundation
import Yams

/// Reads feature definition files: YAML in the pipelines folder whose top level has
/// `entities:`, `feature_views:` or `feature_services:` (and no `tasks:`).
public enum FeatureParser {
    public struct Outcome: Sendable {
        public var entities: [EntitySpec] = []
        public var views: [FeatureViewSpec] = []
        public var services: [FeatureServiceSpec] = []
        public var issues: [ValidationIssue] = []
        /// Definitions left out for their own errors: no follow-on errors are reported for them.
        public var rejectedNames: Set<String> = []
    }

    static let topKeys = ["entities", "feature_views", "feature_services"]
    static let entityKeys = ["join_keys", "description"]
    static let viewKeys = [
        "entity", "features", "ttl", "owner", "description", "source", "freshness", "availability", "schema_version",
    ]
    static let featureKeys = ["type", "description"]
    static let sourceKeys = ["sqlite", "postgres", "table", "timestamp_column", "columns"]
    static let serviceKeys = ["features", "description", "owner", "models"]

    /// Whether the text is a feature definition file (decided by its top-level keys).
    public static func isDefinitionFile(_ text: String) -> Bool {
        guard let node = try? Yams.compose(yaml: text), let mapping = node.mapping else { return false }
        let keys = Set(mapping.keys.compactMap { $0.scalar?.string })
        return !keys.isDisjoint(with: topKeys) && !keys.contains("tasks")
    }

    /// Names usable as SQL identifiers and in URLs: a letter or '_', then letters, digits, '_'.
    public static func isValidName(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, text.count <= 128,
            first == "_" || (first.isASCII && CharacterSet.letters.contains(first))
        else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCII && ($0 == "_" || CharacterSet.alphanumerics.contains($0)) }
    }

    /// Parses one file; `directory` resolves relative SQLite source paths.
    public static func parse(_ text: String, file: String, directory: String) -> Outcome {
        var outcome = Outcome()
        func problem(_ node: Node?, _ field: String, _ message: String, value: String? = nil, fix: String? = nil) {
            outcome.issues.append(
                ValidationIssue(
                    file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, field: field,
                    message: message, value: value, fix: fix))
        }
        let root: Node
        switch PipelineParser.compose(text, file: file) {
        case .failure(let issue):
            outcome.issues.append(issue)
            return outcome
        case .success(nil): return outcome
        case .success(let composed?): root = composed
        }
        guard let top = root.mapping else { return outcome }
        func name(_ node: Node, _ kind: String) -> String? {
            guard let text = node.scalar?.string, isValidName(text) else {
                problem(node, kind, "'\(node.scalar?.string ?? "?")' is not a valid \(kind) name", value: node.scalar?.string,
                        fix: "start with a letter or '_' and use letters, digits and '_' only")
                return nil
            }
            return text
        }
        func type(_ node: Node, _ field: String) -> FeatureValueType? {
            let text = node.scalar?.string ?? ""
            guard let type = FeatureValueType(rawValue: text) else {
                problem(node, field, "'\(text)' is not a feature type", value: text,
                        fix: Suggest.hint(for: text, in: FeatureValueType.allCases.map(\.rawValue)))
                return nil
            }
            return type
        }
        func duration(_ node: Node, _ field: String) -> Double? {
            let text = node.scalar?.string ?? ""
            do {
                return try DurationText.seconds(text)
            } catch {
                problem(node, field, error.description, value: text, fix: "write a duration such as 30m, 2h or 90d")
                return nil
            }
        }
        for (keyNode, value) in top {
            let key = keyNode.scalar?.string ?? ""
            switch key {
            case "entities":
                for (nameNode, body) in value.mapping ?? [:] {
                    guard let entityName = name(nameNode, "entity") else { continue }
                    let field = "entities.\(entityName)"
                    var entity = EntitySpec(name: entityName, joinKeys: [], sourceFile: file, line: nameNode.mark?.line ?? 0)
                    for (fieldKey, fieldValue) in body.mapping ?? [:] {
                        let fieldName = fieldKey.scalar?.string ?? ""
                        switch fieldName {
                        case "description": entity.description = fieldValue.scalar?.string
                        case "join_keys":
                            if let keys = fieldValue.mapping {
                                for (keyName, keyType) in keys {
                                    guard let joinName = name(keyName, "join key"), let joinType = type(keyType, "\(field).join_keys.\(joinName)") else { continue }
                                    if joinType == .float || joinType == .bool {
                                        problem(keyType, "\(field).join_keys.\(joinName)", "a join key must be int or string", value: joinType.rawValue)
                                        continue
                                    }
                                    entity.joinKeys.append(JoinKeySpec(name: joinName, type: joinType))
                                }
                            } else {
                                problem(fieldValue, "\(field).join_keys", "`join_keys` must map key names to types",
                                        fix: "write `join_keys: {customer_id: int}`")
                            }
                        default:
                            problem(fieldKey, field, "unknown entity key '\(fieldName)'", value: fieldName, fix: Suggest.hint(for: fieldName, in: entityKeys))
                        }
                    }
                    if entity.joinKeys.isEmpty {
                        outcome.rejectedNames.insert(entityName)
                        problem(nameNode, field, "entity '\(entityName)' has no join keys", fix: "add `join_keys: {\(entityName)_id: int}`")
                        continue
                    }
                    outcome.entities.append(entity)
                }
                if value.mapping == nil && value.null == nil {
                    problem(value, "entities", "`entities` must map entity names to their join keys")
                }
            case "feature_views":
                for (nameNode, body) in value.mapping ?? [:] {
                    guard let viewName = name(nameNode, "feature view") else { continue }
                    let field = "feature_views.\(viewName)"
                    var view = FeatureViewSpec(name: viewName, entity: "", features: [], sourceFile: file, line: nameNode.mark?.line ?? 0)
                    var valid = true
                    guard let fields = body.mapping else {
                        problem(body, field, "a feature view must be a mapping with entity and features")
                        continue
                    }
                    for (fieldKey, fieldValue) in fields {
                        let fieldName = fieldKey.scalar?.string ?? ""
                        let text = fieldValue.scalar?.string ?? ""
                        switch fieldName {
                        case "entity": view.entity = text
                        case "owner": view.owner = text
                        case "description": view.description = text
                        case "ttl": if let seconds = duration(fieldValue, "\(field).ttl") { view.ttl = seconds > 0 ? seconds : nil } else { valid = false }
                        case "freshness": if let seconds = duration(fieldValue, "\(field).freshness") { view.freshness = seconds } else { valid = false }
                        case "availability":
                            if let share = DatasetSpec.availabilityShare(text) {
                                view.availability = share
                            } else {
                                problem(fieldValue, "\(field).availability", "'\(text)' is not a percentage", value: text,
                                        fix: "write a target such as 99%")
                                valid = false
                            }
                        case "schema_version":
                            if SchemaVersion(text) != nil { view.schemaVersion = text } else {
                                problem(fieldValue, "\(field).schema_version", "'\(text)' is not a version like 2.3.0", value: text)
                            }
                        case "features":
                            guard let features = fieldValue.mapping else {
                                problem(fieldValue, "\(field).features", "`features` must map feature names to types",
                                        fix: "write `features: {total_spend: float, segment: string}`")
                                valid = false
                                continue
                            }
                            for (featureNode, featureBody) in features {
                                guard let featureName = name(featureNode, "feature") else { valid = false; continue }
                                let featureField = "\(field).features.\(featureName)"
                                if featureName == "event_timestamp" {
                                    problem(featureNode, featureField, "`event_timestamp` is the row's time, not a feature", fix: "rename the feature")
                                    valid = false
                                    continue
                                }
                                if let mapping = featureBody.mapping {
                                    var featureType: FeatureValueType?
                                    var description: String?
                                    for (k, v) in mapping {
                                        switch k.scalar?.string ?? "" {
                                        case "type": featureType = type(v, "\(featureField).type")
                                        case "description": description = v.scalar?.string
                                        default:
                                            problem(k, featureField, "unknown feature key '\(k.scalar?.string ?? "")'",
                                                    fix: Suggest.hint(for: k.scalar?.string ?? "", in: featureKeys))
                                        }
                                    }
                                    guard let featureType else {
                                        problem(featureNode, featureField, "feature '\(featureName)' has no type", fix: "add `type: float`")
                                        valid = false
                                        continue
                                    }
                                    view.features.append(FeatureSpec(name: featureName, type: featureType, description: description))
                                } else if let featureType = type(featureBody, featureField) {
                                    view.features.append(FeatureSpec(name: featureName, type: featureType))
                                } else {
                                    valid = false
                                }
                            }
                        case "source":
                            view.source = parseSource(fieldValue, field: "\(field).source", directory: directory, problem: problem)
                            if view.source == nil { valid = false }
                        default:
                            problem(fieldKey, field, "unknown feature view key '\(fieldName)'", value: fieldName, fix: Suggest.hint(for: fieldName, in: viewKeys))
                        }
                    }
                    if view.entity.isEmpty {
                        problem(nameNode, field, "feature view '\(viewName)' names no entity", fix: "add `entity: customer`")
                        valid = false
                    }
                    if view.features.isEmpty && valid {
                        problem(nameNode, field, "feature view '\(viewName)' has no features", fix: "add `features: {name: float}`")
                        valid = false
                    }
                    if valid { outcome.views.append(view) } else { outcome.rejectedNames.insert(viewName) }
                }
            case "feature_services":
                for (nameNode, body) in value.mapping ?? [:] {
                    guard let serviceName = name(nameNode, "feature service") else { continue }
                    let field = "feature_services.\(serviceName)"
                    var service = FeatureServiceSpec(name: serviceName, features: [], sourceFile: file, line: nameNode.mark?.line ?? 0)
                    for (fieldKey, fieldValue) in body.mapping ?? [:] {
                        let fieldName = fieldKey.scalar?.string ?? ""
                        switch fieldName {
                        case "description": service.description = fieldValue.scalar?.string
                        case "owner": service.owner = fieldValue.scalar?.string
                        case "models": service.models = (fieldValue.sequence?.compactMap { $0.scalar?.string }) ?? []
                        case "features":
                            guard let items = fieldValue.sequence else {
                                problem(fieldValue, "\(field).features", "`features` must be a list of `view` or `view:feature`",
                                        fix: "write `features: [customer_features, \"customer_activity:clicks\"]`")
                                continue
                            }
                            for item in items {
                                let text = item.scalar?.string ?? ""
                                let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                                if parts.count == 1 {
                                    // Resolved to every feature of the view once all files are read.
                                    service.features.append(FeatureReference(view: parts[0], feature: "*"))
                                } else if parts.count == 2 {
                                    service.features.append(FeatureReference(view: parts[0], feature: parts[1]))
                                } else {
                                    problem(item, "\(field).features", "'\(text)' is not `view` or `view:feature`", value: text)
                                }
                            }
                        default:
                            problem(fieldKey, field, "unknown feature service key '\(fieldName)'", value: fieldName, fix: Suggest.hint(for: fieldName, in: serviceKeys))
                        }
                    }
                    if service.features.isEmpty {
                        problem(nameNode, field, "feature service '\(serviceName)' lists no features", fix: "add `features: [view_name]`")
                        outcome.rejectedNames.insert(serviceName)
                        continue
                    }
                    outcome.services.append(service)
                }
            default:
                problem(keyNode, "", "unknown feature definition key '\(key)'", value: key, fix: Suggest.hint(for: key, in: topKeys))
            }
        }
        return outcome
    }

    static func parseSource(
        _ node: Node, field: String, directory: String,
        problem: (Node?, String, String, String?, String?) -> Void
    ) -> FeatureSourceSpec? {
        guard let mapping = node.mapping else {
            problem(node, field, "`source` must be a mapping", nil, "write `source: {sqlite: ../var/warehouse.sqlite, table: t, timestamp_column: ts}`")
            return nil
        }
        var database: FeatureSourceSpec.Database?
        var table: String?
        var timestamp = "event_timestamp"
        var columns: [String: String] = [:]
        var valid = true
        for (k, v) in mapping {
            let key = k.scalar?.string ?? ""
            let text = v.scalar?.string ?? ""
            switch key {
            case "sqlite":
                let path = text.hasPrefix("/") ? text : URL(fileURLWithPath: directory).appendingPathComponent(text).standardizedFileURL.path
                database = .sqlite(path: path)
            case "postgres":
                guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") || text.hasPrefix("$") else {
                    problem(v, "\(field).postgres", "'\(text)' is not a postgres:// URL", text, "write postgres://user@host:5432/db, or $VARIABLE to read it from the environment")
                    valid = false
                    continue
                }
                database = .postgres(url: text)
            case "table", "timestamp_column":
                // Identifiers go into SQL text, so only plain names (optionally schema-qualified) pass.
                let parts = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                guard (1...(key == "table" ? 2 : 1)).contains(parts.count), parts.allSatisfy(isValidName) else {
                    problem(v, "\(field).\(key)", "'\(text)' is not a plain SQL name", text, "use letters, digits and '_' (and one '.' for schema.table)")
                    valid = false
                    continue
                }
                if key == "table" { table = text } else { timestamp = text }
            case "columns":
                for (name, column) in v.mapping ?? [:] {
                    let columnText = column.scalar?.string ?? ""
                    guard isValidName(columnText) else {
                        problem(column, "\(field).columns", "'\(columnText)' is not a plain SQL column name", columnText, nil)
                        valid = false
                        continue
                    }
                    columns[name.scalar?.string ?? ""] = columnText
                }
            default:
                problem(k, field, "unknown source key '\(key)'", key, Suggest.hint(for: key, in: sourceKeys))
                valid = false
            }
        }
        guard let database else {
            problem(node, field, "the source names no database", nil, "add `sqlite: PATH` or `postgres: URL`")
            return nil
        }
        guard let table else {
            problem(node, field, "the source names no table", nil, "add `table: NAME`")
            return nil
        }
        return valid ? FeatureSourceSpec(database: database, table: table, timestampColumn: timestamp, columns: columns) : nil
    }
}

extension FeatureRegistry {
    /// Assembles the definitions of every file, checking what spans files: duplicate names,
    /// views naming unknown entities, services naming unknown views or features. Definitions
    /// with problems are left out; the issues say why.
    public static func assemble(_ outcomes: [FeatureParser.Outcome]) -> (registry: FeatureRegistry, issues: [ValidationIssue]) {
        var registry = FeatureRegistry()
        var issues: [ValidationIssue] = []
        let rejected = outcomes.reduce(into: Set<String>()) { $0.formUnion($1.rejectedNames) }
        var dropped: Set<String> = []
        func hint(_ name: String, _ known: [String], kind: String) -> String {
            known.isEmpty ? "declare it under `\(kind):`" : Suggest.hint(for: name, in: known)
        }
        func issue(_ file: String?, _ line: Int, _ field: String, _ message: String, fix: String? = nil) {
            issues.append(ValidationIssue(file: file ?? "", line: line, column: 1, field: field, message: message, fix: fix))
        }
        for outcome in outcomes {
            issues += outcome.issues
            for entity in outcome.entities {
                if let other = registry.entities[entity.name] {
                    issue(entity.sourceFile, entity.line, "entities.\(entity.name)", "entity '\(entity.name)' is already declared in \(other.sourceFile ?? "?")", fix: "declare it once")
                } else {
                    registry.entities[entity.name] = entity
                }
            }
        }
        for outcome in outcomes {
            for view in outcome.views {
                let field = "feature_views.\(view.name)"
                if let other = registry.views[view.name] {
                    issue(view.sourceFile, view.line, field, "feature view '\(view.name)' is already declared in \(other.sourceFile ?? "?")", fix: "declare it once")
                    continue
                }
                guard let entity = registry.entities[view.entity] else {
                    dropped.insert(view.name)
                    if !rejected.contains(view.entity) {
                        issue(view.sourceFile, view.line, "\(field).entity", "feature view '\(view.name)' names unknown entity '\(view.entity)'",
                              fix: hint(view.entity, registry.entities.keys.sorted(), kind: "entities"))
                    }
                    continue
                }
                if let clash = view.features.first(where: { feature in entity.joinKeys.contains { $0.name == feature.name } }) {
                    issue(view.sourceFile, view.line, "\(field).features.\(clash.name)", "feature '\(clash.name)' has the name of a join key of \(entity.name)", fix: "rename the feature")
                    dropped.insert(view.name)
                    continue
                }
                registry.views[view.name] = view
            }
        }
        for outcome in outcomes {
            for var service in outcome.services {
                let field = "feature_services.\(service.name)"
                if let other = registry.services[service.name] {
                    issue(service.sourceFile, service.line, field, "feature service '\(service.name)' is already declared in \(other.sourceFile ?? "?")", fix: "declare it once")
                    continue
                }
                var resolved: [FeatureReference] = []
                var seen: [String: String] = [:]
                var valid = true
                for reference in service.features {
                    guard let view = registry.views[reference.view] else {
                        if !rejected.contains(reference.view) {
                            issue(service.sourceFile, service.line, "\(field).features", "feature service '\(service.name)' names unknown feature view '\(reference.view)'",
                                  fix: hint(reference.view, registry.views.keys.sorted(), kind: "feature_views"))
                        }
                        valid = false
                        continue
                    }
                    let names = reference.feature == "*" ? view.featureNames : [reference.feature]
                    for name in names {
                        guard view.featureNames.contains(name) else {
                            issue(service.sourceFile, service.line, "\(field).features", "feature view '\(view.name)' has no feature '\(name)'",
                                  fix: Suggest.hint(for: name, in: view.featureNames))
                            valid = false
                            continue
                        }
                        // Training sets and lookups name columns by feature: two views may not both give one.
                        if let other = seen[name], other != view.name {
                            issue(service.sourceFile, service.line, "\(field).features", "feature '\(name)' comes from both \(other) and \(view.name)",
                                  fix: "take it from one view, or rename it in one of them")
                            valid = false
                            continue
                        }
                        if seen[name] == nil {
                            seen[name] = view.name
                            resolved.append(FeatureReference(view: view.name, feature: name))
                        }
                    }
                }
                service.features = resolved
                if valid { registry.services[service.name] = service } else { dropped.insert(service.name) }
            }
        }
        registry.rejected = rejected.union(dropped)
        return (registry, issues)
    }
}
