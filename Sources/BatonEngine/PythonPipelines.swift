import BatonCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Reads Python pipeline files (`*.py` importing `baton`) through the Python SDK in a child
/// process, `python -m baton.describe FILE`, under a time limit: user code never runs inside
/// Baton, and a file that hangs or crashes at import costs only its own pipelines.
///
/// The SDK answers with each pipeline as JSON text plus the Python line behind every line of
/// it. JSON is YAML, so the text goes through `PipelineParser` like a YAML file and every rule
/// applies (cron, unknown needs, cycles, templates, datasets); each problem's line is then
/// mapped back to the `.py` file.
enum PythonPipelines {
    /// Settings read from the environment once per load.
    struct Settings: Hashable {
        /// `BATON_PYTHON`, else `python3` on PATH.
        var interpreter: String
        /// The SDK folder put first on PYTHONPATH (the repository's `sdk/python`), when found.
        var sdkPath: String?
        var timeout: Double
        var environment: [String: String]

        static func current() -> Settings {
            let environment = ProcessInfo.processInfo.environment
            let interpreter = environment["BATON_PYTHON"].flatMap { $0.isEmpty ? nil : $0 } ?? "python3"
            let timeout = environment["BATON_PYTHON_TIMEOUT"].flatMap(Double.init).flatMap { $0 > 0 ? $0 : nil } ?? 30
            return Settings(interpreter: interpreter, sdkPath: sdkFolder(environment), timeout: timeout, environment: environment)
        }
    }

    /// What `baton.describe` prints (protocol 1).
    struct Answer: Decodable, Sendable {
        struct Pipeline: Decodable, Sendable {
            var name: String
            var function: String?
            var line: Int
            var spec: String
            var lines: [Int]
        }
        struct Issue: Decodable, Sendable {
            var severity: String?
            var line: Int
            var column: Int?
            var message: String
            var fix: String?
        }
        var sdk: String?
        var `protocol`: Int?
        var pipelines: [Pipeline]
        var issues: [Issue]
    }

    static let protocolVersion = 1

    /// Whether a `.py` file is a pipeline file: it imports the SDK. Other Python files in the
    /// folder are helpers the pipelines import, and are only watched.
    static func importsSDK(_ text: String) -> Bool {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let trimmed = line.drop { $0 == " " || $0 == "\t" }
            if trimmed.hasPrefix("from baton import") || trimmed.hasPrefix("from baton.") || trimmed.hasPrefix("import baton")
            {
                return true
            }
        }
        return false
    }

    // MARK: - Finding the SDK

    /// `BATON_PYTHON_SDK`, else `sdk/python` in a repository the running binary was built in
    /// (`.build/debug/baton`), else `share/baton/python` next to an installed binary. Without
    /// one, the interpreter must have the SDK installed (`pip install sdk/python`).
    static func sdkFolder(_ environment: [String: String]) -> String? {
        func hasSDK(_ folder: String) -> Bool {
            FileManager.default.fileExists(atPath: folder + "/baton/__init__.py")
                && FileManager.default.fileExists(atPath: folder + "/baton/describe.py")
        }
        if let explicit = environment["BATON_PYTHON_SDK"], !explicit.isEmpty {
            return URL(fileURLWithPath: explicit).standardizedFileURL.path
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments.first ?? ""
        var folder = URL(fileURLWithPath: executable).deletingLastPathComponent()
        for _ in 0..<6 {
            let candidates = [folder.appendingPathComponent("sdk/python").path,
                              folder.appendingPathComponent("share/baton/python").path]
            if let found = candidates.first(where: hasSDK) { return found }
            folder.deleteLastPathComponent()
        }
        return nil
    }

    // MARK: - Describing files

    /// Answers by file path, reused while neither the file, the other Python files of the
    /// folder (helpers it may import) nor the settings changed: a YAML edit must not rerun
    /// every Python file.
    private static let cache = Mutex<[String: (stamp: String, outcome: DescribeOutcome)]>([:])

    enum DescribeOutcome: Sendable {
        case answer(Answer)
        case failed(ValidationIssue)
    }

    /// Describes files, at most `parallel` processes at a time; the result is in input order.
    static func describe(
        _ files: [(path: String, display: String)], folderStamp: String, settings: Settings, parallel: Int = 4
    ) -> [DescribeOutcome] {
        var results = [DescribeOutcome?](repeating: nil, count: files.count)
        var pending: [(index: Int, job: DescribeJob)] = []
        func finish(_ entry: (index: Int, job: DescribeJob)) {
            let outcome = entry.job.wait()
            results[entry.index] = outcome
            cache.withLock { $0[files[entry.index].path] = (entry.job.stamp, outcome) }
        }
        for (index, file) in files.enumerated() {
            let stamp = "\(settings.hashValue)|\(folderStamp)|\(fileStamp(file.path))"
            if let cached = cache.withLock({ $0[file.path] }), cached.stamp == stamp {
                results[index] = cached.outcome
                continue
            }
            if pending.count >= parallel { finish(pending.removeFirst()) }
            pending.append((index, DescribeJob(path: file.path, display: file.display, stamp: stamp, settings: settings)))
        }
        for entry in pending { finish(entry) }
        return results.map { $0! }
    }

    static func fileStamp(_ path: String) -> String {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
        let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
        return "\(size)-\(modified)"
    }

    /// One `python -m baton.describe` process.
    final class DescribeJob {
        let path: String
        let display: String
        let stamp: String
        let settings: Settings
        let started: Result<DescribeProcess, ValidationIssue>

        init(path: String, display: String, stamp: String, settings: Settings) {
            self.path = path
            self.display = display
            self.stamp = stamp
            self.settings = settings
            started = Self.start(path: path, display: display, settings: settings)
        }

        private static func start(path: String, display: String, settings: Settings) -> Result<DescribeProcess, ValidationIssue> {
            guard let interpreter = PythonPipelines.resolve(settings.interpreter, path: settings.environment["PATH"]) else {
                return .failure(
                    ValidationIssue(
                        file: display, line: 0, column: 0,
                        message: "cannot read Python pipelines: the interpreter '\(settings.interpreter)' is not on PATH",
                        value: settings.interpreter, fix: "install python3 (3.9 or newer), or set BATON_PYTHON to the interpreter to use"))
            }
            var environment = settings.environment
            // Tasks run with the interpreter as Baton names it, resolved on the worker's PATH.
            environment["BATON_PYTHON_COMMAND"] = settings.interpreter
            if let sdk = settings.sdkPath {
                environment["PYTHONPATH"] = [sdk, environment["PYTHONPATH"]].compactMap { $0 }.filter { !$0.isEmpty }
                    .joined(separator: ":")
            }
            // Pipeline code reads the file's folder as its working directory, as its tasks do.
            return .success(
                DescribeProcess(
                    executable: interpreter, arguments: { ["-m", "baton.describe", path, "--output", $0] },
                    environment: environment, directory: (path as NSString).deletingLastPathComponent))
        }

        /// Waits for the answer (killing the process at the time limit) and reads it.
        func wait() -> DescribeOutcome {
            let process: DescribeProcess
            switch started {
            case .failure(let issue): return .failed(issue)
            case .success(let running): process = running
            }
            let data: Data
            switch process.wait(timeout: settings.timeout) {
            case .couldNotStart(let message):
                return .failed(
                    ValidationIssue(
                        file: display, line: 0, column: 0, message: "cannot start \(settings.interpreter): \(message)",
                        fix: "set BATON_PYTHON to a working Python 3.9+ interpreter"))
            case .timedOut:
                return .failed(
                    ValidationIssue(
                        file: display, line: 0, column: 0,
                        message: "reading the file took longer than \(DurationText.format(settings.timeout)); the Python process was stopped",
                        fix: "move slow work done at import time or in the pipeline function into tasks (or raise BATON_PYTHON_TIMEOUT, in seconds)"))
            case .failed(let status, let log):
                return .failed(failure(status: status, log: log))
            case .answered(let answer):
                data = answer
            }
            do {
                let answer = try JSONDecoder().decode(Answer.self, from: data)
                if let version = answer.protocol, version > PythonPipelines.protocolVersion {
                    return .failed(
                        ValidationIssue(
                            file: display, line: 0, column: 0,
                            message: "the baton Python SDK \(answer.sdk ?? "?") answers in protocol \(version); this Baton reads protocol \(PythonPipelines.protocolVersion)",
                            fix: "use the SDK that comes with this Baton (its sdk/python folder), or upgrade Baton"))
                }
                return .answer(answer)
            } catch {
                return .failed(
                    ValidationIssue(
                        file: display, line: 0, column: 0,
                        message: "cannot read the answer of baton.describe: \(error)",
                        value: String(decoding: data.prefix(120), as: UTF8.self),
                        fix: "use the SDK that comes with this Baton"))
            }
        }

        private func failure(status: Int32, log: String) -> ValidationIssue {
            let lastLine = log.split(separator: "\n").last.map(String.init) ?? ""
            if log.contains("No module named baton") || log.contains("No module named 'baton'") {
                return ValidationIssue(
                    file: display, line: 0, column: 0,
                    message: "the baton Python SDK is not importable by \(settings.interpreter)",
                    fix: "pip install the SDK (`pip install ./sdk/python` in the Baton repository), set BATON_PYTHON_SDK to the folder holding baton/, or set BATON_PYTHON to an interpreter that has it")
            }
            return ValidationIssue(
                file: display, line: 0, column: 0,
                message: "reading the file with \(settings.interpreter) failed (exit status \(status))"
                    + (lastLine.isEmpty ? "" : ": \(lastLine)"),
                fix: "run `\(settings.interpreter) -m baton.describe \(display)` to see the whole output")
        }
    }

    /// An executable named without a slash, looked up on PATH like a shell does.
    static func resolve(_ name: String, path: String?) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for folder in (path ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    // MARK: - From answers to pipelines

    /// Parses each described pipeline like a YAML file and maps problems to the `.py` file's
    /// lines: a spec line's problem is reported at the Python line that produced it.
    static func pipelines(
        from answer: Answer, display: String, datasets: Set<String>?
    ) -> [(spec: PipelineSpec?, issues: [ValidationIssue])] {
        var result: [(spec: PipelineSpec?, issues: [ValidationIssue])] = []
        let fileIssues = answer.issues.map { issue in
            ValidationIssue(
                file: display, line: max(0, issue.line), column: issue.line > 0 ? max(1, issue.column ?? 1) : 0,
                severity: issue.severity == "warning" ? .warning : .error, message: issue.message, fix: issue.fix)
        }
        if !fileIssues.isEmpty { result.append((nil, fileIssues)) }
        for pipeline in answer.pipelines {
            let outcome = PipelineParser.parse(pipeline.spec, file: display, datasets: datasets)
            let issues = outcome.issues.map { issue -> ValidationIssue in
                var mapped = issue
                let line = issue.line > 0 && issue.line <= pipeline.lines.count ? pipeline.lines[issue.line - 1] : 0
                mapped.line = line > 0 ? line : pipeline.line
                mapped.column = 1
                return mapped
            }
            result.append((outcome.spec, issues))
        }
        return result
    }
}
