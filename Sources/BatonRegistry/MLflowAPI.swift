import BatonCore
import BatonStore
import Foundation

/// Who sends a request: the name recorded as the actor of registry decisions, and the Baton
/// task it comes from, if any.
public struct MLflowCaller: Sendable {
    public var actor: String
    public var origin: TaskOrigin?

    public init(actor: String, origin: TaskOrigin? = nil) {
        self.actor = actor
        self.origin = origin
    }
}

/// MLflow's REST endpoints (`/api/2.0/mlflow/...`) mapped onto the registry: the route layer
/// hands over the method, the path after `mlflow/` and the parameters (JSON body or query).
public struct MLflowAPI: Sendable {
    public let registry: Registry

    public init(registry: Registry) { self.registry = registry }

    /// The answer to one request: a JSON object, or an `MLflowError` for the client.
    public func handle(method: String, path: String, params p: MLflowParams, caller: MLflowCaller) async throws -> JSONValue {
        let r = registry
        switch (method, path) {
        // Experiments
        case ("POST", "experiments/create"):
            let id = try await r.createExperiment(
                name: try p.required("name"), artifactLocation: p.string("artifact_location"), tags: try p.keyValues("tags"))
            return ["experiment_id": .string(id)]
        case ("GET", "experiments/get"):
            return ["experiment": try await r.experiment(id: try p.required("experiment_id"))]
        case ("GET", "experiments/get-by-name"):
            return ["experiment": try await r.experiment(name: try p.required("experiment_name"))]
        case ("POST", "experiments/search"), ("GET", "experiments/search"):
            let found = try await r.searchExperiments(
                filter: p.string("filter"), viewType: p.string("view_type"), orderBy: p.strings("order_by"),
                maxResults: try p.int("max_results", default: 1000, max: 50_000), pageToken: p.string("page_token"))
            return Self.page("experiments", found.experiments, found.next)
        case ("POST", "experiments/delete"):
            try await r.setExperimentLifecycle(id: try p.required("experiment_id"), deleted: true)
            return [:]
        case ("POST", "experiments/restore"):
            try await r.setExperimentLifecycle(id: try p.required("experiment_id"), deleted: false)
            return [:]
        case ("POST", "experiments/update"):
            try await r.renameExperiment(id: try p.required("experiment_id"), newName: try p.required("new_name"))
            return [:]
        case ("POST", "experiments/set-experiment-tag"):
            try await r.setExperimentTag(id: try p.required("experiment_id"), key: try p.required("key"), value: p.string("value") ?? "")
            return [:]
        case ("POST", "experiments/delete-experiment-tag"), ("DELETE", "experiments/delete-experiment-tag"):
            try await r.setExperimentTag(id: try p.required("experiment_id"), key: try p.required("key"), value: nil)
            return [:]

        // Runs
        case ("POST", "runs/create"):
            let run = try await r.createRun(
                experimentID: p.string("experiment_id"), userID: p.string("user_id"), runName: p.string("run_name"),
                startTime: try p.int64("start_time"), tags: try p.keyValues("tags"), origin: caller.origin)
            return ["run": run]
        case ("GET", "runs/get"):
            return ["run": try await r.run(id: try p.runID())]
        case ("POST", "runs/update"):
            let info = try await r.updateRun(
                id: try p.runID(), status: p.string("status"), endTime: try p.int64("end_time"), runName: p.string("run_name"))
            return ["run_info": info]
        case ("POST", "runs/delete"):
            try await r.setRunLifecycle(id: try p.runID(), deleted: true)
            return [:]
        case ("POST", "runs/restore"):
            try await r.setRunLifecycle(id: try p.runID(), deleted: false)
            return [:]
        case ("POST", "runs/log-metric"):
            guard let value = try p.double("value") else { throw MLflowError.missing("value") }
            let metric = TrackedMetric(
                key: try p.required("key"), value: value.isNaN ? nil : value,
                timestamp: try p.int64("timestamp") ?? r.nowMillis, step: try p.int64("step") ?? 0)
            try await r.logRunData(RunDataBatch(runID: try p.runID(), metrics: [metric]))
            return [:]
        case ("POST", "runs/log-parameter"):
            try await r.logRunData(RunDataBatch(runID: try p.runID(), params: [(try p.required("key"), p.string("value") ?? "")]))
            return [:]
        case ("POST", "runs/set-tag"):
            try await r.logRunData(RunDataBatch(runID: try p.runID(), tags: [(try p.required("key"), p.string("value") ?? "")]))
            return [:]
        case ("POST", "runs/delete-tag"):
            try await r.deleteRunTag(runID: try p.runID(), key: try p.required("key"))
            return [:]
        case ("POST", "runs/log-batch"):
            var metrics: [TrackedMetric] = []
            for (index, metric) in p.objects("metrics").enumerated() {
                guard let key = metric.string("key"), !key.isEmpty else { throw MLflowError.invalidParameter("metrics[\(index)] has no key") }
                guard let value = try metric.double("value") else { throw MLflowError.invalidParameter("metrics[\(index)] has no value") }
                metrics.append(
                    TrackedMetric(
                        key: key, value: value.isNaN ? nil : value, timestamp: try metric.int64("timestamp") ?? r.nowMillis,
                        step: try metric.int64("step") ?? 0))
            }
            try await r.logRunData(
                RunDataBatch(runID: try p.runID(), metrics: metrics, params: try p.keyValues("params"), tags: try p.keyValues("tags")))
            return [:]
        case ("POST", "runs/search"):
            let found = try await r.searchRuns(
                experimentIDs: p.strings("experiment_ids"), filter: p.string("filter"), viewType: p.string("run_view_type"),
                orderBy: p.strings("order_by"), maxResults: try p.int("max_results", default: 1000, max: 50_000),
                pageToken: p.string("page_token"))
            return Self.page("runs", found.runs, found.next)
        case ("POST", "runs/outputs"):
            try await r.logOutputs(runID: try p.runID(), modelIDs: p.objects("models").compactMap { $0.string("model_id") })
            return [:]
        case ("POST", "runs/log-inputs"):
            let datasets = p.objects("datasets").compactMap { input -> String? in
                guard case .object(let dataset)? = input.values["dataset"] else { return nil }
                return MLflowParams(dataset).string("name")
            }
            try await r.logInputs(runID: try p.runID(), datasets: datasets)
            return [:]
        case ("POST", "runs/log-model"):
            // MLflow 2's model history: kept as the tag MLflow itself uses.
            let runID = try p.runID()
            let model = p.string("model_json") ?? "{}"
            try await r.logRunData(RunDataBatch(runID: runID, tags: [("mlflow.log-model.history", "[\(model)]")]))
            return [:]
        case ("GET", "metrics/get-history"):
            let found = try await r.metricHistory(
                runID: try p.runID(), key: try p.required("metric_key"),
                maxResults: try p.int("max_results", default: 25_000, max: 25_000), pageToken: p.string("page_token"))
            return Self.page("metrics", found.metrics, found.next)

        // Logged models (MLflow 3)
        case ("POST", "logged-models"):
            let model = try await r.createLoggedModel(
                experimentID: try p.required("experiment_id"), name: p.string("name"), sourceRunID: p.string("source_run_id"),
                modelType: p.string("model_type"), tags: try p.keyValues("tags"), params: try p.keyValues("params"),
                origin: caller.origin)
            return ["model": model]
        case ("POST", "logged-models/search"):
            let found = try await r.searchLoggedModels(
                experimentIDs: p.strings("experiment_ids"), filter: p.string("filter"),
                orderBy: p.objects("order_by").compactMap { order in
                    order.string("field_name").map { "\($0) \(order.bool("ascending") == false ? "DESC" : "ASC")" }
                }, maxResults: try p.int("max_results", default: 100, max: 50_000), pageToken: p.string("page_token"))
            return Self.page("models", found.models, found.next)

        // Registered models
        case ("POST", "registered-models/create"):
            return [
                "registered_model": try await r.createRegisteredModel(
                    name: try p.required("name"), description: p.string("description"), tags: try p.keyValues("tags"),
                    actor: caller.actor)
            ]
        case ("GET", "registered-models/get"):
            return ["registered_model": try await r.registeredModel(name: try p.required("name"))]
        case ("POST", "registered-models/rename"):
            return ["registered_model": try await r.renameRegisteredModel(name: try p.required("name"), newName: try p.required("new_name"))]
        case ("PATCH", "registered-models/update"), ("POST", "registered-models/update"):
            return ["registered_model": try await r.updateRegisteredModel(name: try p.required("name"), description: p.string("description"))]
        case ("DELETE", "registered-models/delete"), ("POST", "registered-models/delete"):
            try await r.deleteRegisteredModel(name: try p.required("name"), actor: caller.actor)
            return [:]
        case ("GET", "registered-models/search"), ("POST", "registered-models/search"):
            let found = try await r.searchRegisteredModels(
                filter: p.string("filter"), orderBy: p.strings("order_by"), maxResults: try p.int("max_results", default: 100, max: 1000),
                pageToken: p.string("page_token"))
            return Self.page("registered_models", found.models, found.next)
        case ("POST", "registered-models/set-tag"):
            try await r.setRegisteredModelTag(name: try p.required("name"), key: try p.required("key"), value: p.string("value") ?? "")
            return [:]
        case ("DELETE", "registered-models/delete-tag"), ("POST", "registered-models/delete-tag"):
            try await r.setRegisteredModelTag(name: try p.required("name"), key: try p.required("key"), value: nil)
            return [:]
        case ("POST", "registered-models/get-latest-versions"), ("GET", "registered-models/get-latest-versions"):
            return ["model_versions": .array(try await r.latestVersions(name: try p.required("name"), stages: p.strings("stages")))]
        case ("POST", "registered-models/alias"):
            try await r.setAlias(name: try p.required("name"), alias: try p.required("alias"), version: try p.required("version"), actor: caller.actor)
            return [:]
        case ("GET", "registered-models/alias"):
            return ["model_version": try await r.versionByAlias(name: try p.required("name"), alias: try p.required("alias"))]
        case ("DELETE", "registered-models/alias"):
            try await r.deleteAlias(name: try p.required("name"), alias: try p.required("alias"), actor: caller.actor)
            return [:]

        // Model versions
        case ("POST", "model-versions/create"):
            return [
                "model_version": try await r.createModelVersion(
                    name: try p.required("name"), source: try p.required("source"), runID: p.string("run_id"),
                    runLink: p.string("run_link"), description: p.string("description"), modelID: p.string("model_id"),
                    tags: try p.keyValues("tags"), actor: caller.actor, origin: caller.origin)
            ]
        case ("GET", "model-versions/get"):
            return ["model_version": try await r.modelVersion(name: try p.required("name"), version: try p.required("version"))]
        case ("PATCH", "model-versions/update"), ("POST", "model-versions/update"):
            return [
                "model_version": try await r.updateModelVersion(
                    name: try p.required("name"), version: try p.required("version"), description: p.string("description"))
            ]
        case ("DELETE", "model-versions/delete"), ("POST", "model-versions/delete"):
            try await r.deleteModelVersion(name: try p.required("name"), version: try p.required("version"), actor: caller.actor)
            return [:]
        case ("GET", "model-versions/search"), ("POST", "model-versions/search"):
            let found = try await r.searchModelVersions(
                filter: p.string("filter"), orderBy: p.strings("order_by"),
                maxResults: try p.int("max_results", default: 10_000, max: 200_000), pageToken: p.string("page_token"))
            return Self.page("model_versions", found.versions, found.next)
        case ("POST", "model-versions/set-tag"):
            try await r.setModelVersionTag(
                name: try p.required("name"), version: try p.required("version"), key: try p.required("key"), value: p.string("value") ?? "")
            return [:]
        case ("DELETE", "model-versions/delete-tag"), ("POST", "model-versions/delete-tag"):
            try await r.setModelVersionTag(name: try p.required("name"), version: try p.required("version"), key: try p.required("key"), value: nil)
            return [:]
        case ("GET", "model-versions/get-download-uri"):
            return ["artifact_uri": .string(try await r.downloadURI(name: try p.required("name"), version: try p.required("version")))]
        case ("POST", "model-versions/transition-stage"):
            return [
                "model_version": try await r.transitionStage(
                    name: try p.required("name"), version: try p.required("version"), stage: try p.required("stage"),
                    archiveExisting: p.bool("archive_existing_versions") ?? false, actor: caller.actor)
            ]
        default:
            break
        }
        // Logged models address one model in the path: logged-models/<id>[/tags[/<key>]|/params].
        let parts = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if parts.count >= 2, parts[0] == "logged-models" {
            let id = parts[1]
            switch (method, parts.count > 2 ? parts[2] : "") {
            case ("GET", ""): return ["model": try await r.loggedModel(id: id)]
            case ("PATCH", ""), ("POST", ""):
                return ["model": try await r.finalizeLoggedModel(id: id, status: try p.required("status"))]
            case ("DELETE", ""):
                try await r.deleteLoggedModel(id: id)
                return [:]
            case ("PATCH", "tags"), ("POST", "tags"):
                try await r.setLoggedModelTags(id: id, tags: try p.keyValues("tags"))
                return [:]
            case ("DELETE", "tags") where parts.count == 4:
                try await r.setLoggedModelTags(id: id, tags: [], remove: parts[3])
                return [:]
            case ("POST", "params"):
                try await r.logLoggedModelParams(id: id, params: try p.keyValues("params"))
                return [:]
            default: break
            }
        }
        throw MLflowError(
            code: "ENDPOINT_NOT_FOUND", message: "Baton does not implement \(method) /api/2.0/mlflow/\(path).", status: 404)
    }

    static func page(_ field: String, _ items: [JSONValue], _ next: String?) -> JSONValue {
        var object: [String: JSONValue] = [:]
        if !items.isEmpty { object[field] = .array(items) }
        if let next { object["next_page_token"] = .string(next) }
        return .object(object)
    }
}
