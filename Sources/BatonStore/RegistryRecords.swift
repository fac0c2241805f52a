import Foundation

/// The kinds of object the experiment tracker and model registry keep in `registry_objects`.
public enum RegistryKind: String, Sendable, Hashable, CaseIterable {
    case experiment
    case run
    case loggedModel = "logged_model"
    case registeredModel = "registered_model"
    case modelVersion = "model_version"
}

/// One tracked or registered object: a few columns the store indexes and enforces (id, parent,
/// unique name, lifecycle, the Baton run that made it) plus the rest as a JSON document the
/// registry module owns.
///
/// Updates are compare-and-set on `revision`, so two servers changing the same object never
/// lose a write: the loser re-reads and tries again.
public struct RegistryObject: Sendable, Hashable {
    public var kind: RegistryKind
    public var id: String
    /// The experiment of a run or logged model; the registered model's id for a model version.
    public var parent: String?
    /// Unique among objects of the kind when set (experiment and registered model names).
    public var name: String?
    /// `active` or `deleted`.
    public var lifecycle: String
    /// The Baton pipeline run that created the object, for lineage.
    public var pipelineRunID: Int64?
    /// Milliseconds since the epoch, as MLflow counts.
    public var createdAt: Int64
    public var updatedAt: Int64
    public var document: String
    public var revision: Int64

    public init(
        kind: RegistryKind, id: String, parent: String? = nil, name: String? = nil, lifecycle: String = "active",
        pipelineRunID: Int64? = nil, createdAt: Int64, updatedAt: Int64, document: String, revision: Int64 = 1
    ) {
        self.kind = kind
        self.id = id
        self.parent = parent
        self.name = name
        self.lifecycle = lifecycle
        self.pipelineRunID = pipelineRunID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.document = document
        self.revision = revision
    }
}

public enum RegistryInsertOutcome: Sendable, Hashable {
    case inserted
    case idTaken
    case nameTaken
}

public enum RegistryUpdateOutcome: Sendable, Hashable {
    case updated(revision: Int64)
    /// Someone changed the object since it was read: read again and retry.
    case stale
    case missing
    case nameTaken
}

/// One observation of a run's metric. A nil value stands for NaN, which SQLite cannot store.
public struct TrackedMetric: Sendable, Hashable {
    public var key: String
    public var value: Double?
    /// Milliseconds since the epoch.
    public var timestamp: Int64
    public var step: Int64

    public init(key: String, value: Double?, timestamp: Int64, step: Int64) {
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.step = step
    }
}

/// What one logging request adds to a run; applied all or nothing.
public struct RunDataBatch: Sendable, Hashable {
    public var runID: String
    public var metrics: [TrackedMetric]
    public var params: [(key: String, value: String)]
    public var tags: [(key: String, value: String)]

    public init(
        runID: String, metrics: [TrackedMetric] = [], params: [(key: String, value: String)] = [],
        tags: [(key: String, value: String)] = []
    ) {
        self.runID = runID
        self.metrics = metrics
        self.params = params
        self.tags = tags
    }

    public static func == (lhs: RunDataBatch, rhs: RunDataBatch) -> Bool {
        lhs.runID == rhs.runID && lhs.metrics == rhs.metrics
            && lhs.params.elementsEqual(rhs.params, by: { $0 == $1 }) && lhs.tags.elementsEqual(rhs.tags, by: { $0 == $1 })
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(runID)
        hasher.combine(metrics)
    }
}

/// Why a logging request was refused; nothing of it was stored.
public enum RunDataRefusal: Sendable, Hashable {
    case runMissing
    case runDeleted
    /// Params never change once logged.
    case paramChanged(key: String, stored: String, given: String)
}

/// A run's params, tags and latest metrics (the value at the highest step, then timestamp).
public struct RunData: Sendable, Hashable {
    public var params: [String: String] = [:]
    public var tags: [String: String] = [:]
    public var latestMetrics: [String: TrackedMetric] = [:]

    public init(params: [String: String] = [:], tags: [String: String] = [:], latestMetrics: [String: TrackedMetric] = [:]) {
        self.params = params
        self.tags = tags
        self.latestMetrics = latestMetrics
    }
}

/// A decision about a model version (approval, alias moved, stage changed), kept as an audit trail.
public struct ModelEventRecord: Sendable, Hashable {
    public var id: Int64
    /// The registered model's stable id (names can change).
    public var modelID: String
    public var version: String?
    /// `approved`, `approval_revoked`, `alias_set`, `alias_deleted`, `stage_changed`, `version_created`, ...
    public var action: String
    public var alias: String?
    public var detail: String?
    /// Who decided: a token's team, a user name, or `baton` for automatic actions.
    public var actor: String
    public var at: Date

    public init(
        id: Int64 = 0, modelID: String, version: String?, action: String, alias: String? = nil, detail: String? = nil,
        actor: String, at: Date
    ) {
        self.id = id
        self.modelID = modelID
        self.version = version
        self.action = action
        self.alias = alias
        self.detail = detail
        self.actor = actor
        self.at = at
    }
}

/// Persistence for the experiment tracker and model registry; part of every store.
public protocol RegistryStore: Sendable {
    func insertRegistryObject(_ object: RegistryObject) async throws -> RegistryInsertOutcome
    func registryObject(_ kind: RegistryKind, id: String) async throws -> RegistryObject?
    func registryObject(_ kind: RegistryKind, name: String) async throws -> RegistryObject?
    /// Objects of a kind, all or those under the given parents, oldest first.
    func registryObjects(_ kind: RegistryKind, parents: [String]?) async throws -> [RegistryObject]
    /// Objects of any kind made by a Baton pipeline run.
    func registryObjects(pipelineRunID: Int64) async throws -> [RegistryObject]
    /// Replaces the object if its stored revision is still `object.revision`; the new revision is one higher.
    func updateRegistryObject(_ object: RegistryObject) async throws -> RegistryUpdateOutcome
    /// Deletes the object, and a run's params, tags and metrics with it.
    func deleteRegistryObject(_ kind: RegistryKind, id: String) async throws -> Bool
    /// The next value of a named counter (1, 2, ...), never handed out twice.
    func nextRegistryNumber(_ counter: String) async throws -> Int64

    /// Applies each batch in its own all-or-nothing step, all of them in one transaction (one
    /// commit for many concurrent requests); the answer lists each batch's refusal, if any.
    func logRunData(_ batches: [RunDataBatch]) async throws -> [RunDataRefusal?]
    func runData(runIDs: [String]) async throws -> [String: RunData]
    /// A metric's observations, ordered by step, then timestamp.
    func metricHistory(runID: String, key: String, limit: Int, offset: Int) async throws -> [TrackedMetric]
    func deleteRunTag(runID: String, key: String) async throws -> Bool

    func recordModelEvent(_ event: ModelEventRecord) async throws
    /// Newest first.
    func modelEvents(modelID: String, limit: Int) async throws -> [ModelEventRecord]
}
