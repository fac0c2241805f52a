import BatonCore
import BatonStore
import Foundation

/// `/runs/{id}`: the run's header and params, its graph with live task states, a Gantt chart
/// of attempts, the task table, and cancel and retry.
enum RunPage {
    static func record(_ id: Int64, _ ui: UIEnvironment) async throws -> RunRecord {
        guard let run = try await ui.store.run(id: id) else {
            let newest = try await ui.store.runs(RunQuery(limit: 1)).first
            throw UINotFound(
                message: "There is no run #\(id)" + (newest.map { "; the newest is #\($0.id)." } ?? "; there are no runs yet."),
                suggestion: newest.map { ("run #\($0.id)", UIPath.run($0.id)) })
        }
        return run
    }

    /// How a task looks in the graph: its state, duration or attempt, and a link to its log.
    static func nodeState(_ instance: TaskInstanceRecord, runID: Int64, now: Date) -> DAGView.NodeState {
        var detail = Format.stateWords(instance.state.rawValue)
        if let started = instance.startedAt {
            detail += " · " + Format.duration((instance.endedAt ?? now).timeIntervalSince(started))
        }
        if instance.attempts > 1 { detail += " · try \(instance.attempts)" }
        return .init(state: instance.state.rawValue, detail: detail, href: UIPath.task(run: runID, task: instance.task))
    }

    static func page(id: Int64, flash: String?, ui: UIEnvironment) async throws -> Page {
        let run = try await record(id, ui)
        let now = Date()
        let instances = try await ui.store.taskInstances(runID: id)
        let attempts = try await ui.store.attempts(runID: id, task: nil)
        let order = TaskGraph(tasks: run.spec.tasks).topologicalOrder()
        let rank = Dictionary(order.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        let sorted = instances.sorted { (rank[$0.task] ?? Int.max, $0.task) < (rank[$1.task] ?? Int.max, $1.task) }

        var states: [String: DAGView.NodeState] = [:]
        for instance in instances { states[instance.task] = nodeState(instance, runID: id, now: now) }
        let graph = DAGView.svg(
            tasks: run.spec.tasks, states: states, id: "run", label: "Task graph of run #\(id)",
            taskHref: { UIPath.task(run: id, task: $0) })

        var counts: [String: Int] = [:]
        for instance in instances { counts[instance.state.rawValue, default: 0] += 1 }
        let progress = StateBar.html(StateOrder.task.map { ($0, counts[$0] ?? 0) }, label: "Tasks by state")
        let done = instances.filter { $0.state.isTerminal }.count

        let duration = run.startedAt.map { (run.endedAt ?? now).timeIntervalSince($0) }
        var facts: [(String, HTML)] = [
            ("Pipeline", "<a href=\"\(UIPath.pipeline(run.pipeline))\">\(run.pipeline)</a>"),
            ("Owner", run.owner.map { "<a class=\"tag\" href=\"\(UIPath.with("/", [("owner", $0)]))\">\($0)</a>" } ?? "—"),
            ("Trigger", HandoffUI.triggerFact(run)),
            ("Logical date", Format.time(run.logicalDate)),
            ("Data interval", "\(Format.time(run.intervalStart)) → \(Format.time(run.intervalEnd))"),
            ("Created", Format.time(run.createdAt)),
            ("Started", Format.time(run.startedAt)),
            ("Ended", Format.time(run.endedAt)),
            ("Duration", "\(Format.duration(duration))\(run.state.isTerminal ? "" : " so far")"),
            ("Tasks", "\(done) of \(instances.count) done\(progress)"),
        ]
        if run.cancelRequested && !run.state.isTerminal { facts.append(("Cancel", "requested")) }

        let params: HTML
        if run.params.isEmpty {
            params = "<p class=\"muted\">No params.</p>"
        } else {
            let rows = run.params.sorted { $0.key < $1.key }.map { key, value -> HTML in
                let declared = run.spec.param(named: key)?.defaultValue
                let changed: HTML = declared != nil && declared != value ? " <span class=\"tag subtle\">changed</span>" : ""
                return "<tr><th scope=\"row\">\(key)</th><td><code class=\"value\">\(Format.value(value))</code>\(changed)</td></tr>"
            }
            params = "<table class=\"table compact kv\"><tbody>\(rows)</tbody></table>"
        }

        let taskRows = sorted.map { instance -> HTML in
            let href = UIPath.task(run: id, task: instance.task)
            let duration = instance.startedAt.map { (instance.endedAt ?? now).timeIntervalSince($0) }
            var note: HTML = .empty
            if let reason = instance.reason, !reason.isEmpty {
                note = "<span class=\"reason\" title=\"\(reason)\">\(Format.truncated(reason, 140))</span>"
            } else if let output = instance.output {
                let text = output.compactJSON
                note = "<code class=\"output\" title=\"\(Format.truncated(text, 2000))\">\(Format.truncated(text, 100))</code>"
            }
            if instance.state == .upForRetry, let retry = instance.retryAt {
                note = "<span class=\"muted\">next try \(Format.relative(retry, now: now))</span> " + note
            }
            let logLink: HTML = instance.attempts > 0 ? "<a class=\"button small ghost\" href=\"\(href)\">Log</a>" : .empty
            return """
                <tr data-task="\(instance.task)"><th scope="row"><a href="\(href)">\(instance.task)</a></th>\
                <td>\(Format.badge(instance.state.rawValue, live: "task"))</td><td class="num">\(instance.attempts)</td>\
                <td>\(Format.time(instance.startedAt))</td><td class="num">\(Format.duration(duration))</td>\
                <td class="note">\(note)</td><td>\(logLink)</td></tr>
                """
        }
        let taskTable: HTML = """
            <div class="table-scroll"><table class="table tasks">
            <thead><tr><th scope="col">Task</th><th scope="col">State</th><th scope="col" class="num">Attempts</th>\
            <th scope="col">Started</th><th scope="col" class="num">Duration</th><th scope="col">Reason or output</th>\
            <th scope="col"><span class="sr-only">Log</span></th></tr></thead>
            <tbody>\(taskRows)</tbody></table></div>
            """

        let handoffs = try await HandoffUI.runSections(run, ui: ui)
        let registry = try await RegistryUI.runPageSection(runID: id, ui: ui)
        return Page(
            title: "Run #\(id) of \(run.pipeline)",
            section: .runs,
            breadcrumbs: [("Pipelines", "/"), (run.pipeline, UIPath.pipeline(run.pipeline)), ("Run #\(id)", nil)],
            body: """
                \(Layout.flash(flash))
                <div data-region="head">\(head(run, instances: instances, ui: ui))</div>
                <div class="columns wide-left">
                <div data-region="facts">\(PipelinePage.factList(facts))</div>
                \(Layout.card("Params", id: "params", params))
                </div>
                \(Layout.card("Graph", id: "graph", region: "graph", graph + DAGView.legend(StateOrder.task)))
                \(Layout.card("Timeline", id: "gantt", region: "gantt", GanttChart.svg(run: run, order: order, attempts: attempts, now: now)))
                \(Layout.card("Tasks", id: "tasks", region: "tasks", taskTable))
                \(handoffs)
                \(registry)
                """,
            live: .run(id),
            refreshURL: UIPath.run(id))
    }

    static func head(_ run: RunRecord, instances: [TaskInstanceRecord], ui: UIEnvironment) -> HTML {
        var actions: [HTML] = []
        let disabled: HTML = ui.canOperate ? .empty : " disabled title=\"Your token's role cannot change runs\""
        if !run.state.isTerminal {
            actions.append(
                """
                <form method="post" action="\(UIPath.run(run.id))/cancel" class="inline" data-confirm="Cancel run #\(run.id)? Running tasks are stopped.">\
                <button type="submit" class="button danger"\(disabled)>Cancel run</button></form>
                """)
        } else if instances.contains(where: { [.failed, .upstreamFailed, .cancelled].contains($0.state) }) {
            actions.append(
                """
                <form method="post" action="\(UIPath.run(run.id))/retry" class="inline">\
                <button type="submit" class="button primary"\(disabled) title="Run the failed, upstream-failed and cancelled tasks again">Retry failed tasks</button></form>
                """)
        }
        actions.append("<a class=\"button ghost\" href=\"\(UIPath.pipeline(run.pipeline))#trigger\">Trigger again</a>")
        let active: HTML = run.state.isTerminal ? .empty : " data-active=\"true\""
        return """
            <div class="page-head"\(active)>
            <div><p class="eyebrow"><a href="\(UIPath.pipeline(run.pipeline))">\(run.pipeline)</a> · \(run.trigger.rawValue) run</p>
            <h1>Run #\(run.id) \(Format.badge(run.state.rawValue, live: "run"))</h1></div>
            <div class="head-actions">\(actions)</div>
            </div>
            """
    }
}
