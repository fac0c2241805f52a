import Foundation

/// The progress of one task instance, as the state machine sees it.
public struct TaskProgress: Sendable, Hashable, Codable {
    public var state: TaskState
    /// Attempts started so far.
    public var attempts: Int
    public var output: JSONValue?
    /// Why the task ended up where it is, for people reading the run.
    public var reason: String?
    /// Attempts that do not use up retries: those cut short by a graceful shutdown of Baton,
    /// and all attempts made before the task was cleared for a fresh try.
    public var interruptions: Int

    public init(
        state: TaskState = .pending, attempts: Int = 0, output: JSONValue? = nil, reason: String? = nil,
        interruptions: Int = 0
    ) {
        self.state = state
        self.attempts = attempts
        self.output = output
        self.reason = reason
        self.interruptions = interruptions
    }

    /// Attempts that count against the retry budget.
    public var countedAttempts: Int { attempts - interruptions }
}

/// The rules of one run as a value: it takes events and returns the effects the engine must
/// persist and perform. It does no I/O, so every rule is tested without processes or a store.
public struct RunStateMachine: Sendable {
    public enum Event: Sendable, Hashable {
        /// The run may start (it got a `max_active_runs` slot).
        case start
        /// Re-evaluate waiting tasks after a restart; changes nothing that is consistent.
        case resume
        case attemptStarted(task: String)
        case attemptSucceeded(task: String, output: JSONValue?)
        case attemptFailed(task: String, reason: String)
        /// Baton itself is shutting down and stopped the attempt: the task goes back to the
        /// queue without using up a retry.
        case attemptInterrupted(task: String, reason: String)
        /// The attempt could not start and retrying cannot help (a data contract was broken).
        case attemptFailedPermanently(task: String, reason: String)
        /// The attempt did not start and the task is skipped (a contract with `on_violation: skip`).
        case attemptSkipped(task: String, reason: String)
        /// The attempt did not start; try again after `seconds` without using a retry
        /// (waiting for fresh data under `on_violation: wait`).
        case attemptDeferred(task: String, reason: String, seconds: Double)
        case retryDue(task: String)
        case cancel(reason: String)
        /// Re-run an ended run's failed, upstream-failed and cancelled tasks (or the named ones)
        /// and whatever they skipped or blocked downstream, with a fresh retry budget.
        case clear(tasks: [String]?)
    }

    public enum Effect: Sendable, Hashable {
        case runStateChanged(RunState)
        case taskStateChanged(task: String, state: TaskState, reason: String?)
        /// The task is ready: hand it to a worker slot.
        case enqueue(task: String)
        /// Start attempt `attempt` after `seconds`.
        case retryAfter(task: String, attempt: Int, seconds: Double)
        /// Stop the running attempt of the task (its run was cancelled).
        case stopAttempt(task: String)
    }

    public let spec: PipelineSpec
    public let graph: TaskGraph
    public let params: [String: JSONValue]
    /// Template variables other than params and tasks (logical_date, run_id, ...).
    public let variables: [String: JSONValue]
    public private(set) var state: RunState
    public private(set) var tasks: [String: TaskProgress]
    private let specsByName: [String: TaskSpec]
    /// Fixed for the run's life, so computed once rather than on every start, resume and clear.
    private let order: [String]
    /// `when` conditions parsed once per run instead of each time a task is decided.
    private let conditions: [String: Result<Condition, TemplateError>]
    /// Tasks not yet in a terminal state; the run ends when it reaches zero.
    private var unfinished: Int
    /// Each task's upstream states by kind, kept current by `update`.
    private var upstreamCounts: [String: UpstreamCounts]

    public init(
        spec: PipelineSpec, params: [String: JSONValue], variables: [String: JSONValue] = [:],
        state: RunState = .queued, tasks: [String: TaskProgress]? = nil
    ) {
        self.spec = spec
        self.graph = TaskGraph(tasks: spec.tasks)
        self.params = params
        self.variables = variables
        self.state = state
        var progress = tasks ?? [:]
        for task in spec.tasks where progress[task.name] == nil { progress[task.name] = TaskProgress() }
        self.tasks = progress
        self.specsByName = Dictionary(spec.tasks.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.order = graph.topologicalOrder()
        var conditions: [String: Result<Condition, TemplateError>] = [:]
        for task in spec.tasks {
            guard let text = task.when else { continue }
            do throws(TemplateError) {
                conditions[text] = .success(try Condition.parse(text))
            } catch {
                conditions[text] = .failure(error)
            }
        }
        self.conditions = conditions
        self.unfinished = progress.values.filter { !$0.state.isTerminal }.count
        var counts: [String: UpstreamCounts] = [:]
        for task in spec.tasks {
            var upstream = UpstreamCounts()
            for need in task.needs { if let state = progress[need]?.state { upstream.add(state) } }
            counts[task.name] = upstream
        }
        self.upstreamCounts = counts
    }

    /// The declaration of a task of this run, by name.
    public func taskSpec(named name: String) -> TaskSpec? { specsByName[name] }

    /// Sets a task's progress, keeping the count of unfinished tasks exact.
    private mutating func update(_ name: String, _ progress: TaskProgress) {
        let previous = tasks[name]?.state
        let wasTerminal = previous?.isTerminal ?? true
        tasks[name] = progress
        if wasTerminal != progress.state.isTerminal { unfinished += progress.state.isTerminal ? -1 : 1 }
        if let previous, previous != progress.state {
            for child in graph.downstream[name] ?? [] {
                upstreamCounts[child]?.add(previous, -1)
                upstreamCounts[child]?.add(progress.state)
            }
        }
    }

    public func progress(of task: String) -> TaskProgress? { tasks[task] }

    /// Applies an event; events that no longer apply (a late result for a cancelled task,
    /// a duplicate delivery) are ignored, which keeps replays after a crash harmless.
    public mutating func handle(_ event: Event) -> [Effect] {
        var effects: [Effect] = []
        switch event {
        case .start:
            guard state == .queued else { return [] }
            state = .running
            effects.append(.runStateChanged(.running))
            evaluatePending(&effects)
        case .resume:
            guard state == .running else { return [] }
            evaluatePending(&effects)
        case .attemptStarted(let name):
            guard state == .running, var task = tasks[name], task.state == .queued else { return [] }
            task.state = .running
            task.attempts += 1
            task.reason = nil
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .running, reason: nil))
        case .attemptSucceeded(let name, let output):
            guard var task = tasks[name], task.state == .running else { return [] }
            task.state = .success
            task.output = output
            task.reason = nil
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .success, reason: nil))
            evaluateDownstream(of: name, &effects)
        case .attemptFailed(let name, let reason):
            guard var task = tasks[name], task.state == .running || task.state == .queued,
                let taskSpec = specsByName[name]
            else { return [] }
            if task.state == .queued { task.attempts += 1 }
            task.reason = reason
            if task.countedAttempts <= taskSpec.retries {
                task.state = .upForRetry
                update(name, task)
                effects.append(.taskStateChanged(task: name, state: .upForRetry, reason: reason))
                // The backoff follows the retries used, like the budget: an interrupted attempt
                // must not make the first real retry wait as long as the second.
                effects.append(
                    .retryAfter(
                        task: name, attempt: task.attempts + 1,
                        seconds: taskSpec.retryDelay(beforeAttempt: task.countedAttempts + 1)))
            } else {
                task.state = .failed
                update(name, task)
                effects.append(.taskStateChanged(task: name, state: .failed, reason: reason))
                evaluateDownstream(of: name, &effects)
            }
        case .attemptInterrupted(let name, let reason):
            guard state == .running, var task = tasks[name], task.state == .running else { return [] }
            task.state = .queued
            task.interruptions += 1
            task.reason = reason
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .queued, reason: reason))
            effects.append(.enqueue(task: name))
        case .attemptFailedPermanently(let name, let reason):
            guard var task = tasks[name], task.state == .running else { return [] }
            task.state = .failed
            task.reason = reason
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .failed, reason: reason))
            evaluateDownstream(of: name, &effects)
        case .attemptSkipped(let name, let reason):
            guard var task = tasks[name], task.state == .running else { return [] }
            task.state = .skipped
            task.reason = reason
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .skipped, reason: reason))
            evaluateDownstream(of: name, &effects)
        case .attemptDeferred(let name, let reason, let seconds):
            guard state == .running, var task = tasks[name], task.state == .running else { return [] }
            task.state = .upForRetry
            task.interruptions += 1
            task.reason = reason
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .upForRetry, reason: reason))
            effects.append(.retryAfter(task: name, attempt: task.attempts + 1, seconds: seconds))
        case .retryDue(let name):
            guard state == .running, var task = tasks[name], task.state == .upForRetry else { return [] }
            task.state = .queued
            update(name, task)
            effects.append(.taskStateChanged(task: name, state: .queued, reason: task.reason))
            effects.append(.enqueue(task: name))
        case .clear(let names):
            guard state == .failed || state == .cancelled || state == .success else { return [] }
            let failing: Set<TaskState> = [.failed, .upstreamFailed, .cancelled]
            var targets = Set(names ?? graph.names.filter { failing.contains(tasks[$0]?.state ?? .pending) })
            var frontier = Array(targets)
            // Tasks downstream of a cleared one were decided by its failure; decide them again.
            while let next = frontier.popLast() {
                for child in graph.downstream[next] ?? [] where !targets.contains(child) {
                    let childState = tasks[child]?.state ?? .pending
                    if childState == .skipped || failing.contains(childState) {
                        targets.insert(child)
                        frontier.append(child)
                    }
                }
            }
            guard !targets.isEmpty else { return [] }
            state = .running
            effects.append(.runStateChanged(.running))
            for name in order where targets.contains(name) {
                guard var task = tasks[name] else { continue }
                task.state = .pending
                task.interruptions = task.attempts
                task.reason = "cleared for another try"
                update(name, task)
                effects.append(.taskStateChanged(task: name, state: .pending, reason: task.reason))
            }
            evaluatePending(&effects)
        case .cancel(let reason):
            guard !state.isTerminal else { return [] }
            for name in graph.names {
                guard var task = tasks[name], !task.state.isTerminal else { continue }
                if task.state == .running { effects.append(.stopAttempt(task: name)) }
                task.state = .cancelled
                task.reason = reason
                update(name, task)
                effects.append(.taskStateChanged(task: name, state: .cancelled, reason: reason))
            }
            state = .cancelled
            effects.append(.runStateChanged(.cancelled))
            return effects
        }
        finishIfDone(&effects)
        return effects
    }

    private mutating func evaluatePending(_ effects: inout [Effect]) {
        for name in order where tasks[name]?.state == .pending {
            evaluate(name, &effects)
        }
        // A resumed run may hold queued tasks whose dispatch was lost with the old process.
        var enqueued = Set(effects.compactMap { effect -> String? in
            if case .enqueue(let task) = effect { return task }
            return nil
        })
        for name in graph.names where tasks[name]?.state == .queued && enqueued.insert(name).inserted {
            effects.append(.enqueue(task: name))
        }
    }

    private mutating func evaluateDownstream(of name: String, _ effects: inout [Effect]) {
        var pending = graph.downstream[name] ?? []
        while !pending.isEmpty {
            let next = pending.removeFirst()
            guard tasks[next]?.state == .pending else { continue }
            if evaluate(next, &effects) { pending += graph.downstream[next] ?? [] }
        }
    }

    /// Decides a pending task; returns true when it reached a terminal state without running,
    /// so its own downstream tasks must be decided too.
    @discardableResult
    private mutating func evaluate(_ name: String, _ effects: inout [Effect]) -> Bool {
        guard let taskSpec = specsByName[name], var task = tasks[name], task.state == .pending else {
            return false
        }
        switch TriggerDecision.evaluate(taskSpec.triggerRule, upstreamCounts[name] ?? UpstreamCounts()) {
        case .wait:
            return false
        case .skip:
            task.state = .skipped
            task.reason = "trigger rule \(taskSpec.triggerRule.rawValue) not met by upstream states"
        case .upstreamFailed:
            task.state = .upstreamFailed
            let failed = taskSpec.needs.filter { tasks[$0]?.state.countsAsFailure == true }
            task.reason = "upstream failed: \(failed.joined(separator: ", "))"
        case .run:
            if let condition = taskSpec.when {
                do {
                    if try !evaluateCondition(condition) {
                        task.state = .skipped
                        task.reason = "when: \(condition) is false"
                    }
                } catch {
                    task.state = .failed
                    task.reason = "cannot evaluate when: \(condition): \(error)"
                }
            }
            if task.state == .pending {
                task.state = .queued
                update(name, task)
                effects.append(.taskStateChanged(task: name, state: .queued, reason: nil))
                effects.append(.enqueue(task: name))
                return false
            }
        }
        update(name, task)
        effects.append(.taskStateChanged(task: name, state: task.state, reason: task.reason))
        return true
    }

    private func evaluateCondition(_ text: String) throws -> Bool {
        let condition = try (conditions[text] ?? Result { () throws(TemplateError) in try Condition.parse(text) }).get()
        return try condition.evaluate { reference in
            try? resolve(reference.path)
        }
    }

    /// Resolves a template path against this run: params, upstream outputs and run variables.
    public func resolve(_ path: [String]) throws -> JSONValue? {
        guard let root = path.first else { return nil }
        switch root {
        case "params":
            return JSONValue.object(params).value(at: path.dropFirst())
        case "tasks":
            guard path.count >= 2, let task = tasks[path[1]] else { return nil }
            if path.count == 2 { return .object(["output": task.output ?? .null, "state": .string(task.state.rawValue)]) }
            if path[2] == "state" { return .string(task.state.rawValue) }
            guard path[2] == "output" else { return nil }
            return (task.output ?? .object([:])).value(at: path.dropFirst(3))
        default:
            return variables[root]?.value(at: path.dropFirst())
        }
    }

    private mutating func finishIfDone(_ effects: inout [Effect]) {
        guard state == .running, unfinished == 0 else { return }
        let failed = tasks.values.contains { $0.state == .failed || $0.state == .upstreamFailed }
        state = failed ? .failed : .success
        effects.append(.runStateChanged(state))
    }
}
