import BatonCore
import BatonStore
import BatonWorker
import Foundation
import Synchronization

/// Turns a ready task into the concrete process to start: templates rendered (values quoted
/// for the shell), environment assembled, paths chosen.
struct TaskLaunch {
    let run: RunRecord
    let machine: RunStateMachine
    let task: TaskSpec
    let attempt: Int
    let dataDirectory: String
    /// Empty for queued attempts: the worker supplies its own environment.
    var baseEnvironment: [String: String] = [:]
    /// Registry versions the task's templates name, by `NAME.ALIAS` (see `modelReferences`).
    var models: [String: JSONValue] = [:]

    static let maxInputsBytes = 1024 * 1024

    var logPath: String {
        "\(dataDirectory)/logs/\(run.pipeline)/\(run.id)/\(task.name).\(attempt).log"
    }

    var outputPath: String {
        "\(dataDirectory)/tmp/output-\(run.id)-\(task.name)-\(attempt).json"
    }

    struct RenderError: Error, CustomStringConvertible {
        var description: String
    }

    static func variables(run: RunRecord, task: String?, attempt: Int?) -> [String: JSONValue] {
        var values: [String: JSONValue] = [
            "logical_date": .string(DataInterval.iso(run.logicalDate)),
            "data_interval_start": .string(DataInterval.iso(run.intervalStart)),
            "data_interval_end": .string(DataInterval.iso(run.intervalEnd)),
            "ds": .string(String(DataInterval.iso(run.logicalDate).prefix(10))),
            "ts": .string(DataInterval.iso(run.logicalDate)),
            "run_id": .string(String(run.id)),
            "pipeline": .string(run.pipeline),
        ]
        if let event = run.event { values["event"] = event }
        if let task { values["task"] = .string(task) }
        if let attempt { values["attempt"] = .number(Double(attempt)) }
        return values
    }

    func resolve(_ reference: TemplateReference) throws -> JSONValue? {
        if reference.path.first == "models", reference.path.count >= 3 {
            let key = "\(reference.path[1]).\(reference.path[2])"
            guard let version = models[key] else {
                throw RenderError(
                    description: "model '\(reference.path[1])' has no version with alias '\(reference.path[2])'; approve one with `baton models approve \(reference.path[1]) VERSION`")
            }
            return version.value(at: reference.path.dropFirst(3))
        }
        if reference.path.first == "task" { return .string(task.name) }
        if reference.path.first == "attempt" { return .number(Double(attempt)) }
        return try machine.resolve(reference.path)
    }

    /// The registry versions a task's templates read (`{{ models.churn.champion.version }}`),
    /// as (model, alias) pairs. They are looked up when the task is about to run, so a task
    /// deploys whatever is approved at that moment.
    static func modelReferences(_ task: TaskSpec) -> [(model: String, alias: String)] {
        var texts: [String] = []
        switch task.command {
        case .shell(let command): texts.append(command)
        case .argv(let items): texts += items
        }
        texts += task.env.map(\.value)
        if let workdir = task.workdir { texts.append(workdir) }
        var seen = Set<String>()
        var result: [(model: String, alias: String)] = []
        for text in texts where text.contains("models.") {
            guard let template = try? Self.template(text) else { continue }
            for reference in template.references where reference.path.first == "models" && reference.path.count >= 3 {
                if seen.insert("\(reference.path[1]).\(reference.path[2])").inserted {
                    result.append((reference.path[1], reference.path[2]))
                }
            }
        }
        return result
    }

    /// Parsed templates by their text: the same commands launch again and again (every run,
    /// every retry), and parsing depends on the text alone. Bounded; cleared when full.
    static let templates = Mutex<[String: Template]>([:])

    static func template(_ text: String) throws -> Template {
        if let cached = templates.withLock({ $0[text] }) { return cached }
        let template = try Template.parse(text)
        templates.withLock { cache in
            if cache.count >= 1024 { cache.removeAll(keepingCapacity: true) }
            cache[text] = template
        }
        return template
    }

    func render(_ text: String, quoting: @escaping (String) -> String = { $0 }) throws -> String {
        do {
            return try Self.template(text).render(quoting: quoting, resolve: resolve)
        } catch {
            throw RenderError(description: "template error in '\(text)': \(error)")
        }
    }

    func request(timeoutOverride: Double? = nil) throws -> AttemptRequest {
        let arguments: [String]
        switch task.command {
        case .shell(let command):
            arguments = ["/bin/sh", "-c", try render(command, quoting: shellQuote)]
        case .argv(let items):
            arguments = try items.map { try render($0) }
        }
        var environment = baseEnvironment
        var inputs: [String: JSONValue] = [:]
        for upstream in task.needs { inputs[upstream] = machine.progress(of: upstream)?.output ?? .object([:]) }
        let inputsJSON = JSONValue.object(inputs).compactJSON
        if inputsJSON.utf8.count > Self.maxInputsBytes {
            throw RenderError(description: "upstream outputs total \(inputsJSON.utf8.count) bytes, over the \(Self.maxInputsBytes)-byte limit for BATON_INPUTS")
        }
        environment["BATON_OUTPUT"] = outputPath
        environment["BATON_INPUTS"] = inputsJSON
        environment["BATON_PARAMS"] = JSONValue.object(run.params).compactJSON
        environment["BATON_RUN_ID"] = String(run.id)
        environment["BATON_PIPELINE"] = run.pipeline
        environment["BATON_TASK"] = task.name
        environment["BATON_ATTEMPT"] = String(attempt)
        environment["BATON_LOGICAL_DATE"] = DataInterval.iso(run.logicalDate)
        environment["BATON_DATA_INTERVAL_START"] = DataInterval.iso(run.intervalStart)
        environment["BATON_DATA_INTERVAL_END"] = DataInterval.iso(run.intervalEnd)
        if let owner = run.spec.owner { environment["BATON_OWNER"] = owner }
        if let event = run.event { environment["BATON_EVENT"] = event.compactJSON }
        for entry in task.env { environment[entry.name] = try render(entry.value) }

        let pipelineFolder = run.spec.sourceFile.map { ($0 as NSString).deletingLastPathComponent }
            ?? FileManager.default.currentDirectoryPath
        var workdir = pipelineFolder
        if let declared = task.workdir {
            let rendered = try render(declared)
            workdir = rendered.hasPrefix("/") ? rendered : (pipelineFolder as NSString).appendingPathComponent(rendered)
        }
        workdir = URL(fileURLWithPath: workdir).standardizedFileURL.path
        return AttemptRequest(
            arguments: arguments, environment: environment, workingDirectory: workdir, logPath: logPath,
            outputPath: outputPath, timeout: timeoutOverride ?? task.timeout)
    }

    /// What goes into the work queue: the request with only the variables Baton adds (the
    /// worker merges them over its own environment).
    func payload(pipelinesDirectory: String) throws -> DispatchPayload {
        let request = try request()
        return DispatchPayload(
            pipeline: run.pipeline, arguments: request.arguments, environment: request.environment,
            workingDirectory: request.workingDirectory, pipelinesDirectory: pipelinesDirectory,
            timeout: request.timeout, maxOutputBytes: request.maxOutputBytes, maxLogBytes: request.maxLogBytes)
    }
}
