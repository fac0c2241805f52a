import BatonAPI
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/tokens` (admin): create, list, revoke.
enum TokenRoutes {
    struct CreateRequest: Codable {
        var team: String
        var role: String
        var description: String?
    }

    struct TokenJSON: Codable, Sendable, Hashable {
        var id: String
        var team: String
        var role: String
        var description: String?
        var created_at: Date
        var revoked_at: Date?
        var last_used_at: Date?
        /// Only in the response to creation.
        var token: String?

        init(_ record: TokenRecord, token: String? = nil) {
            id = record.id
            team = record.team
            role = record.role.rawValue
            description = record.description
            created_at = record.createdAt
            revoked_at = record.revokedAt
            last_used_at = record.lastUsedAt
            self.token = token
        }
    }

    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/tokens")
        group.get { _, _ -> Response in
            APIResponse.json(APIList(items: try await context.store.tokens().map { TokenJSON($0) }))
        }
        group.post { request, _ -> Response in
            var request = request
            let body = try await request.decodeJSON(CreateRequest.self, limit: 64 * 1024, fields: ["team", "role", "description"])
            guard let role = TokenRole(rawValue: body.role) else {
                throw APIError.badRequest(
                    "'\(body.role)' is not a role; use one of \(TokenRole.allCases.map(\.rawValue).joined(separator: ", "))",
                    field: "role")
            }
            let team = body.team.trimmingCharacters(in: .whitespaces)
            guard !team.isEmpty, team.count <= 100 else {
                throw APIError.badRequest("the team must be 1 to 100 characters", field: "team")
            }
            let created = try await context.tokens.create(team: team, role: role, description: body.description)
            return APIResponse.json(TokenJSON(created.record, token: created.token), status: .created)
        }
        group.delete(":token") { _, requestContext -> Response in
            let id = requestContext.parameters.get("token") ?? ""
            guard try await context.store.revokeToken(id: id, at: Date()) else {
                throw APIError.notFound("no active token with id '\(id)'", field: "token")
            }
            return APIResponse.json(["revoked": id])
        }
    }
}
