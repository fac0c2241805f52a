import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif
#if canImport(Glibc)
    import Glibc
#endif

/// `baton-bench api`: starts the real `baton up` on the bundled examples, measures its
/// resident memory when idle, then loads `GET /api/v1/runs` from a second process (wrk).
enum APIBenchmark {
    struct Server {
        let process: Process
        let url: String
    }

    static func run(idleSeconds: Int, loadSeconds: Int) async throws {
        let batonBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("baton").path
        guard FileManager.default.isExecutableFile(atPath: batonBinary) else {
            print("api: \(batonBinary) is missing; build it: swift build -c release --product baton")
            return
        }
        let examples = FileManager.default.currentDirectoryPath + "/examples/pipelines"
        guard FileManager.default.fileExists(atPath: examples) else {
            print("api: run from the repository root (examples/pipelines not found)")
            return
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-api-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let server = try await start(binary: batonBinary, pipelines: examples, root: root)
        defer {
            server.process.terminate()
        }
        print("api: baton up on the examples at \(server.url), pid \(server.process.processIdentifier)")
        try await waitForRuns(server.url, minimum: 4, finished: true, timeout: 120)
        try await Task.sleep(for: .seconds(idleSeconds))
        let rss = residentMegabytes(pid: server.process.processIdentifier)
        print(String(format: "IDLE RSS: %.1f MB resident after %d s idle with the examples loaded (their first runs done)", rss, idleSeconds))

        // Give the list a realistic size: a day of hourly backfilled runs, 50 per page.
        let backfill = Process()
        backfill.executableURL = URL(fileURLWithPath: batonBinary)
        backfill.arguments = ["backfill", "customer_data_pipeline", "--from", "2026-01-01", "--to", "2026-01-04", "--db", root + "/baton.db", "--pipelines", examples]
        backfill.standardOutput = FileHandle.nullDevice
        try backfill.run()
        backfill.waitUntilExit()
        // The backfilled runs fill the list; cancelled, they leave the server idle, so the load
        // test measures the API and not the example scripts running beside it.
        try await cancelUnfinishedRuns(server.url)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            print("api: wrk is not installed (apt-get install wrk); skipping the load test")
            return
        }
        for connections in [1, 16] {
            let output = try wrk(url: server.url + "/api/v1/runs?limit=50", connections: connections, seconds: loadSeconds)
            print("GET /api/v1/runs?limit=50, \(connections) connection\(connections == 1 ? "" : "s"), \(loadSeconds) s from wrk: \(summary(output))")
        }
        let rssAfter = residentMegabytes(pid: server.process.processIdentifier)
        print(String(format: "RSS after the load: %.1f MB", rssAfter))
    }

    static func start(binary: String, pipelines: String, root: String) async throws -> Server {
        var environment = ProcessInfo.processInfo.environment
        environment["BATON_EXAMPLES_VAR"] = root + "/var"
        return try await ScaleBenchmark.start(
            binary: binary, arguments: ["up", "--pipelines", pipelines, "--db", root + "/baton.db", "--port", "0"],
            root: root, environment: environment)
    }

    static func waitForRuns(_ url: String, minimum: Int, finished: Bool, timeout: Double) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let (data, _) = try? await URLSession.shared.data(from: URL(string: url + "/api/v1/runs?state=success")!),
                let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let items = object["items"] as? [Any], items.count >= minimum
            {
                return
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        throw BenchError("the example runs did not all succeed within \(Int(timeout)) s")
    }

    static func cancelUnfinishedRuns(_ url: String) async throws {
        for state in ["queued", "running"] {
            let (data, _) = try await URLSession.shared.data(from: URL(string: url + "/api/v1/runs?state=\(state)&limit=500")!)
            let items = (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["items"] as? [[String: Any]] ?? []
            for item in items {
                guard let id = item["id"] as? Int else { continue }
                var request = URLRequest(url: URL(string: url + "/api/v1/runs/\(id)/cancel")!)
                request.httpMethod = "POST"
                _ = try? await URLSession.shared.data(for: request)
            }
        }
        try await Task.sleep(for: .seconds(2))
    }

    static func residentMegabytes(pid: Int32) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return -1 }
        let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        return kilobytes / 1024
    }

    static func wrk(url: String, connections: Int, seconds: Int) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/wrk")
        process.arguments = ["-t", String(min(connections, 2)), "-c", String(connections), "-d", "\(seconds)s", "--latency", url]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// "p50 0.41ms p99 1.20ms, 2300 requests/s, 0 errors" from wrk's report.
    static func summary(_ output: String) -> String {
        var parts: [String] = []
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count == 2, fields[0] == "50%" { parts.append("p50 \(fields[1])") }
            if fields.count == 2, fields[0] == "90%" { parts.append("p90 \(fields[1])") }
            if fields.count == 2, fields[0] == "99%" { parts.append("p99 \(fields[1])") }
            if fields.first == "Requests/sec:" { parts.append("\(fields.last ?? "?") requests/s") }
            if line.contains("Non-2xx") || line.contains("Socket errors") { parts.append(String(line).trimmingCharacters(in: .whitespaces)) }
        }
        return parts.joined(separator: ", ")
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
