import BatonCore
import BatonEngine
import BatonStore
import Foundation

#if canImport(CDispatch)
    // timespec resolves through CDispatch once NIO is linked in (see OpenLoopLoad.swift).
    import CDispatch
#endif
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// `baton-bench events`: latency from publishing an event to the first task of the run it
/// triggers running: the task's own process reads the wall clock as its first act and reports
/// it as its output, so the figure includes recording the event, matching the trigger,
/// creating the run, committing the attempt and spawning the process.
enum EventBenchmark {
    static func run(count: Int) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-event-bench-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        try "name: consumer\ntriggers: [data.customers.updated]\ntasks:\n  first:\n    run: |\n      echo \"{\\\"started_ns\\\": $(date +%s%N)}\" > \"$BATON_OUTPUT\"\n"
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
        var latencies: [Double] = []
        for index in 0..<(count + 10) {
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            let publishedNanoseconds = Double(now.tv_sec) * 1e9 + Double(now.tv_nsec)
            let published = try await engine.publish(
                name: "data.customers.updated", payload: ["record_count": .number(Double(index))], id: "bench-\(index)")
            guard let runID = published.runIDs.first else { throw BenchError("event \(index) started no run") }
            guard try await engine.waitUntilFinished(runID: runID) == .success,
                case .number(let started)? = try await store.taskInstances(runID: runID).first?.output?["started_ns"]
            else { throw BenchError("run \(runID) did not report its start") }
            // The first ten warm caches and the SQLite file; they are not counted.
            if index >= 10 { latencies.append((started - publishedNanoseconds) / 1e9) }
        }
        latencies.sort()
        func percentile(_ p: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] }
        print(String(format: "EVENTS: publish -> first task started, %d events: p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     latencies.count, percentile(0.5) * 1000, percentile(0.99) * 1000, latencies.last! * 1000))
    }
}
