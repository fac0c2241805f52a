import BatonCore
import BatonStore
import Foundation
import Synchronization
import Testing

@testable import BatonEngine

#if canImport(Glibc)
    import Glibc
#endif

/// A one-shot HTTP listener on 127.0.0.1: records the body of each POST it receives.
final class WebhookReceiver: Sendable {
    final class Bodies: Sendable {
        let value = Mutex<[String]>([])
    }

    let port: Int
    private let socket: Int32
    private let bodies = Bodies()

    init() throws {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.socket = socket
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) }
        }
        guard bound == 0, listen(socket, 8) == 0 else { throw RunRequestError("cannot listen for the webhook") }
        withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(socket, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        let listener = socket
        let bodies = self.bodies
        Thread.detachNewThread {
            while true {
                let connection = accept(listener, nil, nil)
                if connection < 0 { return }
                var request = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 65536)
                // Read until the declared body has arrived.
                while true {
                    let count = read(connection, &buffer, buffer.count)
                    if count <= 0 { break }
                    request += buffer[0..<count]
                    let text = String(decoding: request, as: UTF8.self)
                    if let split = text.range(of: "\r\n\r\n") {
                        let header = text[..<split.lowerBound].lowercased()
                        let length = header.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
                        let body = String(text[split.upperBound...])
                        if body.utf8.count >= length {
                            bodies.value.withLock { $0.append(body) }
                            break
                        }
                    }
                }
                let response = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                _ = response.withCString { write(connection, $0, strlen($0)) }
                close(connection)
            }
        }
    }

    var received: [String] { bodies.value.withLock { $0 } }

    deinit { close(socket) }
}

@Suite struct SLAMonitorTests {
    @Test func aStaleDatasetRaisesAMissEventAndWebhookAndFreshDataClosesIt() async throws {
        let receiver = try WebhookReceiver()
        let harness = try EngineHarness()
        try harness.write(
            "catalog",
            """
            datasets:
              hot_table:
                owner: data_engineering
                freshness: 1s
            teams:
              data_engineering:
                webhook: http://127.0.0.1:\(receiver.port)/hooks/de
            """)
        try harness.write("producer", "name: producer\ntasks:\n  load:\n    run: \"true\"\n    produces: [hot_table]\n")
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let run = try await engine.trigger(pipeline: "producer")
            #expect(try await harness.waitFor(run.id, on: engine) == .success)
            // On a slow machine a miss may open before the first update (no data within 1 s) and
            // close with it; the one this test is about comes after the update.
            func openMissAfterUpdate() async throws -> SLAMissRecord? {
                try await harness.store.slaMisses(dataset: "hot_table", limit: 10)
                    .first { $0.resolvedAt == nil && $0.lastUpdateAt != nil }
            }
            let deadline = ContinuousClock.now + .seconds(30)
            while try await openMissAfterUpdate() == nil || receiver.received.count < 1 {
                guard ContinuousClock.now < deadline else {
                    let open = try await openMissAfterUpdate() != nil
                    let misses = try await harness.store.slaMisses(dataset: "hot_table", limit: 10)
                    let updates = try await harness.store.datasetUpdates("hot_table", limit: 10)
                    throw RunRequestError(
                        "within 30 s: \(open ? "a miss opened" : "no miss opened"), \(receiver.received.count) webhooks arrived; misses \(misses); updates \(updates); now \(Date())")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            let miss = try #require(try await openMissAfterUpdate())
            #expect(miss.freshness == 1)
            let events = try await harness.store.events(EventQuery(name: "sla.missed"))
            #expect(!events.isEmpty)
            #expect(events.allSatisfy { $0.payload["dataset"] == "hot_table" && $0.payload["owner"] == "data_engineering" })
            let webhook = try JSONValue.parse(try #require(receiver.received.first))
            #expect(webhook["dataset"] == "hot_table")
            let status = try #require(await engine.datasetStatuses().first)
            #expect(status.freshness == .stale)
            #expect((status.measuredAvailability ?? 1) < 1)

            let again = try await engine.trigger(pipeline: "producer")
            #expect(try await harness.waitFor(again.id, on: engine) == .success)
            let resolveDeadline = ContinuousClock.now + .seconds(30)
            while try await harness.store.slaMisses(dataset: "hot_table", limit: 10).contains(where: { $0.id == miss.id && $0.resolvedAt == nil }) {
                guard ContinuousClock.now < resolveDeadline else { throw RunRequestError("the miss was not resolved") }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test func availabilityCountsTheFreshShareOfTheWindow() {
        let now = Date(timeIntervalSince1970: 10_000)
        let updates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 5_000)]
        // Fresh for 1,000 s after each update: 2,000 of 10,000 seconds.
        #expect(Engine.availability(updates: updates, freshness: 1_000, now: now) == 0.2)
        #expect(Engine.availability(updates: [], freshness: 1_000, now: now) == nil)
    }
}
