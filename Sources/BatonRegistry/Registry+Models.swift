import BatonCore
import BatonStore
import Foundation

// Registered models, their versions, aliases, stages and approvals.
extension Registry {
    static let stages = ["None", "Staging", "Production", "Archived"]
    /// The alias that marks the version approved for deployment unless a caller names another.
    public static let approvalAlias = "champion"

    static func modelMissing(_ name: String) -> MLflowError {
        .notFound("Registered Model with name=\(name) not found")
    }

    static func versionMissing(_ name: String, _ version: String) -> MLflowError {
        .notFound("Model Version (name=\(name), version=\(version)) not found")
    }

    public func createRegisteredModel(
        name: String, description: String?, tags: [(key: String, value: String)], actor: String?
    ) async throws -> JSONValue {
        try Limits.checkName(name, field: "name")
        var document = RegisteredModelDocument(description: description ?? "", userID: actor)
        for tag in tags { document.tags[tag.key] = tag.value }
        let stamp = nowMillis
        let object = RegistryObject(
            kind: .registeredModel, id: Self.newHexID(), name: name, createdAt: stamp, updatedAt: stamp,
            document: DocumentCoding.encode(document))
        switch try await store.insertRegistryObject(object) {
        case .inserted: return try await registeredModelJSON(object)
        case .nameTaken, .idTaken: throw MLflowError.alreadyExists("Registered Model (name=\(name)) already exists.")
        }
    }

    func modelObject(_ name: String) async throws -> RegistryObject {
        guard let object = try await store.registryObject(.registeredModel, name: name) else { throw Self.modelMissing(name) }
        return object
    }

    public func registeredModel(name: String) async throws -> JSONValue {
        try await registeredModelJSON(try await modelObject(name))
    }

    public func renameRegisteredModel(name: String, newName: String) async throws -> JSONValue {
        try Limits.checkName(newName, field: "new_name")
        let model = try await modelObject(name)
        let object = try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            object.name = newName
            return true
        }
        return try await registeredModelJSON(object)
    }

    public func updateRegisteredModel(name: String, description: String?) async throws -> JSONValue {
        let model = try await modelObject(name)
        let object = try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            var document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            document.description = description ?? ""
            object.document = DocumentCoding.encode(document)
            return true
        }
        return try await registeredModelJSON(object)
    }

    public func deleteRegisteredModel(name: String, actor: String) async throws {
        let model = try await modelObject(name)
        // Versions first: a crash in between leaves a model without versions, never versions without a model.
        for version in try await store.registryObjects(.modelVersion, parents: [model.id]) {
            _ = try await store.deleteRegistryObject(.modelVersion, id: version.id)
        }
        _ = try await store.deleteRegistryObject(.registeredModel, id: model.id)
        try await store.recordModelEvent(
            ModelEventRecord(modelID: model.id, version: nil, action: "model_deleted", detail: name, actor: actor, at: now()))
    }

    public func setRegisteredModelTag(name: String, key: String, value: String?) async throws {
        try Limits.checkName(key, field: "key")
        let model = try await modelObject(name)
        try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            var document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            if let value { document.tags[key] = value } else { document.tags[key] = nil }
            object.document = DocumentCoding.encode(document)
            return true
        }
    }

    public func searchRegisteredModels(filter: String?, orderBy: [String], maxResults: Int, pageToken: String?) async throws
        -> (models: [JSONValue], next: String?)
    {
        let parsed = try SearchFilter.parse(filter)
        let orders = try SearchOrder.parse(orderBy)
        var rows: [(RegistryObject, RegisteredModelDocument)] = []
        for object in try await store.registryObjects(.registeredModel, parents: nil) {
            let document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            if parsed.matches({ Self.registeredModelValue(object, document, $0) }) { rows.append((object, document)) }
        }
        let sorted = SearchOrder.sort(rows, by: orders, lookup: { Self.registeredModelValue($0.0, $0.1, $1) }) { a, b in
            (a.0.name ?? "") < (b.0.name ?? "")
        }
        let page = try PageToken.page(sorted, token: pageToken, maxResults: maxResults)
        var models: [JSONValue] = []
        for row in page.items { models.append(try await registeredModelJSON(row.0)) }
        return (models, page.next)
    }

    static func registeredModelValue(_ object: RegistryObject, _ document: RegisteredModelDocument, _ key: SearchKey)
        -> SearchValue?
    {
        switch key.entity {
        case .tag: return document.tags[key.key].map(SearchValue.text)
        case .attribute:
            switch key.key {
            case "name": return object.name.map(SearchValue.text)
            case "creation_timestamp", "timestamp": return .number(Double(object.createdAt))
            case "last_updated_timestamp": return .number(Double(object.updatedAt))
            case "description": return .text(document.description)
            default: return nil
            }
        default: return nil
        }
    }

    func registeredModelJSON(_ object: RegistryObject) async throws -> JSONValue {
        let document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
        let versions = try await versionObjects(modelID: object.id)
        var latest: [String: (RegistryObject, ModelVersionDocument)] = [:]
        for (version, versionDocument) in versions {
            if let current = latest[versionDocument.currentStage], current.1.version > versionDocument.version { continue }
            latest[versionDocument.currentStage] = (version, versionDocument)
        }
        var model: [String: JSONValue] = [
            "name": .string(object.name ?? ""), "creation_timestamp": .number(Double(object.createdAt)),
            "last_updated_timestamp": .number(Double(object.updatedAt)), "description": .string(document.description),
            "tags": Self.tagList(document.tags),
            "aliases": .array(
                document.aliases.keys.sorted().map { .object(["alias": .string($0), "version": .string(document.aliases[$0] ?? "")]) }),
        ]
        if !latest.isEmpty {
            model["latest_versions"] = .array(
                Self.stages.compactMap { stage in latest[stage].map { versionJSON($0.0, $0.1, modelName: object.name ?? "", aliases: [:]) } })
        }
        if let user = document.userID { model["user_id"] = .string(user) }
        return .object(model)
    }

    func versionObjects(modelID: String) async throws -> [(RegistryObject, ModelVersionDocument)] {
        try await store.registryObjects(.modelVersion, parents: [modelID]).map {
            ($0, try DocumentCoding.decode(ModelVersionDocument.self, $0))
        }
    }

    // MARK: - Versions

    public func createModelVersion(
        name: String, source: String, runID: String?, runLink: String?, description: String?, modelID: String?,
        tags: [(key: String, value: String)], actor: String?, origin: TaskOrigin?
    ) async throws -> JSONValue {
        guard !source.isEmpty else { throw MLflowError.missing("source") }
        let model = try await modelObject(name)
        let origin = try await resolve(origin)
        var runID = runID
        var modelID = modelID
        // A version of an MLflow 3 logged model (`models:/m-...`) belongs to the run that logged it.
        if modelID == nil, source.hasPrefix("models:/m-") {
            modelID = String(source.dropFirst("models:/".count).split(separator: "/").first ?? "")
        }
        if let id = modelID, !id.isEmpty, runID?.isEmpty ?? true {
            runID = try DocumentCoding.decode(LoggedModelDocument.self, try await loggedModelObject(id)).sourceRunID
        }
        var pipelineRunID = origin?.runID
        var originDocument = origin.map(OriginDocument.init)
        if let runID, !runID.isEmpty {
            let run = try await runObject(runID)
            // A version registered outside Baton from a run a Baton task made keeps that lineage.
            if pipelineRunID == nil, let runOrigin = try DocumentCoding.decode(RunDocument.self, run).origin {
                pipelineRunID = runOrigin.runID
                originDocument = runOrigin
            }
        }
        if let modelID, !modelID.isEmpty { _ = try await loggedModelObject(modelID) }
        var number = 0
        // Taking the number is its own committed step, so a number is never handed out twice,
        // even when this request fails later.
        try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            var document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            number = document.nextVersion
            document.nextVersion += 1
            object.document = DocumentCoding.encode(document)
            return true
        }
        var document = ModelVersionDocument(
            version: number, description: description ?? "", source: source, runID: runID, runLink: runLink, modelID: modelID,
            userID: actor, origin: originDocument)
        for tag in tags { document.tags[tag.key] = tag.value }
        let stamp = nowMillis
        let object = RegistryObject(
            kind: .modelVersion, id: "\(model.id)/\(number)", parent: model.id, pipelineRunID: pipelineRunID, createdAt: stamp,
            updatedAt: stamp, document: DocumentCoding.encode(document))
        guard try await store.insertRegistryObject(object) == .inserted else {
            throw MLflowError.invalidState("version \(number) of \(name) exists already")
        }
        try await store.recordModelEvent(
            ModelEventRecord(modelID: model.id, version: String(number), action: "version_created", detail: source, actor: actor ?? "unknown", at: now()))
        return versionJSON(object, document, modelName: name, aliases: try DocumentCoding.decode(RegisteredModelDocument.self, model).aliases)
    }

    func versionObject(_ name: String, _ version: String) async throws -> (model: RegistryObject, version: RegistryObject) {
        let model = try await modelObject(name)
        guard Int(version) != nil, let object = try await store.registryObject(.modelVersion, id: "\(model.id)/\(version)") else {
            throw Self.versionMissing(name, version)
        }
        return (model, object)
    }

    public func modelVersion(name: String, version: String) async throws -> JSONValue {
        let (model, object) = try await versionObject(name, version)
        let aliases = try DocumentCoding.decode(RegisteredModelDocument.self, model).aliases
        return versionJSON(object, try DocumentCoding.decode(ModelVersionDocument.self, object), modelName: name, aliases: aliases)
    }

    /// Applies `change` to a version's document and answers the updated version.
    func modifyVersion(name: String, version: String, _ change: @escaping (inout ModelVersionDocument) throws -> Void) async throws
        -> JSONValue
    {
        let (model, found) = try await versionObject(name, version)
        let object = try await modify(.modelVersion, id: found.id, missing: Self.versionMissing(name, version)) { object in
            var document = try DocumentCoding.decode(ModelVersionDocument.self, object)
            try change(&document)
            object.document = DocumentCoding.encode(document)
            return true
        }
        // Changing a version leaves its model's aliases as they were read.
        let aliases = try DocumentCoding.decode(RegisteredModelDocument.self, model).aliases
        return versionJSON(object, try DocumentCoding.decode(ModelVersionDocument.self, object), modelName: name, aliases: aliases)
    }

    public func updateModelVersion(name: String, version: String, description: String?) async throws -> JSONValue {
        try await modifyVersion(name: name, version: version) { $0.description = description ?? "" }
    }

    public func setModelVersionTag(name: String, version: String, key: String, value: String?) async throws {
        try Limits.checkName(key, field: "key")
        _ = try await modifyVersion(name: name, version: version) { document in
            if let value { document.tags[key] = value } else { document.tags[key] = nil }
        }
    }

    public func deleteModelVersion(name: String, version: String, actor: String) async throws {
        let (model, object) = try await versionObject(name, version)
        // Aliases go first: a crash in between leaves a version without aliases, never an alias
        // pointing at nothing.
        try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            var document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            let before = document.aliases.count
            document.aliases = document.aliases.filter { $0.value != version }
            guard document.aliases.count != before else { return false }
            object.document = DocumentCoding.encode(document)
            return true
        }
        _ = try await store.deleteRegistryObject(.modelVersion, id: object.id)
        try await store.recordModelEvent(
            ModelEventRecord(modelID: model.id, version: version, action: "version_deleted", actor: actor, at: now()))
    }

    public func searchModelVersions(filter: String?, orderBy: [String], maxResults: Int, pageToken: String?) async throws
        -> (versions: [JSONValue], next: String?)
    {
        let parsed = try SearchFilter.parse(filter)
        let orders = try SearchOrder.parse(orderBy)
        let models = try await store.registryObjects(.registeredModel, parents: nil)
        // A filter on one name (the usual `name = 'churn'`) reads only that model's versions.
        let named = parsed.clauses.first { $0.key.entity == .attribute && $0.key.key == "name" && $0.comparator == .equal }
        var chosen = models
        if case .string(let name)? = named?.value { chosen = models.filter { $0.name == name } }
        var rows: [VersionRow] = []
        let byID = Dictionary(uniqueKeysWithValues: models.map { ($0.id, $0) })
        for object in try await store.registryObjects(.modelVersion, parents: chosen.map(\.id)) {
            guard let model = object.parent.flatMap({ byID[$0] }) else { continue }
            let row = VersionRow(
                object: object, document: try DocumentCoding.decode(ModelVersionDocument.self, object), modelName: model.name ?? "",
                aliases: try DocumentCoding.decode(RegisteredModelDocument.self, model).aliases)
            if parsed.matches({ row.value($0) }) { rows.append(row) }
        }
        let sorted = SearchOrder.sort(rows, by: orders, lookup: { $0.value($1) }) { a, b in
            a.modelName != b.modelName ? a.modelName < b.modelName : a.document.version > b.document.version
        }
        let page = try PageToken.page(sorted, token: pageToken, maxResults: maxResults)
        return (page.items.map { versionJSON($0.object, $0.document, modelName: $0.modelName, aliases: $0.aliases) }, page.next)
    }

    struct VersionRow {
        var object: RegistryObject
        var document: ModelVersionDocument
        var modelName: String
        var aliases: [String: String]

        func value(_ key: SearchKey) -> SearchValue? {
            switch key.entity {
            case .tag: return document.tags[key.key].map(SearchValue.text)
            case .attribute:
                switch key.key {
                case "name": return .text(modelName)
                case "version", "version_number": return .number(Double(document.version))
                case "run_id": return document.runID.map(SearchValue.text)
                case "source", "source_path": return .text(document.source)
                case "current_stage": return .text(document.currentStage)
                case "model_id": return document.modelID.map(SearchValue.text)
                case "creation_timestamp", "timestamp": return .number(Double(object.createdAt))
                case "last_updated_timestamp": return .number(Double(object.updatedAt))
                default: return nil
                }
            default: return nil
            }
        }
    }

    func versionJSON(_ object: RegistryObject, _ document: ModelVersionDocument, modelName: String, aliases: [String: String])
        -> JSONValue
    {
        let own = aliases.filter { $0.value == String(document.version) }.keys.sorted()
        var version: [String: JSONValue] = [
            "name": .string(modelName), "version": .string(String(document.version)),
            "creation_timestamp": .number(Double(object.createdAt)), "last_updated_timestamp": .number(Double(object.updatedAt)),
            "current_stage": .string(document.currentStage), "description": .string(document.description),
            "source": .string(document.source), "status": .string(document.status), "tags": Self.tagList(document.tags),
            "aliases": .array(own.map(JSONValue.string)),
        ]
        if let run = document.runID { version["run_id"] = .string(run) }
        if let link = document.runLink { version["run_link"] = .string(link) }
        if let model = document.modelID { version["model_id"] = .string(model) }
        if let user = document.userID { version["user_id"] = .string(user) }
        return .object(version)
    }

    /// Where a version's files are: the logged model's or run's artifact folder its source names.
    public func downloadURI(name: String, version: String) async throws -> String {
        let (_, object) = try await versionObject(name, version)
        let document = try DocumentCoding.decode(ModelVersionDocument.self, object)
        return try await resolveSource(document.source, modelID: document.modelID)
    }

    func resolveSource(_ source: String, modelID: String?) async throws -> String {
        if source.hasPrefix("models:/m-") || (source.hasPrefix("models:/") && modelID != nil) {
            let id = modelID ?? String(source.dropFirst("models:/".count).split(separator: "/").first ?? "")
            let model = try DocumentCoding.decode(LoggedModelDocument.self, try await loggedModelObject(id))
            return model.artifactURI
        }
        if source.hasPrefix("runs:/") {
            let rest = source.dropFirst("runs:/".count)
            let parts = rest.split(separator: "/", maxSplits: 1)
            guard let runID = parts.first else { throw MLflowError.invalidParameter("Invalid source '\(source)'.") }
            let run = try DocumentCoding.decode(RunDocument.self, try await runObject(String(runID)))
            return parts.count > 1 ? "\(run.artifactURI)/\(parts[1])" : run.artifactURI
        }
        return source
    }

    public func transitionStage(name: String, version: String, stage: String, archiveExisting: Bool, actor: String) async throws
        -> JSONValue
    {
        guard let canonical = Self.stages.first(where: { $0.lowercased() == stage.lowercased() }) else {
            throw MLflowError.invalidParameter("Invalid Model Version stage: \(stage). Value must be one of \(Self.stages.joined(separator: ", ")).")
        }
        let (model, _) = try await versionObject(name, version)
        let result = try await modifyVersion(name: name, version: version) { $0.currentStage = canonical }
        if archiveExisting, canonical == "Staging" || canonical == "Production" {
            for (other, document) in try await versionObjects(modelID: model.id)
            where String(document.version) != version && document.currentStage == canonical {
                try await modify(.modelVersion, id: other.id, missing: Self.versionMissing(name, String(document.version))) { object in
                    var document = try DocumentCoding.decode(ModelVersionDocument.self, object)
                    document.currentStage = "Archived"
                    object.document = DocumentCoding.encode(document)
                    return true
                }
            }
        }
        try await store.recordModelEvent(
            ModelEventRecord(modelID: model.id, version: version, action: "stage_changed", detail: canonical, actor: actor, at: now()))
        return result
    }

    public func latestVersions(name: String, stages: [String]) async throws -> [JSONValue] {
        let model = try await modelObject(name)
        let aliases = try DocumentCoding.decode(RegisteredModelDocument.self, model).aliases
        var latest: [String: (RegistryObject, ModelVersionDocument)] = [:]
        for (object, document) in try await versionObjects(modelID: model.id) {
            if let current = latest[document.currentStage], current.1.version > document.version { continue }
            latest[document.currentStage] = (object, document)
        }
        let wanted = stages.isEmpty ? Self.stages : stages.map { stage in Self.stages.first { $0.lowercased() == stage.lowercased() } ?? stage }
        return wanted.compactMap { stage in latest[stage].map { versionJSON($0.0, $0.1, modelName: name, aliases: aliases) } }
    }

    // MARK: - Aliases and approvals

    public func setAlias(name: String, alias: String, version: String, actor: String, action: String = "alias_set", note: String? = nil)
        async throws
    {
        try Limits.checkName(alias, field: "alias")
        if alias.lowercased() == "latest" || (alias.first == "v" && Int(alias.dropFirst()) != nil) {
            throw MLflowError.invalidParameter("'\(alias)' is reserved and cannot be used as an alias.")
        }
        let (model, _) = try await versionObject(name, version)
        try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            var document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            guard document.aliases[alias] != version else { return false }
            document.aliases[alias] = version
            object.document = DocumentCoding.encode(document)
            return true
        }
        try await store.recordModelEvent(
            ModelEventRecord(modelID: model.id, version: version, action: action, alias: alias, detail: note, actor: actor, at: now()))
    }

    public func deleteAlias(name: String, alias: String, actor: String, action: String = "alias_deleted", note: String? = nil)
        async throws
    {
        let model = try await modelObject(name)
        var removed: String?
        try await modify(.registeredModel, id: model.id, missing: Self.modelMissing(name)) { object in
            var document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
            removed = document.aliases.removeValue(forKey: alias)
            guard removed != nil else { return false }
            object.document = DocumentCoding.encode(document)
            return true
        }
        guard let removed else {
            throw MLflowError.invalidParameter("Registered model alias \(alias) not found.")
        }
        try await store.recordModelEvent(
            ModelEventRecord(modelID: model.id, version: removed, action: action, alias: alias, detail: note, actor: actor, at: now()))
    }

    public func versionByAlias(name: String, alias: String) async throws -> JSONValue {
        let model = try await modelObject(name)
        let document = try DocumentCoding.decode(RegisteredModelDocument.self, model)
        guard let version = document.aliases[alias],
            let object = try await store.registryObject(.modelVersion, id: "\(model.id)/\(version)")
        else {
            throw MLflowError.invalidParameter("Registered model alias \(alias) not found.")
        }
        return versionJSON(object, try DocumentCoding.decode(ModelVersionDocument.self, object), modelName: name, aliases: document.aliases)
    }
}
