import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// What a page asks the shared shell for.
struct Page {
    enum Section { case pipelines, runs, datasets, features, lineage, events, experiments, models, deployments, dashboard, none }

    /// What live updates the page's script listens for.
    enum Live {
        /// Any run or task event refreshes the page's live regions.
        case all
        case pipeline(String)
        /// Task events of this run also recolour the graph at once.
        case run(Int64)
    }

    var title: String
    var section: Section = .none
    var breadcrumbs: [(label: String, href: String?)] = []
    var body: HTML
    var status: HTTPResponse.Status = .ok
    var live: Live?
    /// The GET address whose fresh rendering replaces the live regions; needed because a
    /// page re-rendered after a failed POST lives at the POST's address.
    var refreshURL: String?
}

/// The page shell: head, header with navigation, breadcrumbs, main area and footer, plus the
/// headers every UI response carries.
enum Layout {
    static func response(_ page: Page, identity: Identity?, requireAuth: Bool) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/html; charset=utf-8"
        headers[.cacheControl] = "no-store"
        // Everything the pages load comes from this server and no inline script or style is
        // used, so a value that somehow escaped escaping still could not run script.
        headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
            + "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        let html = render(page, identity: identity, requireAuth: requireAuth)
        return Response(status: page.status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: html.text)))
    }

    static func render(_ page: Page, identity: Identity?, requireAuth: Bool) -> HTML {
        var bodyAttributes: HTML = .empty
        switch page.live {
        case .all: bodyAttributes += " data-live=\"all\""
        case .pipeline(let name): bodyAttributes += " data-live=\"pipeline\" data-pipeline=\"\(name)\""
        case .run(let id): bodyAttributes += " data-live=\"run\" data-run=\"\(id)\""
        case nil: break
        }
        if let refresh = page.refreshURL { bodyAttributes += " data-refresh-url=\"\(refresh)\"" }

        func navLink(_ label: String, _ href: String, _ section: Page.Section) -> HTML {
            let current: HTML = page.section == section ? " aria-current=\"page\"" : ""
            return "<a href=\"\(href)\"\(current)>\(label)</a>"
        }

        var account: HTML = .empty
        if requireAuth, let identity, identity.tokenID != nil {
            let who = [identity.team, identity.role.rawValue].compactMap { $0 }.joined(separator: " · ")
            account = """
                <span class="whoami" title="Signed in with an API token">\(who)</span>\
                <form method="post" action="/logout" class="inline"><button class="link-button" type="submit">Sign out</button></form>
                """
        }

        var crumbs: HTML = .empty
        if !page.breadcrumbs.isEmpty {
            let items = page.breadcrumbs.map { crumb -> HTML in
                if let href = crumb.href { return "<li><a href=\"\(href)\">\(crumb.label)</a></li>" }
                return "<li aria-current=\"page\">\(crumb.label)</li>"
            }
            crumbs = "<nav class=\"crumbs\" aria-label=\"Breadcrumb\"><ol>\(items)</ol></nav>"
        }

        return """
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <title>\(page.title) · Baton</title>
            <link rel="icon" href="\(UIAssets.url("favicon.svg"))" type="image/svg+xml">
            <link rel="stylesheet" href="\(UIAssets.url("baton.css"))">
            <script src="\(UIAssets.url("baton.js"))" defer></script>
            </head>
            <body\(bodyAttributes)>
            <a class="skip-link" href="#main">Skip to content</a>
            <header class="topbar">
            <div class="wrap topbar-inner">
            <a class="brand" href="/" aria-label="Baton home">\(logo)<span>Baton</span></a>
            <nav class="mainnav" aria-label="Main">\(navLink("Pipelines", "/", .pipelines))\(navLink("Runs", "/runs", .runs))\(navLink("Datasets", "/datasets", .datasets))\(navLink("Features", "/features", .features))\(navLink("Lineage", "/lineage", .lineage))\(navLink("Events", "/events", .events))\(navLink("Experiments", "/experiments", .experiments))\(navLink("Models", "/models", .models))\(navLink("Deployments", "/deployments", .deployments))\(navLink("Dashboard", "/dashboard", .dashboard))</nav>
            <span class="spacer"></span>
            <span class="live-indicator" id="live-indicator" hidden title="Live updates from the server">live</span>
            <a class="toplink" href="/api/v1/openapi.json">API</a>
            \(account)
            </div>
            </header>
            <main id="main" class="wrap">
            \(crumbs)
            \(page.body)
            </main>
            <footer class="wrap footer">Baton · times in UTC</footer>
            </body>
            </html>
            """
    }

    /// The mark: three tasks of a small DAG.
    static let logo: HTML = """
        <svg class="logo" viewBox="0 0 32 32" width="24" height="24" aria-hidden="true">\
        <rect x="1" y="1" width="30" height="30" rx="8" class="logo-bg"/>\
        <path d="M10 11 C16 11 15 21 22 21 M10 11 C16 11 16 11 22 11" class="logo-edge"/>\
        <circle cx="9" cy="11" r="3.4" class="logo-node"/><circle cx="23" cy="11" r="3.4" class="logo-node"/>\
        <circle cx="23" cy="21" r="3.4" class="logo-node accent"/></svg>
        """

    /// A short message shown after a redirect. Only known codes map to text, so nothing from
    /// the address is ever echoed into the page.
    static func flash(_ code: String?) -> HTML {
        guard let code, let (kind, text) = flashMessages[code] else { return .empty }
        return "<div class=\"flash \(kind)\" role=\"status\">\(text)</div>"
    }

    static let flashMessages: [String: (String, String)] = [
        "triggered": ("ok", "Run created. It starts as soon as a slot and max_active_runs allow."),
        "cancelled": ("ok", "Cancellation requested: running tasks are being stopped."),
        "retried": ("ok", "Cleared for another try: the failed tasks run again."),
        "cleared-task": ("ok", "Cleared: the task runs again."),
        "paused": ("ok", "Paused: no new scheduled runs until resumed. Running runs continue."),
        "unpaused": ("ok", "Resumed: scheduling continues."),
        "already-ended": ("warn", "The run had already ended; nothing to cancel."),
        "still-running": ("warn", "The run is still active; retry its tasks after it ends."),
        "still-stopping": ("warn", "The run's stopped tasks are still exiting; retry in a moment."),
        "nothing-to-retry": ("warn", "Nothing to retry: no failed, upstream-failed or cancelled tasks."),
        "signed-out": ("ok", "Signed out."),
        "deploy-promote": ("ok", "Promoted: the canary is the stable version now."),
        "deploy-rollback": ("ok", "Rolled back: all traffic goes to the stable version."),
        "deploy-pause": ("ok", "Paused: the rollout stays at its current step until resumed."),
        "deploy-resume": ("ok", "Resumed: the rollout continues."),
        "deploy-abort": ("ok", "Aborted: the canary is stopped and stable keeps all traffic."),
    ]

    /// A section with a heading.
    static func card(_ title: String, id: String? = nil, actions: HTML = .empty, region: String? = nil, _ content: HTML)
        -> HTML
    {
        let idAttribute: HTML = id.map { " id=\"\($0)\"" } ?? .empty
        let regionAttribute: HTML = region.map { " data-region=\"\($0)\"" } ?? .empty
        let headingID = "h-" + (id ?? title.lowercased().filter { $0.isLetter || $0.isNumber })
        return """
            <section class="card"\(idAttribute) aria-labelledby="\(headingID)">
            <div class="card-head"><h2 id="\(headingID)">\(title)</h2>\(actions)</div>
            <div class="card-body"\(regionAttribute)>\(content)</div>
            </section>
            """
    }

    static func emptyState(_ text: String, hint: HTML = .empty) -> HTML {
        "<div class=\"empty\"><p>\(text)</p>\(hint)</div>"
    }

    /// The 404 page, in the same layout as the rest.
    static func notFound(_ message: String, suggestion: (label: String, href: String)? = nil) -> Page {
        var hint: HTML = "<p><a class=\"button\" href=\"/\">All pipelines</a> <a class=\"button ghost\" href=\"/runs\">Recent runs</a></p>"
        if let suggestion {
            hint = "<p>Did you mean <a href=\"\(suggestion.href)\">\(suggestion.label)</a>?</p>" + hint
        }
        return Page(
            title: "Not found",
            body: """
                <div class="notfound">
                <p class="code">404</p>
                <h1>Not found</h1>
                <p>\(message)</p>
                \(hint)
                </div>
                """,
            status: .notFound)
    }

    /// The page shown when something unexpected failed.
    static func failure(_ message: String) -> Page {
        problem(.internalServerError, title: "Error", heading: "Something went wrong", message: message)
    }

    /// A page for a request that cannot be served, in the same layout as the rest.
    static func problem(_ status: HTTPResponse.Status, title: String, heading: String, message: String) -> Page {
        Page(
            title: title,
            body: """
                <div class="notfound">
                <p class="code">\(Int(status.code))</p>
                <h1>\(heading)</h1>
                <p>\(message)</p>
                <p><a class="button" href="/">All pipelines</a></p>
                </div>
                """,
            status: status)
    }
}
