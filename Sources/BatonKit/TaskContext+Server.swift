import BatonAPI
import Foundation
import Synchronization

extension TaskContext {
    /// Publishes an event: every pipeline triggered by `name` (whose filter matches) starts a run.
    ///
    /// The default id is derived from the run, the task and the name (`run-12-load-data.customers.updated`,
    /// then `-2`, `-3` for more in the same attempt), so a retried attempt does not start the
    /// subscribers again; pass `id` to choose. The default source is `PIPELINE.TASK`.
    @discardableResult
    public func publishEvent(
        _ name: String, payload: some Encodable = [String: JSONValue](), id: String? = nil, source: String? = nil
    ) async throws(TaskRequestError) -> PublishedEvent {
        let body: JSONValue
        do {
            body = try TaskOutput.json(payload)
        } catch {
            throw TaskRequestError(request: "publish event \(name)", message: "the payload is not JSON: \(error.detail)")
        }
        guard case .object = body else {
            throw TaskRequestError(
                request: "publish event \(name)", message: "the payload must encode to a JSON object, got a \(body.kindName)")
        }
        let request = PublishRequest(
            name: name, payload: body, id: id ?? published.nextID(for: name, run: runID, task: task),
            source: source ?? "\(pipeline).\(task)")
        let answer = try await send("publish event \(name)", path: "/api/v1/events", body: request, as: PublishAnswer.self)
        return PublishedEvent(id: answer.event.id, duplicate: answer.duplicate, runIDs: answer.run_ids)
    }

    /// Records one point of a shared metric (`baton metrics`, the dashboard, `/metrics`).
    public func emitMetric(
        _ name: String, _ value: Double, tags: [String: String] = [:], timestamp: Date? = nil
    ) async throws(TaskRequestError) {
        let point = APIMetricPointInput(name: name, value: value, tags: tags.isEmpty ? nil : tags, timestamp: timestamp)
        _ = try await send(
            "emit metric \(name)", path: "/api/v1/metrics", body: APIMetricEmitRequest(point: point),
            as: APIMetricsRecorded.self)
    }

    private func send<Answer: Decodable>(
        _ what: String, path: String, body: some Encodable, as type: Answer.Type
    ) async throws(TaskRequestError) -> Answer {
        guard let server = environment["BATON_SERVER"], !server.isEmpty else {
            throw TaskRequestError(
                request: what, message: "BATON_SERVER is not set; this works in steps run by a worker of a Baton server")
        }
        do {
            let client = try BatonClient(server: server, token: environment["BATON_TOKEN"].flatMap { $0.isEmpty ? nil : $0 })
            return try await client.post(path, body: body, as: type)
        } catch {
            throw TaskRequestError(request: what, status: error.status, message: error.message)
        }
    }

    /// The fields of `POST /api/v1/events`' answer a step needs.
    struct PublishAnswer: Decodable {
        struct Event: Decodable { var id: String }
        var event: Event
        var duplicate: Bool
        var run_ids: [Int64]
    }

    struct PublishRequest: Encodable {
        var name: String
        var payload: JSONValue
        var id: String
        var source: String
    }
}

/// The answer to `TaskContext.publishEvent`.
public struct PublishedEvent: Sendable, Hashable {
    public var id: String
    /// True when an event with this id was published before: nothing started again.
    public var duplicate: Bool
    /// The runs the event started.
    public var runIDs: [Int64]
}

/// A call from a step to the Baton server failed.
public struct TaskRequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What the step asked for, such as `publish event data.customers.updated`.
    public var request: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    public var message: String

    public var description: String { "cannot \(request): \(message)" }
}

/// Counts the events an attempt published by name, for their default ids.
final class PublishedNames: Sendable {
    private let counts = Mutex<[String: Int]>([:])

    func nextID(for name: String, run: Int64, task: String) -> String {
        let count = counts.withLock { counts -> Int in
            counts[name, default: 0] += 1
            return counts[name]!
        }
        return "run-\(run)-\(task)-\(name)" + (count > 1 ? "-\(count)" : "")
    }
}
