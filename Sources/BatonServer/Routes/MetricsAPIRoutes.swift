import BatonAPI
import BatonCore
import BatonStore
import Foundation
import Hummingbird

/// `/api/v1/metrics`: record points (one or a batch), list series, and query a metric in time
/// buckets per series. Everyone reports to the same store, so one dashboard shows every team.
enum MetricsAPIRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/metrics")

        group.post { request, _ -> Response in
            var request = request
            let body = try await request.decodeJSON(
                APIMetricEmitRequest.self, limit: context.configuration.maxBodyBytes, fields: APIMetricEmitRequest.fields)
            let points = try points(of: body, now: Date())
            do {
                try await context.store.recordMetrics(points)
            } catch let error as MetricValidationError {
                // Checked above already; kept so a store-side bound can never surface as a 500.
                throw APIError.badRequest(error.description, field: error.field)
            }
            return APIResponse.json(APIMetricsRecorded(recorded: points.count), status: .created)
        }

        group.get { request, _ -> Response in
            let name = request.query("name")
            if let name {
                do throws(MetricValidationError) {
                    try MetricLimits.validateName(name)
                } catch {
                    throw APIError.badRequest(error.description, field: "name")
                }
            }
            let limit = try request.queryInt("limit", default: 1000, range: 1...10_000)
            let series = try await context.store.metricSeries(name: name)
            return APIResponse.json(APIList(items: series.prefix(limit).map(APIMetricSeries.init)))
        }

        group.get("query") { request, _ -> Response in
            let query = try query(from: request, now: Date())
            do {
                return APIResponse.json(try await query.run(on: context.store))
            } catch let error as MetricQueryError {
                throw APIError.badRequest(error.message, field: error.field)
            }
        }
    }

    /// The points of a request body, validated, with `points.N.` before the field of a batch's
    /// bad point so the client knows which one to fix.
    static func points(of body: APIMetricEmitRequest, now: Date) throws -> [MetricPoint] {
        let inputs: [(prefix: String, point: APIMetricPointInput)]
        if let batch = body.points {
            if let single = ["name", "value", "tags", "timestamp"].first(where: { body.has($0) }) {
                throw APIError.badRequest(
                    "send either one point (name, value, tags, timestamp) or a batch in points, not both", field: single)
            }
            guard !batch.isEmpty else { throw APIError.badRequest("points is empty; send 1 to 1000 points", field: "points") }
            guard batch.count <= APIMetricEmitRequest.maxPoints else {
                throw APIError.badRequest(
                    "\(batch.count) points in one request; at most \(APIMetricEmitRequest.maxPoints): split the batch",
                    field: "points")
            }
            inputs = batch.enumerated().map { ("points.\($0.offset).", $0.element) }
        } else {
            guard let name = body.name else { throw APIError.badRequest("missing field 'name'", field: "name") }
            guard let value = body.value else { throw APIError.badRequest("missing field 'value'", field: "value") }
            inputs = [("", APIMetricPointInput(name: name, value: value, tags: body.tags, timestamp: body.timestamp))]
        }
        return try inputs.map { prefix, input in
            let point = MetricPoint(name: input.name, tags: input.tags ?? [:], value: input.value, timestamp: input.timestamp ?? now)
            do throws(MetricValidationError) {
                try MetricLimits.validate(point)
            } catch {
                throw APIError.badRequest(error.description, field: prefix + error.field)
            }
            return point
        }
    }

    /// A query from `name`, `tags`, `from`, `to` (the last 24 hours by default), `step` (a
    /// round step giving about 120 buckets by default), `agg` (avg) and `group_by`.
    static func query(from request: Request, now: Date) throws -> MetricQuery {
        guard let name = request.query("name"), !name.isEmpty else {
            throw APIError.badRequest("the query needs a metric name: ?name=pipeline.duration", field: "name")
        }
        do {
            let tags = try request.query("tags").map { text throws(MetricQueryError) in try MetricQuery.parseTags(text) } ?? [:]
            let to = try request.queryDate("to") ?? now
            let from = try request.queryDate("from") ?? to.addingTimeInterval(-86400)
            let step = try request.query("step").map { text throws(MetricQueryError) in try MetricQuery.parseStep(text) }
            let aggregation = try request.query("agg").map { text throws(MetricQueryError) in
                try MetricQuery.parseAggregation(text)
            } ?? .avg
            let groupBy = try request.query("group_by").map { text throws(MetricQueryError) in
                try MetricQuery.parseGroupBy(text)
            }
            let query = MetricQuery(
                name: name, tags: tags, from: from, to: to, step: step, aggregation: aggregation, groupBy: groupBy)
            try query.validate()
            return query
        } catch let error as MetricQueryError {
            throw APIError.badRequest(error.message, field: error.field)
        }
    }
}

extension APIMetricEmitRequest {
    func has(_ field: String) -> Bool {
        switch field {
        case "name": return name != nil
        case "value": return value != nil
        case "tags": return tags != nil
        case "timestamp": return timestamp != nil
        default: return points != nil
        }
    }
}
