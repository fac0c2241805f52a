import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `baton-bench mlflow`: the same MLflow REST load against Baton and a real `mlflow server`, in
/// one run. Starts both on loopback (fresh temporary databases), creates an experiment and a run
/// on each through the MLflow API, then drives `runs/log-metric` and `runs/log-batch` bodies at
/// 1 and 16 connections with wrk, prints requests/s, p50, p99 and non-2xx answers per server, the
/// Baton/MLflow throughput ratio, and how many points each server actually stored
/// (`metrics/get-history`) against the requests it answered.
///
///   swift build -c release && .build/release/baton-bench mlflow [--duration 10] [--connections 1,16]
///       [--mlflow .venv-mlflow/bin/mlflow] [--mlflow-workers N] [--servers baton,mlflow]
enum MLflowBenchmark {
    struct Configuration {
        var duration = 10
        var connections = [1, 16]
        var mlflowBinary: String?
        var mlflowWorkers: Int?
        var servers = ["baton", "mlflow"]

        init(arguments: [String]) throws {
            var iterator = arguments.makeIterator()
            while let argument = iterator.next() {
                switch argument {
                case "--duration":
                    guard let value = iterator.next().flatMap(Int.init), value > 0 else { throw BenchError("--duration takes seconds > 0") }
                    duration = value
                case "--connections":
                    let values = (iterator.next() ?? "").split(separator: ",").compactMap { Int($0) }
                    guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else { throw BenchError("--connections takes a list such as 1,16") }
                    connections = values
                case "--mlflow":
                    guard let value = iterator.next() else { throw BenchError("--mlflow takes the path of the mlflow executable") }
                    mlflowBinary = value
                case "--mlflow-workers":
                    guard let value = iterator.next().flatMap(Int.init), value > 0 else { throw BenchError("--mlflow-workers takes a count > 0") }
                    mlflowWorkers = value
                case "--servers":
                    let values = (iterator.next() ?? "").split(separator: ",").map(String.init)
                    guard !values.isEmpty, values.allSatisfy({ ["baton", "mlflow"].contains($0) }) else {
                        throw BenchError("--servers takes baton, mlflow or baton,mlflow")
                    }
                    servers = values
                default:
                    throw BenchError("unknown argument \(argument); usage: baton-bench mlflow [--duration S] [--connections 1,16] [--mlflow BIN] [--mlflow-workers N] [--servers baton,mlflow]")
                }
            }
        }
    }

    /// One loaded endpoint: what wrk posts and how to count what the server stored afterwards.
    enum Endpoint: String, CaseIterable {
        case logMetric = "log-metric"
        case logBatch = "log-batch"

        var path: String { "/api/2.0/mlflow/runs/\(rawValue)" }
        var script: String {
            switch self {
            case .logMetric: logMetricScript
            case .logBatch: logBatchScript
            }
        }
    }

    struct Target {
        let name: String
        let url: String
        let processID: Int32
    }

    struct Row {
        let endpoint: Endpoint
        let connections: Int
        let server: String
        let result: WrkResult
        /// Points of the phase's metric key found by `metrics/get-history` afterwards (nil: the read failed).
        let stored: Int?
        let storedNote: String
        /// CPU seconds the server's processes used during the row (all of them: mlflow server's
        /// background job consumers too).
        let cpuSeconds: Double

        /// Server CPU per request (all answers), in milliseconds.
        var cpuPerRequest: String {
            guard result.requests > 0 else { return "-" }
            let milliseconds = cpuSeconds * 1000 / Double(result.requests)
            return String(format: milliseconds < 1 ? "%.3f ms" : milliseconds < 100 ? "%.1f ms" : "%.0f ms", milliseconds)
        }
    }

    static func run(arguments: [String]) async throws {
        let configuration = try Configuration(arguments: arguments)
        let startLoad = loadAverage()
        let benchDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw BenchError("wrk is not installed (apt-get install wrk, or scripts/install-deps.sh --test)")
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-mlflow-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        for endpoint in Endpoint.allCases {
            try endpoint.script.write(toFile: root + "/\(endpoint.rawValue).lua", atomically: true, encoding: .utf8)
        }

        var targets: [Target] = []
        var started: [Process] = []
        defer { for process in started { stopTree(process) } }
        if configuration.servers.contains("baton") {
            let baton = benchDirectory.appendingPathComponent("baton").path
            guard FileManager.default.isExecutableFile(atPath: baton) else {
                throw BenchError("\(baton) is missing; build it: swift build -c release --product baton")
            }
            try FileManager.default.createDirectory(atPath: root + "/baton", withIntermediateDirectories: true)
            let server = try await ScaleBenchmark.start(
                binary: baton,
                arguments: ["up", "--pipelines", root + "/pipelines", "--db", root + "/baton/baton.db", "--port", "0", "--host", "127.0.0.1"],
                root: root + "/baton")
            started.append(server.process)
            targets.append(Target(name: "baton", url: server.url, processID: server.process.processIdentifier))
            print("mlflow bench: baton up at \(server.url) (pid \(server.process.processIdentifier)), empty pipelines folder, fresh SQLite database")
        }
        if configuration.servers.contains("mlflow") {
            let binary = try mlflowExecutable(configuration.mlflowBinary, benchDirectory: benchDirectory)
            let (process, url) = try await startMLflow(binary: binary, root: root + "/mlflow", workers: configuration.mlflowWorkers)
            started.append(process)
            targets.append(Target(name: "mlflow", url: url, processID: process.processIdentifier))
            print("mlflow bench: \(version(of: binary)) server at \(url) (pid \(process.processIdentifier), "
                + "\(configuration.mlflowWorkers.map { "\($0) workers" } ?? "default workers"), SQLite backend, served artifacts)")
        }

        var experiments: [String: String] = [:]
        for target in targets {
            experiments[target.name] = await createExperiment(target)
        }
        // mlflow server's workers set up their store on their first requests, which takes seconds
        // on a small machine: a warm-up at the highest connection count keeps that out of the rows.
        let warmUpSeconds = min(5, configuration.duration)
        for target in targets {
            let runID = await createRun(target, experimentID: experiments[target.name], name: "warm-up")
            let result = try wrk(
                url: target.url + Endpoint.logMetric.path, script: root + "/log-metric.lua",
                arguments: [runID, "warm_up", String(Int64(Date().timeIntervalSince1970 * 1000))],
                connections: configuration.connections.max() ?? 1, seconds: warmUpSeconds)
            print("mlflow bench: \(target.name) warm-up, \(warmUpSeconds) s of log-metric at \(configuration.connections.max() ?? 1) connections: "
                + "\(result.requests) requests, \(result.non2xx) non-2xx, \(result.socketErrors) socket errors")
        }
        print("mlflow bench: wrk, \(configuration.duration) s per row, connections \(configuration.connections.map(String.init).joined(separator: ", "))\n")

        var rows: [Row] = []
        for endpoint in Endpoint.allCases {
            for connections in configuration.connections {
                for target in targets {
                    let key = "bench_\(endpoint.rawValue.replacingOccurrences(of: "-", with: "_"))_c\(connections)"
                    let runID = await createRun(target, experimentID: experiments[target.name], name: key)
                    let base = Int64(Date().timeIntervalSince1970 * 1000)
                    await probe(target, endpoint: endpoint, runID: runID, key: key)
                    let cpuBefore = cpuSeconds(ofTree: target.processID)
                    let result = try wrk(
                        url: target.url + endpoint.path, script: root + "/\(endpoint.rawValue).lua",
                        arguments: [runID, key, String(base)], connections: connections, seconds: configuration.duration)
                    let cpu = cpuSeconds(ofTree: target.processID) - cpuBefore
                    // wrk stops at the deadline with requests in flight: a server may store a few
                    // more points than it answered, never fewer.
                    let (stored, note) = await storedPoints(target, runID: runID, key: endpoint == .logBatch ? key + "_0" : key)
                    let row = Row(endpoint: endpoint, connections: connections, server: target.name, result: result, stored: stored, storedNote: note,
                                  cpuSeconds: cpu)
                    rows.append(row)
                    print(format(row))
                }
            }
        }
        print("")
        printTable(rows, targets: targets.map(\.name))
        print("\nload average (1, 5, 15 min) at the start: \(startLoad), at the end: \(loadAverage()) on \(ProcessInfo.processInfo.activeProcessorCount) cores"
            + " (the servers, wrk and anything else running share them)")
    }

    static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "?"
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    // MARK: - Servers

    static func mlflowExecutable(_ given: String?, benchDirectory: URL) throws -> String {
        var candidates: [String] = []
        if let given { candidates.append(given) }
        candidates.append(FileManager.default.currentDirectoryPath + "/.venv-mlflow/bin/mlflow")
        // .build/release/baton-bench -> the repository root.
        candidates.append(benchDirectory.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".venv-mlflow/bin/mlflow").path)
        if let found = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return found }
        throw BenchError("no mlflow executable at \(candidates.joined(separator: " or ")); run scripts/install-deps.sh --test or pass --mlflow BIN")
    }

    static func version(of mlflow: String) -> String {
        let pythonDirectory = URL(fileURLWithPath: mlflow).deletingLastPathComponent().path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: pythonDirectory + "/python")
        process.arguments = ["-c", "import importlib.metadata as m; print(m.version('mlflow'))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return "mlflow" }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty ? "mlflow" : "mlflow \(text)"
    }

    static func startMLflow(binary: String, root: String, workers: Int?) async throws -> (Process, String) {
        try FileManager.default.createDirectory(atPath: root + "/artifacts", withIntermediateDirectories: true)
        let port = try freePort()
        let url = "http://127.0.0.1:\(port)"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.currentDirectoryURL = URL(fileURLWithPath: root)
        process.arguments = [
            "server", "--backend-store-uri", "sqlite:///\(root)/mlflow.db", "--artifacts-destination", root + "/artifacts",
            "--serve-artifacts", "--host", "127.0.0.1", "--port", String(port),
        ] + (workers.map { ["--workers", String($0)] } ?? [])
        var environment = ProcessInfo.processInfo.environment
        environment["MLFLOW_DISABLE_TELEMETRY"] = "true"
        environment["DO_NOT_TRACK"] = "true"
        process.environment = environment
        let logPath = root + "/server.log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        process.standardOutput = FileHandle(forWritingAtPath: logPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        try process.run()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if await request("GET", url + "/health").status == 200 { return (process, url) }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        stopTree(process)
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw BenchError("mlflow server did not answer /health at \(url); its log:\n\(log.suffix(3000))")
    }

    /// A port that was free a moment ago on 127.0.0.1.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw BenchError("socket() failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw BenchError("could not bind a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// SIGTERM to the process and every descendant (mlflow server runs uvicorn workers and job
    /// consumers as children), then SIGKILL to whatever is left after 10 seconds.
    static func stopTree(_ process: Process) {
        let pids = [process.processIdentifier] + descendants(of: process.processIdentifier)
        for pid in pids { kill(pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline, pids.contains(where: { alive($0) }) { usleep(50_000) }
        for pid in pids where alive(pid) { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    /// User and system CPU seconds of a process and its living descendants, from /proc.
    static func cpuSeconds(ofTree root: Int32) -> Double {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var total = 0.0
        for pid in [root] + descendants(of: root) {
            guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let fields = stat.split(separator: ")").last?.split(separator: " "), fields.count > 12,
                let user = Double(fields[11]), let system = Double(fields[12])
            else { continue }
            total += (user + system) / ticks
        }
        return total
    }

    static func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
        // A zombie has exited: its parent just has not reaped it yet.
        return stat.split(separator: ")").last?.split(separator: " ").first != "Z"
    }

    static func descendants(of root: Int32) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                let fields = stat.split(separator: ")").last?.split(separator: " "), fields.count > 1, let parent = Int32(fields[1])
            else { continue }
            children[parent, default: []].append(pid)
        }
        var result: [Int32] = []
        var pending = [root]
        while let next = pending.popLast() {
            for child in children[next] ?? [] {
                result.append(child)
                pending.append(child)
            }
        }
        return result
    }

    // MARK: - MLflow REST calls

    struct Response: Sendable {
        let status: Int
        let body: Data
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: body) as? [String: Any] }
        var text: String { String(decoding: body.prefix(300), as: UTF8.self) }
    }

    /// One request; a connection failure is status -1, not a thrown error.
    static func request(_ method: String, _ url: String, json: [String: Any]? = nil) async -> Response {
        guard let address = URL(string: url) else { return Response(status: -1, body: Data("bad URL \(url)".utf8)) }
        var request = URLRequest(url: address, timeoutInterval: 30)
        request.httpMethod = method
        if let json, let body = try? JSONSerialization.data(withJSONObject: json) {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            return Response(status: (response as? HTTPURLResponse)?.statusCode ?? -1, body: data)
        } catch {
            return Response(status: -1, body: Data("\(error)".utf8))
        }
    }

    static func createExperiment(_ target: Target) async -> String? {
        let name = "baton-bench-\(UUID().uuidString.prefix(8))"
        let response = await request("POST", target.url + "/api/2.0/mlflow/experiments/create", json: ["name": name])
        if response.status == 200, let id = response.json?["experiment_id"] as? String { return id }
        print("mlflow bench: \(target.name): experiments/create answered HTTP \(response.status) \(response.text); its rows will show errors")
        return nil
    }

    static func createRun(_ target: Target, experimentID: String?, name: String) async -> String {
        let placeholder = String(repeating: "0", count: 32)
        guard let experimentID else { return placeholder }
        let body: [String: Any] = [
            "experiment_id": experimentID, "run_name": name, "start_time": Int64(Date().timeIntervalSince1970 * 1000),
            "user_id": "baton-bench", "tags": [["key": "mlflow.runName", "value": name]],
        ]
        let response = await request("POST", target.url + "/api/2.0/mlflow/runs/create", json: body)
        if response.status == 200, let run = response.json?["run"] as? [String: Any], let info = run["info"] as? [String: Any],
            let id = info["run_id"] as? String
        {
            return id
        }
        print("mlflow bench: \(target.name): runs/create answered HTTP \(response.status) \(response.text); its rows will show errors")
        return placeholder
    }

    /// One request shaped like the load, so a failing server's answer is shown once, readably.
    static func probe(_ target: Target, endpoint: Endpoint, runID: String, key: String) async {
        let body: [String: Any]
        switch endpoint {
        case .logMetric:
            body = ["run_id": runID, "run_uuid": runID, "key": key + "_probe", "value": 0.5, "timestamp": 0, "step": 0]
        case .logBatch:
            body = ["run_id": runID, "metrics": [["key": key + "_probe", "value": 0.5, "timestamp": 0, "step": 0]], "params": [], "tags": []]
        }
        let response = await request("POST", target.url + endpoint.path, json: body)
        if !(200..<300).contains(response.status) {
            print("mlflow bench: \(target.name): POST \(endpoint.path) answered HTTP \(response.status) \(response.text)")
        }
    }

    /// How many points of `key` the run holds, following `next_page_token`.
    static func storedPoints(_ target: Target, runID: String, key: String) async -> (Int?, String) {
        var count = 0
        var token: String?
        for _ in 0..<10_000 {
            var components = URLComponents(string: target.url + "/api/2.0/mlflow/metrics/get-history")!
            components.queryItems = [
                URLQueryItem(name: "run_id", value: runID), URLQueryItem(name: "run_uuid", value: runID),
                URLQueryItem(name: "metric_key", value: key), URLQueryItem(name: "max_results", value: "25000"),
            ] + (token.map { [URLQueryItem(name: "page_token", value: $0)] } ?? [])
            let response = await request("GET", components.url!.absoluteString)
            guard response.status == 200, let object = response.json else {
                return (nil, "get-history: HTTP \(response.status)")
            }
            count += (object["metrics"] as? [Any])?.count ?? 0
            token = object["next_page_token"] as? String
            if token?.isEmpty ?? true { return (count, "") }
        }
        return (count, "get-history: too many pages")
    }

    // MARK: - wrk

    struct WrkResult {
        var requests = 0
        var seconds = 0.0
        var non2xx = 0
        var socketErrors = 0
        var p50: Double?
        var p99: Double?
        var failure: String?

        var answered: Int { max(0, requests - non2xx) }
        var answeredPerSecond: Double { seconds > 0 ? Double(answered) / seconds : 0 }
    }

    static func wrk(url: String, script: String, arguments: [String], connections: Int, seconds: Int) throws -> WrkResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = [
            "-t", String(min(connections, 2)), "-c", String(connections), "-d", "\(seconds)s", "--timeout", "10s", "--latency",
            "-s", script, url, "--",
        ] + arguments
        let pipe = Pipe()
        let errors = Pipe()
        process.standardOutput = pipe
        process.standardError = errors
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        var result = parse(String(decoding: data, as: UTF8.self))
        if process.terminationStatus != 0 || result.seconds == 0 {
            result.failure = "wrk exited \(process.terminationStatus): \(errorText.prefix(300))"
        }
        return result
    }

    /// Reads wrk's report: "N requests in 10.00s", the --latency percentiles, "Non-2xx or 3xx
    /// responses: N" and "Socket errors: connect A, read B, write C, timeout D".
    static func parse(_ output: String) -> WrkResult {
        var result = WrkResult()
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, fields[0] == "50%" { result.p50 = milliseconds(fields[1]) }
            if fields.count == 2, fields[0] == "99%" { result.p99 = milliseconds(fields[1]) }
            if fields.count >= 4, fields[1] == "requests", fields[2] == "in" {
                result.requests = Int(fields[0]) ?? 0
                result.seconds = Double(fields[3].trimmingCharacters(in: CharacterSet(charactersIn: "s,"))) ?? 0
            }
            if line.contains("Non-2xx or 3xx responses:"), let last = fields.last { result.non2xx = Int(last) ?? 0 }
            if line.contains("Socket errors:") {
                result.socketErrors = fields.compactMap { Int($0.trimmingCharacters(in: CharacterSet(charactersIn: ","))) }.reduce(0, +)
            }
        }
        return result
    }

    /// "812.00us", "1.23ms", "2.01s" -> milliseconds.
    static func milliseconds(_ text: Substring) -> Double? {
        for (suffix, factor) in [("us", 0.001), ("ms", 1.0), ("m", 60_000.0), ("s", 1000.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * factor }
        }
        return Double(text)
    }

    // MARK: - Report

    static func format(_ row: Row) -> String {
        let r = row.result
        var text = "\(row.endpoint.rawValue) c=\(row.connections) \(row.server): "
        if let failure = r.failure { return text + failure }
        text += String(format: "%.1f req/s answered 2xx, p50 %@, p99 %@, %d requests, %d non-2xx, %d socket errors, server CPU %@ per request, stored %@",
                       r.answeredPerSecond, describe(r.p50), describe(r.p99), r.requests, r.non2xx, r.socketErrors, row.cpuPerRequest, storedText(row))
        return text
    }

    static func describe(_ milliseconds: Double?) -> String {
        guard let milliseconds else { return "-" }
        return String(format: milliseconds < 10 ? "%.2f ms" : "%.0f ms", milliseconds)
    }

    static func storedText(_ row: Row) -> String {
        guard let stored = row.stored else { return row.storedNote }
        let answered = row.result.answered
        guard answered > 0 else { return "\(stored)" }
        let lost = stored < answered ? ", \(answered - stored) ANSWERED BUT NOT STORED" : ""
        return String(format: "%d (%.1f%% of answered%@)", stored, Double(stored) * 100 / Double(answered), lost)
    }

    static func printTable(_ rows: [Row], targets: [String]) {
        func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text : text + String(repeating: " ", count: width - text.count) }
        func padLeft(_ text: String, _ width: Int) -> String { text.count >= width ? text : String(repeating: " ", count: width - text.count) + text }
        let header = pad("endpoint", 11) + padLeft("conns", 6) + "  " + pad("server", 7) + padLeft("req/s (2xx)", 12) + padLeft("p50", 10)
            + padLeft("p99", 10) + padLeft("requests", 10) + padLeft("non-2xx", 9) + padLeft("sock err", 9) + padLeft("CPU/req", 11) + "  stored points (get-history)"
        print(header)
        print(String(repeating: "-", count: header.count + 8))
        for endpoint in Endpoint.allCases {
            let connectionCounts = rows.filter { $0.endpoint == endpoint }.map(\.connections).reduce(into: [Int]()) { if !$0.contains($1) { $0.append($1) } }
            for connections in connectionCounts {
                let group = rows.filter { $0.endpoint == endpoint && $0.connections == connections }
                for row in group {
                    let r = row.result
                    print(pad(endpoint.rawValue, 11) + padLeft(String(connections), 6) + "  " + pad(row.server, 7)
                        + padLeft(r.failure == nil ? String(format: "%.1f", r.answeredPerSecond) : "failed", 12)
                        + padLeft(describe(r.p50), 10) + padLeft(describe(r.p99), 10) + padLeft(String(r.requests), 10)
                        + padLeft(String(r.non2xx), 9) + padLeft(String(r.socketErrors), 9) + padLeft(row.cpuPerRequest, 11) + "  " + storedText(row))
                }
                if let baton = group.first(where: { $0.server == "baton" }), let mlflow = group.first(where: { $0.server == "mlflow" }) {
                    print(pad("", 19) + "baton/mlflow throughput: " + ratio(baton.result, mlflow.result))
                }
            }
        }
        let targetRows = rows.filter { $0.endpoint == .logMetric }
        if targets.count == 2, !targetRows.isEmpty {
            print("\nissue 7 target: Baton >= 50x MLflow's log-metric throughput, Baton p99 < 5 ms")
            for connections in Set(targetRows.map(\.connections)).sorted() {
                guard let baton = targetRows.first(where: { $0.server == "baton" && $0.connections == connections })?.result,
                    let mlflow = targetRows.first(where: { $0.server == "mlflow" && $0.connections == connections })?.result
                else { continue }
                let clean = baton.failure == nil && baton.non2xx == 0 && baton.socketErrors == 0 && baton.answered > 0
                let factor = mlflow.answeredPerSecond > 0 ? baton.answeredPerSecond / mlflow.answeredPerSecond : 0
                let met = clean && factor >= 50 && (baton.p99 ?? .infinity) < 5
                print("  log-metric c=\(connections): \(ratio(baton, mlflow)), Baton p99 \(describe(baton.p99)): \(met ? "met" : "NOT met")")
                if let reference = issueReference[connections], clean {
                    print(String(format: "    against the issue's MLflow figure for %d connection%@ (%.1f req/s): %.1fx", connections,
                                 connections == 1 ? "" : "s", reference, baton.answeredPerSecond / reference))
                }
            }
        }
    }

    /// MLflow's log-metric throughput as issue 7 measured it on this kind of machine, by connections:
    /// a second yardstick when other work on the machine slows this run's MLflow down.
    static let issueReference: [Int: Double] = [1: 14.5, 16: 215]

    static func ratio(_ baton: WrkResult, _ mlflow: WrkResult) -> String {
        if baton.failure != nil || mlflow.failure != nil { return "n/a (wrk failed)" }
        if baton.non2xx > 0 || baton.answered == 0 { return "n/a (Baton answered \(baton.non2xx) of \(baton.requests) requests with non-2xx)" }
        if mlflow.non2xx > 0 || mlflow.answered == 0 { return "n/a (MLflow answered \(mlflow.non2xx) of \(mlflow.requests) requests with non-2xx)" }
        return String(format: "%.1fx", baton.answeredPerSecond / mlflow.answeredPerSecond)
    }

    // MARK: - wrk scripts

    /// What both scripts share: each thread's number, the arguments, a JSON POST.
    static let scriptPrelude = """
        local threads = 0
        function setup(thread)
          thread:set("thread_number", threads)
          threads = threads + 1
        end
        function init(args)
          run_id, key, base = args[1], args[2], tonumber(args[3])
          counter = 0
          wrk.method = "POST"
          wrk.headers["Content-Type"] = "application/json"
        end
        """

    /// Each thread numbers its requests; the step is unique per (thread, request) and the timestamp
    /// moves on, so no two bodies are identical. Arguments: run id, metric key, base timestamp (ms).
    static let logMetricScript = """
        -- baton-bench mlflow: POST runs/log-metric, a new step and timestamp each request
        \(scriptPrelude)
        function request()
          counter = counter + 1
          local step = thread_number * 100000000 + counter
          local body = string.format(
            '{"run_id":"%s","run_uuid":"%s","key":"%s","value":%.6f,"timestamp":%.0f,"step":%.0f}',
            run_id, run_id, key, (counter % 1000) / 1000, base + counter, step)
          return wrk.format(nil, nil, nil, body)
        end
        """

    /// Ten metrics (keys `<key>_0` ... `<key>_9`, one point each), two params whose keys are unique
    /// per request, and two tags. Arguments as for log-metric.
    static let logBatchScript = """
        -- baton-bench mlflow: POST runs/log-batch, 10 metrics + 2 new params + 2 tags each request
        \(scriptPrelude)
        function request()
          counter = counter + 1
          local step = thread_number * 100000000 + counter
          local metrics = {}
          for i = 0, 9 do
            metrics[#metrics + 1] = string.format('{"key":"%s_%d","value":%.6f,"timestamp":%.0f,"step":%.0f}',
              key, i, ((counter + i) % 1000) / 1000, base + counter, step)
          end
          local id = string.format("t%d_r%.0f", thread_number, counter)
          local body = string.format(
            '{"run_id":"%s","metrics":[%s],"params":[{"key":"p_%s_a","value":"%s"},{"key":"p_%s_b","value":"0.1"}],'
            .. '"tags":[{"key":"bench.thread","value":"%d"},{"key":"bench.request","value":"%s"}]}',
            run_id, table.concat(metrics, ","), id, id, id, thread_number, id)
          return wrk.format(nil, nil, nil, body)
        end
        """
}
