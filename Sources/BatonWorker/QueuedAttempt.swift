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
        self.init(
            arguments: payload.arguments, environment: environment,
            workingDirectory: workingDirectory ?? payload.workingDirectory, logPath: logPath, outputPath: outputPath,
            timeout: payload.timeout, maxOutputBytes: payload.maxOutputBytes, maxLogBytes: payload.maxLogBytes)
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
