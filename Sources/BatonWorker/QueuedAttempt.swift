import BatonCore
import Foundation

extension AttemptRequest {
    /// The process to start for a queued attempt: its payload's variables over this worker's
    /// own environment, with the output file and log where this worker keeps them.
    public init(
        payload: DispatchPayload, logPath: String, outputPath: String, baseEnvironment: [String: String],
        workingDirectory: String? = nil
    ) {
        var environment = baseEnvironment.merging(payload.environment) { _, task in task }
        environment["BATON_OUTPUT"] = outputPath
        Self.addTrackingServer(to: &environment, explicit: payload.environment)
        self.init(
            arguments: payload.arguments, environment: environment,
            workingDirectory: workingDirectory ?? payload.workingDirectory, logPath: logPath, outputPath: outputPath,
            timeout: payload.timeout, maxOutputBytes: payload.maxOutputBytes, maxLogBytes: payload.maxLogBytes)
    }
}

extension AttemptRequest {
    /// Points the MLflow client of a task at the Baton server that runs it, through the path
    /// that names the run, task and attempt, so experiment runs and model versions the task
    /// logs are linked to its pipeline run. A task whose pipeline sets `MLFLOW_TRACKING_URI`
    /// in its `env` keeps that.
    static func addTrackingServer(to environment: inout [String: String], explicit: [String: String]) {
        guard explicit["MLFLOW_TRACKING_URI"] == nil, let server = environment["BATON_SERVER"], !server.isEmpty,
            let run = environment["BATON_RUN_ID"], let task = environment["BATON_TASK"], let attempt = environment["BATON_ATTEMPT"],
            let encodedTask = task.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"]))
        else { return }
        let base = server.hasSuffix("/") ? String(server.dropLast()) : server
        environment["MLFLOW_TRACKING_URI"] = "\(base)/tasks/\(run)/\(encodedTask)/\(attempt)"
        if explicit["MLFLOW_TRACKING_TOKEN"] == nil, let token = environment["BATON_TOKEN"], !token.isEmpty {
            environment["MLFLOW_TRACKING_TOKEN"] = token
        }
    }
}

extension AttemptOutcome {
    /// The attempt's end as workers report it to the store.
    public func result(at date: Date) -> AttemptResult {
        let state: AttemptState
        switch status {
        case .succeeded: state = .success
        case .timedOut: state = .timedOut
        case .stopped: state = .cancelled
        case .interrupted: state = .interrupted
        case .exited, .signalled, .failedToStart, .badOutput, .threw: state = .failed
        }
        return AttemptResult(state: state, exitCode: exitCode, reason: reason, output: output, at: date)
    }
}
