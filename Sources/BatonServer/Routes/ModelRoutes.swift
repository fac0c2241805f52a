import BatonAPI
import BatonCore
import BatonRegistry
import Foundation
import Hummingbird

/// `/api/v1/models`: the model registry as Baton's CLI and pipelines use it: models with their
/// versions, the approved version, approving and revoking with an audit trail.
enum ModelRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/models")
        let registry = context.registry

        group.get { _, _ -> Response in
            APIResponse.json(JSONValue.object(["items": .array(try await answer { try await registry.models().map(\.json) })]))
        }
        group.get(":name") { _, request -> Response in
            let name = try request.parameters.require("name")
            return APIResponse.json(
                try await answer {
                    guard case .object(var model) = try await registry.model(named: name).json else { return JSONValue.null }
                    model["history"] = .array(try await registry.history(model: name).map(\.json))
                    return .object(model)
                })
        }
        group.get(":name/versions/:version") { _, request -> Response in
            let name = try request.parameters.require("name")
            let version = try versionNumber(request)
            return APIResponse.json(try await answer { try await registry.version(model: name, number: version).json })
        }
        // The version an alias points at; `champion` (the approved one) by default.
        group.get(":name/approved") { http, request -> Response in
            let name = try request.parameters.require("name")
            let alias = http.query("alias") ?? Registry.approvalAlias
            do {
                return APIResponse.json(try await registry.version(model: name, alias: alias).json)
            } catch let error as MLflowError {
                // No version holds the alias: nothing is approved, which is a 404 here.
                throw APIError(.notFound, code: "not_found", error.message)
            }
        }
        group.post(":name/versions/:version/approve") { http, request -> Response in
            let name = try request.parameters.require("name")
            let version = try versionNumber(request)
            var http = http
            let body = try await http.decodeJSON(ApproveBody.self, limit: 16 * 1024, fields: ["alias", "note", "by"])
            let actor = body.by ?? MLflowRoutes.actor(request)
            return APIResponse.json(
                try await answer {
                    try await registry.approve(
                        model: name, version: version, alias: body.alias ?? Registry.approvalAlias, actor: actor, note: body.note
                    ).json
                })
        }
        group.post(":name/revoke") { http, request -> Response in
            let name = try request.parameters.require("name")
            var http = http
            let body = try await http.decodeJSON(ApproveBody.self, limit: 16 * 1024, fields: ["alias", "note", "by"])
            try await answer {
                try await registry.revokeApproval(
                    model: name, alias: body.alias ?? Registry.approvalAlias, actor: body.by ?? MLflowRoutes.actor(request),
                    note: body.note)
            }
            return APIResponse.json(JSONValue.object(["revoked": .bool(true)]))
        }
    }

    struct ApproveBody: Decodable {
        var alias: String?
        var note: String?
        /// Who approves, when a person acts through a shared token; the token's team otherwise.
        var by: String?
    }

    static func versionNumber(_ request: BatonRequestContext) throws -> Int {
        let text = try request.parameters.require("version")
        guard let number = Int(text), number > 0 else {
            throw APIError.badRequest("'\(text)' is not a version number; versions are 1, 2, 3, ...", field: "version")
        }
        return number
    }

    /// Registry errors in Baton's error shape: unknown names are 404s, bad values 400s.
    @discardableResult
    static func answer<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as MLflowError {
            let status: HTTPResponse.Status = error.status == 404 ? .notFound : .badRequest
            throw APIError(status, code: error.status == 404 ? "not_found" : "invalid_request", error.message)
        }
    }
}
