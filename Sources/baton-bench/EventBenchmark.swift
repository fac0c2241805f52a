import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Logging

/// `baton-bench events`: latency from publishing an event to the first task of the run it
/// triggers being started (its attempt recorded and its process spawned), on the durable
/// SQLite store, in process.
enum EventBenchmark {
    static func run(count: Int) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-event-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        try "name: consumer\ntriggers: [data.customers.updated]\ntasks:\n  first: {run: \"true\"}\n"
            .write(toFile: root + "/pipelines/consumer.yaml", atomically: true, encoding: .utf8)
        let store = try SQLiteStore(path: root + "/baton.db")
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let engine = Engine(
            store: store,
            configuration: EngineConfiguration(
                pipelinesDirectory: root + "/pipelines", dataDirectory: root, watchFiles: false, schedulerEnabled: false),
            logger: logger)
        let runner = Task { try await engine.run() }
        defer { runner.cancel() }
        while await !engine.isRunning() { try await Task.sleep(for: .milliseconds(1)) }
        let events = engine.events()
        var iterator = events.makeAsyncIterator()
        var latencies: [Double] = []
        for index in 0..<(count + 10) {
            let start = ContinuousClock.now
            let published = try await engine.publish(
                name: "data.customers.updated", payload: ["record_count": .number(Double(index))], id: "bench-\(index)")
            guard let runID = published.runIDs.first else { throw BenchError("event \(index) started no run") }
            while let event = await iterator.next() {
                if event.kind == .task, event.runID == runID, event.task == "first", event.state == "running" { break }
            }
            let elapsed = ContinuousClock.now - start
            // The first ten warm caches and the SQLite file; they are not counted.
            if index >= 10 { latencies.append(seconds(elapsed)) }
            _ = try await engine.waitUntilFinished(runID: runID)
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print(String(format: "EVENTS: publish -> first task started, %d events: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     latencies.count, percentile(0.5) * 1000, percentile(0.99) * 1000, latencies.last! * 1000))
    }
}
