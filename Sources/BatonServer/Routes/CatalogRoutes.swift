import BatonAPI
import BatonCore
import BatonEngine
import BatonFeatures
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/datasets` and `/api/v1/lineage`: the catalog of hand-off datasets with their
/// contracts, freshness, history, producers and consumers, and the lineage graph.
enum CatalogRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.get("/api/v1/datasets") { request, _ -> Response in
            let owner = request.query("owner")
            let pipelines = await context.engine.loadedPipelines()
            var items: [APIDataset] = []
            for status in await context.engine.datasetStatuses() where owner == nil || status.dataset.owner == owner {
                let open = try await context.store.slaMisses(dataset: status.dataset.name, limit: 1).first { $0.resolvedAt == nil }
                items.append(APIDataset(status, pipelines: pipelines, openMiss: open))
            }
            return APIResponse.json(APIList(items: items))
        }

        router.get("/api/v1/datasets/:dataset") { _, requestContext -> Response in
            let name = requestContext.parameters.get("dataset") ?? ""
            let statuses = await context.engine.datasetStatuses()
            guard let status = statuses.first(where: { $0.dataset.name == name }) else {
                var message = "no dataset named '\(name)'"
                if let suggestion = Suggest.closest(to: name, in: statuses.map(\.dataset.name)) {
                    message += "; did you mean '\(suggestion)'?"
                }
                throw APIError.notFound(message, field: "dataset")
            }
            let pipelines = await context.engine.loadedPipelines()
            let misses = try await context.store.slaMisses(dataset: name, limit: 20)
            let updates = try await context.store.datasetUpdates(name, limit: 50)
            var versions: [APIDatasetDetail.SchemaVersionEntry] = []
            for update in updates.reversed() {
                guard let version = update.schemaVersion, versions.last?.schema_version != version else { continue }
                versions.append(.init(schema_version: version, first_seen_at: update.updatedAt, update_id: update.id))
            }
            let runs = try await context.store.datasetRuns(name, limit: 50)
            return APIResponse.json(
                APIDatasetDetail(
                    dataset: APIDataset(status, pipelines: pipelines, openMiss: misses.first { $0.resolvedAt == nil }),
                    updates: updates.map(APIDatasetUpdate.init), schema_history: versions.reversed(),
                    sla_misses: misses.map(APISLAMiss.init),
                    runs: runs.map { APIRunDataset(run_id: $0.runID, task: $0.task, direction: $0.direction.rawValue, update_id: $0.updateID) }))
        }

        router.get("/api/v1/lineage") { _, _ -> Response in
            APIResponse.json(
                APILineage(
                    pipelines: await context.engine.loadedPipelines(), datasets: await context.engine.catalog(),
                    services: Array(context.engine.features.registry.services.values)))
        }

        router.get("/api/v1/runs/:run/datasets") { _, requestContext -> Response in
            let id = try await RunRoutes.run(requestContext, context).id
            let records = try await context.store.runDatasets(runID: id)
            return APIResponse.json(
                APIList(items: records.map { APIRunDataset(run_id: $0.runID, task: $0.task, direction: $0.direction.rawValue, update_id: $0.updateID, dataset: $0.dataset) }))
        }
    }
}

/// A dataset in the catalog.
public struct APIDataset: Codable, Sendable, Hashable {
    public var name: String
    public var owner: String?
    public var description: String?
    public var schema_version: String?
    public var freshness_seconds: Double?
    public var availability_target: Double?
    public var status: String
    public var age_seconds: Double?
    public var stale_at: Date?
    public var measured_availability: Double?
    public var last_update: APIDatasetUpdate?
    /// `pipeline.task` entries that produce or require the dataset.
    public var producers: [String]
    public var consumers: [String]
    public var open_sla_miss: APISLAMiss?

    init(_ status: DatasetStatus, pipelines: [PipelineRecord], openMiss: SLAMissRecord?) {
        name = status.dataset.name
        owner = status.dataset.owner
        description = status.dataset.description
        schema_version = status.dataset.schemaVersion
        freshness_seconds = status.dataset.freshness
        availability_target = status.dataset.availability
        self.status = status.freshness.rawValue
        age_seconds = status.age
        stale_at = status.staleAt
        measured_availability = status.measuredAvailability
        last_update = status.latest.map(APIDatasetUpdate.init)
        var producers: [String] = []
        var consumers: [String] = []
        for record in pipelines {
            for task in record.spec.tasks {
                if task.produces.contains(status.dataset.name) { producers.append("\(record.name).\(task.name)") }
                if task.requires.contains(where: { $0.dataset == status.dataset.name }) { consumers.append("\(record.name).\(task.name)") }
            }
        }
        self.producers = producers
        self.consumers = consumers
        open_sla_miss = openMiss.map(APISLAMiss.init)
    }
}

public struct APIDatasetUpdate: Codable, Sendable, Hashable {
    public var id: Int64
    public var run_id: Int64?
    public var pipeline: String?
    public var task: String?
    public var schema_version: String?
    public var metadata: [String: JSONValue]
    public var updated_at: Date

    init(_ update: DatasetUpdateRecord) {
        id = update.id
        run_id = update.runID
        pipeline = update.pipeline
        task = update.task
        schema_version = update.schemaVersion
        metadata = update.metadata
        updated_at = update.updatedAt
    }
}

public struct APISLAMiss: Codable, Sendable, Hashable {
    public var id: Int64
    public var detected_at: Date
    public var last_update_at: Date?
    public var freshness_seconds: Double
    public var resolved_at: Date?

    init(_ miss: SLAMissRecord) {
        id = miss.id
        detected_at = miss.detectedAt
        last_update_at = miss.lastUpdateAt
        freshness_seconds = miss.freshness
        resolved_at = miss.resolvedAt
    }
}

public struct APIRunDataset: Codable, Sendable, Hashable {
    public var run_id: Int64
    public var task: String
    public var direction: String
    public var update_id: Int64?
    public var dataset: String?
}

public struct APIDatasetDetail: Codable, Sendable, Hashable {
    public struct SchemaVersionEntry: Codable, Sendable, Hashable {
        public var schema_version: String
        public var first_seen_at: Date
        public var update_id: Int64
    }

    public var dataset: APIDataset
    public var updates: [APIDatasetUpdate]
    public var schema_history: [SchemaVersionEntry]
    public var sla_misses: [APISLAMiss]
    public var runs: [APIRunDataset]
}

/// Datasets and pipelines as one graph: pipeline → dataset it produces, dataset → pipeline that
/// requires it or is triggered by its updates.
public struct APILineage: Codable, Sendable, Hashable {
    public struct Node: Codable, Sendable, Hashable {
        public var id: String
        public var kind: String
        public var name: String
        public var owner: String?
    }

    public struct Edge: Codable, Sendable, Hashable {
        public var from: String
        public var to: String
        public var relation: String
    }

    public var nodes: [Node]
    public var edges: [Edge]

    init(pipelines: [PipelineRecord], datasets: [DatasetSpec], services: [FeatureServiceSpec] = []) {
        var nodes = datasets.map { Node(id: "dataset:\($0.name)", kind: "dataset", name: $0.name, owner: $0.owner) }
        var edges: Set<Edge> = []
        // Feature views are datasets; the services reading them, and the models using those.
        var models: Set<String> = []
        for service in services.sorted(by: { $0.name < $1.name }) {
            let serviceID = "feature_service:\(service.name)"
            nodes.append(Node(id: serviceID, kind: "feature_service", name: service.name, owner: service.owner))
            for (view, _) in service.viewsInOrder { edges.insert(Edge(from: "dataset:\(view)", to: serviceID, relation: "serves")) }
            for model in service.models {
                models.insert(model)
                edges.insert(Edge(from: serviceID, to: "model:\(model)", relation: "used_by"))
            }
        }
        for model in models.sorted() { nodes.append(Node(id: "model:\(model)", kind: "model", name: model, owner: nil)) }
        for record in pipelines {
            let pipelineID = "pipeline:\(record.name)"
            nodes.append(Node(id: pipelineID, kind: "pipeline", name: record.name, owner: record.spec.owner))
            for task in record.spec.tasks {
                for dataset in task.produces {
                    edges.insert(Edge(from: pipelineID, to: "dataset:\(dataset)", relation: "produces"))
                }
                for requirement in task.requires {
                    edges.insert(Edge(from: "dataset:\(requirement.dataset)", to: pipelineID, relation: "requires"))
                }
            }
            for trigger in record.spec.triggers {
                guard let dataset = DatasetSpec.dataset(ofUpdateEvent: trigger.event) else { continue }
                edges.insert(Edge(from: "dataset:\(dataset)", to: pipelineID, relation: "triggers"))
            }
        }
        // Triggers are not checked against the catalog (an outside system may publish a dataset's
        // updates), so a trigger can name an undeclared dataset: give it a node, so that every
        // edge ends at one.
        let declared = Set(nodes.map(\.id))
        for id in Set(edges.flatMap { [$0.from, $0.to] }).subtracting(declared).sorted() where id.hasPrefix("dataset:") {
            nodes.append(Node(id: id, kind: "dataset", name: String(id.dropFirst("dataset:".count)), owner: nil))
        }
        self.nodes = nodes
        self.edges = edges.sorted { ($0.from, $0.to, $0.relation) < ($1.from, $1.to, $1.relation) }
    }
}
