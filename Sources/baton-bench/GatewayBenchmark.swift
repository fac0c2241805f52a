import BatonCore
import BatonEngine
import BatonGateway
import BatonServer
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// `baton-bench gateway`: the prediction gateway's added latency. A model replica (a small
/// Hummingbird server answering `POST /predict` with `{"prediction": 0.42}`) runs as its own
/// process, as replicas do; the Baton HTTP application (the real router with its middleware:
/// error shape, request metrics, auth) runs in this process with a deployment whose policy
/// points at the replica. wrk loads the replica directly and through `POST /serve/churn/predict`
/// at 1 and 16 connections; then a fixed request rate (open loop, from `baton-bench openloop` in a
/// process of its own) is measured both ways. Each
/// is measured in rounds alternating direct and gateway, and the median of the rounds is printed.
/// When nginx is installed (`apt-get install nginx-light`), each wrk round also measures it as a
/// reverse proxy to the same replica (keep-alive upstream, one worker per core): what a
/// well-known proxy adds on the same machine, next to what Baton adds.
///
///   swift build -c release --product baton-bench
///   .build/release/baton-bench gateway [--seconds 10] [--connections 1,16] [--rate 2000,5000] [--rounds 3] [--no-nginx]
enum GatewayBenchmark {
    static let body = #"{"customer_id": "c-42", "tenure": 12, "monthly_charges": 70.35, "total_charges": 844.2, "contract": "monthly"}"#

    struct Settings {
        var seconds = 10
        var connections = [1, 16]
        var rates = [2000.0, 5000.0]
        /// wrk and fixed-rate runs alternate direct and gateway this many times: one pair of runs
        /// on a shared machine differs by more than the gateway adds.
        var rounds = 3
        var nginx = true

        init(_ arguments: [String]) {
            var iterator = arguments.makeIterator()
            while let argument = iterator.next() {
                switch argument {
                case "--seconds": seconds = Int(iterator.next() ?? "") ?? seconds
                case "--connections":
                    connections = (iterator.next() ?? "").split(separator: ",").compactMap { Int($0) }
                case "--rate":
                    rates = (iterator.next() ?? "").split(separator: ",").compactMap { Double($0) }
                case "--rounds": rounds = max(1, Int(iterator.next() ?? "") ?? rounds)
                case "--no-nginx": nginx = false
                default: print("gateway: ignoring unknown argument \(argument)")
                }
            }
        }
    }

    /// `baton-bench gateway-replica`: the replica process. Prints its port, then serves until killed.
    static func runReplica() async throws {
        let router = Router()
        router.post("/predict") { request, _ -> Response in
            var request = request
            _ = try await request.collectBody(upTo: 1 << 20)
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"prediction": 0.42}"#)))
        }
        var logger = Logger(label: "replica")
        logger.logLevel = .error
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                // Unbuffered: the parent reads this line before any load starts.
                FileHandle.standardOutput.write(Data("port \(channel.localAddress?.port ?? 0)\n".utf8))
            }, logger: logger)
        try await application.run()
    }

    static func run(arguments: [String]) async throws {
        let settings = Settings(arguments)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
            throw BenchError("wrk is not installed (apt-get install wrk)")
        }
        let replica = try await offloaded { try startReplicaProcess() }
        defer {
            // A child started from async code has SIGTERM blocked (swift-corelibs-foundation #4772).
            kill(replica.process.processIdentifier, SIGKILL)
            replica.process.waitUntilExit()
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-bench-gateway-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let store = try SQLiteStore(path: root + "/baton.db")
        let engine = Engine(
            store: store,
            configuration: EngineConfiguration(
                pipelinesDirectory: root + "/pipelines", dataDirectory: root, slots: 1, watchFiles: false, schedulerEnabled: false),
            logger: logger)
        let context = ServerContext(
            store: store, engine: engine,
            configuration: ServerConfiguration(host: "127.0.0.1", port: 0, artifactRoot: root + "/artifacts"),
            metrics: MetricsRegistry.shared, pipelinesDirectory: root + "/pipelines")
        context.gateway.setPolicy(
            TrafficPolicy(
                stable: GatewayBackend(
                    version: "3", endpoints: [GatewayEndpoint(host: "127.0.0.1", port: replica.port, replicaID: "churn-3-0")]),
                stickyKey: "customer_id"),
            deployment: "churn")
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        // Stopping by cancellation makes Hummingbird log a CancellationError; keep it quiet.
        var httpLogger = logger
        httpLogger.logLevel = .critical
        let application = BatonHTTP.application(context: context, logger: httpLogger) { port in
            continuation.yield(port)
            continuation.finish()
        }
        let server = Task { try await application.run() }
        defer { server.cancel() }
        var serverPort = 0
        for await port in ports {
            serverPort = port
            break
        }
        let reference = settings.nginx ? try startNginx(root: root, replicaPort: replica.port) : nil
        defer {
            if let reference { MLflowBenchmark.stopTree(reference.process) }
        }
        let direct = "http://127.0.0.1:\(replica.port)/predict"
        let gateway = "http://127.0.0.1:\(serverPort)/serve/churn/predict"
        print("gateway: replica = Hummingbird POST /predict in its own process (port \(replica.port)); Baton = the BatonServer HTTP application in-process")
        print("  (real router and middleware, auth off, sticky key customer_id) with the gateway proxying to the replica; load from wrk, \(settings.seconds) s each, on the same 2 cores")
        print(
            ProcessInfo.processInfo.environment["BATON_NIO_EXECUTOR"] == "0"
                ? "executor: Swift's default pool (BATON_NIO_EXECUTOR=0)" : "executor: NIO's event loops, as `baton up` runs")
        print("request body: \(body)")
        let script = root + "/post.lua"
        try """
            wrk.method = "POST"
            wrk.body = '\(body)'
            wrk.headers["Content-Type"] = "application/json"
            """.write(toFile: script, atomically: true, encoding: .utf8)
        // The proxy's own path without the HTTP server in front: sequential calls of forward.
        var inProcess: [Double] = []
        let payload = ByteBuffer(string: body)
        for index in 0..<3000 {
            let start = ContinuousClock.now
            let answer = await context.gateway.forward(
                deployment: "churn", body: payload, contentType: "application/json", headers: [])
            if index >= 500 { inProcess.append(Double((ContinuousClock.now - start).components.attoseconds) / 1e15) }
            guard answer.status == 200 else { throw BenchError("forward answered \(answer.status)") }
        }
        inProcess.sort()
        print(String(
            format: "Gateway.forward called in-process, sequentially (replica round trip included): p50 %.3f ms, p99 %.3f ms",
            inProcess[inProcess.count / 2], inProcess[inProcess.count * 99 / 100]))
        // Warm both paths (connection pools, caches) before measuring.
        _ = try await wrk(url: gateway, script: script, connections: 16, seconds: 2)
        _ = try await wrk(url: direct, script: script, connections: 16, seconds: 1)
        let nginxURL = reference.map { "http://127.0.0.1:\($0.port)/serve/churn/predict" }
        if let nginxURL {
            _ = try await wrk(url: nginxURL, script: script, connections: 16, seconds: 1)
            print("nginx \(reference?.version ?? ""): reverse proxy to the same replica, keep-alive upstream, \(ProcessInfo.processInfo.activeProcessorCount) workers")
        } else if settings.nginx {
            print("nginx: not installed (apt-get install nginx-light), so no reference proxy is measured")
        }
        for connections in settings.connections {
            print("\(connections) connection\(connections == 1 ? "" : "s") (wrk, closed loop), \(settings.rounds) round\(settings.rounds == 1 ? "" : "s"):")
            var added: [(p50: Double, p99: Double)] = []
            var nginxAdded: [(p50: Double, p99: Double)] = []
            var shares: [Double] = []
            var nginxShares: [Double] = []
            for round in 1...settings.rounds {
                let replicaBefore = processCPUSeconds(replica.process.processIdentifier)
                let directResult = Figures(try await wrk(url: direct, script: script, connections: connections, seconds: settings.seconds))
                let replicaDirect = processCPUSeconds(replica.process.processIdentifier) - replicaBefore
                // wrk runs as its own process, so this process's CPU meanwhile is Baton's.
                let cpuBefore = cpuTimes().own
                let replicaMiddle = processCPUSeconds(replica.process.processIdentifier)
                let gatewayResult = Figures(try await wrk(url: gateway, script: script, connections: connections, seconds: settings.seconds))
                let batonCPU = cpuTimes().own - cpuBefore
                let replicaGateway = processCPUSeconds(replica.process.processIdentifier) - replicaMiddle
                func perRequest(_ cpu: Double, _ result: Figures) -> Double { cpu * 1e6 / max(result.rps * Double(settings.seconds), 1) }
                print(String(
                    format: "  round %d direct:  %@; replica's CPU %.0f µs per request", round, directResult.description,
                    perRequest(replicaDirect, directResult)))
                print(String(
                    format: "  round %d gateway: %@; Baton's CPU %.0f µs per request (%.2f cores), replica's %.0f µs", round,
                    gatewayResult.description, perRequest(batonCPU, gatewayResult), batonCPU / Double(settings.seconds),
                    perRequest(replicaGateway, gatewayResult)))
                added.append((gatewayResult.p50 - directResult.p50, gatewayResult.p99 - directResult.p99))
                shares.append(100 * gatewayResult.rps / max(directResult.rps, 1))
                if let nginxURL, let reference {
                    let nginxBefore = MLflowBenchmark.cpuSeconds(ofTree: reference.process.processIdentifier)
                    let nginxResult = Figures(try await wrk(url: nginxURL, script: script, connections: connections, seconds: settings.seconds))
                    let nginxCPU = MLflowBenchmark.cpuSeconds(ofTree: reference.process.processIdentifier) - nginxBefore
                    print(String(
                        format: "  round %d nginx:   %@; nginx's CPU %.0f µs per request", round, nginxResult.description,
                        perRequest(nginxCPU, nginxResult)))
                    nginxAdded.append((nginxResult.p50 - directResult.p50, nginxResult.p99 - directResult.p99))
                    nginxShares.append(100 * nginxResult.rps / max(directResult.rps, 1))
                }
            }
            print(String(
                format: "  added by gateway (median of %d rounds): p50 %+.3f ms, p99 %+.3f ms (p99 per round: %@); throughput %.0f%% of direct",
                added.count, median(added.map(\.p50)), median(added.map(\.p99)),
                added.map { String(format: "%+.3f", $0.p99) }.joined(separator: ", "), median(shares)))
            if !nginxAdded.isEmpty {
                print(String(
                    format: "  added by nginx (median of %d rounds):   p50 %+.3f ms, p99 %+.3f ms (p99 per round: %@); throughput %.0f%% of direct",
                    nginxAdded.count, median(nginxAdded.map(\.p50)), median(nginxAdded.map(\.p99)),
                    nginxAdded.map { String(format: "%+.3f", $0.p99) }.joined(separator: ", "), median(nginxShares)))
            }
        }
        // wrk's closed loop hides stalls (it waits for each answer before sending the next);
        // the open loop sends on a fixed schedule and counts latency from when a request was due.
        let connections = settings.connections.max() ?? 16
        let gatewayPort = UInt16(serverPort)
        // The generator runs as a process of its own, as wrk does: inside this one it took CPU
        // from the in-process Baton's event loops that a real client would not.
        func openLoop(port: UInt16, path: String, rate: Double) async throws -> OpenLoopFigures {
            try await offloaded {
                try OpenLoopFigures.measure(
                    arguments: [
                        "--port", String(port), "--path", path, "--rate", String(rate), "--seconds", String(settings.seconds),
                        "--connections", String(connections), "--body", body, "--machine", "true",
                    ])
            }
        }
        for rate in settings.rates {
            print(String(format: "fixed rate %.0f requests/s on %d connections (open loop, latency from when each request was due), %d rounds:", rate, connections, settings.rounds))
            var added: [(p50: Double, p99: Double)] = []
            for round in 1...settings.rounds {
                let directOpen = try await openLoop(port: UInt16(replica.port), path: "/predict", rate: rate)
                let gatewayOpen = try await openLoop(port: gatewayPort, path: "/serve/churn/predict", rate: rate)
                for (name, result) in [("direct ", directOpen), ("gateway", gatewayOpen)] {
                    print(String(
                        format: "  round %d %@: p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, %.0f requests/s, %d errors", round, name,
                        result.p50, result.p99, result.p999, result.requestsPerSecond, result.errors))
                }
                added.append((gatewayOpen.p50 - directOpen.p50, gatewayOpen.p99 - directOpen.p99))
            }
            print(String(
                format: "  added by gateway (median of %d rounds): p50 %+.3f ms, p99 %+.3f ms (p99 per round: %@)", added.count,
                median(added.map(\.p50)), median(added.map(\.p99)), added.map { String(format: "%+.3f", $0.p99) }.joined(separator: ", ")))
        }
        let stats = context.gateway.stats(deployment: "churn")["3"]
        if let stats {
            print(String(
                format: "gateway's own record of version 3: %d requests, %d errors, p50 %.3f ms, p99 %.3f ms (replica round trip), mean prediction %.2f",
                stats.requests, stats.errors, stats.p50Ms, stats.p99Ms, stats.prediction.mean))
        }
        await context.gateway.shutdown()
    }

    /// CPU seconds another process has used so far (user and system), from `/proc`.
    static func processCPUSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return .nan }
        // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return .nan }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func wrk(url: String, script: String, connections: Int, seconds: Int) async throws -> String {
        try await offloaded { try FeatureBenchmark.wrk(url: url, script: script, connections: connections, seconds: seconds) }
    }

    /// p50, p99 (ms) and requests/s parsed from wrk's report.
    struct Figures: CustomStringConvertible {
        var p50 = Double.nan
        var p99 = Double.nan
        var rps = 0.0
        var extra: [String] = []

        init(_ output: String) {
            for line in output.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                if fields.count == 2, fields[0] == "50%" { p50 = Self.milliseconds(fields[1]) }
                if fields.count == 2, fields[0] == "99%" { p99 = Self.milliseconds(fields[1]) }
                if fields.first == "Requests/sec:" { rps = Double(fields.last ?? "") ?? 0 }
                if line.contains("Non-2xx") || line.contains("Socket errors") { extra.append(line.trimmingCharacters(in: .whitespaces)) }
            }
        }

        static func milliseconds(_ text: Substring) -> Double {
            for (suffix, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(suffix) {
                return (Double(text.dropLast(suffix.count)) ?? .nan) * scale
            }
            return .nan
        }

        var description: String {
            String(format: "p50 %.3f ms, p99 %.3f ms, %.0f requests/s", p50, p99, rps) + (extra.isEmpty ? "" : ", " + extra.joined(separator: ", "))
        }
    }

    /// One open-loop run's figures, from `baton-bench openloop --machine true` in a process of its own.
    struct OpenLoopFigures {
        var p50: Double
        var p99: Double
        var p999: Double
        var requestsPerSecond: Double
        var errors: Int

        static func measure(arguments: [String]) throws -> OpenLoopFigures {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
            process.arguments = ["openloop"] + arguments
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            let fields = output.split(separator: "\n").first { $0.hasPrefix("openloop-result ") }?.split(separator: " ").dropFirst()
                .map(String.init) ?? []
            guard process.terminationStatus == 0, fields.count == 5, let p50 = Double(fields[0]), let p99 = Double(fields[1]),
                let p999 = Double(fields[2]), let rate = Double(fields[3]), let errors = Int(fields[4])
            else { throw BenchError("the open-loop generator ended with \(process.terminationStatus) and printed: \(output)") }
            return OpenLoopFigures(p50: p50, p99: p99, p999: p999, requestsPerSecond: rate, errors: errors)
        }
    }

    /// nginx in the foreground as a reverse proxy to the replica, when it is installed.
    static func startNginx(root: String, replicaPort: Int) throws -> (process: Process, port: Int, version: String)? {
        let binary = "/usr/sbin/nginx"
        guard FileManager.default.isExecutableFile(atPath: binary) else { return nil }
        let port = try MLflowBenchmark.freePort()
        let directory = root + "/nginx"
        try FileManager.default.createDirectory(atPath: directory + "/logs", withIntermediateDirectories: true)
        try """
            worker_processes \(ProcessInfo.processInfo.activeProcessorCount);
            daemon off;
            pid \(directory)/nginx.pid;
            error_log \(directory)/logs/error.log error;
            events { worker_connections 1024; }
            http {
                access_log off;
                client_body_temp_path \(directory)/body;
                proxy_temp_path \(directory)/proxy;
                upstream replica { server 127.0.0.1:\(replicaPort); keepalive 64; }
                server {
                    listen 127.0.0.1:\(port);
                    location = /serve/churn/predict {
                        proxy_pass http://replica/predict;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                    }
                }
            }
            """.write(toFile: directory + "/nginx.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-p", directory, "-c", directory + "/nginx.conf", "-e", directory + "/logs/error.log"]
        try process.run()
        let deadline = ContinuousClock.now + .seconds(10)
        while !canConnect(port: port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                let log = (try? String(contentsOfFile: directory + "/logs/error.log", encoding: .utf8)) ?? ""
                throw BenchError("nginx did not start listening on port \(port): \(log)")
            }
            usleep(20_000)
        }
        let versionProbe = Process()
        versionProbe.executableURL = URL(fileURLWithPath: binary)
        versionProbe.arguments = ["-v"]
        let pipe = Pipe()
        versionProbe.standardError = pipe
        try versionProbe.run()
        versionProbe.waitUntilExit()
        let version = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .split(separator: "/").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
        return (process, port, version)
    }

    /// Whether something accepts connections on the loopback port.
    static func canConnect(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// Starts `baton-bench gateway-replica` and reads the port it prints.
    static func startReplicaProcess() throws -> (process: Process, port: Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["gateway-replica"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = pipe.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw BenchError("the replica process ended before listening") }
            line.append(chunk)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard let port = text.split(separator: "\n").first.flatMap({ Int($0.dropFirst("port ".count)) }) else {
            throw BenchError("the replica printed \(text) instead of its port")
        }
        return (process, port)
    }
}
