import BatonAPI
import BatonCore
import BatonEngine
import BatonFeatures
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/features`: feature store definitions with freshness and statistics, row ingestion
/// and materialization, point-in-time training sets and online lookups.
enum FeatureRoutes {
    /// Ingestion and training-set bodies may be far larger than other API bodies.
    static let maxFeatureBodyBytes = 64 << 20

    struct IngestRequest: Codable {
        var rows: [JSONValue]
        var run_id: Int64?
        var pipeline: String?
        var task: String?
    }

    struct MaterializeRequest: Codable {
        var from: String
        var to: String
    }

    struct HistoricalRequest: Codable {
        var service: String
        var entities: [JSONValue]
    }

    struct OnlineRequest: Codable {
        var service: String
        var entities: [[String: JSONValue]]
    }

    static func apiError(_ error: FeatureError) -> APIError {
        switch error {
        case .unknown: return APIError.notFound(error.description, field: error.field)
        case .batchTooLarge: return APIError(.contentTooLarge, code: "body_too_large", error.description, field: error.field)
        default: return APIError.badRequest(error.description, field: error.field)
        }
    }

    /// Runs `body`, answering feature errors in the API's error shape.
    static func answering<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as FeatureError {
            throw apiError(error)
        }
    }

    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let hub = context.engine.features
        let group = router.group("/api/v1/features")

        group.get { _, _ -> Response in
            let registry = hub.registry
            let statuses = Dictionary(
                (await context.engine.datasetStatuses()).map { ($0.dataset.name, $0) }, uniquingKeysWith: { first, _ in first })
            var views: [APIFeatureView] = []
            for view in registry.views.values.sorted(by: { $0.name < $1.name }) {
                let summary = try await context.store.featureViewSummary(view: view.name)
                views.append(APIFeatureView(view, summary: summary, status: statuses[view.name]))
            }
            return APIResponse.json(
                APIFeatureRegistry(
                    entities: registry.entities.values.sorted { $0.name < $1.name }.map(APIEntity.init),
                    views: views,
                    services: registry.services.values.sorted { $0.name < $1.name }.map(APIFeatureService.init)))
        }

        group.get("views/:view") { _, requestContext -> Response in
            let name = requestContext.parameters.get("view") ?? ""
            return try await answering {
                let view = try hub.registry.view(name)
                let (summary, stats) = try await hub.statistics(view: name)
                let status = (await context.engine.datasetStatuses()).first { $0.dataset.name == name }
                return APIResponse.json(APIFeatureViewDetail(view: APIFeatureView(view, summary: summary, status: status), statistics: stats))
            }
        }

        group.post("views/:view/rows") { request, requestContext -> Response in
            let name = requestContext.parameters.get("view") ?? ""
            var request = request
            let body = try await request.decodeJSON(
                IngestRequest.self, limit: maxFeatureBodyBytes, fields: ["rows", "run_id", "pipeline", "task"])
            return try await answering {
                let origin = requestContext.identity?.team.map { "team:\($0)" } ?? "api"
                let result = try await hub.ingest(
                    view: name, json: body.rows,
                    writer: FeatureWriter(runID: body.run_id, pipeline: body.pipeline, task: body.task, origin: origin))
                return APIResponse.json(result, status: .created)
            }
        }

        group.post("views/:view/materialize") { request, requestContext -> Response in
            let name = requestContext.parameters.get("view") ?? ""
            var request = request
            let body = try await request.decodeJSON(MaterializeRequest.self, limit: context.configuration.maxBodyBytes, fields: ["from", "to"])
            guard let from = FeatureTime.parse(body.from) else { throw APIError.badRequest("'\(body.from)' is not a time", field: "from") }
            guard let to = FeatureTime.parse(body.to) else { throw APIError.badRequest("'\(body.to)' is not a time", field: "to") }
            return try await answering {
                let result = try await hub.materialize(
                    view: name, from: Date(timeIntervalSince1970: from), to: Date(timeIntervalSince1970: to),
                    writer: FeatureWriter(origin: "materialize"))
                return APIResponse.json(result, status: .created)
            }
        }

        group.post("historical") { request, _ -> Response in
            var request = request
            // Every step that scales with the rows runs on a batch thread: decoded inline, a
            // 2,000-row request held its event loop's lookups for milliseconds.
            let body = try await request.decodeJSON(
                HistoricalRequest.self, limit: maxFeatureBodyBytes, fields: ["service", "entities"], batch: true)
            return try await answering {
                let entities = try await BatchWork.run { try EntityTable.json(body.entities) }
                let set = try await hub.historical(service: body.service, entities: entities)
                return APIResponse.text(try await BatchWork.run { set.jsonLines() }, contentType: "application/x-ndjson")
            }
        }

        group.post("online") { request, _ -> Response in
            var request = request
            let body = try await request.decodeJSON(OnlineRequest.self, limit: context.configuration.maxBodyBytes, fields: ["service", "entities"])
            return try await answering {
                APIResponse.text(try hub.online(service: body.service, entities: body.entities).json(), contentType: "application/json")
            }
        }

        // One entity from the query string: no body to decode, the cheapest lookup.
        group.get("online/:service") { request, requestContext -> Response in
            let service = requestContext.parameters.get("service") ?? ""
            return try await answering {
                APIResponse.text(try hub.onlineJSON(service: service, keyText: { request.query($0) }), contentType: "application/json")
            }
        }
    }
}

/// An entity as the API shows it.
public struct APIEntity: Codable, Sendable, Hashable {
    public var name: String
    public var join_keys: [String: String]
    public var description: String?

    init(_ entity: EntitySpec) {
        name = entity.name
        join_keys = Dictionary(uniqueKeysWithValues: entity.joinKeys.map { ($0.name, $0.type.rawValue) })
        description = entity.description
    }
}

/// A feature view with its stored counts and freshness.
public struct APIFeatureView: Codable, Sendable, Hashable {
    public struct Feature: Codable, Sendable, Hashable {
        public var name: String
        public var type: String
        public var description: String?
    }

    public var name: String
    public var entity: String
    public var features: [Feature]
    public var ttl_seconds: Double?
    public var owner: String?
    public var description: String?
    public var freshness_seconds: Double?
    public var has_source: Bool
    public var rows: Int
    public var entities: Int
    public var first_event_timestamp: Date?
    public var last_event_timestamp: Date?
    public var last_written_at: Date?
    /// The catalog's freshness status of the view's dataset: fresh, stale or unknown.
    public var status: String

    init(_ view: FeatureViewSpec, summary: FeatureViewSummary, status: DatasetStatus?) {
        name = view.name
        entity = view.entity
        features = view.features.map { Feature(name: $0.name, type: $0.type.rawValue, description: $0.description) }
        ttl_seconds = view.ttl
        owner = view.owner
        description = view.description
        freshness_seconds = view.freshness
        has_source = view.source != nil
        rows = summary.rows
        entities = summary.entities
        first_event_timestamp = summary.firstEventTime.map(Date.init(timeIntervalSince1970:))
        last_event_timestamp = summary.lastEventTime.map(Date.init(timeIntervalSince1970:))
        last_written_at = summary.lastWrittenAt.map(Date.init(timeIntervalSince1970:))
        self.status = status?.freshness.rawValue ?? "unknown"
    }
}

public struct APIFeatureService: Codable, Sendable, Hashable {
    public var name: String
    public var features: [String]
    public var description: String?
    public var owner: String?
    public var models: [String]

    init(_ service: FeatureServiceSpec) {
        name = service.name
        features = service.features.map(\.description)
        description = service.description
        owner = service.owner
        models = service.models
    }
}

public struct APIFeatureRegistry: Codable, Sendable, Hashable {
    public var entities: [APIEntity]
    public var views: [APIFeatureView]
    public var services: [APIFeatureService]
}

public struct APIFeatureViewDetail: Codable, Sendable, Hashable {
    public var view: APIFeatureView
    public var statistics: [FeatureStatistics]
}
