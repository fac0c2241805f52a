import BatonStore
import Hummingbird

/// Who is calling: the token's team and role, or the local user when auth is off.
public struct Identity: Sendable, Hashable {
    public var tokenID: String?
    public var team: String?
    public var role: TokenRole

    public static let local = Identity(tokenID: nil, team: nil, role: .admin)
}

/// Per-request state: Hummingbird's core context plus the caller's identity.
public struct BatonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var identity: Identity?

    public init(source: Source) {
        coreContext = .init(source: source)
    }

    public var maxUploadSize: Int { 1 << 20 }
}
