import BatonCore
import BatonStore
import Foundation
import Logging

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `baton-bench scale`: the real `baton` binary as users deploy it: a server and `baton worker`
/// processes on loopback, on SQLite (`baton up`) and, with `--postgres URL`, on PostgreSQL.
///
/// FANOUT: N independent `true` tasks and a join, triggered over the API; tasks per second
/// from the trigger to the run's end. Scheduling figures come from the store's own times:
/// queue wait (queued → claimed) and slot gap (a slot's previous attempt reported → its next
/// attempt claimed, while work was waiting): the per-task cost of handing work out.
/// CHAIN: 40 chained tasks on the same workers; milliseconds per chained task.
enum ScaleBenchmark {
    struct Configuration {
        var name: String
        var database: String
        var serverArguments: [String]
        var workers: Int
        var workerSlots: Int
    }

    static func run(arguments: [String]) async throws {
        var tasks = 10_000
        var workers = 4
        var workerSlots = 2
        var postgres: String?
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--tasks": tasks = Int(iterator.next() ?? "") ?? tasks
            case "--workers": workers = Int(iterator.next() ?? "") ?? workers
            case "--worker-slots": workerSlots = Int(iterator.next() ?? "") ?? workerSlots
            case "--postgres": postgres = iterator.next()
            default: break
            }
        }
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("baton").path
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            print("scale: \(binary) is missing; build it: swift build -c release --product baton")
            return
        }
        let slots = workers * workerSlots
        var configurations = [
            Configuration(
                name: "SQLite, baton up + \(workers) workers x \(workerSlots) slots", database: "sqlite",
                serverArguments: ["up", "--slots", "0"], workers: workers, workerSlots: workerSlots),
            Configuration(
                name: "SQLite, baton up with \(slots) slots of its own", database: "sqlite",
                serverArguments: ["up", "--slots", String(slots)], workers: 0, workerSlots: 0),
        ]
        if let postgres {
            configurations.append(
                Configuration(
                    name: "PostgreSQL, baton server + \(workers) workers x \(workerSlots) slots", database: postgres,
                    serverArguments: ["server", "--slots", "0"], workers: workers, workerSlots: workerSlots))
        } else {
            print("scale: pass --postgres postgres://USER@HOST:PORT/DB (an empty database) to measure PostgreSQL too")
        }
        for configuration in configurations {
            try await measure(configuration, binary: binary, tasks: tasks)
        }
    }

    static func measure(_ configuration: Configuration, binary: String, tasks: Int) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-scale-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try fanoutYAML(tasks).replacingOccurrences(of: "name: fanout", with: "name: fanout_scale")
            .write(toFile: root + "/pipelines/fanout_scale.yaml", atomically: true, encoding: .utf8)
        try chainYAML(40).replacingOccurrences(of: "name: chain", with: "name: chain_scale")
            .write(toFile: root + "/pipelines/chain_scale.yaml", atomically: true, encoding: .utf8)
        let database = configuration.database == "sqlite" ? root + "/baton.db" : configuration.database
        let server = try await start(
            binary: binary,
            arguments: configuration.serverArguments + [
                "--db", database, "--data-dir", root + "/data", "--pipelines", root + "/pipelines", "--port", "0",
            ], root: root)
        var processes = [server.process]
        defer {
            // SIGKILL: a child started by Foundation's Process from async code may block SIGTERM
            // (swift-corelibs-foundation#4772), and waiting for it would hang the benchmark.
            for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
            for process in processes { process.waitUntilExit() }
        }
        for index in 0..<configuration.workers {
            let worker = Process()
            worker.executableURL = URL(fileURLWithPath: binary)
            worker.arguments = [
                "worker", "--server", server.url, "--slots", String(configuration.workerSlots), "--id", "bench-\(index)",
                "--work-dir", root + "/worker-\(index)", "--log-level", "warning",
            ]
            worker.standardOutput = FileHandle.nullDevice
            worker.standardError = FileHandle.nullDevice
            try worker.run()
            processes.append(worker)
        }
        let store = try await benchStore(database)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let (_, response) = try? await URLSession.shared.data(from: URL(string: server.url + "/readyz")!),
                (response as? HTTPURLResponse)?.statusCode == 200
            {
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        let chain = try await timeRun(server.url, pipeline: "chain_scale")
        let fanout = try await timeRun(server.url, pipeline: "fanout_scale")
        let attempts = try await store.attempts(runID: fanout.id, task: nil)
        let queueWaits = attempts.compactMap { attempt in attempt.queuedAt.map { attempt.startedAt.timeIntervalSince($0) } }
        let gaps = slotGaps(attempts)
        print("\(configuration.name):")
        print(String(format: "  CHAIN40: %.1f ms per chained task (%.0f ms wall)", chain.seconds * 1000 / 40, chain.seconds * 1000))
        print(
            String(
                format: "  FANOUT%d: %.0f tasks/s (%.2f s wall, %d attempts)", tasks, Double(tasks + 1) / fanout.seconds,
                fanout.seconds, attempts.count))
        print(
            String(
                format: "  queue wait (queued -> claimed): p50 %.1f ms, p99 %.1f ms", percentile(queueWaits, 50) * 1000,
                percentile(queueWaits, 99) * 1000))
        print(
            String(
                format: "  scheduling delay (slot freed -> next attempt claimed, work waiting): p50 %.2f ms, p99 %.2f ms",
                percentile(gaps, 50) * 1000, percentile(gaps, 99) * 1000))
    }

    static func benchStore(_ database: String) async throws -> any Store {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        return try await openStore(StoreLocation(parsing: database), logger: logger)
    }

    /// For each worker, replays its attempts in claim order over its slots: the time between a
    /// slot's previous attempt ending and its next claim, when the next was already queued.
    static func slotGaps(_ attempts: [AttemptRecord]) -> [Double] {
        var gaps: [Double] = []
        for (_, mine) in Dictionary(grouping: attempts, by: { $0.workerID ?? "" }) {
            var freeAt: [Date] = []
            for attempt in mine.sorted(by: { $0.startedAt < $1.startedAt }) {
                guard let ended = attempt.endedAt else { continue }
                if let index = freeAt.indices.filter({ freeAt[$0] <= attempt.startedAt }).max(by: { freeAt[$0] < freeAt[$1] }) {
                    if let queued = attempt.queuedAt, queued <= freeAt[index] {
                        gaps.append(attempt.startedAt.timeIntervalSince(freeAt[index]))
                    }
                    freeAt[index] = ended
                } else {
                    freeAt.append(ended)
                }
            }
        }
        return gaps
    }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p / 100).rounded()))]
    }

    /// Triggers a run over the API and waits for its end; the wall time between the two.
    static func timeRun(_ url: String, pipeline: String) async throws -> (id: Int64, seconds: Double) {
        var request = URLRequest(url: URL(string: url + "/api/v1/runs")!)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = Data("{\"pipeline\": \"\(pipeline)\"}".utf8)
        let start = ContinuousClock.now
        let (data, _) = try await URLSession.shared.data(for: request)
        guard let id = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["id"] as? Int else {
            throw BenchError("could not trigger \(pipeline): \(String(decoding: data, as: UTF8.self))")
        }
        // The run list carries no task table: polling the run itself would fetch 10,000 tasks.
        while true {
            let (body, _) = try await URLSession.shared.data(from: URL(string: url + "/api/v1/runs?pipeline=\(pipeline)&limit=1")!)
            let items = (try JSONSerialization.jsonObject(with: body) as? [String: Any])?["items"] as? [[String: Any]]
            let state = items?.first(where: { $0["id"] as? Int == id })?["state"] as? String
            if state == "success" { return (Int64(id), seconds(ContinuousClock.now - start)) }
            if state == "failed" || state == "cancelled" { throw BenchError("run \(id) of \(pipeline) \(state ?? "")") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Starts a `baton` server and returns once it logs the address it listens on.
    static func start(binary: String, arguments: [String], root: String, environment: [String: String]? = nil)
        async throws -> APIBenchmark.Server
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let logPath = root + "/server.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression) {
                return APIBenchmark.Server(process: process, url: String(text[range]))
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.terminate()
        throw BenchError("the server did not report its address; log: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
    }
}
