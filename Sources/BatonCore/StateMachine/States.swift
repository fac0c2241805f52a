/// Where a task instance stands within its run.
public enum TaskState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Waiting for its upstream tasks.
    case pending
    /// Ready, waiting for a worker slot.
    case queued
    case running
    case success
    case failed
    /// Not run because an upstream task failed.
    case upstreamFailed = "upstream_failed"
    /// Not run: its `when` was false or its trigger rule did not fire.
    case skipped
    /// An attempt failed; another will start after the retry delay.
    case upForRetry = "up_for_retry"
    case cancelled

    public var isTerminal: Bool {
        switch self {
        case .success, .failed, .upstreamFailed, .skipped, .cancelled: return true
        case .pending, .queued, .running, .upForRetry: return false
        }
    }

    var countsAsFailure: Bool { self == .failed || self == .upstreamFailed || self == .cancelled }
}

/// Where a run stands.
public enum RunState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Created, waiting for a free `max_active_runs` slot.
    case queued
    case running
    case success
    case failed
    case cancelled

    public var isTerminal: Bool { self == .success || self == .failed || self == .cancelled }
}

/// The state of one attempt of a task.
public enum AttemptState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Handed to the work queue, waiting for a worker to claim it.
    case queued
    case running, success, failed, timedOut = "timed_out", lost, cancelled, interrupted
    /// Did not start: a required dataset broke its contract (skipped, or waiting for fresh data).
    case skipped, deferred

    /// Queued or running: a worker may still report its end.
    public var isOpen: Bool { self == .queued || self == .running }
}

/// How a task's direct upstreams stand, by kind of state.
public struct UpstreamCounts: Sendable, Hashable {
    public var total = 0
    /// Not yet in a terminal state.
    public var open = 0
    public var failed = 0
    public var succeeded = 0
    public var skipped = 0

    public init() {}

    public mutating func add(_ state: TaskState, _ sign: Int = 1) {
        total += sign
        if !state.isTerminal { open += sign }
        if state.countsAsFailure { failed += sign }
        if state == .success { succeeded += sign }
        if state == .skipped { skipped += sign }
    }
}

/// What a trigger rule says about a task given its upstream states.
public enum TriggerDecision: Sendable, Hashable {
    case wait, run, skip, upstreamFailed

    /// Applies `rule` to the states of the task's direct upstreams. Rules that can be decided
    /// before every upstream is done (a failure under `all_success`, a success under
    /// `one_success`) decide at once, so downstream tasks start or stop without waiting.
    public static func evaluate(_ rule: TriggerRule, upstream: [TaskState]) -> TriggerDecision {
        var counts = UpstreamCounts()
        for state in upstream { counts.add(state) }
        return evaluate(rule, counts)
    }

    /// The same decision from counts kept up to date as upstreams change, so a task that joins
    /// thousands of upstreams is decided in constant time on each of their completions.
    public static func evaluate(_ rule: TriggerRule, _ counts: UpstreamCounts) -> TriggerDecision {
        if counts.total == 0 { return .run }
        let allDone = counts.open == 0
        let anyFailed = counts.failed > 0
        let anySuccess = counts.succeeded > 0
        let anySkipped = counts.skipped > 0
        switch rule {
        case .allSuccess:
            if anyFailed { return .upstreamFailed }
            // A skip waits for the other upstreams: one of them may still fail, and a failure
            // outranks a skip, so deciding early would make the result depend on event order.
            guard allDone else { return .wait }
            return anySkipped ? .skip : .run
        case .allDone:
            return allDone ? .run : .wait
        case .oneFailed:
            if anyFailed { return .run }
            return allDone ? .skip : .wait
        case .allFailed:
            if anySuccess || anySkipped { return .skip }
            return allDone ? .run : .wait
        case .noneFailed:
            if anyFailed { return .upstreamFailed }
            return allDone ? .run : .wait
        case .oneSuccess:
            if anySuccess { return .run }
            guard allDone else { return .wait }
            return anyFailed ? .upstreamFailed : .skip
        }
    }
}
