import BatonCore
import BatonDeploy
import BatonGateway
import BatonStore
import Foundation
import HTTPTypes

/// Outcomes reported for answered predictions (`POST /serve/{deployment}/feedback`): each
/// becomes a metric point tagged with the deployment and the version that answered, which the
/// A/B summary, canary analysis thresholds and dashboards all read.
enum Feedback {
    static let maxItems = 1000
    static let maxBodyBytes = 256 * 1024
    static let fields = ["request_id", "metric", "value", "version"]

    struct Report {
        var requestID: String?
        var metric: String
        var value: Double
        var version: String?
    }

    /// One report (`{"request_id", "metric", "value"}`, `version` optional) or an array of them.
    static func parse(_ data: Data) throws -> [Report] {
        guard !data.isEmpty else {
            throw APIError.badRequest("the feedback body is empty")
                .with(fix: #"send {"request_id": "<X-Baton-Request-Id of the prediction>", "metric": "converted", "value": 1}"#)
        }
        let body: JSONValue
        do {
            body = try JSONValue.parse(data)
        } catch {
            throw APIError.badRequest("the feedback body is not JSON: \(error)")
                .with(fix: #"send {"request_id": "...", "metric": "converted", "value": 1}, or an array of such objects"#)
        }
        let items: [JSONValue]
        let many: Bool
        switch body {
        case .array(let array):
            items = array
            many = true
        case .object:
            items = [body]
            many = false
        default:
            throw APIError.badRequest("the feedback body must be a JSON object or an array of objects")
                .with(fix: #"send {"request_id": "...", "metric": "converted", "value": 1}"#)
        }
        guard !items.isEmpty else { throw APIError.badRequest("the feedback array is empty") }
        guard items.count <= maxItems else {
            throw APIError.badRequest("\(items.count) reports in one request; at most \(maxItems)")
                .with(fix: "split them over several requests")
        }
        return try items.enumerated().map { index, item in
            try report(item, prefix: many ? "[\(index)]." : "")
        }
    }

    static func report(_ item: JSONValue, prefix: String) throws -> Report {
        guard let object = item.objectValue else {
            throw APIError.badRequest("\(prefix.isEmpty ? "the report" : "report \(prefix.dropLast())") is not a JSON object")
        }
        if let unknown = object.keys.sorted().first(where: { !fields.contains($0) }) {
            throw APIError.badRequest("unknown field '\(unknown)'; \(Suggest.hint(for: unknown, in: fields))", field: prefix + unknown)
        }
        guard case .string(let metric)? = object["metric"], !metric.isEmpty else {
            throw APIError.badRequest("a report needs \"metric\", the outcome's name (e.g. \"converted\")", field: prefix + "metric")
        }
        do {
            try MetricLimits.validateName(metric)
        } catch {
            throw APIError.badRequest("\(error)", field: prefix + "metric")
        }
        let value: Double
        switch object["value"] {
        case .number(let number)? where number.isFinite && abs(number) <= MetricLimits.maxMagnitude: value = number
        case .bool(let flag)?: value = flag ? 1 : 0
        default:
            throw APIError.badRequest(
                "\"value\" must be a finite number (or true/false), got \(object["value"].map { "\($0)" } ?? "nothing")",
                field: prefix + "value"
            ).with(fix: "e.g. 1 for converted, 0 for not, or the order's amount")
        }
        var requestID: String?
        if let raw = object["request_id"], raw != .null {
            guard case .string(let text) = raw, !text.isEmpty, text.utf8.count <= 200 else {
                throw APIError.badRequest("\"request_id\" must be the X-Baton-Request-Id string of the prediction", field: prefix + "request_id")
            }
            requestID = text
        }
        var version: String?
        if let raw = object["version"], raw != .null {
            switch raw {
            case .string(let text) where !text.isEmpty && text.utf8.count <= 64: version = text
            case .number(let number) where number == number.rounded() && number > 0: version = String(Int(number))
            default:
                throw APIError.badRequest("\"version\" must be the X-Baton-Version of the prediction", field: prefix + "version")
            }
        }
        guard requestID != nil || version != nil else {
            throw APIError.badRequest("a report needs \"request_id\" (or \"version\")", field: prefix + "request_id")
                .with(fix: "pass the X-Baton-Request-Id header the prediction was answered with")
        }
        return Report(requestID: requestID, metric: metric, value: value, version: version)
    }

    /// Attributes each report to its version, stores them all in one write (or none), and
    /// answers how many counted; a repeated report of the same request and metric is not
    /// counted twice.
    static func record(_ reports: [Report], deployment: String, context: ServerContext) async throws -> JSONValue {
        let gateway = context.gateway
        var known: Set<String>?
        if let manager = context.deployments {
            try await manager.refreshFromStore()
            known = await manager.knownVersions(deployment)
            guard known != nil else {
                throw APIError.notFound("no deployment named '\(deployment)'", field: "deployment")
                    .with(fix: "check the name with `baton deploy status`")
            }
        }
        var claimed: [(requestID: String, metric: String)] = []
        var points: [MetricPoint] = []
        var items: [JSONValue] = []
        let now = Date()
        do {
            for (index, report) in reports.enumerated() {
                let prefix = reports.count > 1 ? "[\(index)]." : ""
                var version = report.version
                var duplicate = false
                if let requestID = report.requestID {
                    if let claim = gateway.claimFeedback(deployment: deployment, requestID: requestID, metric: report.metric) {
                        if !claim.duplicate { claimed.append((requestID, report.metric)) }
                        if let named = version, named != claim.version {
                            throw APIError.badRequest(
                                "request \(requestID) was answered by version \(claim.version), not \(named)", field: prefix + "version")
                                .with(fix: "leave \"version\" out: the gateway knows which version answered")
                        }
                        version = claim.version
                        duplicate = claim.duplicate
                    } else if version == nil {
                        throw APIError.notFound(
                            "request \(requestID) is not among the last \(Gateway.rememberedRequests) requests deployment '\(deployment)' answered on this server",
                            field: prefix + "request_id"
                        ).with(fix: "pass \"version\" too (the X-Baton-Version header of the prediction); the gateway forgets the oldest requests and does not keep them across restarts")
                    }
                }
                guard let version else { continue }
                if let known, !known.contains(version) {
                    throw APIError.badRequest(
                        "version \(version) is not a version deployment '\(deployment)' serves or compared (\(known.sorted().joined(separator: ", ")))",
                        field: prefix + "version")
                }
                if !duplicate {
                    points.append(
                        MetricPoint(
                            name: report.metric, tags: ["deployment": deployment, "version": version, "source": "feedback"],
                            value: report.value, timestamp: now))
                }
                var item: [String: JSONValue] = [
                    "metric": .string(report.metric), "version": .string(version), "counted": .bool(!duplicate),
                ]
                if let requestID = report.requestID { item["request_id"] = .string(requestID) }
                items.append(.object(item))
            }
            if !points.isEmpty { try await context.store.recordMetrics(points) }
        } catch {
            // Nothing was stored: take the claims back so the caller can send the batch again.
            for claim in claimed { gateway.unclaimFeedback(deployment: deployment, requestID: claim.requestID, metric: claim.metric) }
            throw error
        }
        return .object([
            "deployment": .string(deployment), "counted": .number(Double(points.count)),
            "duplicates": .number(Double(reports.count - points.count)), "items": .array(items),
        ])
    }
}
