import BatonCore
import BatonStore
import Foundation

/// `/runs/{id}/tasks/{task}`: one task of a run with its output, attempts, and the log of
/// the chosen attempt (the latest by default), tailed live while it runs.
enum TaskPage {
    /// The page shows at most this much of a log; the rest is one click away as raw text.
    static let logWindow = 512 * 1024

    static func page(runID: Int64, task: String, attempt requested: String?, flash: String?, ui: UIEnvironment)
        async throws -> Page
    {
        let run = try await RunPage.record(runID, ui)
        guard let spec = run.spec.task(named: task) else {
            let suggestion = Suggest.closest(to: task, in: run.spec.tasks.map(\.name))
            throw UINotFound(
                message: "Run #\(runID) of \(run.pipeline) has no task ‘\(task)’.",
                suggestion: suggestion.map { ($0, UIPath.task(run: runID, task: $0)) } ?? ("run #\(runID)", UIPath.run(runID)))
        }
        let now = Date()
        let instance = try await ui.store.taskInstances(runID: runID).first { $0.task == task }
            ?? TaskInstanceRecord(runID: runID, task: task)
        let attempts = try await ui.store.attempts(runID: runID, task: task).sorted { $0.attempt < $1.attempt }
        var selected = attempts.last
        if let requested {
            guard let number = Int(requested), let match = attempts.first(where: { $0.attempt == number }) else {
                throw UINotFound(
                    message: "Task ‘\(task)’ of run #\(runID) has no attempt ‘\(requested)’"
                        + (attempts.isEmpty ? "; it has not started yet." : "; it has \(attempts.map { String($0.attempt) }.joined(separator: ", ")).")
                    ,
                    suggestion: ("the latest attempt", UIPath.task(run: runID, task: task)))
            }
            selected = match
        }

        let duration = instance.startedAt.map { (instance.endedAt ?? now).timeIntervalSince($0) }
        var facts: [(String, HTML)] = [
            ("Attempts", "\(instance.attempts) of at most \(spec.retries + 1)"),
            ("Started", Format.time(instance.startedAt)),
            ("Ended", Format.time(instance.endedAt)),
            ("Duration", "\(Format.duration(duration))"),
        ]
        if instance.state == .upForRetry, let retry = instance.retryAt {
            facts.append(("Next try", "\(Format.time(retry)) <span class=\"muted\">\(Format.relative(retry, now: now))</span>"))
        }
        let needs = spec.needs.map { "<a href=\"\(UIPath.task(run: runID, task: $0))\">\($0)</a>" as HTML }
        facts.append(("Needs", needs.isEmpty ? "—" : HTML.join(needs, separator: ", ")))
        facts.append(("Trigger rule", "\(spec.triggerRule.rawValue)"))
        if let when = spec.when { facts.append(("When", "<code>\(when)</code>")) }
        if let timeout = spec.timeout { facts.append(("Timeout", "\(Format.duration(timeout))")) }

        var reason: HTML = .empty
        if let text = instance.reason, !text.isEmpty {
            let kind = instance.state == .failed || instance.state == .upstreamFailed ? "error" : "info"
            reason = "<div class=\"flash \(kind)\"><strong>Reason:</strong> \(text)</div>"
        }
        var output: HTML = .empty
        if let value = instance.output {
            output = Layout.card("Output", id: "output", "<pre class=\"json\">\(Format.prettyJSON(value))</pre>")
        }

        return Page(
            title: "\(task) · run #\(runID)",
            section: .runs,
            breadcrumbs: [
                ("Pipelines", "/"), (run.pipeline, UIPath.pipeline(run.pipeline)), ("Run #\(runID)", UIPath.run(runID)),
                (task, nil),
            ],
            body: """
                \(Layout.flash(flash))
                <div data-region="head">\(head(run: run, instance: instance, ui: ui))
                \(reason)
                \(PipelinePage.factList(facts))</div>
                \(Layout.card("Command", id: "command", "<pre class=\"command\">\(Format.command(spec.command))</pre>"))
                \(output)
                \(await logCard(run: run, task: task, attempts: attempts, selected: selected, now: now, store: ui.store))
                """,
            live: .run(runID),
            refreshURL: UIPath.task(run: runID, task: task, attempt: requested.flatMap(Int.init)))
    }

    static func head(run: RunRecord, instance: TaskInstanceRecord, ui: UIEnvironment) -> HTML {
        var actions: [HTML] = []
        if run.state.isTerminal {
            let disabled: HTML = ui.canOperate ? .empty : " disabled title=\"Your token's role cannot change runs\""
            actions.append(
                """
                <form method="post" action="\(UIPath.run(run.id))/retry" class="inline" \
                data-confirm="Run \(instance.task) of run #\(run.id) again?"><input type="hidden" name="task" value="\(instance.task)">\
                <button type="submit" class="button ghost"\(disabled) title="Clear this task so it runs again with a fresh retry budget">Run this task again</button></form>
                """)
        }
        actions.append("<a class=\"button ghost\" href=\"\(UIPath.run(run.id))\">Back to run</a>")
        return """
            <div class="page-head" data-task="\(instance.task)">
            <div><p class="eyebrow"><a href="\(UIPath.pipeline(run.pipeline))">\(run.pipeline)</a> · \
            <a href="\(UIPath.run(run.id))">run #\(run.id)</a> \(Format.badge(run.state.rawValue, live: "run"))</p>
            <h1>\(instance.task) \(Format.badge(instance.state.rawValue, live: "task"))</h1></div>
            <div class="head-actions">\(actions)</div>
            </div>
            """
    }

    static func logCard(
        run: RunRecord, task: String, attempts: [AttemptRecord], selected: AttemptRecord?, now: Date, store: any Store
    ) async -> HTML
    {
        guard let selected else {
            return Layout.card(
                "Log", id: "logs", region: "log",
                """
                <div class="empty" data-waiting-task="\(task)"><p>This task has not started an attempt yet.</p>\
                <p class="muted">The page picks up the log when it starts.</p></div>
                """)
        }
        let tabs = attempts.map { attempt -> HTML in
            let current: HTML = attempt.attempt == selected.attempt ? " aria-current=\"page\"" : ""
            return """
                <a class="tab" href="\(UIPath.task(run: run.id, task: task, attempt: attempt.attempt))"\(current)>\
                <span class="dot \(Format.stateClass(attempt.state.rawValue))" aria-hidden="true"></span>\
                Attempt \(attempt.attempt) <span class="muted">\(Format.stateWords(attempt.state.rawValue))</span></a>
                """
        }
        var details: [String]
        if selected.state == .queued {
            // Nothing runs yet: say which workers it waits for, the usual reason it waits long.
            details = [
                "queued \(Format.duration(now.timeIntervalSince(selected.queuedAt ?? selected.startedAt))) ago for a worker serving queue \(selected.queue)"
                    + (selected.pool.map { ", pool \($0)" } ?? "")
            ]
        } else {
            details = ["started \(Format.dateText(selected.startedAt)) UTC"]
            details.append(
                selected.endedAt == nil
                    ? "running for \(Format.duration(now.timeIntervalSince(selected.startedAt)))"
                    : "took \(Format.duration(selected.duration))")
            if let worker = selected.workerID { details.append("on worker \(worker)") }
            if selected.queue != TaskSpec.defaultQueue { details.append("queue \(selected.queue)") }
            if let pool = selected.pool { details.append("pool \(pool)") }
        }
        if let code = selected.exitCode { details.append("exit code \(code)") }

        let probe = await LogReader.read(selected, store: store, offset: Int.max, limit: 1, tailLines: nil)
        let start = max(0, probe.size - logWindow)
        let chunk = await LogReader.read(selected, store: store, offset: start, limit: logWindow, tailLines: nil)
        var content = chunk.content
        var cut: HTML = .empty
        if start > 0 {
            // Start at a line boundary so the first line shown is whole.
            if let newline = content.firstIndex(of: "\n") { content = String(content[content.index(after: newline)...]) }
            cut = "<p class=\"muted\">Showing the last \(logWindow / 1024) KiB of \(probe.size / 1024) KiB.</p>"
        }
        let api = "/api/v1/runs/\(run.id)/tasks/\(UIPath.segment(task))/logs"
        let raw = "\(api)?attempt=\(selected.attempt)&format=text"
        var stream: HTML = .empty
        var status: HTML = .empty
        if selected.state.isOpen {
            stream = " data-stream=\"\(api)/stream?attempt=\(selected.attempt)&offset=\(chunk.nextOffset)\""
            status = "<span class=\"log-status\" id=\"log-status\">following live…</span>"
        }
        let body: HTML = content.isEmpty && !selected.state.isOpen
            ? "<pre class=\"log\" id=\"log\" tabindex=\"0\" aria-label=\"Log of attempt \(selected.attempt)\"\(stream)><span class=\"muted\">(empty log)</span></pre>"
            : "<pre class=\"log\" id=\"log\" tabindex=\"0\" aria-label=\"Log of attempt \(selected.attempt)\"\(stream)>\(content)</pre>"
        let reason: HTML = selected.reason.map { "<p class=\"attempt-reason\">\($0)</p>" } ?? .empty
        return Layout.card(
            "Log", id: "logs",
            actions: "<div class=\"card-actions\"><a class=\"button small ghost\" href=\"\(raw)\">Raw log</a></div>",
            region: "log",
            """
            <nav class="tabs" aria-label="Attempts">\(tabs)</nav>
            <p class="attempt-line">\(Format.badge(selected.state.rawValue)) <span class="muted">\(details.joined(separator: " · "))</span>\(status)</p>
            \(reason)\(cut)
            \(body)
            """)
    }
}
