import BatonEngine
import ServiceLifecycle

/// Runs the engine as a service: on graceful shutdown (SIGTERM, Ctrl-C) it stops starting
/// tasks, stops the running ones and requeues them for the next start.
public struct EngineService: Service {
    public let engine: Engine

    public init(engine: Engine) {
        self.engine = engine
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await engine.run()
        }
    }
}
