import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import Synchronization

/// The process-wide Prometheus registry behind swift-metrics. swift-metrics can be bootstrapped
/// once per process, so every server in a process shares this one.
public final class MetricsRegistry: Sendable {
    public let registry: PrometheusCollectorRegistry

    public static let shared = MetricsRegistry()

    private init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let fast: [Duration] = [
            .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1),
            .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
        ]
        let slow: [Duration] = [
            .milliseconds(10), .milliseconds(100), .milliseconds(500), .seconds(1), .seconds(5), .seconds(10),
            .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(3600), .seconds(4 * 3600),
        ]
        factory.durationHistogramBuckets = [
            "baton_scheduling_delay_seconds": fast,
            "baton_store_commit_seconds": fast,
            "baton_http_request_duration_seconds": fast,
            "baton_serve_latency_seconds": fast,
            "baton_task_duration_seconds": slow,
            "baton_run_duration_seconds": slow,
        ]
        MetricsSystem.bootstrap(factory)
    }

    /// The exposition text, with a `# HELP` line before each `# TYPE` line.
    public func render() -> String { Self.addingHelp(to: registry.emitToString()) }

    /// What each metric means. swift-metrics has no place for help text and the Prometheus
    /// factory registers every metric with an empty one, so the exposition would lack `# HELP`
    /// lines, which `promtool check metrics` reports as a problem; they are added on output.
    static let helpTexts: [String: String] = [
        "baton_runs_started_total": "Runs that started running, by pipeline and owner.",
        "baton_runs_finished_total": "Runs that ended, by pipeline, owner and final state (success, failed, cancelled).",
        "baton_run_duration_seconds": "Time from a run's start to its end, by pipeline, owner and final state.",
        "baton_task_duration_seconds": "Duration of finished task attempts, by pipeline, owner and outcome (success or failed).",
        "baton_scheduling_delay_seconds": "Time from a task becoming ready to its attempt being started.",
        "baton_queue_depth": "Tasks that are ready and waiting for a free worker slot.",
        "baton_busy_slots": "Worker slots running a task attempt now.",
        "baton_worker_slots": "Worker slots of this process (tasks that may run at once).",
        "baton_store_commit_seconds": "Time to commit a batch of state changes to the store.",
        "baton_http_request_duration_seconds": "Time to answer HTTP requests, by method and status code.",
        "baton_serve_requests_total": "Prediction requests a deployment's version answered or failed, by deployment and version (shadow copies included).",
        "baton_serve_errors_total": "Failed prediction requests (5xx answers, refused connections, timeouts), by deployment and version.",
        "baton_serve_latency_seconds": "Time for a version's replica to answer a prediction through the gateway, by deployment and version.",
    ]

    static func addingHelp(to text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count + 2048)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst("# TYPE ".count).split(separator: " ").first.map(String.init) ?? ""
                if let help = helpTexts[name] { output += "# HELP \(name) \(help)\n" }
            }
            output += line
            output += "\n"
        }
        // split keeps a final empty piece after the last newline; do not add a second one.
        if text.hasSuffix("\n") || text.isEmpty { output.removeLast() }
        return output
    }
}

enum MetricsRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.get("/metrics") { _, requestContext -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            var text = context.metrics.render()
            do {
                let series = try await context.store.metricSeries(name: nil)
                if !text.isEmpty && !text.hasSuffix("\n") { text += "\n" }
                text += UserMetricsExposition.render(series)
            } catch {
                // The process's own metrics are still worth serving when the store is unwell.
                requestContext.logger.error("could not read user metrics for /metrics: \(error)")
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
    }
}

/// The latest value of every stored metric series as one gauge family, `baton_user_metric`,
/// with the metric's name in the `name` label and its tags as further labels.
enum UserMetricsExposition {
    static let family = "baton_user_metric"
    /// Prometheus scrapes are meant to stay small; a store with more series than this (high
    /// cardinality tags) exports the most recently updated ones.
    static let maxSeries = 10_000

    static func render(_ series: [MetricSeries]) -> String {
        guard !series.isEmpty else { return "" }
        var kept = series
        if kept.count > maxSeries {
            kept = Array(kept.sorted { $0.lastTimestamp > $1.lastTimestamp }.prefix(maxSeries))
        }
        var output = "# HELP \(family) Latest value of each metric series reported to Baton (POST /api/v1/metrics, "
        output += "baton metrics emit, and the engine's pipeline.duration and pipeline.success), by metric name and tags.\n"
        output += "# TYPE \(family) gauge\n"
        // Different tag sets can become the same labels once sanitized (`a.b` and `a_b`); a
        // repeated series would make the exposition invalid, so the most recent one wins.
        var values: [String: Double] = [:]
        for item in kept.sorted(by: { $0.lastTimestamp > $1.lastTimestamp }) {
            let labels = self.labels(name: item.name, tags: item.tags)
            if values[labels] == nil { values[labels] = item.lastValue }
        }
        for (labels, value) in values.sorted(by: { $0.key < $1.key }) {
            output += "\(family){\(labels)} \(number(value))\n"
        }
        return output
    }

    /// `name="..."` then the tags by key, each key made a valid, unreserved label name.
    static func labels(name: String, tags: [String: String]) -> String {
        var used: Set<String> = ["name"]
        var parts = ["name=\"\(escape(name))\""]
        // An empty label value means "no such label" to Prometheus; writing it would only make
        // `owner=""` and a missing owner look like two series when they are one.
        for (key, value) in tags.sorted(by: { $0.key < $1.key }) where !value.isEmpty {
            var label = labelName(key)
            if label == "name" || label.hasPrefix("__") { label = "tag_" + label }
            var candidate = label
            var suffix = 2
            while used.contains(candidate) {
                candidate = "\(label)_\(suffix)"
                suffix += 1
            }
            used.insert(candidate)
            parts.append("\(candidate)=\"\(escape(value))\"")
        }
        return parts.joined(separator: ",")
    }

    /// A label name matching `[a-zA-Z_][a-zA-Z0-9_]*`: other characters become `_`.
    static func labelName(_ key: String) -> String {
        var result = ""
        for scalar in key.unicodeScalars {
            let isLetter = scalar.isASCII && (("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || scalar == "_")
            let isDigit = ("0"..."9").contains(scalar)
            if result.isEmpty && isDigit { result += "_" }
            result += isLetter || isDigit ? String(scalar) : "_"
        }
        return result.isEmpty ? "_" : result
    }

    /// Label values escape backslash, double quote and newline, as the text format requires.
    static func escape(_ value: String) -> String {
        var result = ""
        for character in value {
            switch character {
            case "\\": result += "\\\\"
            case "\"": result += "\\\""
            case "\n": result += "\\n"
            default: result.append(character)
            }
        }
        return result
    }

    static func number(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}

/// Counts and times API requests by method and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = BatonRequestContext

    /// One timer per method and status, made once: making one goes through the metrics
    /// factory's registry (a lock, label strings, a lookup), which cost every request the same
    /// work again.
    private static let timers = Mutex<[String: Metrics.Timer]>([:])

    static func timer(method: String, status: Int) -> Metrics.Timer {
        let key = method + " " + String(status)
        return timers.withLock { timers in
            if let existing = timers[key] { return existing }
            let created = Metrics.Timer(
                label: "baton_http_request_duration_seconds", dimensions: [("method", method), ("status", String(status))])
            timers[key] = created
            return created
        }
    }

    /// Records one answered request (also for those the hot path answers before the router).
    static func record(method: String, status: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        timer(method: method, status: status).recordNanoseconds(nanoseconds)
    }

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer { Self.record(method: request.method.rawValue, status: status, since: start) }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as any HTTPResponseError {
            status = error.status.code
            throw error
        }
    }
}
