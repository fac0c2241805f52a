import BatonCore
import BatonRegistry
import BatonStore
import Foundation
import HTTPTypes

/// `/models`: every registered model with its latest version, its aliases (the approval alias
/// `champion` stands out) and the version approved for deployment.
enum ModelsPage {
    static func page(_ request: WebUI.PageRequest, _ ui: UIEnvironment) async throws -> Page {
        let models = try await ui.context.registry.models()
        let rows = models.map { model -> HTML in
            let latest = model.versions.first
            let approved = model.aliases[Registry.approvalAlias]
            let approvedCell: HTML = approved.map {
                "<a class=\"alias champion\" href=\"\(UIPath.model(model.name))#v\($0)\">v\($0)</a>"
            } ?? "<span class=\"muted\">none</span>"
            let latestCell: HTML = latest.map { version in
                "<a href=\"\(UIPath.model(model.name))#v\(version.version)\">v\(version.version)</a> <span class=\"muted\">\(Format.dateText(version.createdAt, seconds: false))</span>"
            } ?? "<span class=\"muted\">no versions</span>"
            let description: HTML = model.description.isEmpty ? .empty : "<div class=\"sub\">\(Format.truncated(model.description, 140))</div>"
            return """
                <tr><th scope="row"><a class="strong" href="\(UIPath.model(model.name))">\(model.name)</a>\(description)</th>\
                <td>\(latestCell)</td><td>\(ModelPage.aliasChips(model.aliases))</td><td>\(approvedCell)</td>\
                <td class="num">\(model.versions.count)</td><td>\(Format.time(model.updatedAt))</td></tr>
                """
        }
        let table: HTML = rows.isEmpty
            ? Layout.emptyState(
                "No registered models yet.",
                hint: "<p class=\"muted\">Register one with <code>mlflow.register_model</code> or <code>log_model(registered_model_name=...)</code>.</p>")
            : """
                <div class="table-scroll"><table class="table models">
                <thead><tr><th scope="col">Model</th><th scope="col">Latest version</th><th scope="col">Aliases</th>\
                <th scope="col">Approved (\(Registry.approvalAlias))</th><th scope="col" class="num">Versions</th><th scope="col">Updated</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """
        return Page(
            title: "Models",
            section: .models,
            body: """
                <div class="page-head"><div><h1>Models</h1>\
                <p class="subtitle">\(Format.plural(models.count, "registered model")); the version with the <span class="alias champion">\(Registry.approvalAlias)</span> alias is the approved one</p></div>\
                <div class="head-actions"><a class="button small ghost" href="/experiments">Experiments</a></div></div>
                <section class="card flush" aria-label="Registered models">\(table)</section>
                """)
    }
}

/// `/models/{name}`: the versions with their lineage (tracked run and Baton pipeline run), the
/// audit trail of decisions, and the forms that approve a version or withdraw an approval.
enum ModelPage {
    /// What the forms had, to show again with the error after a refused submission.
    struct Entered {
        var form: String
        var error: String
        var version: String?
        var alias: String?
        var note: String?
    }

    static func model(_ name: String, _ ui: UIEnvironment) async throws -> ModelSummary {
        try await RegistryUI.found({ try await ui.context.registry.model(named: name) }, suggestion: ("all models", "/models"))
    }

    /// The approval alias sorts first: it is the one people look for.
    static func aliasRank(_ alias: String) -> Int { alias == Registry.approvalAlias ? 0 : 1 }

    static func aliasChips(_ aliases: [String: String]) -> HTML {
        guard !aliases.isEmpty else { return RegistryUI.dash() }
        let rank = aliasRank
        let sorted = aliases.sorted { a, b in (rank(a.key), a.key) < (rank(b.key), b.key) }
        let chips = sorted.map { alias, version -> HTML in
            let champion: HTML = alias == Registry.approvalAlias ? " champion" : .empty
            return "<span class=\"alias\(champion)\" title=\"\(alias) → version \(version)\">\(alias) → v\(version)</span>"
        }
        return "<span class=\"chips\">\(HTML.join(chips, separator: " "))</span>"
    }

    static func page(name: String, flash: String?, ui: UIEnvironment, entered: Entered? = nil) async throws -> Page {
        let registry = ui.context.registry
        let model = try await model(name, ui)
        let history = try await registry.history(model: name)
        let experiments = Dictionary(
            try await registry.searchExperiments(filter: nil, viewType: "ALL", orderBy: [], maxResults: 1000, pageToken: nil).experiments
                .map(TrackedExperiment.init).map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })

        // Each version's tracked run, for the link to its page (which needs the experiment).
        var runExperiments: [String: String] = [:]
        for runID in Set(model.versions.compactMap(\.runID)) {
            if let run = try? await registry.run(id: runID) { runExperiments[runID] = TrackedRun(run).experimentID }
        }

        let approved = model.aliases[Registry.approvalAlias]
        let rows = model.versions.map { version -> HTML in
            let isApproved = approved == String(version.version)
            let aliasCells = version.aliases.isEmpty
                ? RegistryUI.dash()
                : HTML.join(
                    version.aliases.map {
                        "<span class=\"alias\($0 == Registry.approvalAlias ? " champion" : "")\">\($0)</span>" as HTML
                    }, separator: " ")
            let runCell: HTML
            if let runID = version.runID {
                if let experiment = runExperiments[runID] {
                    let label = experiments[experiment].map { "\($0) / " } ?? ""
                    runCell = "<a href=\"\(UIPath.trackedRun(experiment: experiment, run: runID))\" title=\"\(runID)\"><span class=\"muted\">\(label)</span>\(String(runID.prefix(8)))</a>"
                } else {
                    runCell = "<code title=\"run not found\">\(String(runID.prefix(8)))</code>"
                }
            } else {
                runCell = RegistryUI.dash()
            }
            let lineage: HTML = version.origin.map { RegistryUI.pipelineRunLink($0) } ?? RegistryUI.dash()
            let description: HTML = version.description.isEmpty ? .empty : "<div class=\"sub\">\(Format.truncated(version.description, 120))</div>"
            return """
                <tr id="v\(version.version)"\(isApproved ? " class=\"approved\"" : HTML.empty)><th scope="row">v\(version.version)\(description)</th>\
                <td>\(version.stage)</td><td>\(aliasCells)</td><td>\(version.status.lowercased())</td>\
                <td>\(Format.time(version.createdAt))</td><td>\(runCell)</td><td>\(lineage)</td>\
                <td class="source"><code class="value" title="\(version.source)">\(Format.truncated(version.source, 60))</code></td></tr>
                """
        }
        let versions: HTML = rows.isEmpty
            ? Layout.emptyState("No versions yet.")
            : """
                <div class="table-scroll"><table class="table compact versions">
                <thead><tr><th scope="col">Version</th><th scope="col">Stage</th><th scope="col">Aliases</th><th scope="col">Status</th>\
                <th scope="col">Created</th><th scope="col">Source run</th><th scope="col">Pipeline run</th><th scope="col">Source</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """

        let trail: HTML
        if history.isEmpty {
            trail = Layout.emptyState("No decisions recorded yet.")
        } else {
            let rows = history.map { event -> HTML in
                let action = event.action.replacingOccurrences(of: "_", with: " ")
                let kind: HTML = event.action == "approved"
                    ? "<span class=\"tag\">\(action)</span>" : "<span class=\"tag subtle\">\(action)</span>"
                let version: HTML = event.version.map { "<a href=\"#v\($0)\">v\($0)</a>" } ?? RegistryUI.dash()
                let alias: HTML = event.alias.map { "<span class=\"alias\($0 == Registry.approvalAlias ? " champion" : "")\">\($0)</span>" }
                    ?? RegistryUI.dash()
                let note: HTML = event.detail.map { "\(Format.truncated($0, 300))" } ?? RegistryUI.dash()
                return """
                    <tr><td>\(Format.time(event.at))</td><td>\(event.actor)</td><td>\(kind)</td><td>\(version)</td><td>\(alias)</td>\
                    <td class="note">\(note)</td></tr>
                    """
            }
            trail = """
                <div class="table-scroll"><table class="table compact audit">
                <thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">Action</th><th scope="col">Version</th>\
                <th scope="col">Alias</th><th scope="col">Note</th></tr></thead>
                <tbody>\(rows)</tbody></table></div>
                """
        }

        let approvedFact: HTML = approved.map { "<a class=\"alias champion\" href=\"#v\($0)\">v\($0)</a>" }
            ?? "<span class=\"muted\">none</span>"
        var facts: [(String, HTML)] = [
            ("Approved version", approvedFact),
            ("Aliases", aliasChips(model.aliases)),
            ("Versions", "\(model.versions.count)"),
            ("Updated", Format.time(model.updatedAt)),
        ]
        if !model.description.isEmpty { facts.append(("Description", "\(model.description)")) }

        let forms = decisionForms(model, ui: ui, entered: entered)
        return Page(
            title: model.name,
            section: .models,
            breadcrumbs: [("Models", "/models"), (model.name, nil)],
            body: """
                \(RegistryUI.flash(flash))
                <div class="page-head"><div><p class="eyebrow">Registered model</p><h1>\(model.name)</h1></div></div>
                \(PipelinePage.factList(facts))
                \(Layout.card("Versions", id: "versions", versions))
                \(forms)
                \(Layout.card("Audit trail", id: "audit", actions: "<span class=\"muted\">newest first</span>", trail))
                """,
            status: entered == nil ? .ok : .badRequest,
            refreshURL: UIPath.model(model.name))
    }

    static func decisionForms(_ model: ModelSummary, ui: UIEnvironment, entered: Entered?) -> HTML {
        guard !model.versions.isEmpty else { return .empty }
        let disabled: HTML = ui.canOperate ? .empty : " disabled title=\"Your token's role cannot approve models\""
        let path = UIPath.model(model.name)
        func error(_ form: String) -> HTML {
            guard let entered, entered.form == form else { return .empty }
            return "<div class=\"flash error\" role=\"alert\">\(entered.error)</div>"
        }
        func value(_ form: String, _ keyPath: KeyPath<Entered, String?>) -> String? {
            guard let entered, entered.form == form else { return nil }
            return entered[keyPath: keyPath]
        }
        let chosen = value("approve", \.version) ?? model.versions.first.map { String($0.version) } ?? ""
        let options = model.versions.map { version -> HTML in
            let label = "v\(version.version)" + (version.aliases.isEmpty ? "" : " (" + version.aliases.joined(separator: ", ") + ")")
            return "<option value=\"\(String(version.version))\"\(String(version.version) == chosen ? " selected" : "")>\(label)</option>"
        }
        let approve: HTML = """
            <form method="post" action="\(path)/approve" class="decision-form">
            \(error("approve"))
            <div class="field"><label class="field-label" for="approve-version">Version</label>\
            <select id="approve-version" name="version">\(options)</select></div>
            <div class="field"><label class="field-label" for="approve-alias">Alias</label>\
            <input type="text" id="approve-alias" name="alias" value="\(value("approve", \.alias) ?? Registry.approvalAlias)" required>\
            <p class="help">The alias moves to this version; deployments read <code>models:/\(model.name)@\(Registry.approvalAlias)</code>.</p></div>
            <div class="field"><label class="field-label" for="approve-note">Note</label>\
            <textarea id="approve-note" name="note" rows="2" placeholder="Why this version">\(value("approve", \.note) ?? "")</textarea></div>
            <div class="form-actions"><button type="submit" class="button primary"\(disabled)>Approve</button></div>
            </form>
            """
        let current = model.aliases.keys.sorted { (aliasRank($0), $0) < (aliasRank($1), $1) }
        let revokeAlias = value("revoke", \.alias) ?? current.first ?? Registry.approvalAlias
        let revoke: HTML = """
            <form method="post" action="\(path)/revoke" class="decision-form" data-confirm="Withdraw this approval? Deployments reading the alias stop finding a version.">
            \(error("revoke"))
            <div class="field"><label class="field-label" for="revoke-alias">Alias</label>\
            <input type="text" id="revoke-alias" name="alias" value="\(revokeAlias)" required>\
            <p class="help">\(current.isEmpty ? "No alias is set." : "Set now: " + current.map { "\($0) → v\(model.aliases[$0] ?? "")" }.joined(separator: ", "))</p></div>
            <div class="field"><label class="field-label" for="revoke-note">Note</label>\
            <textarea id="revoke-note" name="note" rows="2" placeholder="Why it is withdrawn">\(value("revoke", \.note) ?? "")</textarea></div>
            <div class="form-actions"><button type="submit" class="button danger"\(disabled)>Revoke</button></div>
            </form>
            """
        return """
            <div class="columns">
            \(Layout.card("Approve a version", id: "approve", approve))
            \(Layout.card("Revoke an approval", id: "revoke", revoke))
            </div>
            """
    }

    static func approve(name: String, form: FormData, request: WebUI.PageRequest, ui: UIEnvironment) async throws
        -> WebUI.ActionResult
    {
        // An unknown model is the 404 page, not a form error on a page that cannot be drawn.
        _ = try await model(name, ui)
        let alias = form["alias"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let note = form["note"].flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        let versionText = form["version"]?.trimmingCharacters(in: .whitespaces) ?? ""
        func refused(_ message: String) async throws -> WebUI.ActionResult {
            .page(
                try await page(
                    name: name, flash: nil, ui: ui,
                    entered: Entered(form: "approve", error: message, version: versionText, alias: alias, note: note)))
        }
        guard let version = Int(versionText), version > 0 else { return try await refused("Pick a version to approve.") }
        guard !alias.isEmpty else { return try await refused("Name the alias to set, such as \(Registry.approvalAlias).") }
        do {
            _ = try await ui.context.registry.approve(
                model: name, version: version, alias: alias, actor: MLflowRoutes.actor(request.context), note: note)
        } catch let error as MLflowError where error.status < 500 {
            return try await refused(error.message)
        }
        return .redirect(WebUI.flash(UIPath.model(name), "approved"))
    }

    static func revoke(name: String, form: FormData, request: WebUI.PageRequest, ui: UIEnvironment) async throws
        -> WebUI.ActionResult
    {
        _ = try await model(name, ui)
        let alias = form["alias"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let note = form["note"].flatMap { $0.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ? nil : $0 }
        func refused(_ message: String) async throws -> WebUI.ActionResult {
            .page(try await page(name: name, flash: nil, ui: ui, entered: Entered(form: "revoke", error: message, alias: alias, note: note)))
        }
        guard !alias.isEmpty else { return try await refused("Name the alias to withdraw.") }
        do {
            try await ui.context.registry.revokeApproval(model: name, alias: alias, actor: MLflowRoutes.actor(request.context), note: note)
        } catch let error as MLflowError where error.status < 500 {
            return try await refused(error.message)
        }
        return .redirect(WebUI.flash(UIPath.model(name), "revoked"))
    }
}
