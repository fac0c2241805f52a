import BatonCore
import BatonGateway
import Foundation

/// A model version placed in a deployment.
public struct PlacedVersion: Sendable, Hashable, Codable {
    public var version: String
    /// `models:/NAME/VERSION`.
    public var modelURI: String
    /// The version's artifact folder on this server's disk (`BATON_MODEL_DIR`).
    public var modelDir: String?
    /// The root of the artifacts of the run that made the version, when known (its baseline may be there).
    public var runArtifactDir: String?

    public init(version: String, modelURI: String, modelDir: String?, runArtifactDir: String? = nil) {
        self.version = version
        self.modelURI = modelURI
        self.modelDir = modelDir
        self.runArtifactDir = runArtifactDir
    }
}

public enum RolloutState: String, Sendable, Hashable, Codable {
    case progressing, paused, promoted
    case rolledBack = "rolled_back"
    case aborted
}

/// An A/B test: a fixed split between two versions whose outcomes are compared over
/// `[startedAt, endedAt)`.
public struct ABTestRecord: Sendable, Hashable, Codable {
    public var stable: String
    public var candidate: String
    public var percent: Double
    public var startedAt: Date
    public var endedAt: Date?

    public init(stable: String, candidate: String, percent: Double, startedAt: Date, endedAt: Date? = nil) {
        self.stable = stable
        self.candidate = candidate
        self.percent = percent
        self.startedAt = startedAt
        self.endedAt = endedAt
    }
}

/// What should run: the store's `deployments.state`, the source of truth a restarted Baton
/// reconciles to.
public struct DesiredState: Sendable, Hashable, Codable {
    public var stable: PlacedVersion?
    public var canary: PlacedVersion?
    /// The canary's share of traffic (0-100).
    public var canaryPercent: Double
    public var mode: TrafficMode
    public var rolloutState: RolloutState?
    /// Steps of the rollout under way; empty when a fixed percent is held until someone decides.
    public var steps: [RolloutStep]
    public var step: Int
    public var stepStartedAt: Date?
    /// The latest A/B test: kept after it ends so its summary can still be read.
    public var abTest: ABTestRecord?

    public init(
        stable: PlacedVersion? = nil, canary: PlacedVersion? = nil, canaryPercent: Double = 0, mode: TrafficMode = .split,
        rolloutState: RolloutState? = nil, steps: [RolloutStep] = [], step: Int = 0, stepStartedAt: Date? = nil
    ) {
        self.stable = stable
        self.canary = canary
        self.canaryPercent = canaryPercent
        self.mode = mode
        self.rolloutState = rolloutState
        self.steps = steps
        self.step = step
        self.stepStartedAt = stepStartedAt
    }

    /// A rollout is under way (a canary whose fate is open).
    public var rolloutOpen: Bool { canary != nil && (rolloutState == .progressing || rolloutState == .paused) }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()
    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()

    public func json() -> String { String(decoding: (try? Self.encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self) }

    /// An empty state for `{}` (a deployment never deployed).
    public static func decode(_ text: String) throws -> DesiredState {
        if text == "{}" { return DesiredState() }
        return try decoder.decode(DesiredState.self, from: Data(text.utf8))
    }
}

extension DeploymentSpec {
    func json() -> String { String(decoding: (try? DesiredState.encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self) }

    static func decode(_ text: String) throws -> DeploymentSpec {
        try DesiredState.decoder.decode(DeploymentSpec.self, from: Data(text.utf8))
    }
}

/// A failure of a deployment action, with what to do about it.
public enum DeploymentError: Error, Sendable, CustomStringConvertible {
    case unknownDeployment(String)
    case invalidSpec([ValidationIssue])
    /// The model reference does not resolve in the registry.
    case unresolvedModel(reference: String, reason: String)
    case conflict(String, fix: String)
    case invalidRequest(String, field: String?, fix: String?)

    public var description: String {
        switch self {
        case .unknownDeployment(let name): return "no deployment named '\(name)'"
        case .invalidSpec(let issues): return issues.map(\.description).joined(separator: "\n")
        case .unresolvedModel(let reference, let reason): return "model reference '\(reference)' does not resolve: \(reason)"
        case .conflict(let message, _): return message
        case .invalidRequest(let message, _, _): return message
        }
    }

    public var fix: String? {
        switch self {
        case .unknownDeployment: return "declare it in a deployments file in the pipelines folder, or PUT /api/v1/deployments/NAME"
        case .invalidSpec(let issues): return issues.first?.fix
        case .unresolvedModel: return "register the model and version, or approve one (`baton models approve NAME VERSION`)"
        case .conflict(_, let fix): return fix
        case .invalidRequest(_, _, let fix): return fix
        }
    }

    public var field: String? {
        switch self {
        case .unresolvedModel: return "model"
        case .invalidSpec(let issues): return issues.first?.field
        case .invalidRequest(_, let field, _): return field
        default: return nil
        }
    }
}
