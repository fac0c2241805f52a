import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Engine overhead benchmarks on the durable SQLite store (WAL, synchronous=NORMAL).
///
///   swift run -c release baton-bench [chain40|fanout1000|all] [--slots N] [--repeat N]
///   swift build -c release && .build/release/baton-bench api [--idle SECONDS]
///   .build/release/baton-bench events
///   .build/release/baton-bench features [--no-feast]   (benchmarks/feast/setup.sh first for Feast)
///   .build/release/baton-bench scale [--tasks 10000] [--workers 4] [--worker-slots 2] [--postgres URL]
///   .build/release/baton-bench gateway [--seconds 10] [--connections 1,16] [--rate 2000]
///   .build/release/baton-bench mlflow [--duration 10] [--connections 1,16] [--mlflow BIN] [--servers baton,mlflow]
///   .build/release/baton-bench openloop --port P [--rate 20000] [--seconds 10] [--connections 16] [--path /healthz]
///
/// CHAIN40: 40 chained tasks running `true`; wall time and per-task overhead.
/// FANOUT1000: 1000 independent `true` tasks and one join; wall time and tasks per second.

struct Options {
    var which = "all"
    var slots = ProcessInfo.processInfo.activeProcessorCount
    var repeats = 5
    var idleSeconds = 60
    /// Where attempt logs go; the database always stays on the temporary folder's disk.
    var logsDirectory: String?

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--slots": slots = Int(iterator.next() ?? "") ?? slots
            case "--repeat": repeats = Int(iterator.next() ?? "") ?? repeats
            case "--idle": idleSeconds = Int(iterator.next() ?? "") ?? idleSeconds
            case "--logs": logsDirectory = iterator.next()
            default: which = argument
            }
        }
    }
}

func chainYAML(_ count: Int) -> String {
    var text = "name: chain\ntasks:\n"
    for index in 0..<count {
        text += "  t\(index):\n    run: \"true\"\n"
        if index > 0 { text += "    needs: [t\(index - 1)]\n" }
    }
    return text
}

func fanoutYAML(_ count: Int) -> String {
    var text = "name: fanout\ntasks:\n"
    for index in 0..<count { text += "  t\(index):\n    run: \"true\"\n" }
    text += "  join:\n    run: \"true\"\n    needs: [\((0..<count).map { "t\($0)" }.joined(separator: ", "))]\n"
    return text
}

/// Seconds in a `Duration`, as a double.
func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func measure(pipeline: String, yaml: String, slots: Int, repeats: Int, logsDirectory: String? = nil) async throws -> [Double] {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-bench-\(UUID().uuidString)").path
    // Removed at exit, not here: ext4 scans inodes freed in the last 30 s when it allocates new
    // ones, so deleting thousands of files between measurements would slow the next one down.
    let dataDirectory = logsDirectory.map { $0 + "/baton-bench-\(UUID().uuidString)" } ?? root
    temporaryRoots.withLock { $0 += [root, dataDirectory] }
    try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
    try yaml.write(toFile: root + "/pipelines/\(pipeline).yaml", atomically: true, encoding: .utf8)
    let store = try SQLiteStore(path: root + "/baton.db")
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let engine = Engine(
        store: store,
        configuration: EngineConfiguration(
            pipelinesDirectory: root + "/pipelines",
            dataDirectory: dataDirectory, slots: slots,
            watchFiles: false,
            schedulerEnabled: false),
        logger: logger)
    let runner = Task { try await engine.run() }
    defer { runner.cancel() }
    while await !engine.isRunning() { try await Task.sleep(for: .milliseconds(1)) }
    var results: [Double] = []
    // One warm-up run, then the measured ones.
    for index in 0...repeats {
        let clock = ContinuousClock()
        let start = clock.now
        let run = try await engine.trigger(pipeline: pipeline)
        let state = try await engine.waitUntilFinished(runID: run.id)
        let elapsed = seconds(clock.now - start)
        guard state == .success else { throw RunRequestError("run \(run.id) ended \(state.rawValue)") }
        if index > 0 { results.append(elapsed) }
    }
    return results
}

func spawnBaseline(count: Int) async -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<count {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "true"]
        let done = AsyncStream<Void>.makeStream()
        process.terminationHandler = { _ in done.continuation.yield(); done.continuation.finish() }
        try? process.run()
        for await _ in done.stream {}
    }
    return seconds(clock.now - start) / Double(count)
}

/// CPU seconds used so far by this process and by its reaped children.
func cpuTimes() -> (own: Double, children: Double) {
    func total(_ who: Int32) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
    return (total(RUSAGE_SELF.rawValue), total(RUSAGE_CHILDREN.rawValue))
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

// The gateway benchmark runs its in-process Baton server as `baton up` does: Swift Concurrency's
// jobs on NIO's event loops (see Sources/baton/main.swift). Installed before the first task, as
// NIO requires; the benchmark's own blocking waits (wrk, the open-loop threads) run on threads
// of their own so they cannot starve those loops.
if CommandLine.arguments.dropFirst().first == "gateway", ProcessInfo.processInfo.environment["BATON_NIO_EXECUTOR"] != "0" {
    NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
}
if CommandLine.arguments.dropFirst().first == "mlflow" {
    do {
        try await MLflowBenchmark.run(arguments: Array(CommandLine.arguments.dropFirst(2)))
    } catch {
        FileHandle.standardError.write(Data("baton-bench mlflow: \(error)\n".utf8))
        exit(1)
    }
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "features" {
    try await FeatureBenchmark.run(arguments: Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "gateway" {
    try await GatewayBenchmark.run(arguments: Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "gateway-replica" {
    try await GatewayBenchmark.runReplica()
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "openloop" {
    OpenLoopLoad.runFromCommandLine(Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
if CommandLine.arguments.dropFirst().first == "scale" {
    try await ScaleBenchmark.run(arguments: Array(CommandLine.arguments.dropFirst(2)))
    exit(0)
}
let options = Options(CommandLine.arguments)
let temporaryRoots = Mutex<[String]>([])
defer {
    for root in temporaryRoots.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: root) }
}
if options.which == "events" {
    try await EventBenchmark.run(count: 200)
    exit(0)
}
if options.which == "api" {
    try await APIBenchmark.run(idleSeconds: options.idleSeconds, loadSeconds: 10)
    exit(0)
}
print("baton-bench: durable SQLite store (WAL, synchronous=NORMAL), \(options.slots) slots, median of \(options.repeats) runs, attempt logs in \(options.logsDirectory ?? "the temporary folder")")
let spawn = await spawnBaseline(count: 200)
print(String(format: "spawn baseline: sh -c true via Foundation Process: %.2f ms each", spawn * 1000))
if options.which == "all" || options.which == "chain40" {
    let results = try await measure(pipeline: "chain", yaml: chainYAML(40), slots: options.slots, repeats: options.repeats, logsDirectory: options.logsDirectory)
    let wall = median(results)
    print(String(format: "CHAIN40: wall %.1f ms, %.2f ms per chained task (min %.2f, max %.2f)", wall * 1000, wall * 1000 / 40,
                 results.min()! * 1000 / 40, results.max()! * 1000 / 40))
}
if options.which == "all" || options.which == "fanout1000" {
    let before = cpuTimes()
    let results = try await measure(pipeline: "fanout", yaml: fanoutYAML(1000), slots: options.slots, repeats: options.repeats, logsDirectory: options.logsDirectory)
    let after = cpuTimes()
    let tasks = Double(1001 * (options.repeats + 1))
    print(String(format: "FANOUT1000 CPU per task: Baton %.3f ms, task processes %.3f ms",
                 (after.own - before.own) * 1000 / tasks, (after.children - before.children) * 1000 / tasks))
    let wall = median(results)
    print(String(format: "FANOUT1000: wall %.0f ms, %.0f tasks/s (1001 tasks; best %.0f tasks/s)", wall * 1000, 1001 / wall, 1001 / results.min()!))
}
