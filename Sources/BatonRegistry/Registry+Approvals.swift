import BatonCore
import BatonStore
import Foundation

/// A registered model as Baton's own API, CLI and UI show it.
public struct ModelSummary: Sendable, Hashable {
    public var id: String
    public var name: String
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date
    public var tags: [String: String]
    /// alias -> version number.
    public var aliases: [String: String]
    /// Newest first.
    public var versions: [VersionSummary]
}

public struct VersionSummary: Sendable, Hashable {
    public var model: String
    public var version: Int
    public var source: String
    public var runID: String?
    public var loggedModelID: String?
    public var stage: String
    public var status: String
    public var description: String
    public var tags: [String: String]
    public var aliases: [String]
    public var createdAt: Date
    public var userID: String?
    /// The Baton pipeline run (and task) that made the version or its MLflow run.
    public var origin: TaskOrigin?
    /// Where the version's files are (`mlflow-artifacts:/...`), and that folder on this server's disk.
    public var artifactURI: String?
    public var localPath: String?
    /// The dataset versions its pipeline run read (lineage from data to model).
    public var datasetsRead: [RunDatasetRecord] = []
}

extension Registry {
    static func date(_ millis: Int64) -> Date { Date(timeIntervalSince1970: Double(millis) / 1000) }

    public func models() async throws -> [ModelSummary] {
        var result: [ModelSummary] = []
        for object in try await store.registryObjects(.registeredModel, parents: nil).sorted(by: { ($0.name ?? "") < ($1.name ?? "") }) {
            result.append(try await summary(object))
        }
        return result
    }

    public func model(named name: String) async throws -> ModelSummary {
        try await summary(try await modelObject(name))
    }

    func summary(_ object: RegistryObject) async throws -> ModelSummary {
        let document = try DocumentCoding.decode(RegisteredModelDocument.self, object)
        var versions: [VersionSummary] = []
        for (version, versionDocument) in try await versionObjects(modelID: object.id) {
            versions.append(try await versionSummary(version, versionDocument, model: object.name ?? "", aliases: document.aliases))
        }
        return ModelSummary(
            id: object.id, name: object.name ?? "", description: document.description, createdAt: Self.date(object.createdAt),
            updatedAt: Self.date(object.updatedAt), tags: document.tags, aliases: document.aliases,
            versions: versions.sorted { $0.version > $1.version })
    }

    func versionSummary(_ object: RegistryObject, _ document: ModelVersionDocument, model: String, aliases: [String: String])
        async throws -> VersionSummary
    {
        let uri = try? await resolveSource(document.source, modelID: document.modelID)
        var datasets: [RunDatasetRecord] = []
        if let run = document.origin?.runID {
            datasets = try await store.runDatasets(runID: run).filter { $0.direction == .read }
        }
        return VersionSummary(
            model: model, version: document.version, source: document.source, runID: document.runID,
            loggedModelID: document.modelID, stage: document.currentStage, status: document.status, description: document.description,
            tags: document.tags, aliases: aliases.filter { $0.value == String(document.version) }.keys.sorted(),
            createdAt: Self.date(object.createdAt), userID: document.userID, origin: document.origin?.origin, artifactURI: uri,
            localPath: uri.flatMap { artifacts.localPath(ofURI: $0) }, datasetsRead: datasets)
    }

    /// The version an alias points at (`champion` by default: the approved one).
    public func version(model name: String, alias: String = Registry.approvalAlias) async throws -> VersionSummary {
        let model = try await modelObject(name)
        let document = try DocumentCoding.decode(RegisteredModelDocument.self, model)
        guard let number = document.aliases[alias],
            let object = try await store.registryObject(.modelVersion, id: "\(model.id)/\(number)")
        else {
            throw MLflowError.invalidParameter(
                "model '\(name)' has no version with alias '\(alias)'; approve one with `baton models approve \(name) VERSION`")
        }
        return try await versionSummary(
            object, try DocumentCoding.decode(ModelVersionDocument.self, object), model: name, aliases: document.aliases)
    }

    public func version(model name: String, number: Int) async throws -> VersionSummary {
        let (model, object) = try await versionObject(name, String(number))
        let aliases = try DocumentCoding.decode(RegisteredModelDocument.self, model).aliases
        return try await versionSummary(object, try DocumentCoding.decode(ModelVersionDocument.self, object), model: name, aliases: aliases)
    }

    /// Approves a version for deployment: moves the alias to it and records who did it, when and why.
    public func approve(model name: String, version: Int, alias: String = Registry.approvalAlias, actor: String, note: String?)
        async throws -> VersionSummary
    {
        try await setAlias(name: name, alias: alias, version: String(version), actor: actor, action: "approved", note: note)
        return try await self.version(model: name, number: version)
    }

    /// Withdraws an approval: the alias no longer points at any version.
    public func revokeApproval(model name: String, alias: String = Registry.approvalAlias, actor: String, note: String?) async throws {
        try await deleteAlias(name: name, alias: alias, actor: actor, action: "approval_revoked", note: note)
    }

    /// The audit trail of a model's decisions, newest first.
    public func history(model name: String, limit: Int = 200) async throws -> [ModelEventRecord] {
        try await store.modelEvents(modelID: try await modelObject(name).id, limit: limit)
    }

    /// Registry objects a pipeline run made: MLflow runs and model versions, for lineage.
    public func lineage(pipelineRunID: Int64) async throws -> [RegistryObject] {
        try await store.registryObjects(pipelineRunID: pipelineRunID)
    }
}

// The shapes of Baton's own model API (`/api/v1/models`), which the CLI prints from too.
extension ModelSummary {
    public var json: JSONValue {
        .object([
            "name": .string(name), "description": .string(description), "created_at": .string(Self.iso(createdAt)),
            "updated_at": .string(Self.iso(updatedAt)), "tags": .object(tags.mapValues(JSONValue.string)),
            "aliases": .object(aliases.mapValues(JSONValue.string)),
            "approved_version": aliases[Registry.approvalAlias].map(JSONValue.string) ?? .null,
            "versions": .array(versions.map(\.json)),
        ])
    }

    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }
}

extension VersionSummary {
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "model": .string(model), "version": .number(Double(version)), "source": .string(source), "stage": .string(stage),
            "status": .string(status), "description": .string(description), "tags": .object(tags.mapValues(JSONValue.string)),
            "aliases": .array(aliases.map(JSONValue.string)), "approved": .bool(aliases.contains(Registry.approvalAlias)),
            "created_at": .string(ModelSummary.iso(createdAt)),
            "uri": .string("models:/\(model)/\(version)"),
        ]
        if let runID { object["run_id"] = .string(runID) }
        if let loggedModelID { object["logged_model_id"] = .string(loggedModelID) }
        if let userID { object["user_id"] = .string(userID) }
        if let artifactURI { object["artifact_uri"] = .string(artifactURI) }
        if let localPath { object["artifact_path"] = .string(localPath) }
        if !datasetsRead.isEmpty {
            object["datasets_read"] = .array(
                datasetsRead.map { read in
                    var entry: [String: JSONValue] = ["dataset": .string(read.dataset), "task": .string(read.task)]
                    if let update = read.updateID { entry["update_id"] = .number(Double(update)) }
                    return .object(entry)
                })
        }
        if let origin {
            object["pipeline_run_id"] = .number(Double(origin.runID))
            object["task"] = .string(origin.task)
            if let pipeline = origin.pipeline { object["pipeline"] = .string(pipeline) }
        }
        return .object(object)
    }
}

extension ModelEventRecord {
    public var json: JSONValue {
        var object: [String: JSONValue] = [
            "action": .string(action), "actor": .string(actor), "at": .string(ModelSummary.iso(at)),
        ]
        if let version { object["version"] = .string(version) }
        if let alias { object["alias"] = .string(alias) }
        if let detail { object["note"] = .string(detail) }
        return .object(object)
    }
}
