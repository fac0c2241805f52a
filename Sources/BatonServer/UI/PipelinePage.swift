import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import HTTPTypes

/// `/pipelines/{name}`: what the pipeline is, its DAG coloured by the latest run, a grid of
/// recent runs, the tasks, and a trigger form built from the declared params.
enum PipelinePage {
    static let gridRunCount = 25

    static func record(_ name: String, _ ui: UIEnvironment) async throws -> PipelineRecord {
        let loaded = await ui.engine.loadedPipelines()
        if loaded.contains(where: { $0.name == name }), let record = try await ui.store.pipeline(named: name) {
            return record
        }
        let suggestion = Suggest.closest(to: name, in: loaded.map(\.name))
        throw UINotFound(
            message: "There is no pipeline named ‘\(name)’ loaded from the pipelines folder.",
            suggestion: suggestion.map { ($0, UIPath.pipeline($0)) })
    }

    static func page(
        name: String, ui: UIEnvironment, submitted: TriggerForm.Result? = nil, failure: String? = nil,
        flash: String? = nil
    ) async throws -> Page {
        let record = try await record(name, ui)
        let now = Date()
        let spec = record.spec
        let runs = try await ui.store.runs(RunQuery(pipeline: name, limit: gridRunCount))
        let pipeline = APIPipeline(record, recentRuns: runs, now: now)
        let order = TaskGraph(tasks: spec.tasks).topologicalOrder()

        var columns: [HistoryGrid.Column] = []
        var latestInstances: [TaskInstanceRecord] = []
        for (position, run) in runs.enumerated() {
            let instances = try await ui.store.taskInstances(runID: run.id)
            if position == 0 { latestInstances = instances }
            columns.append(.init(run: run, states: Dictionary(instances.map { ($0.task, $0.state.rawValue) }, uniquingKeysWith: { a, _ in a })))
        }
        columns.reverse()

        var graphCaption: HTML = "<p class=\"muted\">No runs yet; task colours show the latest run once there is one.</p>"
        var states: [String: DAGView.NodeState] = [:]
        if let latest = runs.first {
            for instance in latestInstances {
                states[instance.task] = RunPage.nodeState(instance, runID: latest.id, now: now)
            }
            graphCaption = """
                <p class="muted">Colours show run <a href="\(UIPath.run(latest.id))">#\(latest.id)</a> \
                (\(Format.badge(latest.state.rawValue)), logical date \(Format.time(latest.logicalDate, seconds: false))).</p>
                """
        }
        let latestRunID = runs.first?.id
        let graph = DAGView.svg(
            tasks: spec.tasks, states: states, id: "pipeline", label: "Task graph of \(name)",
            taskHref: { task in latestRunID.map { UIPath.task(run: $0, task: task) } })

        var facts: [(String, HTML)] = [
            ("Owner", spec.owner.map { "<a class=\"tag\" href=\"\(UIPath.with("/", [("owner", $0)]))\">\($0)</a>" } ?? "—"),
            ("Schedule", "\(pipeline.schedule_description) <code>\(pipeline.schedule)</code>"),
            ("Next run", pipeline.next_run.map { "\(Format.time($0, seconds: false)) <span class=\"muted\">\(Format.relative($0, now: now))</span>" } ?? (record.paused ? "paused" : "—")),
            ("Time zone", "\(spec.timezone)"),
            ("Catch-up", spec.catchup ? "yes" : "no"),
            ("Max active runs", "\(spec.maxActiveRuns)"),
        ]
        if let start = spec.startDate { facts.append(("Start date", Format.time(start, seconds: false))) }
        facts.append(("File", "<code>\((record.file as NSString).lastPathComponent)</code>"))

        let description: HTML = spec.description.map { "<p class=\"lead\">\($0)</p>" } ?? .empty
        let pausedPill: HTML = record.paused ? " <span class=\"pill paused\">Paused</span>" : ""
        let gridTasks = order + spec.tasks.map(\.name).filter { !order.contains($0) }
        let datasets = await HandoffUI.pipelineSection(spec, ui: ui)

        return Page(
            title: name,
            section: .pipelines,
            breadcrumbs: [("Pipelines", "/"), (name, nil)],
            body: """
                \(Layout.flash(flash))
                <div class="page-head">
                <div><h1>\(name)\(pausedPill)</h1>\(description)</div>
                <div class="head-actions">\(PipelinesPage.pauseForm(name, paused: record.paused, next: UIPath.pipeline(name), ui: ui))\
                <a class="button primary" href="#trigger">Trigger run</a></div>
                </div>
                \(factList(facts))
                \(Layout.card("Graph", id: "graph", region: "graph", graphCaption + graph + DAGView.legend(StateOrder.task)))
                \(Layout.card("Run history", id: "history", region: "grid", HistoryGrid.html(tasks: gridTasks, columns: columns, now: now)))
                \(Layout.card("Trigger a run", id: "trigger", triggerForm(spec, submitted: submitted, failure: failure, ui: ui)))
                \(Layout.card("Tasks", id: "tasks", taskTable(spec, order: gridTasks)))
                \(datasets)
                """,
            status: failure == nil && (submitted?.errors.isEmpty ?? true) ? .ok : .unprocessableContent,
            live: .pipeline(name),
            refreshURL: UIPath.pipeline(name))
    }

    /// Handles the trigger form: params are checked field by field; on success the new run's
    /// page follows, otherwise the form comes back with each problem next to its field.
    static func trigger(name: String, form: FormData, ui: UIEnvironment) async throws -> WebUI.ActionResult {
        let record = try await record(name, ui)
        let submitted = TriggerForm.parse(form, spec: record.spec)
        guard submitted.errors.isEmpty else {
            let count = submitted.errors.count
            return .page(
                try await page(
                    name: name, ui: ui, submitted: submitted,
                    failure: count == 1 ? "One param needs fixing." : "\(count) params need fixing."))
        }
        do {
            let run = try await ui.engine.trigger(pipeline: name, params: submitted.params)
            return .redirect(WebUI.flash(UIPath.run(run.id), "triggered"))
        } catch let error as RunRequestError {
            return .page(try await page(name: name, ui: ui, submitted: submitted, failure: error.message))
        }
    }

    static func factList(_ facts: [(String, HTML)]) -> HTML {
        let items = facts.map { "<div><dt>\($0.0)</dt><dd>\($0.1)</dd></div>" as HTML }
        return "<dl class=\"facts\">\(items)</dl>"
    }

    static func triggerForm(_ spec: PipelineSpec, submitted: TriggerForm.Result?, failure: String?, ui: UIEnvironment) -> HTML {
        var fields: [HTML] = []
        for (index, param) in spec.params.enumerated() {
            let id = "param-\(index)"
            let fieldName = TriggerForm.field(param.name)
            let entered = submitted?.entered[param.name]
            let error = submitted?.errors[param.name]
            let describedBy = [param.description != nil ? "\(id)-help" : nil, error != nil ? "\(id)-error" : nil]
                .compactMap { $0 }.joined(separator: " ")
            var attributes: HTML = " id=\"\(id)\" name=\"\(fieldName)\""
            if !describedBy.isEmpty { attributes += " aria-describedby=\"\(describedBy)\"" }
            if error != nil { attributes += " aria-invalid=\"true\"" }
            let input: HTML
            if let allowed = param.allowedValues, !allowed.isEmpty {
                let chosen = entered ?? Format.value(param.defaultValue)
                let options = allowed.map { value -> HTML in
                    let text = Format.value(value)
                    return "<option value=\"\(text)\"\(text == chosen ? " selected" : "")>\(text)</option>"
                }
                input = "<select\(attributes)>\(options)</select>"
            } else {
                switch param.type {
                case .boolean:
                    let checked: Bool
                    if let entered { checked = ["true", "on", "1", "yes"].contains(entered.lowercased()) }
                    else { checked = param.defaultValue == .bool(true) }
                    // The hidden field sends "false" when the box is unchecked; a checked box
                    // comes later in the form and wins.
                    input = """
                        <input type="hidden" name="\(fieldName)" value="false">\
                        <label class="switch"><input type="checkbox"\(attributes) aria-labelledby="\(id)-label" value="true"\
                        \(checked ? " checked" : "")><span aria-hidden="true">true when checked</span></label>
                        """
                case .integer, .number:
                    let step = param.type == .integer ? "1" : "any"
                    input = "<input type=\"number\" step=\"\(step)\" inputmode=\"decimal\"\(attributes) value=\"\(entered ?? Format.value(param.defaultValue))\">"
                case .array, .object, .any:
                    let text = entered ?? (param.defaultValue.map { $0.compactJSON } ?? "")
                    input = "<textarea rows=\"2\" class=\"mono\" spellcheck=\"false\"\(attributes)>\(text)</textarea>"
                case .string:
                    input = "<input type=\"text\" spellcheck=\"false\"\(attributes) value=\"\(entered ?? Format.value(param.defaultValue))\">"
                }
            }
            var help: [HTML] = []
            if let description = param.description { help.append("\(description)") }
            if let value = param.defaultValue, value != .null { help.append("default <code>\(Format.value(value))</code>") }
            let helpText: HTML = help.isEmpty ? .empty : "<p class=\"help\" id=\"\(id)-help\">\(HTML.join(help, separator: " · "))</p>"
            let errorText: HTML = error.map { "<p class=\"field-error\" id=\"\(id)-error\">\($0)</p>" } ?? .empty
            let isSwitch = param.type == .boolean && (param.allowedValues ?? []).isEmpty
            let label: HTML = isSwitch
                ? "<span class=\"field-label\" id=\"\(id)-label\">\(param.name) <span class=\"type\">\(param.type.rawValue)</span></span>"
                : "<label for=\"\(id)\" class=\"field-label\">\(param.name) <span class=\"type\">\(param.type.rawValue)</span></label>"
            fields.append(
                """
                <div class="field\(error == nil ? "" : " has-error")">
                \(label)
                \(input)\(helpText)\(errorText)
                </div>
                """)
        }
        // Names the form sent that the pipeline does not declare.
        let declared = Set(spec.params.map(\.name))
        let unknown = (submitted?.errors ?? [:]).filter { !declared.contains($0.key) }.sorted { $0.key < $1.key }
        var summary: HTML = .empty
        if let failure {
            let extra = unknown.map { "<li>\($0.value)</li>" as HTML }
            summary = "<div class=\"flash error\" role=\"alert\"><strong>Not triggered.</strong> \(failure)\(extra.isEmpty ? HTML.empty : "<ul>\(extra)</ul>")</div>"
        }
        let intro: HTML = spec.params.isEmpty
            ? "<p class=\"muted\">This pipeline declares no params.</p>"
            : "<p class=\"muted\">Params start at their defaults; change any before triggering.</p>"
        let disabled: HTML = ui.canOperate ? .empty : " disabled title=\"Your token's role cannot trigger runs\""
        return """
            \(summary)
            <form method="post" action="\(UIPath.pipeline(spec.name))/trigger" class="trigger-form" novalidate>
            \(intro)
            <div class="field-grid">\(fields)</div>
            <div class="form-actions"><button type="submit" class="button primary"\(disabled)>Trigger \(spec.name)</button></div>
            </form>
            """
    }

    static func taskTable(_ spec: PipelineSpec, order: [String]) -> HTML {
        let rows = order.compactMap { spec.task(named: $0) }.map { task -> HTML in
            var rules: [HTML] = []
            if task.triggerRule != .allSuccess { rules.append("<span class=\"tag\">\(task.triggerRule.rawValue)</span>") }
            if let when = task.when { rules.append("<span class=\"sub\">when <code>\(when)</code></span>") }
            var limits: [String] = []
            if task.retries > 0 { limits.append("\(task.retries) \(task.retries == 1 ? "retry" : "retries")") }
            if let timeout = task.timeout { limits.append("timeout \(Format.duration(timeout))") }
            let command = Format.command(task.command)
            let needs: HTML = task.needs.isEmpty ? "<span class=\"muted\">—</span>" : "\(task.needs.joined(separator: ", "))"
            return """
                <tr><th scope="row">\(task.name)</th><td>\(needs)</td>\
                <td class="command-cell"><code class="command" title="\(command)">\(Format.truncated(command, 90))</code>\(HTML.join(rules, separator: " "))</td>\
                <td>\(limits.isEmpty ? "—" : limits.joined(separator: ", "))</td></tr>
                """
        }
        return """
            <div class="table-scroll"><table class="table compact">
            <thead><tr><th scope="col">Task</th><th scope="col">Needs</th><th scope="col">Runs</th><th scope="col">Retries, timeout</th></tr></thead>
            <tbody>\(rows)</tbody></table></div>
            """
    }
}
