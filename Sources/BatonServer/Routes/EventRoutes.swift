import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/events`: publish (de-duplicated by id) and list events.
enum EventRoutes {
    struct PublishRequest: Codable {
        var name: String
        var payload: JSONValue?
        var id: String?
        var source: String?
    }

    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/events")

        group.post { request, requestContext -> Response in
            var request = request
            let body = try await request.decodeJSON(
                PublishRequest.self, limit: context.configuration.maxBodyBytes, fields: ["name", "payload", "id", "source"])
            let source = body.source ?? requestContext.identity?.team.map { "team:\($0)" } ?? "api"
            do {
                let published = try await context.engine.publish(
                    name: body.name, payload: body.payload ?? .object([:]), id: body.id, source: source)
                return APIResponse.json(
                    APIPublishedEvent(
                        event: APIEvent(published.event), duplicate: !published.created, run_ids: published.runIDs),
                    status: published.created ? .created : .ok)
            } catch let error as EventError {
                throw APIError.badRequest(error.message, field: error.field)
            }
        }

        group.get { request, _ -> Response in
            let limit = try request.queryInt("limit", default: 50, range: 1...500)
            let before = try request.queryCursor()
            let events = try await context.store.events(
                EventQuery(
                    name: request.query("name"), from: try request.queryDate("from"), to: try request.queryDate("to"),
                    limit: limit + 1, beforeSeq: before))
            let page = Array(events.prefix(limit))
            let next = events.count > limit ? page.last.map { String($0.seq) } : nil
            return APIResponse.json(APIList(items: page.map(APIEvent.init), next_cursor: next))
        }

        group.get(":event") { _, requestContext -> Response in
            let id = requestContext.parameters.get("event") ?? ""
            guard let event = try await context.store.event(id: id) else {
                throw APIError.notFound("no event with id '\(id)'", field: "event")
            }
            return APIResponse.json(APIEvent(event))
        }
    }
}

/// An event as the API shows it.
public struct APIEvent: Codable, Sendable, Hashable {
    public var seq: Int64
    public var id: String
    public var name: String
    public var payload: JSONValue
    public var source: String?
    public var created_at: Date

    init(_ event: EventRecord) {
        seq = event.seq
        id = event.id
        name = event.name
        payload = event.payload
        source = event.source
        created_at = event.createdAt
    }
}

/// The answer to a publish: the stored event, whether it was seen before, and the runs it started.
public struct APIPublishedEvent: Codable, Sendable, Hashable {
    public var event: APIEvent
    public var duplicate: Bool
    public var run_ids: [Int64]
}
