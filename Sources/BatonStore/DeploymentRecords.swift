import Foundation

/// A model deployment as the store keeps it. The spec and the desired state are JSON written and
/// read by BatonDeploy: the store only guards the desired state's revision.
public struct DeploymentRecord: Sendable, Hashable {
    public var name: String
    public var specJSON: String
    /// `file:PATH` for a deployment declared in the pipelines folder, `api` for one put through the API.
    public var source: String
    /// What should run (stable and canary versions, traffic, rollout); `{}` until the first deploy.
    public var stateJSON: String
    /// Increases with every state change; writers compare and set it.
    public var revision: Int64
    public var createdAt: Date
    public var updatedAt: Date

    public init(
        name: String, specJSON: String, source: String, stateJSON: String = "{}", revision: Int64 = 0, createdAt: Date,
        updatedAt: Date
    ) {
        self.name = name
        self.specJSON = specJSON
        self.source = source
        self.stateJSON = stateJSON
        self.revision = revision
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One entry of a deployment's audit trail.
public struct DeploymentEventRecord: Sendable, Hashable {
    public var id: Int64
    public var deployment: String
    public var at: Date
    /// A user or token team, `baton` for automatic decisions, or `pipeline:RUN/TASK`.
    public var actor: String
    public var action: String
    public var version: String?
    public var reason: String?
    /// JSON with the decision's figures (an analysis check's values and threshold, a replica's port).
    public var detailJSON: String?

    public init(
        id: Int64 = 0, deployment: String, at: Date, actor: String, action: String, version: String? = nil,
        reason: String? = nil, detailJSON: String? = nil
    ) {
        self.id = id
        self.deployment = deployment
        self.at = at
        self.actor = actor
        self.action = action
        self.version = version
        self.reason = reason
        self.detailJSON = detailJSON
    }
}

/// Deployments and their audit trail; part of every store.
public protocol DeploymentStore: Sendable {
    /// Creates the deployment with an empty state, or replaces its spec and source (the state stays).
    func putDeployment(name: String, specJSON: String, source: String, now: Date) async throws -> DeploymentRecord
    func deployment(named name: String) async throws -> DeploymentRecord?
    func deployments() async throws -> [DeploymentRecord]
    /// Writes a new state (and its event, in the same transaction) when the stored revision is
    /// still `expectedRevision`; returns the updated record, or nil when another writer changed it first.
    func updateDeploymentState(
        name: String, stateJSON: String, expectedRevision: Int64, event: DeploymentEventRecord?, now: Date
    ) async throws -> DeploymentRecord?
    @discardableResult
    func recordDeploymentEvent(_ event: DeploymentEventRecord) async throws -> Int64
    /// Newest first; `beforeID` pages below an id.
    func deploymentEvents(deployment: String, limit: Int, beforeID: Int64?) async throws -> [DeploymentEventRecord]
}
