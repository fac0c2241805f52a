import BatonAPI
import BatonCore
import BatonDeploy
import BatonGateway
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/deployments`: model deployments: status, specs, canaries and rollout decisions,
/// the audit trail and per-version figures. Changes go to the leading server (the forwarding
/// middleware sends them there), whose manager supervises the replicas.
enum DeploymentRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/deployments")
        guard let manager = context.deployments else {
            group.get { _, _ -> Response in throw unavailable() }
            return
        }

        group.get { _, _ -> Response in
            try await manager.refreshFromStore()
            return APIResponse.json(JSONValue.object(["items": .array(await manager.statuses())]))
        }
        group.get(":name") { _, request -> Response in
            let name = try request.parameters.require("name")
            try await manager.refreshFromStore()
            let status = await manager.status(name)
            guard status != .null else { throw error(.unknownDeployment(name)) }
            return APIResponse.json(status)
        }
        group.put(":name") { http, request -> Response in
            let name = try request.parameters.require("name")
            guard DeploymentParser.isValidName(name) else {
                throw APIError.badRequest(
                    "'\(name)' is not a valid deployment name", field: "name").with(fix: "start with a letter and use letters, digits, '_' and '-'")
            }
            var http = http
            let buffer: ByteBuffer
            do {
                buffer = try await http.collectBody(upTo: 256 * 1024)
            } catch {
                throw APIError(.contentTooLarge, code: "body_too_large", "the request body is over the 262144-byte limit")
            }
            let text = String(buffer: buffer)
            guard (try? JSONValue.parse(Data(text.utf8)))?.objectValue != nil else {
                throw APIError.badRequest("the body must be a JSON object with the keys of a deployment")
                    .with(fix: #"send {"model": "models:/NAME@champion", "command": "...", "replicas": 1, ...}"#)
            }
            let spec: DeploymentSpec
            switch DeploymentParser.parseJSON(text, name: name) {
            case .success(let parsed): spec = parsed
            case .failure(let failure): throw error(failure)
            }
            return APIResponse.json(try await answer { try await manager.put(spec, source: "api", actor: actor(request, nil)) })
        }
        group.post(":name/canary") { http, request -> Response in
            let name = try request.parameters.require("name")
            var http = http
            let body = try await http.decodeJSON(CanaryBody.self, limit: 64 * 1024, fields: ["model", "percent", "steps", "shadow", "ab", "by"])
            var steps: [RolloutStep]?
            if let bodySteps = body.steps {
                steps = []
                for (index, step) in bodySteps.enumerated() {
                    guard step.percent > 0, step.percent <= 100 else {
                        throw APIError.badRequest("step \(index) has percent \(step.percent)", field: "steps.\(index).percent")
                            .with(fix: "use a share above 0 and at most 100")
                    }
                    let seconds: Double
                    switch step.duration {
                    case .number(let value)?: seconds = value
                    case .string(let text)?:
                        guard let parsed = try? DurationText.seconds(text) else {
                            throw APIError.badRequest("'\(text)' is not a duration", field: "steps.\(index).duration")
                                .with(fix: "write a duration such as 30m")
                        }
                        seconds = parsed
                    default:
                        throw APIError.badRequest("step \(index) needs a duration", field: "steps.\(index).duration")
                            .with(fix: #"write {"percent": 10, "duration": "30m"}"#)
                    }
                    steps?.append(RolloutStep(percent: step.percent, durationSeconds: seconds))
                }
            }
            let canary = CanaryRequest(
                model: body.model, percent: body.percent, steps: steps, shadow: body.shadow ?? false, abTest: body.ab ?? false)
            return APIResponse.json(try await answer { try await manager.canary(name, canary, actor: actor(request, body.by)) })
        }
        for action in ["promote", "rollback", "pause", "resume", "abort"] {
            group.post(":name/\(action)") { http, request -> Response in
                let name = try request.parameters.require("name")
                var http = http
                var body = DecisionBody()
                if let length = http.headers[.contentLength], length != "0" {
                    body = try await http.decodeJSON(DecisionBody.self, limit: 16 * 1024, fields: ["reason", "by"])
                }
                let who = actor(request, body.by)
                return APIResponse.json(
                    try await answer {
                        switch action {
                        case "promote": return try await manager.promote(name, actor: who, reason: body.reason)
                        case "rollback": return try await manager.rollback(name, actor: who, reason: body.reason ?? "rolled back by \(who)")
                        case "pause": return try await manager.pause(name, actor: who, reason: body.reason)
                        case "resume": return try await manager.resume(name, actor: who, reason: body.reason)
                        default: return try await manager.abort(name, actor: who, reason: body.reason ?? "aborted by \(who)")
                        }
                    })
            }
        }
        group.get(":name/events") { http, request -> Response in
            let name = try request.parameters.require("name")
            let limit = try http.queryInt("limit", default: 100, range: 1...1000)
            let cursor = try http.queryCursor()
            try await manager.refreshFromStore()
            let events = try await answer { try await manager.events(name, limit: limit, before: cursor) }
            var object: [String: JSONValue] = ["items": .array(events.map(\.json))]
            if events.count == limit, let last = events.last { object["next_cursor"] = .string(String(last.id)) }
            return APIResponse.json(JSONValue.object(object))
        }
        group.get(":name/stats") { _, request -> Response in
            let name = try request.parameters.require("name")
            try await manager.refreshFromStore()
            guard await manager.spec(name) != nil else { throw error(.unknownDeployment(name)) }
            let timeline = context.gateway.timeline(deployment: name).mapValues { points in
                JSONValue.array(
                    points.map { point in
                        .object([
                            "start": .string(point.start.formatted(.iso8601)), "requests": .number(Double(point.requests)),
                            "errors": .number(Double(point.errors)), "p99_ms": .number(point.p99Ms),
                        ])
                    })
            }
            return APIResponse.json(
                JSONValue.object([
                    "deployment": .string(name), "versions": await manager.statsJSON(name), "timeline": .object(timeline),
                ]))
        }
        group.get(":name/drift") { _, request -> Response in
            let name = try request.parameters.require("name")
            try await manager.refreshFromStore()
            return APIResponse.json(try await answer { try await manager.driftJSON(name) })
        }
        group.get(":name/ab") { _, request -> Response in
            let name = try request.parameters.require("name")
            try await manager.refreshFromStore()
            return APIResponse.json(try await answer { try await manager.abSummary(name) })
        }
    }

    struct CanaryBody: Decodable {
        struct Step: Decodable {
            var percent: Double
            var duration: JSONValue?
        }
        var model: String
        var percent: Double?
        var steps: [Step]?
        var shadow: Bool?
        var ab: Bool?
        var by: String?
    }

    struct DecisionBody: Decodable {
        var reason: String?
        var by: String?
    }

    /// Who a decision is recorded under: `by` when a person or pipeline (`pipeline:RUN/TASK`)
    /// acts through a shared token, else the token's team, or `local` without auth.
    static func actor(_ context: BatonRequestContext, _ by: String?) -> String {
        if let by, !by.isEmpty { return String(by.prefix(200)) }
        return MLflowRoutes.actor(context)
    }

    static func unavailable() -> APIError {
        APIError(
            .serviceUnavailable, code: "internal_error", "deployments are not enabled on this server",
            fix: "run `baton up` or `baton server`, which supervise deployments")
    }

    static func error(_ failure: DeploymentError) -> APIError {
        switch failure {
        case .unknownDeployment:
            return APIError(.notFound, code: "not_found", failure.description, field: "name", fix: failure.fix)
        case .conflict:
            return APIError(.conflict, code: "conflict", failure.description, fix: failure.fix)
        case .invalidSpec(let issues):
            let first = issues.first
            let message = issues.map { issue in
                (issue.line > 0 ? "line \(issue.line), column \(issue.column): " : "") + (issue.field.map { "\($0): " } ?? "") + issue.message
            }.joined(separator: "; ")
            return APIError(
                .badRequest, code: "invalid_request", message.isEmpty ? "invalid deployment" : message,
                field: first?.field.map { $0.split(separator: ".").dropFirst(2).joined(separator: ".") }.flatMap { $0.isEmpty ? nil : $0 },
                fix: first?.fix)
        case .unresolvedModel, .invalidRequest:
            return APIError(.badRequest, code: "invalid_request", failure.description, field: failure.field, fix: failure.fix)
        }
    }

    static func answer<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as DeploymentError {
            throw error(failure)
        }
    }
}

extension APIError {
    func with(fix: String) -> APIError {
        var copy = self
        copy.fix = fix
        return copy
    }
}
