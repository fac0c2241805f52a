import Foundation
import HTTPTypes
import Hummingbird
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
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: context.metrics.render())))
        }
    }
}

/// Counts and times API requests by method and status.
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = BatonRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            let elapsed = ContinuousClock.now - start
            let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
            Metrics.Timer(
                label: "baton_http_request_duration_seconds",
                dimensions: [("method", request.method.rawValue), ("status", String(status))]
            ).recordNanoseconds(nanoseconds)
        }
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
