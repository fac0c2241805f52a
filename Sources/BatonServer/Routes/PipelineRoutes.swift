import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/pipelines`: list, detail with the DAG, pause and unpause.
enum PipelineRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/pipelines")

        group.get { request, _ -> Response in
            let owner = request.query("owner")
            let text = request.query("q")?.lowercased()
            var paused: Bool?
            if let value = request.query("paused") {
                guard let flag = Bool(value) else {
                    throw APIError.badRequest("'\(value)' is not true or false", field: "paused")
                }
                paused = flag
            }
            var items: [APIPipeline] = []
            for record in try await loadedPipelines(context) {
                if let owner, record.spec.owner != owner { continue }
                if let paused, record.paused != paused { continue }
                if let text, !record.name.lowercased().contains(text),
                    !(record.spec.description ?? "").lowercased().contains(text)
                {
                    continue
                }
                let recent = try await context.store.runs(RunQuery(pipeline: record.name, limit: 10))
                items.append(APIPipeline(record, recentRuns: recent))
            }
            return APIResponse.json(APIList(items: items))
        }

        group.get(":pipeline") { _, requestContext -> Response in
            let record = try await pipeline(requestContext, context)
            let recent = try await context.store.runs(RunQuery(pipeline: record.name, limit: 25))
            return APIResponse.json(APIPipelineDetail(record, recentRuns: recent))
        }

        for (action, paused) in [("pause", true), ("unpause", false)] {
            group.post(":pipeline/\(action)") { _, requestContext -> Response in
                let record = try await pipeline(requestContext, context)
                try await context.engine.setPaused(paused, pipeline: record.name)
                guard let updated = try await context.store.pipeline(named: record.name) else {
                    throw APIError.notFound("pipeline '\(record.name)' disappeared")
                }
                let recent = try await context.store.runs(RunQuery(pipeline: record.name, limit: 10))
                return APIResponse.json(APIPipeline(updated, recentRuns: recent))
            }
        }
    }

    /// Pipelines the engine has loaded now (stored records of removed files are left out).
    static func loadedPipelines(_ context: ServerContext) async throws -> [PipelineRecord] {
        let loaded = Set(await context.engine.loadedPipelines().map(\.name))
        return try await context.store.pipelines().filter { loaded.contains($0.name) }
    }

    static func pipeline(_ requestContext: BatonRequestContext, _ context: ServerContext) async throws -> PipelineRecord {
        let name = requestContext.parameters.get("pipeline") ?? ""
        if let record = try await context.store.pipeline(named: name),
            await context.engine.loadedPipelines().contains(where: { $0.name == name })
        {
            return record
        }
        let known = await context.engine.loadedPipelines().map(\.name)
        var message = "no pipeline named '\(name)'"
        if let suggestion = Suggest.closest(to: name, in: known) { message += "; did you mean '\(suggestion)'?" }
        throw APIError.notFound(message, field: "pipeline")
    }
}
