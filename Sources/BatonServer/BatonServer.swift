import BatonAPI
import BatonCore
import BatonDeploy
import BatonEngine
import BatonGateway
import BatonRegistry
import BatonStore
import Foundation
import Hummingbird
import Logging

/// BatonServer owns Baton's HTTP face: the REST API under `/api/v1` with its OpenAPI document,
/// the server-rendered web UI with live updates over server-sent events, health probes,
/// Prometheus metrics, and API-token authentication.
public struct ServerConfiguration: Sendable {
    public var host: String
    /// 0 picks a free port; the chosen one is reported through `onListening`.
    public var port: Int
    public var requireAuth: Bool
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int
    /// Where MLflow artifacts (model files, plots) are kept; several servers must share it.
    public var artifactRoot: String
    /// Largest artifact file accepted, in bytes.
    public var maxArtifactBytes: Int64

    public init(
        host: String = "127.0.0.1", port: Int = 8080, requireAuth: Bool = false, maxBodyBytes: Int = 1 << 20,
        artifactRoot: String = ".baton/artifacts", maxArtifactBytes: Int64 = 5 << 30
    ) {
        self.host = host
        self.port = port
        self.requireAuth = requireAuth
        self.maxBodyBytes = maxBodyBytes
        self.artifactRoot = URL(fileURLWithPath: artifactRoot).standardizedFileURL.path
        self.maxArtifactBytes = maxArtifactBytes
    }

    /// Whether the address only accepts connections from this machine.
    public static func isLoopback(_ host: String) -> Bool {
        host == "127.0.0.1" || host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}

/// What every route can reach.
public struct ServerContext: Sendable {
    public let store: any Store
    public let engine: Engine
    public let configuration: ServerConfiguration
    public let tokens: TokenService
    public let metrics: MetricsRegistry
    public let pipelinesDirectory: String
    public let startedAt: Date
    /// Whether this replica schedules; nil for a server that always does (one process).
    public let leadership: Leadership?
    /// Experiment tracking and the model registry.
    public let registry: Registry
    /// Model deployments; it supervises replicas only while this server leads.
    public let deployments: DeploymentManager?
    /// Proxies `POST /serve/{deployment}/predict` to model replicas (BatonDeploy sets its policies).
    public let gateway: Gateway
    public var maxArtifactBytes: Int64 { configuration.maxArtifactBytes }

    public init(
        store: any Store, engine: Engine, configuration: ServerConfiguration, metrics: MetricsRegistry,
        pipelinesDirectory: String, leadership: Leadership? = nil, deployments: DeploymentManager? = nil,
        gateway: Gateway? = nil
    ) {
        self.leadership = leadership
        self.deployments = deployments
        self.store = store
        self.engine = engine
        self.configuration = configuration
        self.tokens = TokenService(store: store)
        self.metrics = metrics
        self.pipelinesDirectory = pipelinesDirectory
        self.startedAt = Date()
        self.registry = Registry(store: store, artifactRoot: configuration.artifactRoot)
        self.gateway = gateway ?? Gateway(logger: Logger(label: "baton.gateway"))
    }
}

/// Builds the HTTP application: routes, middleware and error handling.
public enum BatonHTTP {
    public static func router(context: ServerContext) -> Router<BatonRequestContext> {
        let router = Router(context: BatonRequestContext.self)
        router.add(middleware: ErrorShapeMiddleware())
        router.add(middleware: RequestMetricsMiddleware())
        HealthRoutes.register(on: router, context: context)
        router.add(middleware: AuthMiddleware(context: context))
        if let leadership = context.leadership {
            router.add(middleware: LeaderForwardingMiddleware(leadership: leadership, maxBodyBytes: context.configuration.maxBodyBytes))
        }
        MetricsRoutes.register(on: router, context: context)
        PipelineRoutes.register(on: router, context: context)
        RunRoutes.register(on: router, context: context)
        EventRoutes.register(on: router, context: context)
        CatalogRoutes.register(on: router, context: context)
        FeatureRoutes.register(on: router, context: context)
        TokenRoutes.register(on: router, context: context)
        WorkerRoutes.register(on: router, context: context)
        MetricsAPIRoutes.register(on: router, context: context)
        MLflowRoutes.register(on: router, context: context, registry: context.registry)
        ModelRoutes.register(on: router, context: context)
        DeploymentRoutes.register(on: router, context: context)
        ServeRoutes.register(on: router, context: context)
        OpenAPIRoutes.register(on: router)
        WebUI.register(on: router, context: context)
        DashboardPage.register(on: router, context: context)
        return router
    }

    public static func application(
        context: ServerContext, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        // With auth on, every request needs its token checked against the store: the router does it.
        let hotPath = context.configuration.requireAuth || ProcessInfo.processInfo.environment["BATON_HOT_PATH"] == "0"
            ? nil : HotPathContext(context)
        return Application(
            router: router(context: context),
            server: .http1(configuration: .init(additionalChannelHandlers: hotPath.map { [HotPathHandler($0)] } ?? [])),
            configuration: .init(
                address: .hostname(context.configuration.host, port: context.configuration.port),
                serverName: "Baton"),
            onServerRunning: { channel in
                await onListening(channel.localAddress?.port ?? context.configuration.port)
            },
            logger: logger)
    }
}
