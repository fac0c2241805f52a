import ArgumentParser
import BatonWorker
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// The executable that owns Swift pipelines: it describes them to Baton and runs their
/// `Step` closures. Its `main.swift` is one line:
///
/// ```swift
/// await Worker(customerData, modelTraining).main()
/// ```
///
/// Commands:
/// - `work --server URL` (the default): pulls the steps' attempts from Baton over the
///   remote-worker protocol (long-poll claims, leases, live logs, reports) and runs each
///   closure in this process;
/// - `describe [--output FILE]`: the pipelines as JSON, for the `NAME.baton-swift.yaml`
///   manifest in the pipelines folder that names this executable;
/// - `validate`: checks the pipelines with Baton's rules, at their Swift lines;
/// - `run-task PIPELINE TASK`: runs one step in a process of its own, the way a spawned
///   command task runs.
public struct Worker: Sendable {
    public let pipelines: [Pipeline]

    public init(_ pipelines: Pipeline...) { self.pipelines = pipelines }

    public init(pipelines: [Pipeline]) { self.pipelines = pipelines }

    /// The command a step's spec runs: `EXECUTABLE run-task PIPELINE TASK`.
    public static let runTaskCommand = "run-task"

    /// Which version of BatonKit wrote a `describe` answer.
    public static let sdkVersion = "batonkit 1"

    /// This process's executable as an absolute path: what step specs name as their command.
    public static var executablePath: String {
        let first = CommandLine.arguments.first ?? ""
        if first.hasPrefix("/") { return URL(fileURLWithPath: first).standardizedFileURL.path }
        return (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? first
    }

    /// The queues this worker's steps wait in.
    public var queues: [String] {
        var seen: Set<String> = []
        var result: [String] = []
        for pipeline in pipelines {
            for task in pipeline.tasks where task.body != nil {
                let queue = task.spec.queue ?? pipeline.queue
                if seen.insert(queue).inserted { result.append(queue) }
            }
        }
        return result
    }

    /// What `describe` prints.
    public func describe(executable: String = Worker.executablePath) -> SwiftDescribeAnswer {
        var answer = SwiftDescribeAnswer(sdk: Self.sdkVersion, pipelines: [], problems: [])
        var seen: [String: SwiftDescribeAnswer.Location] = [:]
        for pipeline in pipelines {
            if let earlier = seen[pipeline.name] {
                answer.problems.append(
                    .init(
                        location: pipeline.location, pipeline: pipeline.name,
                        message: "pipeline '\(pipeline.name)' is registered twice (first at \(earlier))",
                        fix: "give one of them another name, or register it once"))
                continue
            }
            seen[pipeline.name] = pipeline.location
            let described = pipeline.describe(executable: executable)
            answer.problems += described.problems
            if let spec = described.pipeline { answer.pipelines.append(spec) }
        }
        return answer
    }

    /// Every problem of every pipeline, at its Swift line.
    public func validate(datasets: Set<String>? = nil) -> [ValidationIssue] {
        var issues: [ValidationIssue] = []
        var seen: [String: SwiftDescribeAnswer.Location] = [:]
        for pipeline in pipelines {
            if let earlier = seen[pipeline.name] {
                issues.append(
                    ValidationIssue(
                        file: pipeline.location.file, line: pipeline.location.line, column: 1,
                        message: "pipeline '\(pipeline.name)' is registered twice (first at \(earlier))",
                        fix: "give one of them another name, or register it once"))
            }
            seen[pipeline.name] = seen[pipeline.name] ?? pipeline.location
        }
        for pipeline in pipelines { issues += pipeline.validate(datasets: datasets) }
        return issues
    }

    /// The step behind a claimed attempt: its command is `run-task PIPELINE TASK` naming one of
    /// this worker's pipelines. Anything else runs as an ordinary command.
    func inProcessTask(for payload: DispatchPayload) -> InProcessTask? {
        let arguments = payload.arguments
        guard arguments.count == 4, arguments[1] == Self.runTaskCommand, arguments[2] == payload.pipeline,
            let pipeline = pipelines.first(where: { $0.name == payload.pipeline })
        else { return nil }
        guard let body = pipeline.body(of: arguments[3]) else {
            // Baton read another build of this executable: fail with the fix rather than start
            // a command that names the same missing step.
            let error = StaleStepError(pipeline: pipeline.name, task: arguments[3])
            return InProcessTask { _ in throw error }
        }
        return InProcessTask { attempt in
            let context = try TaskContext(
                environment: attempt.environment, workingDirectory: attempt.workingDirectory,
                log: { attempt.log.write($0) })
            return try await body(context)
        }
    }

    /// Runs the command line and exits.
    public func main(arguments: [String] = CommandLine.arguments) async -> Never {
        do {
            let command = try WorkerCommandLine.parseAsRoot(Array(arguments.dropFirst()))
            switch command {
            case let work as WorkCommand: try await work.run(self)
            case let describe as DescribeCommand: try describe.run(self)
            case let validate as ValidateCommand: try validate.run(self)
            case let runTask as RunTaskCommand: try await runTask.run(self)
            default:
                var other = command
                try other.run()
            }
            exit(0)
        } catch {
            WorkerCommandLine.exit(withError: error)
        }
    }
}

/// A claimed step this worker does not have: Baton read another build of the executable.
public struct StaleStepError: Error, Sendable, Hashable, CustomStringConvertible {
    public var pipeline: String
    public var task: String

    public var description: String {
        "this worker's pipeline '\(pipeline)' has no step '\(task)': Baton read another build of it; rebuild and restart the worker, and let Baton reread the manifest"
    }
}

// MARK: - Commands

struct WorkerCommandLine: ParsableCommand {
    static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? "worker",
            abstract: "Runs the Swift steps of its Baton pipelines, and describes the pipelines to Baton.",
            subcommands: [WorkCommand.self, DescribeCommand.self, ValidateCommand.self, RunTaskCommand.self],
            defaultSubcommand: WorkCommand.self)
    }
}

struct WorkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "work",
        abstract: "Pull this executable's steps from a Baton server and run them (the default command).",
        discussion: """
            The worker long-polls the server for attempts on its pipelines' queues (by default
            each pipeline's name), runs each step's closure in this process, streams its log
            lines back, renews its lease and reports the outcome, like `baton worker`. With
            --queue it also serves other queues, running their tasks' commands as child
            processes. On SIGTERM or Ctrl-C running steps are cancelled and run again later.

            Examples:
              customer-worker --server http://127.0.0.1:8080
              customer-worker work --server http://a:8080,http://b:8080 --token $BATON_TOKEN --slots 4
            """)

    @Option(
        name: .customLong("server"),
        help: ArgumentHelp("A Baton server (repeatable, or comma-separated; or BATON_SERVER).", valueName: "url"))
    var servers: [String] = []

    @Option(help: ArgumentHelp("API token with the operator role (or BATON_TOKEN).", valueName: "token"))
    var token: String?

    @Option(name: .customLong("queue"), help: ArgumentHelp("Another queue to serve, with commands run as processes (repeatable).", valueName: "name"))
    var queues: [String] = []

    @Option(help: "Steps that may run at once (default: the number of CPU cores).")
    var slots: Int = ProcessInfo.processInfo.activeProcessorCount

    @Option(name: .customLong("id"), help: ArgumentHelp("This worker's id (default: EXECUTABLE-HOST-PID).", valueName: "id"))
    var workerID: String?

    @Option(help: ArgumentHelp("Folder for logs of running steps (default: a temporary folder).", valueName: "dir"))
    var workDir: String?

    @Option(help: "Log level: trace, debug, info, warning, error.")
    var logLevel: String = "info"

    var serverList: [String] { RemoteWorkerConfiguration.servers(from: servers) }

    func validate() throws {
        if let problem = RemoteWorkerConfiguration.problem(servers: serverList, slots: slots, queues: queues, logLevel: logLevel) {
            throw ValidationError(problem)
        }
    }

    func run(_ worker: Worker) async throws {
        let errors = worker.validate().filter { $0.severity == .error }
        guard errors.isEmpty else {
            printError(errors.map(\.description).joined(separator: "\n"))
            throw ExitCode(1)
        }
        let ownQueues = worker.queues
        guard !ownQueues.isEmpty || !queues.isEmpty else {
            throw ValidationError("no pipeline of this worker has a Step, so it has nothing to run; pass --queue to serve other queues")
        }
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let logger = Logger(label: "baton.worker") { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let executable = (Worker.executablePath as NSString).lastPathComponent
        let workDirectory = workDir ?? NSTemporaryDirectory() + "baton-\(executable)-\(getpid())"
        let configuration = RemoteWorkerConfiguration(
            servers: serverList, token: token ?? ProcessInfo.processInfo.environment["BATON_TOKEN"],
            queues: ownQueues + queues.filter { !ownQueues.contains($0) }, slots: slots,
            workerID: workerID ?? "\(executable)-\(RemoteWorkerConfiguration.defaultWorkerID())",
            workDirectory: workDirectory)
        let remote = try RemoteWorker(configuration: configuration, logger: logger) { worker.inProcessTask(for: $0) }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: RemoteWorkerService(worker: remote))],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        if workDir == nil { try? FileManager.default.removeItem(atPath: workDirectory) }
    }
}

struct RemoteWorkerService: Service {
    let worker: RemoteWorker

    func run() async throws {
        await cancelWhenGracefulShutdown { await worker.run() }
    }
}

struct DescribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "describe",
        abstract: "Print the pipelines as Baton reads them (JSON).",
        discussion: """
            Baton runs this for a NAME.baton-swift.yaml manifest naming this executable. Each
            pipeline comes as pipeline-file text with the Swift line behind every line of it;
            Baton validates it with the rules of YAML files.
            """)

    @Option(help: ArgumentHelp("Write the answer to this file instead of standard output.", valueName: "file"))
    var output: String?

    func run(_ worker: Worker) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(worker.describe())
        if let output {
            try data.write(to: URL(fileURLWithPath: output))
        } else {
            FileHandle.standardOutput.write(data + Data("\n".utf8))
        }
    }
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check the pipelines with Baton's rules; problems are shown at their Swift lines.",
        discussion: "Datasets are checked by `baton validate`, which knows the catalog. Exits 1 on errors.")

    func run(_ worker: Worker) throws {
        let issues = worker.validate()
        for issue in issues { print(issue.description) }
        let errors = issues.filter { $0.severity == .error }.count
        if errors > 0 {
            print("\(errors) error\(errors == 1 ? "" : "s") in \(worker.pipelines.count) pipeline\(worker.pipelines.count == 1 ? "" : "s")")
            throw ExitCode(1)
        }
        print("\(worker.pipelines.count) pipeline\(worker.pipelines.count == 1 ? "" : "s") OK: \(worker.pipelines.map(\.name).joined(separator: ", "))")
    }
}

struct RunTaskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: Worker.runTaskCommand,
        abstract: "Run one step in this process, as Baton runs a command task.",
        discussion: """
            Reads Baton's task variables (BATON_PARAMS, BATON_INPUTS, ...), writes the step's
            return value to BATON_OUTPUT and its log to standard output; a thrown error exits 1
            with the error in BATON_ERROR. Baton runs it when a task of a Swift pipeline is
            claimed by a worker that does not register the pipeline itself.
            """)

    @Argument(help: "The pipeline.") var pipeline: String
    @Argument(help: "The step.") var task: String

    func run(_ worker: Worker) async throws {
        guard let found = worker.pipelines.first(where: { $0.name == pipeline }) else {
            throw ValidationError(
                "this executable has no pipeline '\(pipeline)' (it has \(worker.pipelines.map(\.name).joined(separator: ", "))); rebuild it or fix the manifest")
        }
        guard let body = found.body(of: task) else {
            throw ValidationError("\(StaleStepError(pipeline: pipeline, task: task))")
        }
        let environment = ProcessInfo.processInfo.environment
        do {
            let context = try TaskContext(
                environment: environment, workingDirectory: FileManager.default.currentDirectoryPath,
                log: { line in FileHandle.standardOutput.write(Data((line.hasSuffix("\n") ? line : line + "\n").utf8)) })
            let output = try await body(context)
            if let output, let path = environment["BATON_OUTPUT"] {
                try Data(output.compactJSON.utf8).write(to: URL(fileURLWithPath: path))
            }
        } catch {
            let message = InProcessTaskRunner.describe(error)
            FileHandle.standardError.write(Data("baton: the task threw \(message)\n".utf8))
            if let path = environment["BATON_ERROR"] {
                try? Data(message.utf8).write(to: URL(fileURLWithPath: path))
            }
            throw ExitCode(1)
        }
    }
}

private func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
