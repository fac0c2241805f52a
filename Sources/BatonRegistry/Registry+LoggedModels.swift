import BatonCore
import BatonStore
import Foundation

// MLflow 3 logged models: a model's files and metadata, made by `log_model`, linked to the run.
extension Registry {
    public func createLoggedModel(
        experimentID: String, name: String?, sourceRunID: String?, modelType: String?, tags: [(key: String, value: String)],
        params: [(key: String, value: String)], origin: TaskOrigin?
    ) async throws -> JSONValue {
        let origin = try await resolve(origin)
        let experiment = try await experimentObject(experimentID)
        let experimentDocument = try DocumentCoding.decode(ExperimentDocument.self, experiment)
        if let sourceRunID { _ = try await runObject(sourceRunID) }
        let id = "m-" + Self.newHexID()
        var document = LoggedModelDocument(
            experimentID: experimentID, name: name ?? "model", artifactURI: "\(experimentDocument.artifactLocation)/models/\(id)/artifacts",
            status: "LOGGED_MODEL_PENDING", sourceRunID: sourceRunID, modelType: modelType)
        for tag in tags { document.tags[tag.key] = tag.value }
        for param in params { document.params[param.key] = param.value }
        let stamp = nowMillis
        let object = RegistryObject(
            kind: .loggedModel, id: id, parent: experimentID, pipelineRunID: origin?.runID, createdAt: stamp, updatedAt: stamp,
            document: DocumentCoding.encode(document))
        guard try await store.insertRegistryObject(object) == .inserted else { throw MLflowError.invalidState("model id \(id) is taken") }
        return try await loggedModelJSON(object)
    }

    func loggedModelObject(_ id: String) async throws -> RegistryObject {
        guard let object = try await store.registryObject(.loggedModel, id: id), object.lifecycle == "active" else {
            throw MLflowError.notFound("Logged model with ID '\(id)' not found.")
        }
        return object
    }

    public func loggedModel(id: String) async throws -> JSONValue {
        try await loggedModelJSON(try await loggedModelObject(id))
    }

    public func finalizeLoggedModel(id: String, status: String) async throws -> JSONValue {
        guard ["LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED", "LOGGED_MODEL_PENDING"].contains(status) else {
            throw MLflowError.invalidParameter("Invalid logged model status '\(status)'.")
        }
        _ = try await loggedModelObject(id)
        let object = try await modify(.loggedModel, id: id, missing: .notFound("Logged model with ID '\(id)' not found.")) {
            object in
            var document = try DocumentCoding.decode(LoggedModelDocument.self, object)
            document.status = status
            object.document = DocumentCoding.encode(document)
            return true
        }
        return try await loggedModelJSON(object)
    }

    public func setLoggedModelTags(id: String, tags: [(key: String, value: String)], remove: String? = nil) async throws {
        _ = try await loggedModelObject(id)
        try await modify(.loggedModel, id: id, missing: .notFound("Logged model with ID '\(id)' not found.")) { object in
            var document = try DocumentCoding.decode(LoggedModelDocument.self, object)
            for tag in tags { document.tags[tag.key] = tag.value }
            if let remove {
                guard document.tags.removeValue(forKey: remove) != nil else {
                    throw MLflowError.notFound("No tag with key '\(remove)' on logged model '\(id)'.")
                }
            }
            object.document = DocumentCoding.encode(document)
            return true
        }
    }

    public func logLoggedModelParams(id: String, params: [(key: String, value: String)]) async throws {
        _ = try await loggedModelObject(id)
        try await modify(.loggedModel, id: id, missing: .notFound("Logged model with ID '\(id)' not found.")) { object in
            var document = try DocumentCoding.decode(LoggedModelDocument.self, object)
            for param in params { document.params[param.key] = param.value }
            object.document = DocumentCoding.encode(document)
            return true
        }
    }

    public func deleteLoggedModel(id: String) async throws {
        _ = try await loggedModelObject(id)
        try await modify(.loggedModel, id: id, missing: .notFound("Logged model with ID '\(id)' not found.")) { object in
            object.lifecycle = "deleted"
            return true
        }
    }

    public func searchLoggedModels(
        experimentIDs: [String], filter: String?, orderBy: [String], maxResults: Int, pageToken: String?
    ) async throws -> (models: [JSONValue], next: String?) {
        let parsed = try SearchFilter.parse(filter)
        let orders = try SearchOrder.parse(orderBy)
        let objects = try await store.registryObjects(.loggedModel, parents: experimentIDs.isEmpty ? nil : experimentIDs)
            .filter { $0.lifecycle == "active" }
        var rows: [(RegistryObject, LoggedModelDocument)] = []
        for object in objects {
            let document = try DocumentCoding.decode(LoggedModelDocument.self, object)
            if parsed.matches({ Self.loggedModelValue(object, document, $0) }) { rows.append((object, document)) }
        }
        let sorted = SearchOrder.sort(rows, by: orders, lookup: { Self.loggedModelValue($0.0, $0.1, $1) }) { a, b in
            a.0.createdAt != b.0.createdAt ? a.0.createdAt > b.0.createdAt : a.0.id < b.0.id
        }
        let page = try PageToken.page(sorted, token: pageToken, maxResults: maxResults)
        var models: [JSONValue] = []
        for row in page.items { models.append(try await loggedModelJSON(row.0)) }
        return (models, page.next)
    }

    static func loggedModelValue(_ object: RegistryObject, _ document: LoggedModelDocument, _ key: SearchKey) -> SearchValue? {
        switch key.entity {
        case .tag: return document.tags[key.key].map(SearchValue.text)
        case .param: return document.params[key.key].map(SearchValue.text)
        case .metric: return nil
        case .attribute:
            switch key.key {
            case "name": return .text(document.name)
            case "model_id": return .text(object.id)
            case "status": return .text(document.status)
            case "source_run_id": return document.sourceRunID.map(SearchValue.text)
            case "model_type": return document.modelType.map(SearchValue.text)
            case "creation_timestamp", "creation_time", "creation_timestamp_ms": return .number(Double(object.createdAt))
            case "last_updated_timestamp", "last_updated_timestamp_ms": return .number(Double(object.updatedAt))
            default: return nil
            }
        }
    }

    func loggedModelJSON(_ object: RegistryObject) async throws -> JSONValue {
        let document = try DocumentCoding.decode(LoggedModelDocument.self, object)
        var info: [String: JSONValue] = [
            "model_id": .string(object.id), "experiment_id": .string(document.experimentID), "name": .string(document.name),
            "artifact_uri": .string(document.artifactURI), "status": .string(document.status),
            "creation_timestamp_ms": .number(Double(object.createdAt)),
            "last_updated_timestamp_ms": .number(Double(object.updatedAt)), "tags": Self.tagList(document.tags),
        ]
        if let run = document.sourceRunID { info["source_run_id"] = .string(run) }
        if let type = document.modelType { info["model_type"] = .string(type) }
        if let message = document.statusMessage { info["status_message"] = .string(message) }
        if let creator = document.creatorID { info["creator_id"] = .string(creator) }
        var data: [String: JSONValue] = [
            "params": .array(document.params.keys.sorted().map { .object(["key": .string($0), "value": .string(document.params[$0] ?? "")]) })
        ]
        // A model's metrics are its source run's.
        if let run = document.sourceRunID, let runData = try await store.runData(runIDs: [run])[run], !runData.latestMetrics.isEmpty {
            data["metrics"] = .array(
                runData.latestMetrics.keys.sorted().compactMap { key in
                    runData.latestMetrics[key].map { metric -> JSONValue in
                        guard case .object(var fields) = Self.metricJSON(metric) else { return .null }
                        fields["run_id"] = .string(run)
                        fields["model_id"] = .string(object.id)
                        return .object(fields)
                    }
                })
        }
        return .object(["info": .object(info), "data": .object(data)])
    }
}
