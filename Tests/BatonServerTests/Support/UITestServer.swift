import BatonAPI
import BatonCore
import BatonDeploy
import BatonEngine
import BatonGateway
import BatonServer
import BatonStore
import Foundation
import Hummingbird
import Logging
import Synchronization
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Helpers for the web UI tests: a whole Baton server (engine, SQLite store, HTTP
/// application) in the test process on a free loopback port, and a browser-like client that
/// does not follow redirects, so a test can check the 303 after a form. Names start with `UI`
/// to stay apart from the API tests' helpers in this target.

struct UITestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One HTTP exchange as a browser sees it.
struct UIPageResult: Sendable, CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: String

    func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    var contentType: String { header("Content-Type") ?? "" }

    var description: String { "HTTP \(status) \(contentType)\n\(body.prefix(1200))" }

    /// How often `needle` occurs in the body.
    func count(_ needle: String) -> Int { body.components(separatedBy: needle).count - 1 }
}

final class UITestServer: Sendable {
    let root: String
    let store: SQLiteStore
    let engine: Engine
    let tokens: TokenService
    /// The server's own context, for tests that set up state through it (the registry).
    let context: ServerContext
    let baseURL: String
    private let session: URLSession
    private let runner: Task<Void, any Error>

    private init(
        root: String, store: SQLiteStore, engine: Engine, tokens: TokenService, context: ServerContext, port: Int,
        runner: Task<Void, any Error>
    ) {
        self.root = root
        self.store = store
        self.engine = engine
        self.tokens = tokens
        self.context = context
        self.baseURL = "http://127.0.0.1:\(port)"
        self.runner = runner
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.timeoutIntervalForRequest = 30
        // Cookies are sent by hand, so a test states exactly what the browser would hold.
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        // Without a cache: corelibs looks the cache up on another queue, unordered against a cancel.
        configuration.urlCache = nil
        session = URLSession(configuration: configuration, delegate: NoRedirects(), delegateQueue: nil)
    }

    /// Keeps 3xx responses as they are, so tests see the redirect itself.
    private final class NoRedirects: NSObject, URLSessionTaskDelegate, Sendable {
        func urlSession(
            _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
            newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
        ) {
            completionHandler(nil)
        }
    }

    /// Starts a server on the given pipelines (file name without `.yaml` to YAML text).
    static func start(
        pipelines: [String: String], requireAuth: Bool = false,
        deployments: (@Sendable (SQLiteStore, Gateway) -> DeploymentManager)? = nil
    ) async throws -> UITestServer {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-ui-\(UUID().uuidString)").path
        let server = try await InProcessServer.start(
            root: root, pipelines: pipelines, requireAuth: requireAuth, deployments: deployments)
        return UITestServer(
            root: root, store: server.store, engine: server.engine, tokens: server.context.tokens, context: server.context,
            port: server.port,
            runner: server.runner)
    }

    /// Runs `body` against a fresh server and always stops it after.
    static func with<T>(
        pipelines: [String: String], requireAuth: Bool = false,
        deployments: (@Sendable (SQLiteStore, Gateway) -> DeploymentManager)? = nil, _ body: (UITestServer) async throws -> T
    ) async throws -> T {
        let server = try await start(pipelines: pipelines, requireAuth: requireAuth, deployments: deployments)
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    func stop() async {
        await session.cancelAllAndInvalidate()
        runner.cancel()
        _ = await runner.result
        try? FileManager.default.removeItem(atPath: root)
    }

    // MARK: - Browser-like requests

    func fetch(_ method: String, _ path: String, form: [(String, String)]? = nil, headers: [String: String] = [:])
        async throws -> UIPageResult
    {
        guard let url = URL(string: baseURL + path) else { throw UITestFailure("bad path \(path)") }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.setValue("text/html,application/xhtml+xml", forHTTPHeaderField: "Accept")
        if let form {
            request.httpBody = Data(Self.encode(form).utf8)
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
        }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw UITestFailure("not an HTTP response for \(path)") }
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { fields[key] = value }
        }
        return UIPageResult(status: http.statusCode, headers: fields, body: String(decoding: data, as: UTF8.self))
    }

    func page(_ path: String) async throws -> UIPageResult { try await fetch("GET", path) }

    func submit(_ path: String, _ form: [(String, String)], headers: [String: String] = [:]) async throws -> UIPageResult {
        try await fetch("POST", path, form: form, headers: headers)
    }

    /// Form encoding as browsers do it: spaces as `+`, everything else outside the unreserved set escaped.
    static func encode(_ form: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._*")
        func escape(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: allowed.union([" "]))?.replacingOccurrences(of: " ", with: "+") ?? ""
        }
        return form.map { escape($0.0) + "=" + escape($0.1) }.joined(separator: "&")
    }

    /// Waits until the run has ended and returns its final state.
    func waitForRun(_ id: Int64, seconds: Double = 30) async throws -> RunState {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if let run = try await store.run(id: id), run.state.isTerminal { return run.state }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw UITestFailure("run \(id) did not end within \(seconds) s")
    }
}
