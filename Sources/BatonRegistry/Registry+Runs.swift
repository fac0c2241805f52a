import BatonCore
import BatonStore
import Foundation

extension Registry {
    static let runStatuses: Set<String> = ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]

    public func createRun(
        experimentID: String?, userID: String?, runName: String?, startTime: Int64?, tags: [(key: String, value: String)],
        origin: TaskOrigin?
    ) async throws -> JSONValue {
        let origin = try await resolve(origin)
        let experimentID = experimentID ?? Self.defaultExperimentID
        let experiment = try await experimentObject(experimentID)
        guard experiment.lifecycle == "active" else {
            throw MLflowError.invalidState("The experiment \(experimentID) must be in the 'active' state to create runs.")
        }
        for tag in tags {
            try Limits.checkName(tag.key, field: "tags.key")
            try Limits.checkValue(tag.value, field: "tags.value", max: Limits.tagValue)
        }
        let id = Self.newHexID()
        let stamp = nowMillis
        let experimentDocument = try DocumentCoding.decode(ExperimentDocument.self, experiment)
        let name = runName ?? tags.first(where: { $0.key == "mlflow.runName" })?.value ?? Self.generatedRunName()
        let document = RunDocument(
            runName: name, userID: userID ?? "", status: "RUNNING", startTime: startTime ?? stamp,
            artifactURI: "\(experimentDocument.artifactLocation)/\(id)/artifacts", origin: origin.map(OriginDocument.init))
        let object = RegistryObject(
            kind: .run, id: id, parent: experimentID, pipelineRunID: origin?.runID, createdAt: stamp, updatedAt: stamp,
            document: DocumentCoding.encode(document))
        guard try await store.insertRegistryObject(object) == .inserted else {
            throw MLflowError.invalidState("run id \(id) is taken")
        }
        var allTags = tags.filter { $0.key != "mlflow.runName" }
        allTags.append(("mlflow.runName", name))
        if let origin {
            // Visible to MLflow users too: search `tags.baton.pipeline = '...'`.
            allTags.append(("baton.run_id", String(origin.runID)))
            allTags.append(("baton.task", origin.task))
            if let pipeline = origin.pipeline { allTags.append(("baton.pipeline", pipeline)) }
        }
        if let refusal = try await store.logRunData([RunDataBatch(runID: id, tags: allTags)]).first ?? nil {
            throw Self.error(for: refusal, runID: id)
        }
        return try await runJSON(try await runObject(id))
    }

    /// The origin with its pipeline's name, or nil when the pipeline run does not exist (a
    /// stale or made-up path must not link to someone else's run).
    func resolve(_ origin: TaskOrigin?) async throws -> TaskOrigin? {
        guard var origin else { return nil }
        guard let run = try await store.run(id: origin.runID) else { return nil }
        origin.pipeline = run.pipeline
        return origin
    }

    /// Two words, as MLflow names runs nobody named.
    static func generatedRunName() -> String {
        let adjectives = ["brisk", "calm", "eager", "gentle", "keen", "lucid", "nimble", "quiet", "steady", "vivid"]
        let nouns = ["baton", "cello", "chord", "fugue", "harp", "motif", "oboe", "rondo", "tempo", "viola"]
        return "\(adjectives.randomElement() ?? "calm")-\(nouns.randomElement() ?? "tempo")-\(Int.random(in: 100...999))"
    }

    func runObject(_ id: String) async throws -> RegistryObject {
        guard let object = try await store.registryObject(.run, id: id) else {
            throw MLflowError.notFound("Run '\(id)' not found")
        }
        return object
    }

    public func run(id: String) async throws -> JSONValue {
        try await runJSON(try await runObject(id))
    }

    public func updateRun(id: String, status: String?, endTime: Int64?, runName: String?) async throws -> JSONValue {
        if let status, !Self.runStatuses.contains(status) {
            throw MLflowError.invalidParameter(
                "Invalid run status '\(status)'; one of \(Self.runStatuses.sorted().joined(separator: ", ")).")
        }
        let object = try await modify(.run, id: id, missing: .notFound("Run '\(id)' not found")) { object in
            guard object.lifecycle == "active" else {
                throw MLflowError.invalidState("The run \(id) must be in the 'active' state. Current state is deleted.")
            }
            var document = try DocumentCoding.decode(RunDocument.self, object)
            if let status { document.status = status }
            if let endTime { document.endTime = endTime }
            if let runName, !runName.isEmpty { document.runName = runName }
            object.document = DocumentCoding.encode(document)
            return true
        }
        if let runName, !runName.isEmpty {
            _ = try await writer.submit(RunDataBatch(runID: id, tags: [("mlflow.runName", runName)]))
        }
        return try runInfoJSON(object, try DocumentCoding.decode(RunDocument.self, object))
    }

    public func setRunLifecycle(id: String, deleted: Bool) async throws {
        try await modify(.run, id: id, missing: .notFound("Run '\(id)' not found")) { object in
            let target = deleted ? "deleted" : "active"
            guard object.lifecycle != target else { return false }
            object.lifecycle = target
            return true
        }
    }

    /// Params, metrics and tags of one request, validated, then committed with other requests'
    /// in one transaction (`RunDataWriter`).
    public func logRunData(_ batch: RunDataBatch) async throws {
        guard batch.metrics.count <= Limits.batchMetrics, batch.params.count <= Limits.batchParams,
            batch.tags.count <= Limits.batchTags
        else {
            throw MLflowError.invalidParameter(
                "A batch logging request can contain at most \(Limits.batchMetrics) metrics, \(Limits.batchParams) params and \(Limits.batchTags) tags; got \(batch.metrics.count), \(batch.params.count) and \(batch.tags.count).")
        }
        for metric in batch.metrics { try Limits.checkName(metric.key, field: "metrics.key") }
        for param in batch.params {
            try Limits.checkName(param.key, field: "params.key")
            try Limits.checkValue(param.value, field: "params.value", max: Limits.paramValue)
        }
        for tag in batch.tags {
            try Limits.checkName(tag.key, field: "tags.key")
            try Limits.checkValue(tag.value, field: "tags.value", max: Limits.tagValue)
        }
        if let refusal = try await writer.submit(batch) {
            throw Self.error(for: refusal, runID: batch.runID)
        }
        // The run's name lives in its document too, so `mlflow.runName` set as a tag renames it.
        if let name = batch.tags.last(where: { $0.key == "mlflow.runName" })?.value, !name.isEmpty {
            try await modify(.run, id: batch.runID, missing: .notFound("Run '\(batch.runID)' not found")) { object in
                var document = try DocumentCoding.decode(RunDocument.self, object)
                guard document.runName != name else { return false }
                document.runName = name
                object.document = DocumentCoding.encode(document)
                return true
            }
        }
    }

    static func error(for refusal: RunDataRefusal, runID: String) -> MLflowError {
        switch refusal {
        case .runMissing: return .notFound("Run '\(runID)' not found")
        case .runDeleted:
            return .invalidParameter("The run \(runID) must be in the 'active' state. Current state is deleted.")
        case .paramChanged(let key, let stored, let given):
            return .invalidParameter(
                "Changing param values is not allowed. Param with key='\(key)' was already logged with value='\(stored)' for run ID='\(runID)'. Attempted logging new value '\(given)'.")
        }
    }

    public func deleteRunTag(runID: String, key: String) async throws {
        let object = try await runObject(runID)
        guard object.lifecycle == "active" else {
            throw MLflowError.invalidParameter("The run \(runID) must be in the 'active' state. Current state is deleted.")
        }
        guard try await store.deleteRunTag(runID: runID, key: key) else {
            throw MLflowError.notFound("No tag with name: \(key) in run with id \(runID)")
        }
    }

    public func metricHistory(runID: String, key: String, maxResults: Int, pageToken: String?) async throws
        -> (metrics: [JSONValue], next: String?)
    {
        _ = try await runObject(runID)
        let offset = try PageToken.decode(pageToken)
        // One more than asked tells whether another page exists.
        let metrics = try await store.metricHistory(runID: runID, key: key, limit: maxResults + 1, offset: offset)
        let page = metrics.prefix(maxResults).map(Self.metricJSON)
        return (Array(page), metrics.count > maxResults ? PageToken.encode(offset: offset + maxResults) : nil)
    }

    /// Links logged models to the run as its outputs (MLflow 3's `log_model`).
    public func logOutputs(runID: String, modelIDs: [String]) async throws {
        try await modify(.run, id: runID, missing: .notFound("Run '\(runID)' not found")) { object in
            var document = try DocumentCoding.decode(RunDocument.self, object)
            let new = modelIDs.filter { !document.outputModels.contains($0) }
            guard !new.isEmpty else { return false }
            document.outputModels += new
            object.document = DocumentCoding.encode(document)
            return true
        }
    }

    public func logInputs(runID: String, datasets: [String]) async throws {
        try await modify(.run, id: runID, missing: .notFound("Run '\(runID)' not found")) { object in
            var document = try DocumentCoding.decode(RunDocument.self, object)
            let new = datasets.filter { !document.inputs.contains($0) }
            guard !new.isEmpty else { return false }
            document.inputs = Array((document.inputs + new).suffix(100))
            object.document = DocumentCoding.encode(document)
            return true
        }
    }

    public func searchRuns(
        experimentIDs: [String], filter: String?, viewType: String?, orderBy: [String], maxResults: Int, pageToken: String?
    ) async throws -> (runs: [JSONValue], next: String?) {
        let parsed = try SearchFilter.parse(filter)
        let orders = try SearchOrder.parse(orderBy)
        let objects = try await store.registryObjects(.run, parents: experimentIDs).filter {
            Self.viewMatches($0.lifecycle, viewType)
        }
        let data = try await store.runData(runIDs: objects.map(\.id))
        var rows: [RunRow] = []
        for object in objects {
            let row = RunRow(object: object, document: try DocumentCoding.decode(RunDocument.self, object), data: data[object.id] ?? RunData())
            if parsed.matches({ row.value($0) }) { rows.append(row) }
        }
        let sorted = SearchOrder.sort(rows, by: orders, lookup: { $0.value($1) }) { a, b in
            a.document.startTime != b.document.startTime ? a.document.startTime > b.document.startTime : a.object.id < b.object.id
        }
        let page = try PageToken.page(sorted, token: pageToken, maxResults: maxResults)
        return (try page.items.map { try runJSON($0.object, $0.document, $0.data) }, page.next)
    }

    struct RunRow {
        var object: RegistryObject
        var document: RunDocument
        var data: RunData

        func value(_ key: SearchKey) -> SearchValue? {
            switch key.entity {
            case .metric: return data.latestMetrics[key.key].map { .number($0.value ?? .nan) }
            case .param: return data.params[key.key].map(SearchValue.text)
            case .tag: return data.tags[key.key].map(SearchValue.text)
            case .attribute:
                switch key.key {
                case "status": return .text(document.status)
                case "run_name", "runName": return .text(document.runName)
                case "run_id", "run_uuid": return .text(object.id)
                case "user_id": return .text(document.userID)
                case "start_time": return .number(Double(document.startTime))
                case "end_time": return document.endTime.map { .number(Double($0)) }
                case "artifact_uri": return .text(document.artifactURI)
                case "lifecycle_stage": return .text(object.lifecycle)
                case "created": return .number(Double(object.createdAt))
                default: return nil
                }
            }
        }
    }

    func runJSON(_ object: RegistryObject) async throws -> JSONValue {
        let data = try await store.runData(runIDs: [object.id])[object.id] ?? RunData()
        return try runJSON(object, try DocumentCoding.decode(RunDocument.self, object), data)
    }

    func runJSON(_ object: RegistryObject, _ document: RunDocument, _ data: RunData) throws -> JSONValue {
        var runData: [String: JSONValue] = [
            "metrics": .array(data.latestMetrics.keys.sorted().compactMap { data.latestMetrics[$0].map(Self.metricJSON) }),
            "params": .array(data.params.keys.sorted().map { .object(["key": .string($0), "value": .string(data.params[$0] ?? "")]) }),
            "tags": Self.tagList(data.tags),
        ]
        if data.latestMetrics.isEmpty { runData["metrics"] = nil }
        var run: [String: JSONValue] = ["info": try runInfoJSON(object, document), "data": .object(runData)]
        if !document.outputModels.isEmpty {
            run["outputs"] = .object([
                "model_outputs": .array(document.outputModels.map { .object(["model_id": .string($0), "step": .number(0)]) })
            ])
        }
        return .object(run)
    }

    func runInfoJSON(_ object: RegistryObject, _ document: RunDocument) throws -> JSONValue {
        var info: [String: JSONValue] = [
            "run_id": .string(object.id), "run_uuid": .string(object.id), "experiment_id": .string(object.parent ?? "0"),
            "run_name": .string(document.runName), "user_id": .string(document.userID), "status": .string(document.status),
            "start_time": .number(Double(document.startTime)), "artifact_uri": .string(document.artifactURI),
            "lifecycle_stage": .string(object.lifecycle),
        ]
        if let end = document.endTime { info["end_time"] = .number(Double(end)) }
        return .object(info)
    }

    static func metricJSON(_ metric: TrackedMetric) -> JSONValue {
        let value: JSONValue
        switch metric.value {
        case nil: value = .string("NaN")
        case let v? where v.isInfinite: value = .string(v > 0 ? "Infinity" : "-Infinity")
        case let v?: value = .number(v)
        }
        return .object([
            "key": .string(metric.key), "value": value, "timestamp": .number(Double(metric.timestamp)),
            "step": .number(Double(metric.step)),
        ])
    }
}
