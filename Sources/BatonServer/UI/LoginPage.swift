import Foundation
import HTTPTypes
import Hummingbird

/// `/login`: paste an API token once; it is kept in an HttpOnly, SameSite=Strict cookie that
/// the auth middleware accepts like a bearer token. Only a token that verifies is stored.
enum LoginPage {
    static func page(next: String?, error: String?, ui: UIEnvironment, flash: String? = nil) -> Page {
        let target = UIPath.safeLocal(next)
        var notice: HTML = .empty
        if !ui.context.configuration.requireAuth {
            notice = """
                <div class="flash info">This server does not require a token (auth is off on this address), \
                so you can <a href="\(target)">go straight in</a>.</div>
                """
        }
        let errorBox: HTML = error.map { "<div class=\"flash error\" role=\"alert\" id=\"token-error\">\($0)</div>" } ?? .empty
        let invalid: HTML = error == nil ? .empty : " aria-invalid=\"true\" aria-describedby=\"token-error\""
        return Page(
            title: "Sign in",
            body: """
                <div class="login">
                <div class="login-card card">
                <div class="card-body">
                <div class="login-mark">\(Layout.logo)</div>
                <h1>Sign in to Baton</h1>
                <p class="muted">Paste an API token. Create one with <code>baton tokens create --team TEAM --role operator</code>.</p>
                \(Layout.flash(flash))\(notice)\(errorBox)
                <form method="post" action="/login">
                <input type="hidden" name="next" value="\(target)">
                <div class="field"><label class="field-label" for="token">API token</label>\
                <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required \
                placeholder="baton_…" autofocus\(invalid)></div>
                <div class="form-actions"><button class="button primary wide" type="submit">Sign in</button></div>
                </form>
                </div>
                </div>
                </div>
                """,
            status: error == nil ? .ok : .unauthorized)
    }

    static func submit(form: FormData, request: Request, ui: UIEnvironment) async -> Response {
        let token = (form["token"] ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let next = UIPath.safeLocal(form["next"])
        let message: String
        if token.isEmpty {
            message = "Paste a token first."
        } else {
            do {
                _ = try await ui.context.tokens.verify(token)
                var response = WebUI.redirect(next)
                response.headers[.setCookie] = cookie(value: token, maxAge: 30 * 86400, request: request)
                return response
            } catch TokenService.Failure.revoked {
                message = "This token has been revoked. Ask an admin for a new one."
            } catch {
                message = "That token is not valid. Check that you copied all of it (it starts with baton_)."
            }
        }
        return Layout.response(
            page(next: next, error: message, ui: ui), identity: nil, requireAuth: ui.context.configuration.requireAuth)
    }

    static func cookie(value: String, maxAge: Int, request: Request) -> String {
        var cookie = "\(AuthMiddleware.cookieName)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict"
        // Behind a TLS-terminating proxy the browser sees https; only then may the cookie be Secure.
        if request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https" { cookie += "; Secure" }
        return cookie
    }
}
