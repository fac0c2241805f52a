import BatonStore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Synchronization

/// Creates and checks API tokens. A token reads `baton_<id>_<secret>`; the store keeps only
/// the SHA-256 of the secret, so a leaked database does not leak usable tokens.
public final class TokenService: Sendable {
    public let store: any Store
    /// Last-used times are written at most once a minute per token, keeping reads read-only.
    private let lastMarked = Mutex<[String: Date]>([:])

    public init(store: any Store) {
        self.store = store
    }

    public struct Created: Sendable {
        public var record: TokenRecord
        /// The full token; shown once.
        public var token: String
    }

    public func create(team: String, role: TokenRole, description: String?, now: Date = Date()) async throws -> Created {
        let id = Self.randomHex(bytes: 6)
        let secret = Self.randomHex(bytes: 32)
        let record = TokenRecord(
            id: id, team: team, role: role, description: description, secretHash: Self.hash(secret), createdAt: now)
        try await store.createToken(record)
        return Created(record: record, token: "baton_\(id)_\(secret)")
    }

    public enum Failure: Error, Sendable {
        case malformed, unknown, revoked
    }

    /// The identity behind a presented token.
    public func verify(_ token: String, now: Date = Date()) async throws -> Identity {
        let parts = token.split(separator: "_", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "baton", !parts[1].isEmpty, !parts[2].isEmpty else { throw Failure.malformed }
        guard let record = try await store.token(id: String(parts[1])) else { throw Failure.unknown }
        guard Self.constantTimeEqual(record.secretHash, Self.hash(String(parts[2]))) else { throw Failure.unknown }
        guard record.revokedAt == nil else { throw Failure.revoked }
        let shouldMark = lastMarked.withLock { marks in
            if let last = marks[record.id], now.timeIntervalSince(last) < 60 { return false }
            marks[record.id] = now
            return true
        }
        if shouldMark { try? await store.markTokenUsed(id: record.id, at: now) }
        return Identity(tokenID: record.id, team: record.team, role: record.role)
    }

    static func hash(_ secret: String) -> String {
        SHA256.hash(data: Data(secret.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    static func randomHex(bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let left = Array(a.utf8)
        let right = Array(b.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}

/// Authenticates API and UI requests and enforces roles: reading (and asking a deployed model
/// for predictions) needs `viewer`, changing anything `operator`, managing tokens `admin`. With auth off (the local default) every
/// caller acts as admin.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = BatonRequestContext
    let context: ServerContext

    static let cookieName = "baton_token"

    func handle(
        _ request: Request, context requestContext: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var requestContext = requestContext
        let path = request.uri.path
        // Browsers mark requests another site makes them send; without auth (the local default)
        // such a request could otherwise trigger or cancel runs.
        if Self.isCrossSiteChange(method: request.method, headers: request.headers) {
            throw APIError(.forbidden, code: "forbidden", "cross-site requests may not change anything")
        }
        let isPublicPage = path == "/login" || path.hasPrefix("/static/")
        guard context.configuration.requireAuth, !isPublicPage else {
            requestContext.identity = .local
            return try await next(request, requestContext)
        }
        guard let token = Self.presentedToken(request) else {
            if Self.wantsHTML(request) { return Self.redirectToLogin(request) }
            throw APIError(
                .unauthorized, code: "unauthorized",
                "this server requires an API token: send `Authorization: Bearer <token>` (create one with `baton tokens create`)")
        }
        let identity: Identity
        do {
            identity = try await context.tokens.verify(token)
        } catch {
            // A browser holding a stale cookie gets the login page, not a JSON error.
            if Self.wantsHTML(request) { return Self.redirectToLogin(request) }
            if case TokenService.Failure.revoked = error {
                throw APIError(.unauthorized, code: "unauthorized", "this API token has been revoked")
            }
            throw APIError(.unauthorized, code: "unauthorized", "the API token is not valid")
        }
        let needed = Self.requiredRole(method: request.method, path: path)
        guard identity.role >= needed else {
            throw APIError(
                .forbidden, code: "forbidden",
                "role \(identity.role.rawValue) cannot \(request.method.rawValue) \(path); it needs \(needed.rawValue)")
        }
        requestContext.identity = identity
        return try await next(request, requestContext)
    }

    /// A request that could change something, sent by a browser on another site's behalf.
    static func isCrossSiteChange(method: HTTPRequest.Method, headers: HTTPFields) -> Bool {
        method != .get && method != .head && headers[HTTPField.Name("Sec-Fetch-Site")!] == "cross-site"
    }

    static func requiredRole(method: HTTPRequest.Method, path: String) -> TokenRole {
        if path.hasPrefix("/api/v1/tokens") { return .admin }
        // MLflow searches are reads sent as POST.
        if MLflowRoutes.isMLflowPath(path), path.hasSuffix("/search") || path.hasSuffix("/get-latest-versions") { return .viewer }
        // Reads that carry their question in a body: lookups and training sets.
        if path == "/api/v1/features/online" || path == "/api/v1/features/historical" { return .viewer }
        // A prediction changes nothing in Baton, and its outcome only adds a data point: the
        // applications that call a model get a viewer token, which cannot trigger runs or
        // change deployments.
        if ServeRoutes.isServePath(path) { return .viewer }
        switch method {
        case .get, .head, .options: return .viewer
        default: return .operator
        }
    }

    static func presentedToken(_ request: Request) -> String? {
        if let header = request.headers[.authorization], header.lowercased().hasPrefix("bearer ") {
            return String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces)
        }
        if let cookies = request.headers[.cookie] {
            for part in cookies.split(separator: ";") {
                let pair = part.trimmingCharacters(in: .whitespaces)
                if pair.hasPrefix(cookieName + "=") { return String(pair.dropFirst(cookieName.count + 1)) }
            }
        }
        return nil
    }

    static func wantsHTML(_ request: Request) -> Bool {
        !request.uri.path.hasPrefix("/api/") && request.uri.path != "/metrics"
            && (request.headers[.accept] ?? "").contains("text/html")
    }

    static func redirectToLogin(_ request: Request) -> Response {
        var headers = HTTPFields()
        headers[.location] = "/login?next=\(request.uri.path.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? "/")"
        return Response(status: .seeOther, headers: headers)
    }
}
