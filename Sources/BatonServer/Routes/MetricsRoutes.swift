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

    /// The exposition text.
    public func render() -> String { registry.emitToString() }
}

enum MetricsRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(
                status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: context.metrics.registry.emitToBuffer())))
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
