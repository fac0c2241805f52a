import BatonAPI
import BatonCore
import BatonRegistry
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// MLflow's REST API (`/api/2.0/mlflow/...`), its artifact API (`/api/2.0/mlflow-artifacts/...`)
/// and `server-info`, so the official MLflow client works with `MLFLOW_TRACKING_URI` set to
/// this server. Every route is also served under `/tasks/{run}/{task}/{attempt}`: Baton points
/// a task's `MLFLOW_TRACKING_URI` there, which links what the task logs to its pipeline run.
enum MLflowRoutes {
    static let originPrefix = "/tasks/:baton_run/:baton_task/:baton_attempt"

    static func isMLflowPath(_ path: String) -> Bool {
        path.contains("/api/2.0/mlflow") || path.contains("/api/3.0/mlflow")
    }

    static func register(on router: Router<BatonRequestContext>, context: ServerContext, registry: Registry) {
        let api = MLflowAPI(registry: registry)
        for prefix in ["", originPrefix] {
            for method in [HTTPRequest.Method.get, .post, .patch, .delete] {
                router.on(RouterPath("\(prefix)/api/2.0/mlflow/**"), method: method) { request, requestContext in
                    try await handle(request, requestContext, api: api, context: context)
                }
            }
            router.get(RouterPath("\(prefix)/api/3.0/mlflow/server-info")) { _, _ in
                json(["store_type": "SqlStore", "artifact_root": .string(registry.artifacts.root)])
            }
            router.get(RouterPath("\(prefix)/api/2.0/mlflow-artifacts/artifacts")) { request, _ in
                try await listArtifacts(request, registry: registry)
            }
            router.get(RouterPath("\(prefix)/api/2.0/mlflow-artifacts/artifacts/**")) { request, requestContext in
                try await downloadArtifact(request, requestContext, registry: registry)
            }
            router.put(RouterPath("\(prefix)/api/2.0/mlflow-artifacts/artifacts/**")) { request, requestContext in
                try await uploadArtifact(request, requestContext, registry: registry, context: context)
            }
            router.delete(RouterPath("\(prefix)/api/2.0/mlflow-artifacts/artifacts/**")) { request, requestContext in
                try await mlflowErrors {
                    _ = try registry.artifacts.delete(try artifactPath(requestContext))
                    return json([:])
                }
            }
        }
    }

    static func handle(_ request: Request, _ requestContext: BatonRequestContext, api: MLflowAPI, context: ServerContext)
        async throws -> Response
    {
        try await mlflowErrors {
            let path = requestContext.parameters.getCatchAll().joined(separator: "/")
            var values: [String: JSONValue] = MLflowParams(query: formQuery(request.uri.query)).values
            if request.method != .get {
                var request = request
                let buffer: ByteBuffer
                do {
                    buffer = try await request.collectBody(upTo: context.configuration.maxBodyBytes)
                } catch {
                    throw MLflowError.tooLarge("The request body is over the \(context.configuration.maxBodyBytes)-byte limit.")
                }
                if buffer.readableBytes > 0 {
                    guard let body = try? APICoding.sharedDecoder.decode(JSONValue.self, from: Data(buffer.readableBytesView)),
                        case .object(let fields) = body
                    else {
                        throw MLflowError(code: "MALFORMED_REQUEST", message: "The request body is not a JSON object.", status: 400)
                    }
                    values.merge(fields) { _, body in body }
                }
            }
            let caller = MLflowCaller(actor: actor(requestContext), origin: origin(requestContext))
            return json(try await api.handle(method: request.method.rawValue, path: path, params: MLflowParams(values), caller: caller))
        }
    }

    /// Who a registry decision is recorded under: the token's team, or `local` without auth.
    static func actor(_ context: BatonRequestContext) -> String {
        context.identity?.team ?? context.identity?.tokenID ?? "local"
    }

    static func origin(_ context: BatonRequestContext) -> TaskOrigin? {
        guard let run = context.parameters.get("baton_run").flatMap({ Int64($0) }),
            let task = context.parameters.get("baton_task")?.removingPercentEncoding,
            let attempt = context.parameters.get("baton_attempt").flatMap({ Int($0) })
        else { return nil }
        return TaskOrigin(runID: run, task: task, attempt: attempt)
    }

    /// Answers MLflowError (and anything unexpected) in MLflow's error shape.
    static func mlflowErrors(_ body: () async throws -> Response) async throws -> Response {
        do {
            return try await body()
        } catch let error as MLflowError {
            return json(error.json, status: .init(code: error.status))
        } catch {
            return json(MLflowError(code: "INTERNAL_ERROR", message: "\(error)", status: 500).json, status: .internalServerError)
        }
    }

    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        APIResponse.json(value, status: status)
    }

    /// An `application/x-www-form-urlencoded` query: `+` is a space, as Python's client sends it.
    static func formQuery(_ raw: String?) -> [(String, String)] {
        guard let raw, !raw.isEmpty else { return [] }
        return raw.split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String {
                let spaced = text.replacingOccurrences(of: "+", with: " ")
                return spaced.removingPercentEncoding ?? spaced
            }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    // MARK: - Artifacts

    static func artifactPath(_ context: BatonRequestContext) throws -> String {
        let segments = context.parameters.getCatchAll().map { String($0).removingPercentEncoding ?? String($0) }
        return segments.joined(separator: "/")
    }

    static func listArtifacts(_ request: Request, registry: Registry) async throws -> Response {
        try await mlflowErrors {
            let query = Dictionary(formQuery(request.uri.query), uniquingKeysWith: { _, last in last })
            let entries = try registry.artifacts.list(query["path"] ?? "")
            let base = (query["path"] ?? "").split(separator: "/").joined(separator: "/")
            guard !entries.isEmpty else { return json([:]) }
            return json([
                "files": .array(
                    entries.map { entry in
                        // Paths relative to the folder listed, as MLflow's server answers.
                        let name = base.isEmpty ? entry.path : String(entry.path.dropFirst(base.count + 1))
                        var file: [String: JSONValue] = ["path": .string(name), "is_dir": .bool(entry.isDirectory)]
                        if let size = entry.size { file["file_size"] = .number(Double(size)) }
                        return .object(file)
                    })
            ])
        }
    }

    static func downloadArtifact(_ request: Request, _ context: BatonRequestContext, registry: Registry) async throws -> Response {
        try await mlflowErrors {
            let relative = try artifactPath(context)
            let path = try registry.artifacts.resolve(relative)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
                throw MLflowError.notFound("No artifact at '\(relative)'.")
            }
            let body = try await FileIO().loadFile(path: path, context: context)
            var headers = HTTPFields()
            headers[.contentType] = "application/octet-stream"
            return Response(status: .ok, headers: headers, body: body)
        }
    }

    static func uploadArtifact(_ request: Request, _ context: BatonRequestContext, registry: Registry, context server: ServerContext)
        async throws -> Response
    {
        try await mlflowErrors {
            let relative = try artifactPath(context)
            let chunks = request.body.map { buffer in Array(buffer.readableBytesView) }
            _ = try await registry.artifacts.write(relative, chunks: chunks, maxBytes: server.maxArtifactBytes)
            return json([:])
        }
    }
}
