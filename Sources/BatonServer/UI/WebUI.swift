import BatonCore
import BatonEngine
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging

/// What a page handler needs: the server and who is asking.
struct UIEnvironment: Sendable {
    let context: ServerContext
    let identity: Identity

    var store: any Store { context.store }
    var engine: Engine { context.engine }
    /// Viewers see the action buttons disabled instead of meeting a 403 after clicking.
    var canOperate: Bool { identity.role >= .operator }
}

/// A page handler's way to answer "there is no such thing" with the 404 page.
struct UINotFound: Error {
    var message: String
    var suggestion: (label: String, href: String)?
}

/// The server-rendered web UI. Every page works without JavaScript; `baton.js` only adds live
/// updates (server-sent events) and log tailing. Actions are plain POST forms answered with a
/// 303 redirect, so reloading a page never repeats an action.
enum WebUI {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.get("/static/:file") { _, requestContext -> Response in
            let name = requestContext.parameters.get("file") ?? ""
            if let response = UIAssets.response(name) { return response }
            throw APIError.notFound("no static file '\(name)'")
        }

        page(router, "/", context) { request, ui in try await PipelinesPage.page(request, ui) }
        FeaturesPage.register(on: router, context: context)
        router.get("/pipelines") { _, _ in redirect("/") }
        page(router, "/pipelines/:pipeline", context) { request, ui in
            try await PipelinePage.page(name: request.parameter("pipeline"), ui: ui)
        }
        action(router, "/pipelines/:pipeline/trigger", context) { request, form, ui in
            try await PipelinePage.trigger(name: request.parameter("pipeline"), form: form, ui: ui)
        }
        for (path, paused) in [("pause", true), ("unpause", false)] {
            action(router, "/pipelines/:pipeline/\(path)", context) { request, form, ui in
                let name = request.parameter("pipeline")
                _ = try await PipelinePage.record(name, ui)
                try await ui.engine.setPaused(paused, pipeline: name)
                let back = UIPath.safeLocal(form["next"], fallback: UIPath.pipeline(name))
                return .redirect(flash(back, paused ? "paused" : "unpaused"))
            }
        }

        page(router, "/runs", context) { request, ui in try await RunsPage.page(request, ui) }
        page(router, "/runs/:run", context) { request, ui in
            try await RunPage.page(id: request.runID(), flash: request.request.query("done"), ui: ui)
        }
        action(router, "/runs/:run/cancel", context) { request, _, ui in
            let run = try await RunPage.record(request.runID(), ui)
            guard !run.state.isTerminal else { return .redirect(flash(UIPath.run(run.id), "already-ended")) }
            _ = try await ui.store.requestCancel(runID: run.id)
            await ui.engine.cancel(runID: run.id)
            return .redirect(flash(UIPath.run(run.id), "cancelled"))
        }
        action(router, "/runs/:run/retry", context) { request, form, ui in
            let run = try await RunPage.record(request.runID(), ui)
            let task = form["task"].flatMap { $0.isEmpty ? nil : $0 }
            if let task, run.spec.task(named: task) == nil {
                throw UINotFound(message: "Run #\(run.id) of \(run.pipeline) has no task ‘\(task)’.")
            }
            let back = task.map { UIPath.task(run: run.id, task: $0) } ?? UIPath.run(run.id)
            guard run.state.isTerminal else { return .redirect(flash(back, "still-running")) }
            // A cancelled run's processes take a moment to exit; clearing before they have
            // would let the old attempt's exit land on the new attempt.
            if try await ui.store.attempts(runID: run.id, task: task).contains(where: { $0.state == .running }) {
                return .redirect(flash(back, "still-stopping"))
            }
            do {
                let cleared = try await ui.engine.clear(runID: run.id, tasks: task.map { [$0] })
                return .redirect(flash(back, cleared ? (task == nil ? "retried" : "cleared-task") : "nothing-to-retry"))
            } catch is RunRequestError {
                // The run became active again between the check and the clear.
                return .redirect(flash(back, "still-running"))
            }
        }
        page(router, "/runs/:run/tasks/:task", context) { request, ui in
            try await TaskPage.page(
                runID: request.runID(), task: request.parameter("task"), attempt: request.request.query("attempt"),
                flash: request.request.query("done"), ui: ui)
        }

        HandoffUI.register(on: router, context: context)
        RegistryUI.register(on: router, context: context)
        DeploymentsPage.register(on: router, context: context)

        page(router, "/login", context) { request, ui in
            LoginPage.page(next: request.request.query("next"), error: nil, ui: ui, flash: request.request.query("done"))
        }
        router.post("/login") { request, requestContext -> Response in
            guard CrossSiteCheck.isAllowed(request) else { return forbiddenCrossSite(requestContext, context) }
            let form = try await FormData.read(request, limit: 16 * 1024)
            let ui = UIEnvironment(context: context, identity: requestContext.identity ?? .local)
            return await LoginPage.submit(form: form, request: request, ui: ui)
        }
        router.post("/logout") { request, requestContext -> Response in
            guard CrossSiteCheck.isAllowed(request) else { return forbiddenCrossSite(requestContext, context) }
            var response = redirect("/login?done=signed-out")
            response.headers[.setCookie] = LoginPage.cookie(value: "", maxAge: 0, request: request)
            return response
        }
    }

    /// What a page or action handler sees of the request.
    struct PageRequest {
        var request: Request
        var context: BatonRequestContext

        func parameter(_ name: String) -> String { context.parameters.get(name) ?? "" }

        func runID() throws -> Int64 {
            let text = parameter("run")
            guard let id = Int64(text), id > 0 else { throw UINotFound(message: "'\(text)' is not a run number.") }
            return id
        }
    }

    enum ActionResult {
        case redirect(String)
        /// The form page again, with the errors shown.
        case page(Page)
    }

    static func page(
        _ router: Router<BatonRequestContext>, _ path: RouterPath, _ context: ServerContext,
        _ build: @escaping @Sendable (PageRequest, UIEnvironment) async throws -> Page
    ) {
        router.get(path) { request, requestContext -> Response in
            let ui = UIEnvironment(context: context, identity: requestContext.identity ?? .local)
            let page = await render(requestContext, context) {
                try await build(PageRequest(request: request, context: requestContext), ui)
            }
            return Layout.response(page, identity: ui.identity, requireAuth: context.configuration.requireAuth)
        }
    }

    static func action(
        _ router: Router<BatonRequestContext>, _ path: RouterPath, _ context: ServerContext,
        _ perform: @escaping @Sendable (PageRequest, FormData, UIEnvironment) async throws -> ActionResult
    ) {
        router.post(path) { request, requestContext -> Response in
            guard CrossSiteCheck.isAllowed(request) else { return forbiddenCrossSite(requestContext, context) }
            let ui = UIEnvironment(context: context, identity: requestContext.identity ?? .local)
            let form: FormData
            do {
                form = try await FormData.read(request, limit: context.configuration.maxBodyBytes)
            } catch {
                throw APIError(.contentTooLarge, code: "body_too_large", "the form is over the \(context.configuration.maxBodyBytes)-byte limit")
            }
            var result: ActionResult?
            let page = await render(requestContext, context) {
                result = try await perform(PageRequest(request: request, context: requestContext), form, ui)
                if case .page(let page) = result { return page }
                return nil
            }
            if case .redirect(let target) = result { return redirect(target) }
            return Layout.response(page, identity: ui.identity, requireAuth: context.configuration.requireAuth)
        }
    }

    /// Runs a page builder, turning "not found" into the 404 page and anything unexpected into
    /// an error page in the same layout: a browser never lands on a JSON error body. A builder
    /// returning nil (an action that redirects) gets a placeholder page nobody sees.
    static func render(
        _ requestContext: BatonRequestContext, _ context: ServerContext, _ build: () async throws -> Page?
    ) async -> Page {
        do {
            return try await build() ?? Layout.failure("The action did not produce a page.")
        } catch let missing as UINotFound {
            return Layout.notFound(missing.message, suggestion: missing.suggestion)
        } catch {
            requestContext.logger.error("web UI error: \(error)")
            return Layout.failure("Baton could not build this page: \(error)")
        }
    }

    static func redirect(_ location: String) -> Response {
        var headers = HTTPFields()
        headers[.location] = location
        headers[.cacheControl] = "no-store"
        return Response(status: .seeOther, headers: headers)
    }

    static func flash(_ path: String, _ code: String) -> String {
        path + (path.contains("?") ? "&" : "?") + "done=" + code
    }

    static func forbiddenCrossSite(_ requestContext: BatonRequestContext, _ context: ServerContext) -> Response {
        let page = Layout.problem(
            .forbidden, title: "Refused", heading: "Refused",
            message: "This form was posted from another site, so Baton refused it. Open Baton directly and try again.")
        return Layout.response(page, identity: requestContext.identity, requireAuth: context.configuration.requireAuth)
    }
}
