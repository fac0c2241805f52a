import BatonCore
import Foundation
import Synchronization

/// Reads pipelines defined in Swift with BatonKit. A manifest in the pipelines folder
/// (`NAME.baton-swift.yaml`, see `SwiftManifest`) names the user's worker executable; Baton runs
/// `EXECUTABLE describe --output FILE` in a child process under a time limit, as it does for
/// Python files, so user code never runs inside the server.
///
/// The answer holds each pipeline as pipeline-file text, which goes through `PipelineParser`
/// like a YAML file so every rule applies. Problems are reported at the manifest (the file
/// Baton read, and the one whose pipelines keep their last good version while it is broken),
/// naming the Swift line that declared the offending task.
enum SwiftPipelines {
    enum Outcome: Sendable {
        case answer(SwiftDescribeAnswer)
        case failed([ValidationIssue])
    }

    /// Answers by manifest path, reused while neither the manifest nor the executable changed:
    /// a YAML edit must not rerun every worker executable.
    private static let cache = Mutex<[String: (stamp: String, outcome: Outcome)]>([:])

    /// What a manifest names, read without running anything: for the folder's fingerprint, so
    /// rebuilding the executable (outside the folder) reloads its pipelines.
    static func executableStamp(manifest path: String) -> String? {
        guard let data = FileManager.default.contents(atPath: path),
            let manifest = SwiftManifest.parse(String(decoding: data, as: UTF8.self), file: path).manifest
        else { return nil }
        return PythonPipelines.fileStamp(manifest.executablePath(manifest: path))
    }

    /// Reads one manifest and describes its executable.
    static func describe(manifest path: String, display: String, text: String) -> Outcome {
        let (parsed, issues) = SwiftManifest.parse(text, file: display)
        guard let manifest = parsed else { return .failed(issues) }
        let executable = manifest.executablePath(manifest: path)
        let stamp = "\(manifest.timeout)|\(PythonPipelines.fileStamp(path))|\(PythonPipelines.fileStamp(executable))"
        if let cached = cache.withLock({ $0[path] }), cached.stamp == stamp { return cached.outcome }
        let outcome = run(manifest, executable: executable, manifestPath: path, display: display)
        cache.withLock { $0[path] = (stamp, outcome) }
        return outcome
    }

    private static func run(_ manifest: SwiftManifest, executable: String, manifestPath: String, display: String) -> Outcome {
        func failure(_ message: String, value: String? = nil, fix: String) -> Outcome {
            .failed([ValidationIssue(file: display, line: 0, column: 0, field: "executable", message: message, value: value, fix: fix)])
        }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: executable, isDirectory: &isDirectory) else {
            return failure(
                "the Swift pipelines executable \(executable) does not exist", value: manifest.executable,
                fix: "build it (`swift build` in its package), or correct `executable:` (a path relative to this file's folder)")
        }
        guard !isDirectory.boolValue, FileManager.default.isExecutableFile(atPath: executable) else {
            return failure(
                "\(executable) is not an executable file", value: manifest.executable,
                fix: "point `executable:` at the built BatonKit executable, such as ../.build/debug/my-worker")
        }
        let folder = (manifestPath as NSString).deletingLastPathComponent
        let process = DescribeProcess(
            executable: executable, arguments: { ["describe", "--output", $0] },
            environment: ProcessInfo.processInfo.environment, directory: folder)
        let data: Data
        switch process.wait(timeout: manifest.timeout) {
        case .couldNotStart(let message):
            return failure("cannot start \(executable): \(message)", fix: "check that it was built for this machine")
        case .timedOut:
            return failure(
                "`\(manifest.executable) describe` took longer than \(DurationText.format(manifest.timeout)); it was stopped",
                fix: "keep slow work out of the code that builds the pipelines (it runs on every describe), or raise `timeout:` in the manifest")
        case .failed(let status, let log):
            let lastLine = log.split(separator: "\n").last.map(String.init) ?? ""
            let batonKitFix = "point `executable:` at an executable whose main.swift runs `await Worker(...).main()` from BatonKit"
            if status == 0 {
                return failure("`\(manifest.executable) describe` wrote no answer", fix: batonKitFix)
            }
            return failure(
                "`\(manifest.executable) describe` failed (exit status \(status))" + (lastLine.isEmpty ? "" : ": \(lastLine)"),
                fix: "run `\(executable) describe` to see the whole output; if it is not a BatonKit worker, \(batonKitFix)")
        case .answered(let answer):
            data = answer
        }
        do {
            let answer = try JSONDecoder().decode(SwiftDescribeAnswer.self, from: data)
            guard answer.protocol <= SwiftDescribeAnswer.currentProtocol else {
                return failure(
                    "\(manifest.executable) was built with \(answer.sdk), which answers in protocol \(answer.protocol); this Baton reads protocol \(SwiftDescribeAnswer.currentProtocol)",
                    fix: "build the worker against this Baton's BatonKit, or upgrade Baton")
            }
            return .answer(answer)
        } catch {
            return failure(
                "cannot read the answer of `\(manifest.executable) describe`: \(error)",
                value: String(decoding: data.prefix(120), as: UTF8.self),
                fix: "build the worker against this Baton's BatonKit")
        }
    }

    /// Parses each described pipeline like a YAML file. Problems stay at the manifest and say
    /// which Swift line declared what is wrong.
    static func pipelines(
        from answer: SwiftDescribeAnswer, display: String, datasets: Set<String>?
    ) -> [(spec: PipelineSpec?, issues: [ValidationIssue])] {
        var result: [(spec: PipelineSpec?, issues: [ValidationIssue])] = []
        let problems = answer.problems.map { problem in
            ValidationIssue(
                file: display, line: 0, column: 0,
                message: "\(problem.message) (at \(shortPath(problem.location)))",
                fix: problem.fix.map { "\($0) (in the Swift source, then rebuild the worker)" })
        }
        if !problems.isEmpty { result.append((nil, problems)) }
        for pipeline in answer.pipelines {
            let outcome = PipelineParser.parse(pipeline.spec, file: display, datasets: datasets)
            let issues = outcome.issues.map { issue -> ValidationIssue in
                var mapped = issue
                mapped.line = 0
                mapped.column = 0
                mapped.message += " (pipeline \(pipeline.name), at \(shortPath(pipeline.location(ofLine: issue.line))))"
                if let fix = issue.fix { mapped.fix = "\(fix) (in the Swift source, then rebuild the worker)" }
                return mapped
            }
            result.append((outcome.spec, issues))
        }
        return result
    }

    /// A source path relative to the working directory when it is inside it.
    static func shortPath(_ location: SwiftDescribeAnswer.Location) -> String {
        "\(PipelineRepository.displayPath(location.file)):\(location.line)"
    }
}
