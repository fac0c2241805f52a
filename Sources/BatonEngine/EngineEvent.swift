import BatonCore
import Foundation
import Synchronization

/// A change the engine made, for live views (server-sent events) and tests.
public struct EngineEvent: Sendable, Hashable, Codable {
    public enum Kind: String, Sendable, Hashable, Codable {
        case run, task
    }

    public var kind: Kind
    public var runID: Int64
    public var pipeline: String
    /// For task events.
    public var task: String?
    public var state: String
    public var reason: String?
    public var at: Date

    public init(kind: Kind, runID: Int64, pipeline: String, task: String? = nil, state: String, reason: String? = nil, at: Date) {
        self.kind = kind
        self.runID = runID
        self.pipeline = pipeline
        self.task = task
        self.state = state
        self.reason = reason
        self.at = at
    }
}

/// Fans engine events out to subscribers. Each subscriber has a bounded buffer: a consumer
/// too slow to keep up loses the oldest events rather than growing the server's memory.
final class EventBroadcaster: Sendable {
    private let subscribers = Mutex<[UUID: AsyncStream<EngineEvent>.Continuation]>([:])
    static let bufferPerSubscriber = 1024

    func subscribe() -> AsyncStream<EngineEvent> {
        let (stream, continuation) = AsyncStream.makeStream(
            of: EngineEvent.self, bufferingPolicy: .bufferingNewest(Self.bufferPerSubscriber))
        let id = UUID()
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ event: EngineEvent) {
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets { continuation.yield(event) }
    }

    var hasSubscribers: Bool { subscribers.withLock { !$0.isEmpty } }
}
