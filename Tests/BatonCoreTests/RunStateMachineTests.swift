import Testing

@testable import BatonCore

private typealias Effect = RunStateMachine.Effect

private func task(
    _ name: String, needs: [String] = [], rule: TriggerRule = .allSuccess, when: String? = nil, retries: Int = 0,
    retryDelay: Double = 10, backoff: Double = 2, maxRetryDelay: Double = 3600
) -> TaskSpec {
    TaskSpec(
        name: name, command: .shell("echo \(name)"), needs: needs, retries: retries, retryDelay: retryDelay,
        retryBackoff: backoff, maxRetryDelay: maxRetryDelay, triggerRule: rule, when: when)
}

private func machine(
    _ tasks: [TaskSpec], params: [String: JSONValue] = [:], state: RunState = .queued,
    progress: [String: TaskProgress]? = nil
) -> RunStateMachine {
    RunStateMachine(
        spec: PipelineSpec(name: "test", tasks: tasks), params: params, variables: ["run_id": "r1"], state: state,
        tasks: progress)
}

private func enqueued(_ effects: [Effect]) -> [String] {
    effects.compactMap { if case .enqueue(let task) = $0 { return task } else { return nil } }
}

private func runStates(_ effects: [Effect]) -> [RunState] {
    effects.compactMap { if case .runStateChanged(let state) = $0 { return state } else { return nil } }
}

/// The state each task reached in these effects, in order.
private func taskChanges(_ effects: [Effect]) -> [String] {
    effects.compactMap {
        if case .taskStateChanged(let task, let state, _) = $0 { return "\(task):\(state.rawValue)" } else { return nil }
    }
}

extension RunStateMachine {
    fileprivate func state(of task: String) -> TaskState? { progress(of: task)?.state }

    /// Starts and completes one attempt successfully.
    fileprivate mutating func succeed(_ task: String, output: JSONValue? = nil) -> [Effect] {
        let started = handle(.attemptStarted(task: task))
        #expect(started == [.taskStateChanged(task: task, state: .running, reason: nil)], "\(task) should start")
        return handle(.attemptSucceeded(task: task, output: output))
    }

    /// Starts one attempt and fails it.
    fileprivate mutating func fail(_ task: String, reason: String = "exit status 1") -> [Effect] {
        let started = handle(.attemptStarted(task: task))
        #expect(started == [.taskStateChanged(task: task, state: .running, reason: nil)], "\(task) should start")
        return handle(.attemptFailed(task: task, reason: reason))
    }
}

// MARK: - Ordering

@Suite struct RunStateMachineOrderingTests {
    @Test func linearChainRunsInOrder() {
        var run = machine([task("a"), task("b", needs: ["a"]), task("c", needs: ["b"])])
        #expect(run.state == .queued)
        #expect(run.tasks.values.allSatisfy { $0.state == .pending })

        #expect(
            run.handle(.start) == [
                .runStateChanged(.running), .taskStateChanged(task: "a", state: .queued, reason: nil),
                .enqueue(task: "a"),
            ])
        #expect(run.state(of: "b") == .pending)

        #expect(run.handle(.attemptStarted(task: "a")) == [.taskStateChanged(task: "a", state: .running, reason: nil)])
        #expect(run.progress(of: "a")?.attempts == 1)
        #expect(
            run.handle(.attemptSucceeded(task: "a", output: ["rows": 10])) == [
                .taskStateChanged(task: "a", state: .success, reason: nil),
                .taskStateChanged(task: "b", state: .queued, reason: nil), .enqueue(task: "b"),
            ])
        #expect(run.progress(of: "a")?.output == ["rows": 10])
        #expect(run.state(of: "c") == .pending)

        #expect(enqueued(run.succeed("b")) == ["c"])
        #expect(
            run.succeed("c") == [
                .taskStateChanged(task: "c", state: .success, reason: nil), .runStateChanged(.success),
            ])
        #expect(run.state == .success)
    }

    @Test func fanOutThenFanIn() {
        var run = machine([
            task("extract"), task("clean", needs: ["extract"]), task("features", needs: ["extract"]),
            task("train", needs: ["clean", "features"]),
        ])
        #expect(enqueued(run.handle(.start)) == ["extract"])
        #expect(enqueued(run.succeed("extract")) == ["clean", "features"])
        #expect(run.state(of: "clean") == .queued)
        #expect(run.state(of: "features") == .queued)

        let first = run.succeed("features")
        #expect(first == [.taskStateChanged(task: "features", state: .success, reason: nil)], "train waits for clean")
        #expect(run.state(of: "train") == .pending)

        #expect(enqueued(run.succeed("clean")) == ["train"])
        #expect(runStates(run.succeed("train")) == [.success])
    }

    @Test func independentRootsAllStartAtOnce() {
        var run = machine([task("a"), task("b"), task("c", needs: ["a", "b"])])
        #expect(enqueued(run.handle(.start)) == ["a", "b"])
    }

    @Test func emptyPipelineSucceedsAtStart() {
        var run = machine([])
        #expect(run.handle(.start) == [.runStateChanged(.running), .runStateChanged(.success)])
    }
}

// MARK: - Trigger rules through the machine

/// What a parent task ends as before the child is decided.
enum ParentOutcome: String, Sendable, CustomTestStringConvertible {
    case success, failed, skipped, upstreamFailed
    var testDescription: String { rawValue }
}

/// Builds `gate1 -> p1`, `gate2 -> p2`, `[p1, p2] -> child` and drives p1 and p2 to the outcomes.
private func childState(_ rule: TriggerRule, _ first: ParentOutcome, _ second: ParentOutcome) -> (TaskState?, RunStateMachine) {
    var tasks: [TaskSpec] = []
    for (index, outcome) in [first, second].enumerated() {
        tasks.append(task("gate\(index + 1)"))
        tasks.append(task("p\(index + 1)", needs: ["gate\(index + 1)"], when: outcome == .skipped ? "false" : nil))
    }
    tasks.append(task("child", needs: ["p1", "p2"], rule: rule))
    var run = machine(tasks)
    _ = run.handle(.start)
    for (index, outcome) in [first, second].enumerated() {
        let gate = "gate\(index + 1)"
        let parent = "p\(index + 1)"
        switch outcome {
        case .success:
            _ = run.succeed(gate)
            _ = run.succeed(parent)
        case .failed:
            _ = run.succeed(gate)
            _ = run.fail(parent)
        case .skipped:
            _ = run.succeed(gate)
        case .upstreamFailed:
            _ = run.fail(gate)
        }
        let expected: TaskState =
            switch outcome {
            case .success: .success
            case .failed: .failed
            case .skipped: .skipped
            case .upstreamFailed: .upstreamFailed
            }
        #expect(run.state(of: parent) == expected)
    }
    return (run.state(of: "child"), run)
}

@Suite struct RunStateMachineTriggerRuleTests {
    @Test(arguments: [
        (TriggerRule.allSuccess, ParentOutcome.success, ParentOutcome.success, TaskState.queued),
        (.allSuccess, .success, .failed, .upstreamFailed),
        (.allSuccess, .success, .upstreamFailed, .upstreamFailed),
        (.allSuccess, .success, .skipped, .skipped),
        (.allSuccess, .skipped, .skipped, .skipped),
        (.allSuccess, .skipped, .failed, .upstreamFailed),

        (.allDone, .success, .success, .queued),
        (.allDone, .failed, .failed, .queued),
        (.allDone, .skipped, .upstreamFailed, .queued),
        (.allDone, .success, .skipped, .queued),

        (.oneFailed, .success, .failed, .queued),
        (.oneFailed, .upstreamFailed, .success, .queued),
        (.oneFailed, .success, .success, .skipped),
        (.oneFailed, .success, .skipped, .skipped),

        (.allFailed, .failed, .failed, .queued),
        (.allFailed, .failed, .upstreamFailed, .queued),
        (.allFailed, .failed, .success, .skipped),
        (.allFailed, .failed, .skipped, .skipped),

        (.noneFailed, .success, .success, .queued),
        (.noneFailed, .success, .skipped, .queued),
        (.noneFailed, .skipped, .skipped, .queued),
        (.noneFailed, .success, .failed, .upstreamFailed),
        (.noneFailed, .upstreamFailed, .success, .upstreamFailed),

        (.oneSuccess, .success, .failed, .queued),
        (.oneSuccess, .skipped, .success, .queued),
        (.oneSuccess, .failed, .failed, .upstreamFailed),
        (.oneSuccess, .failed, .skipped, .upstreamFailed),
        (.oneSuccess, .skipped, .skipped, .skipped),
    ])
    func ruleDecidesTheChild(rule: TriggerRule, first: ParentOutcome, second: ParentOutcome, expected: TaskState) {
        let (state, _) = childState(rule, first, second)
        #expect(state == expected)
    }

    @Test func allSuccessFailsDownstreamWithoutWaitingForTheOtherUpstream() {
        var run = machine([task("a"), task("b"), task("c", needs: ["a", "b"])])
        _ = run.handle(.start)
        _ = run.handle(.attemptStarted(task: "b"))
        let effects = run.fail("a")
        #expect(
            effects == [
                .taskStateChanged(task: "a", state: .failed, reason: "exit status 1"),
                .taskStateChanged(task: "c", state: .upstreamFailed, reason: "upstream failed: a"),
            ])
        #expect(run.state == .running, "b is still running")
        #expect(runStates(run.handle(.attemptSucceeded(task: "b", output: nil))) == [.failed])
    }

    @Test func allSuccessDecidesASkipOnlyOnceNoUpstreamCanStillFail() {
        // Whichever of the two finishes first, the child ends upstream_failed.
        for skipFirst in [true, false] {
            var run = machine([
                task("gate"), task("a", needs: ["gate"], when: "false"), task("b"), task("c", needs: ["a", "b"]),
            ])
            _ = run.handle(.start)
            if skipFirst {
                _ = run.succeed("gate")
                _ = run.fail("b")
            } else {
                _ = run.fail("b")
                _ = run.succeed("gate")
            }
            #expect(run.state(of: "a") == .skipped)
            #expect(run.state(of: "c") == .upstreamFailed, "skip first: \(skipFirst)")
        }
        var run = machine([task("a", when: "false"), task("b"), task("c", needs: ["a", "b"])])
        _ = run.handle(.start)
        #expect(run.state(of: "c") == .pending, "b may still fail")
        #expect(taskChanges(run.succeed("b")) == ["b:success", "c:skipped"])
    }

    @Test func oneSuccessStartsAsSoonAsOneUpstreamSucceeds() {
        var run = machine([task("a"), task("b"), task("c", needs: ["a", "b"], rule: .oneSuccess)])
        _ = run.handle(.start)
        #expect(enqueued(run.succeed("a")) == ["c"])
        #expect(run.state(of: "b") == .queued)
    }

    @Test func oneFailedStartsAsSoonAsOneUpstreamFails() {
        var run = machine([task("a"), task("b"), task("alert", needs: ["a", "b"], rule: .oneFailed)])
        _ = run.handle(.start)
        #expect(enqueued(run.fail("a")) == ["alert"])
    }

    @Test func allDoneWaitsForEveryUpstream() {
        var run = machine([task("a"), task("b"), task("cleanup", needs: ["a", "b"], rule: .allDone)])
        _ = run.handle(.start)
        #expect(enqueued(run.fail("a")) == [])
        #expect(run.state(of: "cleanup") == .pending)
        #expect(enqueued(run.succeed("b")) == ["cleanup"])
        #expect(runStates(run.succeed("cleanup")) == [.failed], "a failed, so the run failed")
    }

    @Test func upstreamFailedPropagatesThroughSeveralLevels() {
        var run = machine([
            task("a"), task("b", needs: ["a"]), task("c", needs: ["b"]), task("d", needs: ["c"], rule: .allDone),
        ])
        _ = run.handle(.start)
        let effects = run.fail("a")
        #expect(
            taskChanges(effects) == ["a:failed", "b:upstream_failed", "c:upstream_failed", "d:queued"])
        #expect(run.progress(of: "b")?.reason == "upstream failed: a")
        #expect(run.progress(of: "c")?.reason == "upstream failed: b")
        #expect(enqueued(effects) == ["d"])
        #expect(runStates(run.succeed("d")) == [.failed])
    }

    @Test func skippedPropagatesThroughSeveralLevels() {
        var run = machine([
            task("a", when: "params.enabled"), task("b", needs: ["a"]), task("c", needs: ["b"]),
            task("d", needs: ["c"], rule: .noneFailed),
        ], params: ["enabled": false])
        let effects = run.handle(.start)
        #expect(taskChanges(effects) == ["a:skipped", "b:skipped", "c:skipped", "d:queued"])
        #expect(run.progress(of: "b")?.reason == "trigger rule all_success not met by upstream states")
        #expect(runStates(run.succeed("d")) == [.success])
    }

    @Test func everyTaskSkippedIsASuccessfulRun() {
        var run = machine([task("a", when: "false"), task("b", needs: ["a"])])
        #expect(runStates(run.handle(.start)) == [.running, .success])
    }
}

// MARK: - when

@Suite struct RunStateMachineWhenTests {
    static let tasks = [
        task("evaluate"),
        task("deploy", needs: ["evaluate"], when: "tasks.evaluate.output.accuracy >= params.threshold"),
    ]

    @Test func trueConditionQueuesTheTask() {
        var run = machine(Self.tasks, params: ["threshold": 0.9])
        _ = run.handle(.start)
        let effects = run.succeed("evaluate", output: ["accuracy": 0.95])
        #expect(enqueued(effects) == ["deploy"])
        #expect(run.state(of: "deploy") == .queued)
    }

    @Test func falseConditionSkipsTheTask() {
        var run = machine(Self.tasks, params: ["threshold": 0.9])
        _ = run.handle(.start)
        let effects = run.succeed("evaluate", output: ["accuracy": "0.5"])
        #expect(
            effects == [
                .taskStateChanged(task: "evaluate", state: .success, reason: nil),
                .taskStateChanged(
                    task: "deploy", state: .skipped,
                    reason: "when: tasks.evaluate.output.accuracy >= params.threshold is false"),
                .runStateChanged(.success),
            ])
    }

    @Test func evaluationErrorFailsTheTaskAndTheRun() throws {
        var run = machine(Self.tasks + [task("notify", needs: ["deploy"])], params: ["threshold": 0.9])
        _ = run.handle(.start)
        // Ordering a missing output key is an evaluation error, not false.
        let effects = run.succeed("evaluate", output: ["loss": 0.1])
        #expect(taskChanges(effects) == ["evaluate:success", "deploy:failed", "notify:upstream_failed"])
        let reason = try #require(run.progress(of: "deploy")?.reason)
        #expect(reason.hasPrefix("cannot evaluate when: tasks.evaluate.output.accuracy >= params.threshold"))
        #expect(run.state == .failed)
    }

    @Test func syntaxErrorInConditionFailsTheTask() {
        var run = machine([task("a", when: "params.x ==")], params: ["x": 1])
        let effects = run.handle(.start)
        #expect(taskChanges(effects) == ["a:failed"])
        #expect(runStates(effects) == [.running, .failed])
    }

    @Test(arguments: [
        ("params.deploy", ["deploy": JSONValue.bool(true)], TaskState.queued),
        ("params.deploy", ["deploy": false], .skipped),
        ("params.region == \"eu\"", ["region": "eu"], .queued),
        ("params.region in [\"us\", \"ap\"]", ["region": "eu"], .skipped),
        ("not params.dry_run", ["dry_run": false], .queued),
        ("params.missing", [:], .skipped),
        ("run_id == \"r1\"", [:], .queued),
    ])
    func conditionsOnParamsAndVariables(condition: String, params: [String: JSONValue], expected: TaskState) {
        var run = machine([task("a", when: condition)], params: params)
        _ = run.handle(.start)
        #expect(run.state(of: "a") == expected)
    }

    @Test func whenIsOnlyEvaluatedOnceTheTriggerRuleFires() {
        // The condition reads an output that exists only after the upstream succeeded.
        var run = machine([task("a"), task("b", needs: ["a"], when: "tasks.a.output.go == true")])
        _ = run.handle(.start)
        #expect(run.state(of: "b") == .pending)
        _ = run.succeed("a", output: ["go": "true"])
        #expect(run.state(of: "b") == .queued)
    }

    @Test func resolveReadsParamsOutputsStatesAndVariables() throws {
        var run = machine([task("a"), task("b", needs: ["a"])], params: ["p": ["nested": [1, 2]]])
        _ = run.handle(.start)
        _ = run.succeed("a", output: ["metrics": ["acc": 0.9]])
        #expect(try run.resolve(["params", "p", "nested", "1"]) == 2)
        #expect(try run.resolve(["tasks", "a", "output", "metrics", "acc"]) == 0.9)
        #expect(try run.resolve(["tasks", "a", "state"]) == "success")
        #expect(try run.resolve(["tasks", "b", "output", "x"]) == nil)
        #expect(try run.resolve(["tasks", "nope", "output"]) == nil)
        #expect(try run.resolve(["run_id"]) == "r1")
        #expect(try run.resolve(["logical_date"]) == nil)
    }
}

// MARK: - Retries

@Suite struct RunStateMachineRetryTests {
    @Test func failedAttemptsAreRetriedWithExponentialDelaysThenFail() {
        var run = machine([task("train", retries: 3, retryDelay: 10, backoff: 2), task("deploy", needs: ["train"])])
        _ = run.handle(.start)

        for (attempt, delay) in [(2, 10.0), (3, 20), (4, 40)] {
            let effects = run.fail("train", reason: "exit status \(attempt - 1)")
            #expect(
                effects == [
                    .taskStateChanged(task: "train", state: .upForRetry, reason: "exit status \(attempt - 1)"),
                    .retryAfter(task: "train", attempt: attempt, seconds: delay),
                ])
            #expect(run.state(of: "train") == .upForRetry)
            #expect(run.progress(of: "train")?.attempts == attempt - 1)
            #expect(
                run.handle(.retryDue(task: "train")) == [
                    .taskStateChanged(task: "train", state: .queued, reason: "exit status \(attempt - 1)"),
                    .enqueue(task: "train"),
                ])
        }

        let last = run.fail("train", reason: "exit status 4")
        #expect(
            last == [
                .taskStateChanged(task: "train", state: .failed, reason: "exit status 4"),
                .taskStateChanged(task: "deploy", state: .upstreamFailed, reason: "upstream failed: train"),
                .runStateChanged(.failed),
            ])
        #expect(run.progress(of: "train")?.attempts == 4)
    }

    @Test func retryDelaysAreCappedByMaxRetryDelay() {
        var run = machine([task("a", retries: 4, retryDelay: 10, backoff: 2, maxRetryDelay: 30)])
        _ = run.handle(.start)
        var delays: [Double] = []
        for _ in 0..<4 {
            for effect in run.fail("a") {
                if case .retryAfter(_, _, let seconds) = effect { delays.append(seconds) }
            }
            _ = run.handle(.retryDue(task: "a"))
        }
        #expect(delays == [10, 20, 30, 30])
    }

    @Test func retryDelayFormula() {
        let spec = task("a", retryDelay: 10, backoff: 2, maxRetryDelay: 3600)
        #expect((2...6).map { spec.retryDelay(beforeAttempt: $0) } == [10, 20, 40, 80, 160])
        #expect(task("a", retryDelay: 10, backoff: 1).retryDelay(beforeAttempt: 5) == 10, "backoff 1 keeps the delay")
        #expect(task("a", retryDelay: 100, backoff: 3, maxRetryDelay: 500).retryDelay(beforeAttempt: 4) == 500)
    }

    @Test func aRetryThatSucceedsLetsTheRunSucceed() {
        var run = machine([task("a", retries: 1), task("b", needs: ["a"])])
        _ = run.handle(.start)
        _ = run.fail("a")
        _ = run.handle(.retryDue(task: "a"))
        #expect(enqueued(run.succeed("a")) == ["b"])
        #expect(run.progress(of: "a")?.attempts == 2)
        #expect(run.progress(of: "a")?.reason == nil, "a success clears the last failure")
        #expect(runStates(run.succeed("b")) == [.success])
    }

    @Test func failureBeforeTheAttemptStartedCountsAsAnAttempt() {
        var run = machine([task("a", retries: 1)])
        _ = run.handle(.start)
        // The worker could not spawn the process: the task fails while still queued.
        #expect(
            run.handle(.attemptFailed(task: "a", reason: "no such file")) == [
                .taskStateChanged(task: "a", state: .upForRetry, reason: "no such file"),
                .retryAfter(task: "a", attempt: 2, seconds: 10),
            ])
        _ = run.handle(.retryDue(task: "a"))
        #expect(runStates(run.handle(.attemptFailed(task: "a", reason: "no such file"))) == [.failed])
        #expect(run.progress(of: "a")?.attempts == 2)
    }

    @Test func anInterruptedAttemptIsRequeuedWithoutUsingARetry() {
        var run = machine([task("a", retries: 1)])
        _ = run.handle(.start)
        _ = run.handle(.attemptStarted(task: "a"))
        #expect(
            run.handle(.attemptInterrupted(task: "a", reason: "baton is shutting down")) == [
                .taskStateChanged(task: "a", state: .queued, reason: "baton is shutting down"), .enqueue(task: "a"),
            ])
        #expect(run.progress(of: "a")?.attempts == 1)
        #expect(run.progress(of: "a")?.countedAttempts == 0)
        // Both of the task's own attempts remain: the first failure is retried, the second is final.
        #expect(run.fail("a").contains(.retryAfter(task: "a", attempt: 3, seconds: 10)))
        _ = run.handle(.retryDue(task: "a"))
        #expect(runStates(run.fail("a")) == [.failed])
        #expect(run.handle(.attemptInterrupted(task: "a", reason: "late")) == [], "only a running attempt is interrupted")
    }

    @Test func retryDueIsIgnoredUnlessTheTaskWaitsForARetry() {
        var run = machine([task("a", retries: 2)])
        _ = run.handle(.start)
        #expect(run.handle(.retryDue(task: "a")) == [], "queued, not up for retry")
        _ = run.fail("a")
        #expect(run.handle(.retryDue(task: "a")).count == 2)
        #expect(run.handle(.retryDue(task: "a")) == [], "a duplicate timer firing")
    }
}

// MARK: - Final state

@Suite struct RunStateMachineFinalStateTests {
    /// evaluate -> deploy (when ok) and rollback (when not ok); both read the same output.
    static let branches = [
        task("evaluate"),
        task("deploy", needs: ["evaluate"], when: "tasks.evaluate.output.ok == true"),
        task("rollback", needs: ["evaluate"], when: "tasks.evaluate.output.ok != true"),
        task("report", needs: ["deploy", "rollback"], rule: .noneFailed),
    ]

    @Test(arguments: [true, false])
    func theSkippedBranchOfADeployRollbackPairDoesNotFailTheRun(ok: Bool) {
        var run = machine(Self.branches)
        _ = run.handle(.start)
        let effects = run.succeed("evaluate", output: ["ok": .bool(ok)])
        let taken = ok ? "deploy" : "rollback"
        let skipped = ok ? "rollback" : "deploy"
        #expect(enqueued(effects) == [taken])
        #expect(run.state(of: skipped) == .skipped)
        #expect(enqueued(run.succeed(taken)) == ["report"])
        #expect(runStates(run.succeed("report")) == [.success])
        #expect(run.state == .success)
    }

    @Test func rollbackOnFailureStillFailsTheRun() {
        var run = machine([
            task("train"), task("deploy", needs: ["train"]), task("rollback", needs: ["train"], rule: .oneFailed),
        ])
        _ = run.handle(.start)
        let effects = run.fail("train")
        #expect(taskChanges(effects) == ["train:failed", "deploy:upstream_failed", "rollback:queued"])
        #expect(runStates(run.succeed("rollback")) == [.failed])
    }

    @Test func rollbackSkippedWhenTrainSucceeds() {
        var run = machine([
            task("train"), task("deploy", needs: ["train"]), task("rollback", needs: ["train"], rule: .oneFailed),
        ])
        _ = run.handle(.start)
        #expect(taskChanges(run.succeed("train")) == ["train:success", "deploy:queued", "rollback:skipped"])
        #expect(runStates(run.succeed("deploy")) == [.success])
    }

    @Test func aHandledFailureStillFailsTheRun() {
        // An all_failed task handles the failure; the failed task still fails the run.
        var run = machine([task("a"), task("b", needs: ["a"], rule: .allFailed)])
        _ = run.handle(.start)
        _ = run.fail("a")
        #expect(runStates(run.succeed("b")) == [.failed])
    }

    @Test func runEndsOnlyWhenEveryTaskIsTerminal() {
        var run = machine([task("a"), task("b")])
        _ = run.handle(.start)
        #expect(runStates(run.fail("a")) == [])
        #expect(run.state == .running)
        #expect(runStates(run.succeed("b")) == [.failed])
    }
}

// MARK: - Cancel

@Suite struct RunStateMachineCancelTests {
    @Test func cancelStopsRunningTasksAndCancelsEverythingUnfinished() {
        var run = machine([
            task("a"), task("b", needs: ["a"]), task("c", needs: ["a"], retries: 1), task("d", needs: ["b", "c"]),
        ])
        _ = run.handle(.start)
        _ = run.succeed("a")
        _ = run.handle(.attemptStarted(task: "b"))
        _ = run.fail("c")
        #expect(run.state(of: "c") == .upForRetry)

        let effects = run.handle(.cancel(reason: "cancelled by alice"))
        #expect(
            effects == [
                .stopAttempt(task: "b"),
                .taskStateChanged(task: "b", state: .cancelled, reason: "cancelled by alice"),
                .taskStateChanged(task: "c", state: .cancelled, reason: "cancelled by alice"),
                .taskStateChanged(task: "d", state: .cancelled, reason: "cancelled by alice"),
                .runStateChanged(.cancelled),
            ])
        #expect(run.state == .cancelled)
        #expect(run.state(of: "a") == .success, "finished tasks keep their state")
        #expect(run.progress(of: "d")?.reason == "cancelled by alice")
    }

    @Test func laterEventsAreIgnoredAfterCancel() {
        var run = machine([task("a", retries: 2), task("b", needs: ["a"])])
        _ = run.handle(.start)
        _ = run.handle(.attemptStarted(task: "a"))
        _ = run.handle(.cancel(reason: "stop"))
        let before = run.tasks
        #expect(run.handle(.attemptSucceeded(task: "a", output: ["x": 1])) == [])
        #expect(run.handle(.attemptFailed(task: "a", reason: "killed")) == [])
        #expect(run.handle(.attemptStarted(task: "a")) == [])
        #expect(run.handle(.retryDue(task: "a")) == [])
        #expect(run.handle(.start) == [])
        #expect(run.handle(.resume) == [])
        #expect(run.handle(.cancel(reason: "again")) == [])
        #expect(run.tasks == before)
        #expect(run.state == .cancelled)
    }

    @Test func cancelBeforeTheRunStarted() {
        var run = machine([task("a"), task("b", needs: ["a"])])
        let effects = run.handle(.cancel(reason: "not needed"))
        #expect(taskChanges(effects) == ["a:cancelled", "b:cancelled"])
        #expect(runStates(effects) == [.cancelled])
        #expect(!effects.contains(.stopAttempt(task: "a")))
        #expect(run.handle(.start) == [])
    }

    @Test func cancelAfterTheRunFinishedDoesNothing() {
        var run = machine([task("a")])
        _ = run.handle(.start)
        _ = run.succeed("a")
        #expect(run.handle(.cancel(reason: "late")) == [])
        #expect(run.state == .success)
    }
}

// MARK: - Idempotence and resume

@Suite struct RunStateMachineIdempotenceTests {
    @Test func duplicateEventsProduceNoEffects() {
        var run = machine([task("a"), task("b", needs: ["a"])])
        #expect(!run.handle(.start).isEmpty)
        #expect(run.handle(.start) == [])
        #expect(!run.handle(.attemptStarted(task: "a")).isEmpty)
        #expect(run.handle(.attemptStarted(task: "a")) == [])
        #expect(!run.handle(.attemptSucceeded(task: "a", output: ["v": 1])).isEmpty)
        #expect(run.handle(.attemptSucceeded(task: "a", output: ["v": 2])) == [])
        #expect(run.progress(of: "a")?.output == ["v": 1], "a duplicate result does not overwrite the first")
        #expect(run.handle(.attemptFailed(task: "a", reason: "late")) == [])
        #expect(run.state(of: "a") == .success)
        #expect(run.progress(of: "a")?.attempts == 1)
    }

    @Test func eventsForTasksThatAreNotReadyAreIgnored() {
        var run = machine([task("a"), task("b", needs: ["a"])])
        #expect(run.handle(.attemptStarted(task: "a")) == [], "the run has not started")
        _ = run.handle(.start)
        #expect(run.handle(.attemptStarted(task: "b")) == [], "b is pending")
        #expect(run.handle(.attemptSucceeded(task: "a", output: nil)) == [], "a never started")
        #expect(run.handle(.attemptSucceeded(task: "nope", output: nil)) == [])
        #expect(run.handle(.attemptFailed(task: "nope", reason: "x")) == [])
        #expect(run.handle(.retryDue(task: "nope")) == [])
    }

    @Test func eventsAfterTheRunFinishedAreIgnored() {
        var run = machine([task("a")])
        _ = run.handle(.start)
        _ = run.succeed("a")
        #expect(run.handle(.attemptSucceeded(task: "a", output: nil)) == [])
        #expect(run.handle(.attemptFailed(task: "a", reason: "x")) == [])
        #expect(run.handle(.resume) == [])
        #expect(run.state == .success)
    }

    @Test func resumeReenqueuesQueuedTasks() {
        var run = machine(
            [task("a"), task("b", needs: ["a"]), task("c", needs: ["a"]), task("d", needs: ["b", "c"])],
            state: .running,
            progress: [
                "a": TaskProgress(state: .success, attempts: 1), "b": TaskProgress(state: .queued),
                "c": TaskProgress(state: .running, attempts: 1), "d": TaskProgress(state: .pending),
            ])
        #expect(run.handle(.resume) == [.enqueue(task: "b")])
        #expect(run.handle(.resume) == [.enqueue(task: "b")], "resume repeats until the worker takes it")
        _ = run.succeed("b")
        #expect(enqueued(run.handle(.attemptSucceeded(task: "c", output: nil))) == ["d"])
        #expect(runStates(run.succeed("d")) == [.success], "the restored count of unfinished tasks is exact")
    }

    @Test func resumeDecidesTasksWhoseUpstreamsFinishedBeforeTheCrash() {
        var run = machine(
            [task("a"), task("b", needs: ["a"]), task("c", needs: ["a"], rule: .oneFailed)],
            state: .running,
            progress: ["a": TaskProgress(state: .success, attempts: 1)])
        #expect(
            run.handle(.resume) == [
                .taskStateChanged(task: "b", state: .queued, reason: nil), .enqueue(task: "b"),
                .taskStateChanged(task: "c", state: .skipped, reason: "trigger rule one_failed not met by upstream states"),
            ])
        #expect(runStates(run.succeed("b")) == [.success])
    }

    @Test func resumeOfAConsistentRunChangesNothing() {
        var run = machine([task("a"), task("b", needs: ["a"])])
        _ = run.handle(.start)
        _ = run.handle(.attemptStarted(task: "a"))
        let before = run.tasks
        #expect(run.handle(.resume) == [])
        #expect(run.tasks == before)
    }

    @Test func resumeBeforeStartDoesNothing() {
        var run = machine([task("a")])
        #expect(run.handle(.resume) == [])
        #expect(run.state == .queued)
    }
}

// MARK: - TriggerDecision

@Suite struct TriggerDecisionTests {
    @Test(arguments: TriggerRule.allCases)
    func noUpstreamAlwaysRuns(rule: TriggerRule) {
        #expect(TriggerDecision.evaluate(rule, upstream: []) == .run)
    }

    @Test(arguments: [TaskState.pending, .queued, .running, .upForRetry])
    func unfinishedUpstreamMakesAllDoneWait(waiting: TaskState) {
        #expect(TriggerDecision.evaluate(.allDone, upstream: [.success, waiting]) == .wait)
        #expect(TriggerDecision.evaluate(.allSuccess, upstream: [.success, waiting]) == .wait)
        #expect(TriggerDecision.evaluate(.noneFailed, upstream: [.skipped, waiting]) == .wait)
        #expect(TriggerDecision.evaluate(.oneFailed, upstream: [.success, waiting]) == .wait)
        #expect(TriggerDecision.evaluate(.allFailed, upstream: [.failed, waiting]) == .wait)
        #expect(TriggerDecision.evaluate(.oneSuccess, upstream: [.failed, waiting]) == .wait)
    }

    @Test(arguments: [
        // all_success
        (TriggerRule.allSuccess, [TaskState.success, .success], TriggerDecision.run),
        (.allSuccess, [.success, .failed], .upstreamFailed),
        (.allSuccess, [.running, .failed], .upstreamFailed),
        (.allSuccess, [.success, .upstreamFailed], .upstreamFailed),
        (.allSuccess, [.success, .cancelled], .upstreamFailed),
        (.allSuccess, [.success, .skipped], .skip),
        (.allSuccess, [.running, .skipped], .wait),
        (.allSuccess, [.skipped, .failed], .upstreamFailed),
        // all_done
        (.allDone, [.success, .failed, .skipped, .upstreamFailed, .cancelled], .run),
        (.allDone, [.skipped], .run),
        // one_failed
        (.oneFailed, [.running, .failed], .run),
        (.oneFailed, [.pending, .upstreamFailed], .run),
        (.oneFailed, [.success, .skipped], .skip),
        (.oneFailed, [.success, .success], .skip),
        // all_failed
        (.allFailed, [.failed, .upstreamFailed], .run),
        (.allFailed, [.failed, .failed], .run),
        (.allFailed, [.failed, .success], .skip),
        (.allFailed, [.running, .success], .skip),
        (.allFailed, [.failed, .skipped], .skip),
        // none_failed
        (.noneFailed, [.success, .skipped], .run),
        (.noneFailed, [.skipped, .skipped], .run),
        (.noneFailed, [.success, .failed], .upstreamFailed),
        (.noneFailed, [.running, .upstreamFailed], .upstreamFailed),
        // one_success
        (.oneSuccess, [.running, .success], .run),
        (.oneSuccess, [.failed, .success], .run),
        (.oneSuccess, [.failed, .upstreamFailed], .upstreamFailed),
        (.oneSuccess, [.failed, .skipped], .upstreamFailed),
        (.oneSuccess, [.skipped, .skipped], .skip),
    ])
    func table(rule: TriggerRule, upstream: [TaskState], expected: TriggerDecision) {
        #expect(TriggerDecision.evaluate(rule, upstream: upstream) == expected)
    }

    @Test func terminalStates() {
        #expect(TaskState.allCases.filter(\.isTerminal) == [.success, .failed, .upstreamFailed, .skipped, .cancelled])
        #expect(RunState.allCases.filter(\.isTerminal) == [.success, .failed, .cancelled])
    }
}
