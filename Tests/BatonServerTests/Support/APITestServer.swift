import BatonAPI
import BatonCore
import BatonEngine
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

/// Helpers for the REST API tests: a whole Baton server (engine, SQLite store, HTTP
/// application) running inside the test process on a free loopback port, and a small
/// URLSession client for it. Names start with `API` so they stay apart from the UI tests'
/// helpers in this target.

/// A failure with a readable message.
struct APITestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One HTTP exchange's outcome.
struct APIHTTPResult: Sendable, CustomStringConvertible {
    var status: Int
    var headers: [String: String]
    var body: Data

    var text: String { String(decoding: body, as: UTF8.self) }

    var contentType: String { header("Content-Type") ?? "" }

    func header(_ name: String) -> String? {
        headers.first { $0.key.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    var description: String { "HTTP \(status) \(text.prefix(600))" }

    /// The body as a JSON object (fails the test when it is not one).
    func object() throws -> [String: Any] {
        guard let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw APITestFailure("expected a JSON object body, got \(self)")
        }
        return object
    }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try APICoding.decoder().decode(type, from: body)
        } catch {
            throw APITestFailure("could not decode \(T.self) from \(self): \(error)")
        }
    }

    /// Checks Baton's one error shape, `{"error": {"code", "message", "field"?}}` with a 4xx
    /// status and nothing else, and returns the detail.
    @discardableResult
    func expectError(
        _ status: Int, code: String? = nil, field: String?? = nil, messageContains: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> APIErrorBody.Detail {
        #expect(self.status == status, "expected HTTP \(status), got \(self)", sourceLocation: sourceLocation)
        #expect((400..<500).contains(self.status), "an error must be a 4xx, got \(self)", sourceLocation: sourceLocation)
        #expect(contentType.hasPrefix("application/json"), "error content type: \(contentType)", sourceLocation: sourceLocation)
        let object = try self.object()
        #expect(Set(object.keys) == ["error"], "error body keys: \(object.keys)", sourceLocation: sourceLocation)
        let inner = object["error"] as? [String: Any] ?? [:]
        #expect(
            Set(inner.keys).isSubset(of: ["code", "message", "field"]) && inner["code"] is String
                && inner["message"] is String,
            "error detail shape: \(inner)", sourceLocation: sourceLocation)
        if let field = inner["field"] { #expect(field is String, "field must be a string", sourceLocation: sourceLocation) }
        let detail = try decode(APIErrorBody.self).error
        #expect(!detail.message.isEmpty, sourceLocation: sourceLocation)
        if let code { #expect(detail.code == code, "code of \(self)", sourceLocation: sourceLocation) }
        if let field { #expect(detail.field == field, "field of \(self)", sourceLocation: sourceLocation) }
        if let messageContains {
            #expect(detail.message.contains(messageContains), "message of \(self)", sourceLocation: sourceLocation)
        }
        return detail
    }
}

/// A Baton server in this process: engine and HTTP application run concurrently in one task
/// group, stopped by cancelling it.
final class APITestServer: Sendable {
    let root: String
    let pipelinesDirectory: String
    let store: SQLiteStore
    let engine: Engine
    let context: ServerContext
    let baseURL: URL
    let session: URLSession
    private let runner: Task<Void, any Error>

    private init(
        root: String, store: SQLiteStore, engine: Engine, context: ServerContext, port: Int,
        runner: Task<Void, any Error>
    ) {
        self.root = root
        self.pipelinesDirectory = root + "/pipelines"
        self.store = store
        self.engine = engine
        self.context = context
        self.baseURL = URL(string: "http://127.0.0.1:\(port)")!
        self.runner = runner
        let configuration = URLSessionConfiguration.ephemeral
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.timeoutIntervalForRequest = 30
        configuration.httpMaximumConnectionsPerHost = 16
        // Without a cache: corelibs looks the cache up on another queue, unordered against a cancel.
        configuration.urlCache = nil
        session = URLSession(configuration: configuration)
    }

    /// Starts a server on the given pipelines (file name without `.yaml` to YAML text). The
    /// text `@ROOT@` in a pipeline is replaced by the server's temp folder, for marker files.
    static func start(
        pipelines: [String: String], requireAuth: Bool = false, slots: Int = 4, scheduler: Bool = false
    ) async throws -> APITestServer {
        let root = FileManager.default.temporaryDirectory
            .appendingPathComponent("baton-api-\(UUID().uuidString)").path
        let server = try await InProcessServer.start(
            root: root, pipelines: pipelines.mapValues { $0.replacingOccurrences(of: "@ROOT@", with: root) },
            requireAuth: requireAuth, slots: slots, scheduler: scheduler)
        return APITestServer(
            root: root, store: server.store, engine: server.engine, context: server.context, port: server.port,
            runner: server.runner)
    }

    /// Runs `body` against a fresh server and always stops it (and removes its files) after.
    static func with<T>(
        pipelines: [String: String], requireAuth: Bool = false, slots: Int = 4,
        _ body: (APITestServer) async throws -> T
    ) async throws -> T {
        let server = try await start(pipelines: pipelines, requireAuth: requireAuth, slots: slots)
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

    // MARK: - HTTP

    func url(_ path: String) -> URL {
        URL(string: baseURL.absoluteString + path)!
    }

    func request(
        _ method: String, _ path: String, body: Data? = nil, token: String? = nil,
        headers: [String: String] = [:]
    ) async throws -> APIHTTPResult {
        var request = URLRequest(url: url(path))
        request.httpMethod = method
        if let body {
            request.httpBody = body
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await session.data(for: request)
        guard let http = response as? HTTPURLResponse else { throw APITestFailure("not an HTTP response for \(path)") }
        var fields: [String: String] = [:]
        for (key, value) in http.allHeaderFields {
            if let key = key as? String, let value = value as? String { fields[key] = value }
        }
        return APIHTTPResult(status: http.statusCode, headers: fields, body: data)
    }

    func get(_ path: String, token: String? = nil, headers: [String: String] = [:]) async throws -> APIHTTPResult {
        try await request("GET", path, token: token, headers: headers)
    }

    func post(_ path: String, json: String? = nil, token: String? = nil) async throws -> APIHTTPResult {
        try await request("POST", path, body: json.map { Data($0.utf8) }, token: token)
    }

    /// `GET` that must answer 200 with a `T`.
    func getOK<T: Decodable>(_ path: String, as type: T.Type, token: String? = nil) async throws -> T {
        let result = try await get(path, token: token)
        guard result.status == 200 else { throw APITestFailure("GET \(path): expected 200, got \(result)") }
        return try result.decode(type)
    }

    /// Triggers a run through the API and returns it (fails unless 201).
    func trigger(_ pipeline: String, params: String? = nil, token: String? = nil) async throws -> APIRun {
        let body = params.map { #"{"pipeline": "\#(pipeline)", "params": \#($0)}"# } ?? #"{"pipeline": "\#(pipeline)"}"#
        let result = try await post("/api/v1/runs", json: body, token: token)
        guard result.status == 201 else { throw APITestFailure("trigger \(pipeline): expected 201, got \(result)") }
        return try result.decode(APIRun.self)
    }

    /// Polls the run until `done` holds (by default: the run ended).
    @discardableResult
    func waitForRun(
        _ id: Int64, seconds: Double = 30, until done: (APIRun) -> Bool = { ["success", "failed", "cancelled"].contains($0.state) }
    ) async throws -> APIRun {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            let run = try await getOK("/api/v1/runs/\(id)", as: APIRun.self)
            if done(run) { return run }
            guard ContinuousClock.now < deadline else {
                throw APITestFailure("run \(id) did not reach the expected state within \(seconds) s; last: \(run.state) \(run.tasks ?? [])")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Opens a server-sent events stream.
    func events(_ path: String, token: String? = nil) -> APIEventStream {
        var request = URLRequest(url: url(path))
        request.setValue("text/event-stream", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return APIEventStream(request: request)
    }
}

/// One server-sent event.
struct APIServerSentEvent: Sendable, Hashable {
    var event: String
    var data: String
    var id: String?
}

/// A live server-sent events connection read through a URLSession data delegate (Linux'
/// URLSession has no `bytes(for:)`). Comments (`: text`) are kept apart, so a test can wait for
/// the stream's `connected` comment before causing events.
final class APIEventStream: Sendable {
    enum Item: Sendable {
        case status(Int, contentType: String)
        case event(APIServerSentEvent)
        case comment(String)
        case closed((any Error)?)
    }

    private final class Delegate: NSObject, URLSessionDataDelegate, Sendable {
        let continuation: AsyncStream<Item>.Continuation
        let buffer = Mutex<Data>(Data())

        init(continuation: AsyncStream<Item>.Continuation) {
            self.continuation = continuation
        }

        func urlSession(
            _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
            completionHandler: @escaping @Sendable (URLSession.ResponseDisposition) -> Void
        ) {
            let http = response as? HTTPURLResponse
            continuation.yield(.status(http?.statusCode ?? 0, contentType: http?.value(forHTTPHeaderField: "Content-Type") ?? ""))
            completionHandler(.allow)
        }

        func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
            let blocks: [String] = buffer.withLock { buffer in
                buffer.append(data)
                var found: [String] = []
                let separator = Data("\n\n".utf8)
                while let range = buffer.range(of: separator) {
                    found.append(String(decoding: buffer[buffer.startIndex..<range.lowerBound], as: UTF8.self))
                    buffer.removeSubrange(buffer.startIndex..<range.upperBound)
                }
                return found
            }
            for block in blocks { continuation.yield(Self.parse(block)) }
        }

        func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
            continuation.yield(.closed(error))
            continuation.finish()
        }

        static func parse(_ block: String) -> Item {
            var event = "message"
            var data: [String] = []
            var id: String?
            var comments: [String] = []
            for line in block.split(separator: "\n", omittingEmptySubsequences: false) {
                if line.hasPrefix(":") {
                    comments.append(line.dropFirst().trimmingCharacters(in: .whitespaces))
                    continue
                }
                let (name, value): (Substring, Substring)
                if let colon = line.firstIndex(of: ":") {
                    name = line[..<colon]
                    var rest = line[line.index(after: colon)...]
                    if rest.hasPrefix(" ") { rest = rest.dropFirst() }
                    value = rest
                } else {
                    (name, value) = (line, "")
                }
                switch name {
                case "event": event = String(value)
                case "data": data.append(String(value))
                case "id": id = String(value)
                default: break
                }
            }
            if data.isEmpty && id == nil && !comments.isEmpty { return .comment(comments.joined(separator: "\n")) }
            return .event(APIServerSentEvent(event: event, data: data.joined(separator: "\n"), id: id))
        }
    }

    let items: AsyncStream<Item>
    private let session: URLSession
    private let task: URLSessionDataTask

    init(request: URLRequest) {
        let (items, continuation) = AsyncStream.makeStream(of: Item.self)
        self.items = items
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 60
        // Without a cache: corelibs looks the cache up on another queue, unordered against a cancel.
        configuration.urlCache = nil
        session = URLSession(configuration: configuration, delegate: Delegate(continuation: continuation), delegateQueue: nil)
        task = session.dataTask(with: request)
        task.resume()
    }

    /// Cancels the stream's one task, then lets the session go once it is done (not
    /// `invalidateAndCancel`: see `URLSession.cancelAllAndInvalidate`).
    func close() {
        task.cancel()
        session.finishTasksAndInvalidate()
    }

    /// Reads items until `body` returns true, the stream closes, or time runs out; returns
    /// every item read.
    @discardableResult
    func read(seconds: Double = 30, until body: @escaping @Sendable (Item) -> Bool) async throws -> [Item] {
        let items = self.items
        return try await withThrowingTaskGroup(of: [Item]?.self) { group in
            group.addTask {
                var seen: [Item] = []
                for await item in items {
                    seen.append(item)
                    if body(item) { return seen }
                    if case .closed = item { return seen }
                }
                return seen
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int(seconds * 1000)))
                return nil
            }
            defer { group.cancelAll() }
            guard let seen = try await group.next() ?? nil else {
                throw APITestFailure("no matching server-sent event within \(seconds) s")
            }
            return seen
        }
    }
}

/// Pipelines the API tests use.
enum APIFixtures {
    /// An unscheduled two-task pipeline with typed params and an output.
    static let etl = """
        name: etl
        owner: data_eng
        description: Nightly WAREHOUSE load
        params:
          region: eu
          batch_size: {default: 100, type: integer, description: Rows per batch}
          mode: {default: fast, type: string, enum: [fast, full]}
        tasks:
          extract:
            env: {REGION: "{{ params.region }}", ROWS: "{{ params.batch_size }}"}
            run: |
              for i in $(seq 1 200); do echo "extract line $i for $REGION"; done
              printf '{"rows": %s}' "$ROWS" > "$BATON_OUTPUT"
          load:
            needs: [extract]
            run: echo loading {{ tasks.extract.output.rows }} rows
        """

    /// A daily pipeline owned by another team, for owner filters and pause/unpause.
    static let train = """
        name: train
        owner: ml_team
        description: Train the churn model
        schedule: "@daily"
        timezone: Europe/Berlin
        max_active_runs: 3
        tasks:
          fit:
            run: echo fitted
            retries: 2
            timeout: 30s
          evaluate:
            needs: [fit]
            run: [echo, evaluated]
            trigger_rule: all_done
            when: params.gate == 1
        params:
          gate: 1
        """

    /// Fails on its first attempt and succeeds afterwards (a marker file remembers).
    static let flaky = """
        name: flaky
        owner: data_eng
        tasks:
          fragile:
            run: |
              if [ -f "@ROOT@/fragile.marker" ]; then echo "second time lucky"; else touch "@ROOT@/fragile.marker"; echo "first attempt fails" >&2; exit 3; fi
          after:
            needs: [fragile]
            run: echo after
        """

    /// One long task per run and one run at a time: later runs stay queued.
    static let slow = """
        name: slow
        owner: platform
        max_active_runs: 1
        tasks:
          wait:
            run: sleep 60
        """

    /// Writes its first line, then waits for a `go` file in the pipelines folder (at most 30 s)
    /// before the rest, so a follower connected in between sees the log grow however slow the
    /// machine is.
    static let chatty = """
        name: chatty
        owner: platform
        tasks:
          talk:
            run: |
              echo "chat line 1"
              for i in $(seq 300); do [ -f go ] && break; sleep 0.1; done
              for i in 2 3 4 5 6; do echo "chat line $i"; sleep 0.05; done
        """

    static let all: [String: String] = ["etl": etl, "train": train, "flaky": flaky, "slow": slow, "chatty": chatty]
}

extension URLSession {
    /// Cancels every task, then invalidates: what `invalidateAndCancel` does, without its walk of
    /// the task list off the session's queue, which in swift-corelibs-foundation crashed a whole
    /// test run when a task finished meanwhile. `getAllTasks` reads the list on that queue.
    func cancelAllAndInvalidate() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            getAllTasks { tasks in
                for task in tasks { task.cancel() }
                done.resume()
            }
        }
        finishTasksAndInvalidate()
    }
}
