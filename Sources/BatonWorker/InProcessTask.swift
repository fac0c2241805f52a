import BatonCore
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Work a worker runs inside its own process instead of spawning a command: a Swift closure
/// registered in a BatonKit worker. Claims, leases, log streaming and reports stay those of
/// any other attempt; only the running differs.
public struct InProcessTask: Sendable {
    /// Returns the task's output (a JSON object, or nil for none); a thrown error fails the attempt.
    public typealias Body = @Sendable (InProcessAttempt) async throws -> JSONValue?

    public var body: Body

    public init(_ body: @escaping Body) { self.body = body }
}

/// Finds the in-process task behind a claimed attempt; nil runs the attempt's command as usual.
public typealias InProcessLookup = @Sendable (DispatchPayload) -> InProcessTask?

/// What an in-process task sees of its attempt.
public struct InProcessAttempt: Sendable {
    public var key: AttemptKey
    public var pipeline: String
    /// What a spawned task would get: the worker's environment, Baton's `BATON_*` variables and
    /// the task's `env`.
    public var environment: [String: String]
    /// The task's working directory. The worker's own stays as it is: it is shared by every
    /// task running in the process.
    public var workingDirectory: String
    public var log: AttemptLog
}

/// The log of an attempt running in-process; the worker streams it to the server as it grows.
/// Writes after the attempt ended are dropped.
public final class AttemptLog: Sendable {
    private let descriptor: Mutex<Int32?>

    init(descriptor: Int32?) { self.descriptor = Mutex(descriptor) }

    /// Appends `text`, ending it with a newline when it has none.
    public func write(_ text: String) {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        descriptor.withLock { fd in
            guard let fd else { return }
            var bytes = Array(line.utf8)[...]
            while !bytes.isEmpty {
                let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { return }
                bytes = bytes.dropFirst(written)
            }
        }
    }

    func close() {
        descriptor.withLock { fd in
            if let open = fd { _ = Glibc.close(open) }
            fd = nil
        }
    }
}

/// Runs in-process tasks with the guarantees spawned ones have: the timeout, stops (a cancelled
/// run, a revoked lease) and shutdown end the attempt at once, the output is checked against
/// the same limits, and a thrown error becomes the failure reason.
///
/// A closure can only be cancelled, not killed: one that ignores cancellation keeps running
/// after its attempt ended (the log says so), while the slot is freed for other work.
public struct InProcessTaskRunner: Sendable {
    /// How long a cancelled closure gets to return before the attempt is reported anyway.
    public var grace: Duration

    public init(grace: Duration = .seconds(5)) { self.grace = grace }

    enum Ending: Sendable {
        case returned(JSONValue?)
        case threw(String)
        case timedOut
        case stopped
        case interrupted
    }

    public func run(
        _ task: InProcessTask, request: AttemptRequest, key: AttemptKey, pipeline: String, handle: AttemptHandle
    ) async -> AttemptOutcome {
        let started = ContinuousClock.now
        func elapsed() -> Double {
            let duration = ContinuousClock.now - started
            return Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        let log: AttemptLog
        do {
            log = AttemptLog(descriptor: try TaskProcessRunner.openLog(request.logPath).rawValue)
        } catch {
            return AttemptOutcome(status: .failedToStart("cannot open log \(request.logPath): \(error)"), duration: 0)
        }
        let attempt = InProcessAttempt(
            key: key, pipeline: pipeline, environment: request.environment,
            workingDirectory: request.workingDirectory, log: log)
        let ending = Once<Ending>()
        // True when the closure returned, false when the grace after its cancellation ran out.
        let settled = Once<Bool>()
        // The closure gets a thread of its own: a step that blocks or computes for minutes must
        // not hold one of the few cooperative threads the worker's heartbeats, log shipping and
        // this attempt's timeout run on.
        let thread = StepThread(name: "baton-step-\(key.task)")
        let work = Task(executorPreference: thread) {
            do {
                ending.finish(.returned(try await task.body(attempt)))
            } catch {
                ending.finish(.threw(Self.describe(error)))
            }
            settled.finish(true)
            thread.finishWhenIdle()
        }
        let timer = request.timeout.map { seconds in
            Task {
                try? await Task.sleep(for: .milliseconds(Int64(seconds * 1000)))
                if !Task.isCancelled { ending.finish(.timedOut) }
            }
        }
        if handle.setStopper({ ending.finish(.stopped) }) { ending.finish(.stopped) }
        let result = await withTaskCancellationHandler {
            await ending.wait()
        } onCancel: {
            ending.finish(.interrupted)
        }
        timer?.cancel()
        switch result {
        case .returned, .threw: break
        case .timedOut, .stopped, .interrupted:
            work.cancel()
            let grace = self.grace
            let deadline = Task {
                try? await Task.sleep(for: grace)
                settled.finish(false)
            }
            let returned = await settled.wait()
            deadline.cancel()
            if !returned {
                log.write(
                    "baton: the task did not return within \(grace) of being cancelled; it keeps running in the worker until it does (check Task.isCancelled or call Task.checkCancellation() in long loops)")
            }
        }
        defer {
            log.close()
            TaskProcessRunner().enforceLogLimit(request.logPath, limit: request.maxLogBytes)
        }
        let duration = elapsed()
        switch result {
        case .returned(let value):
            switch Self.check(value, limit: request.maxOutputBytes) {
            case .success(let output):
                return AttemptOutcome(status: .succeeded, output: output, duration: duration)
            case .failure(let problem):
                log.write("baton: \(problem.message)")
                return AttemptOutcome(status: .badOutput(problem.message), duration: duration)
            }
        case .threw(let message):
            log.write("baton: the task threw \(message)")
            return AttemptOutcome(status: .threw(Self.firstLine(message)), duration: duration)
        case .timedOut:
            let timeout = request.timeout ?? duration
            log.write("baton: timed out after \(DurationText.format(timeout)); the task was cancelled")
            return AttemptOutcome(status: .timedOut(after: timeout), duration: duration)
        case .stopped:
            return AttemptOutcome(status: .stopped, duration: duration)
        case .interrupted:
            log.write("baton: interrupted: the worker was shutting down; the task will run again")
            return AttemptOutcome(status: .interrupted, duration: duration)
        }
    }

    /// An error as the failure reason and the log show it: its type, then what it says.
    public static func describe(_ error: any Error) -> String {
        let name = String(describing: Swift.type(of: error))
        let text: String
        if let localized = error as? any LocalizedError, let description = localized.errorDescription {
            text = description
        } else {
            text = String(describing: error)
        }
        return text.hasPrefix(name) ? text : "\(name): \(text)"
    }

    /// The first line, bounded: it becomes part of the failure reason in `baton run show` and the UI.
    static func firstLine(_ text: String) -> String {
        let line = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? text
        return line.count > 500 ? String(line.prefix(497)) + "..." : line
    }

    struct OutputProblem: Error { var message: String }

    /// The limits a spawned task's `BATON_OUTPUT` file has: a JSON object of bounded size.
    static func check(_ value: JSONValue?, limit: Int) -> Result<JSONValue?, OutputProblem> {
        guard let value, value != .null else { return .success(nil) }
        guard case .object = value else {
            return .failure(OutputProblem(message: "the task's output must be a JSON object, got a \(value.kindName)"))
        }
        let size = value.compactJSON.utf8.count
        if size > limit {
            return .failure(
                OutputProblem(
                    message: "the task's output is \(size) bytes, over the \(limit)-byte limit; pass large data through files or datasets and keep outputs small"))
        }
        return .success(value)
    }
}

/// A task executor with one thread, for one in-process attempt. The thread ends once the
/// attempt's closure has returned and no job is left (a closure that ignores cancellation keeps
/// it until it returns); jobs that arrive later, from tasks the closure left behind, go to the
/// global executor.
final class StepThread: TaskExecutor, Sendable {
    private let state = Mutex<(jobs: [UnownedJob], finishing: Bool, exited: Bool)>(([], false, false))
    private let available = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = state.withLock { state -> Bool in
            guard !state.exited else { return false }
            state.jobs.append(job)
            return true
        }
        if accepted {
            available.signal()
        } else {
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        }
    }

    func finishWhenIdle() {
        state.withLock { $0.finishing = true }
        available.signal()
    }

    private enum Next {
        case run(UnownedJob)
        case wait
        case exit
    }

    private func loop() {
        while true {
            available.wait()
            let next = state.withLock { state -> Next in
                if !state.jobs.isEmpty { return .run(state.jobs.removeFirst()) }
                guard state.finishing else { return .wait }
                state.exited = true
                return .exit
            }
            switch next {
            case .run(let job): job.runSynchronously(on: asUnownedTaskExecutor())
            case .wait: continue
            case .exit: return
            }
        }
    }
}

/// A value set once by whichever of several racing parties comes first; waiters get it.
final class Once<Value: Sendable>: Sendable {
    private let state = Mutex<(value: Value?, waiters: [CheckedContinuation<Value, Never>])>((nil, []))

    func finish(_ value: Value) {
        let waiters = state.withLock { state -> [CheckedContinuation<Value, Never>] in
            guard state.value == nil else { return [] }
            state.value = value
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: value) }
    }

    func wait() async -> Value {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Value? in
                if let value = state.value { return value }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
