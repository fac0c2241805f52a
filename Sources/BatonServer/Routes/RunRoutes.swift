import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ServiceLifecycle

/// `/api/v1/runs`: list with filters and cursor pagination, trigger, detail, cancel, retry;
/// task instances, attempts and logs (range, tail and live follow).
enum RunRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        let group = router.group("/api/v1/runs")

        group.get { request, _ -> Response in
            var states: [RunState]?
            if let text = request.query("state") {
                states = try text.split(separator: ",").map { part in
                    guard let state = RunState(rawValue: String(part)) else {
                        throw APIError.badRequest(
                            "'\(part)' is not a run state; use \(RunState.allCases.map(\.rawValue).joined(separator: ", "))",
                            field: "state")
                    }
                    return state
                }
            }
            let limit = try request.queryInt("limit", default: 50, range: 1...500)
            let before = try request.queryCursor()
            let from = try request.queryDate("from")
            let to = try request.queryDate("to")
            let owner = request.query("owner")
            // Owner and time filters apply after the store query, so read ahead in pages.
            // A page holds at least limit + 1 runs: with a fixed 200, a limit above 199 without
            // those filters got at most 200 runs and no next_cursor, hiding the older runs.
            // Without them, exactly limit + 1 rows tell whether another page exists.
            let postFiltered = owner != nil || from != nil || to != nil
            let pageSize = postFiltered ? max(200, limit + 1) : limit + 1
            var items: [APIRun] = []
            var cursor = before
            var exhausted = false
            while items.count < limit + 1 && !exhausted {
                let page = try await context.store.runs(
                    RunQuery(pipeline: request.query("pipeline"), states: states, limit: pageSize, beforeID: cursor))
                exhausted = page.count < pageSize
                for run in page {
                    cursor = run.id
                    if let owner, run.owner != owner { continue }
                    if let from, run.logicalDate < from { continue }
                    if let to, run.logicalDate >= to { continue }
                    items.append(APIRun(run))
                    if items.count == limit + 1 { break }
                }
                if owner == nil && from == nil && to == nil { break }
            }
            var next: String?
            if items.count > limit {
                items.removeLast()
                next = items.last.map { String($0.id) }
            }
            return APIResponse.json(APIList(items: items, next_cursor: next))
        }

        group.post { request, requestContext -> Response in
            var request = request
            let body = try await request.decodeJSON(
                APITriggerRequest.self, limit: context.configuration.maxBodyBytes, fields: ["pipeline", "params"])
            do {
                let run = try await context.engine.trigger(pipeline: body.pipeline, params: body.params ?? [:])
                let tasks = try await context.store.taskInstances(runID: run.id)
                return APIResponse.json(APIRun(run, tasks: tasks), status: .created)
            } catch let error as RunRequestError {
                switch error.kind {
                case .unknownPipeline:
                    throw APIError.notFound(error.message, field: "pipeline")
                case .invalidParam(let name):
                    throw APIError(.unprocessableContent, code: "invalid_params", error.message, field: "params.\(name)")
                case .other:
                    throw APIError(.unprocessableContent, code: "invalid_params", error.message, field: "params")
                }
            }
        }

        group.get(":run") { _, requestContext -> Response in
            let run = try await run(requestContext, context)
            return APIResponse.json(APIRun(run, tasks: try await context.store.taskInstances(runID: run.id)))
        }

        group.post(":run/cancel") { _, requestContext -> Response in
            let run = try await run(requestContext, context)
            guard !run.state.isTerminal else {
                throw APIError.conflict("run \(run.id) already ended: \(run.state.rawValue)")
            }
            _ = try await context.store.requestCancel(runID: run.id)
            await context.engine.cancel(runID: run.id)
            let updated = try await context.store.run(id: run.id) ?? run
            return APIResponse.json(APIRun(updated, tasks: try await context.store.taskInstances(runID: run.id)))
        }

        group.post(":run/retry") { request, requestContext -> Response in
            let run = try await run(requestContext, context)
            var names: [String]?
            if let text = request.query("tasks") { names = text.split(separator: ",").map(String.init) }
            guard run.state.isTerminal else {
                throw APIError.conflict("run \(run.id) is still \(run.state.rawValue); retry failed tasks after it ends")
            }
            do {
                guard try await context.engine.clear(runID: run.id, tasks: names) else {
                    throw APIError.conflict("run \(run.id) has no failed, upstream-failed or cancelled tasks to retry")
                }
            } catch let error as RunRequestError {
                throw APIError.badRequest(error.message, field: "tasks")
            }
            let updated = try await context.store.run(id: run.id) ?? run
            return APIResponse.json(APIRun(updated, tasks: try await context.store.taskInstances(runID: run.id)))
        }

        group.get(":run/tasks/:task") { _, requestContext -> Response in
            let (run, task) = try await task(requestContext, context)
            let instance = try await context.store.taskInstances(runID: run.id).first { $0.task == task }
            guard let instance else { throw APIError.notFound("run \(run.id) has no task '\(task)'", field: "task") }
            let attempts = try await context.store.attempts(runID: run.id, task: task)
            return APIResponse.json(APITaskDetail(task: APITask(instance), attempts: attempts.map(APIAttempt.init)))
        }

        group.get(":run/tasks/:task/attempts") { _, requestContext -> Response in
            let (run, task) = try await task(requestContext, context)
            let attempts = try await context.store.attempts(runID: run.id, task: task)
            return APIResponse.json(APIList(items: attempts.map(APIAttempt.init)))
        }

        group.get(":run/tasks/:task/logs") { request, requestContext -> Response in
            let (run, task) = try await task(requestContext, context)
            let attempt = try await chooseAttempt(request, run: run, task: task, context: context)
            let offset = try request.queryInt("offset", default: 0, range: 0...Int.max)
            let limit = try request.queryInt("limit", default: 1 << 20, range: 1...(4 << 20))
            // A bad tail or format is an error like any bad parameter; they used to be ignored,
            // answering with the whole log (up to `limit`) instead of the lines asked for.
            let tail = request.query("tail") == nil ? nil : try request.queryInt("tail", default: 100, range: 1...100_000)
            let format = request.query("format") ?? "json"
            guard format == "json" || format == "text" else {
                throw APIError.badRequest("'\(format)' is not a log format; use json or text", field: "format")
            }
            let chunk = await LogReader.read(attempt, store: context.store, offset: offset, limit: limit, tailLines: tail)
            if format == "text" || (request.headers[.accept] ?? "").hasPrefix("text/plain") {
                return APIResponse.text(chunk.content)
            }
            return APIResponse.json(
                APILogChunk(
                    attempt: attempt.attempt, offset: chunk.offset, next_offset: chunk.nextOffset, size: chunk.size,
                    complete: !attempt.state.isOpen, content: chunk.content))
        }

        group.get(":run/tasks/:task/logs/stream") { request, requestContext -> Response in
            let (run, task) = try await task(requestContext, context)
            let attempt = try await chooseAttempt(request, run: run, task: task, context: context)
            let start = try request.queryInt("offset", default: 0, range: 0...Int.max)
            let store = context.store
            return ServerSentEvents.response { writer in
                var offset = start
                var idleRounds = 0
                while !Task.isCancelled && !Task.isShuttingDownGracefully {
                    let chunk = await LogReader.read(attempt, store: store, offset: offset, limit: 256 * 1024, tailLines: nil)
                    if !chunk.content.isEmpty {
                        try await writer.send(event: "log", data: chunk.content, id: String(chunk.nextOffset))
                        offset = chunk.nextOffset
                        idleRounds = 0
                        continue
                    }
                    let current = try await store.attempts(runID: run.id, task: task).first { $0.attempt == attempt.attempt }
                    if !(current?.state.isOpen ?? false) {
                        try await writer.send(event: "end", data: current?.state.rawValue ?? "unknown", id: nil)
                        return
                    }
                    idleRounds += 1
                    if idleRounds % 50 == 0 { try await writer.comment("keep-alive") }
                    // Log files have no change notification on every filesystem; a short wait
                    // between reads keeps the tail live without busy-looping.
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
        }

        router.get("/api/v1/events/stream") { _, _ -> Response in
            let events = context.engine.events()
            return ServerSentEvents.response { writer in
                try await writer.comment("connected")
                for await event in events.cancelOnGracefulShutdown() {
                    let data = (try? APICoding.sharedEncoder.encode(APIEngineEvent(event))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                    try await writer.send(event: event.kind.rawValue, data: data, id: nil)
                }
            }
        }
    }

    static func run(_ requestContext: BatonRequestContext, _ context: ServerContext) async throws -> RunRecord {
        let id = try requestContext.parameters.runID()
        guard let run = try await context.store.run(id: id) else { throw APIError.notFound("no run \(id)", field: "run") }
        return run
    }

    static func task(_ requestContext: BatonRequestContext, _ context: ServerContext) async throws -> (RunRecord, String) {
        let run = try await run(requestContext, context)
        let name = requestContext.parameters.get("task") ?? ""
        guard run.spec.task(named: name) != nil else {
            var message = "run \(run.id) of \(run.pipeline) has no task '\(name)'"
            if let suggestion = Suggest.closest(to: name, in: run.spec.tasks.map(\.name)) {
                message += "; did you mean '\(suggestion)'?"
            }
            throw APIError.notFound(message, field: "task")
        }
        return (run, name)
    }

    static func chooseAttempt(_ request: Request, run: RunRecord, task: String, context: ServerContext) async throws
        -> AttemptRecord
    {
        let attempts = try await context.store.attempts(runID: run.id, task: task)
        if let text = request.query("attempt") {
            // A malformed number is a bad request (400), like a malformed run id; 404 is for
            // attempts that do not exist.
            guard let number = Int(text), number >= 1 else {
                throw APIError.badRequest("'\(text)' is not an attempt number (1, 2, ...)", field: "attempt")
            }
            guard let match = attempts.first(where: { $0.attempt == number }) else {
                throw APIError.notFound(
                    "task \(task) of run \(run.id) has no attempt '\(text)'"
                        + (attempts.isEmpty ? "" : "; it has \(attempts.map { String($0.attempt) }.joined(separator: ", "))"),
                    field: "attempt")
            }
            return match
        }
        guard let latest = attempts.last else {
            throw APIError.notFound("task \(task) of run \(run.id) has not started an attempt yet", field: "attempt")
        }
        return latest
    }
}

/// A task instance with its attempts.
public struct APITaskDetail: Codable, Sendable, Hashable {
    public var task: APITask
    public var attempts: [APIAttempt]
}

/// A slice of an attempt's log.
public struct APILogChunk: Codable, Sendable, Hashable {
    public var attempt: Int
    public var offset: Int
    public var next_offset: Int
    public var size: Int
    /// False while the attempt is still running and the log may grow.
    public var complete: Bool
    public var content: String
}

/// An engine event as sent over `/api/v1/events/stream`.
public struct APIEngineEvent: Codable, Sendable, Hashable {
    public var kind: String
    public var run_id: Int64
    public var pipeline: String
    public var task: String?
    public var state: String
    public var reason: String?
    public var at: Date

    init(_ event: EngineEvent) {
        kind = event.kind.rawValue
        run_id = event.runID
        pipeline = event.pipeline
        task = event.task
        state = event.state
        reason = event.reason
        at = event.at
    }
}

/// Reads ranges and tails of log files.
enum LogReader {
    struct Chunk {
        var content: String
        var offset: Int
        var nextOffset: Int
        var size: Int
    }

    static func read(path: String, offset: Int, limit: Int, tailLines: Int?) -> Chunk {
        guard let handle = FileHandle(forReadingAtPath: path) else { return Chunk(content: "", offset: 0, nextOffset: 0, size: 0) }
        defer { try? handle.close() }
        let size = Int((try? handle.seekToEnd()) ?? 0)
        return read(size: size, offset: offset, limit: limit, tailLines: tailLines) { start, length in
            try? handle.seek(toOffset: UInt64(start))
            return handle.readData(ofLength: length)
        }
    }

    /// An attempt's log: the file where this server ran it, else the copy a remote worker
    /// streamed into the store.
    static func read(_ attempt: AttemptRecord, store: any Store, offset: Int, limit: Int, tailLines: Int?) async -> Chunk {
        if FileManager.default.fileExists(atPath: attempt.logPath) {
            return read(path: attempt.logPath, offset: offset, limit: limit, tailLines: tailLines)
        }
        guard let data = try? await store.attemptLog(attempt.key, from: 0, limit: attempt.payload?.maxLogBytes ?? (64 << 20))
        else { return Chunk(content: "", offset: 0, nextOffset: 0, size: 0) }
        return read(size: data.count, offset: offset, limit: limit, tailLines: tailLines) { start, length in
            Data(data[data.startIndex + start..<data.startIndex + start + length])
        }
    }

    static func read(size: Int, offset: Int, limit: Int, tailLines: Int?, bytes: (Int, Int) -> Data) -> Chunk {
        if let tailLines {
            let window = min(size, max(limit, 64 * 1024))
            let text = String(decoding: bytes(size - window, window), as: UTF8.self)
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            if lines.last == "" { lines.removeLast() }
            let kept = lines.suffix(tailLines).joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
            return Chunk(content: kept, offset: size - kept.utf8.count, nextOffset: size, size: size)
        }
        let start = min(offset, size)
        var data = bytes(start, min(limit, size - start))
        // Never cut a UTF-8 sequence in half: stop before an incomplete trailing character.
        while let last = data.last, last & 0xC0 == 0x80 || last >= 0xC0, data.count > 0 {
            let leadIndex = data.lastIndex { $0 & 0xC0 != 0x80 } ?? data.startIndex
            let lead = data[leadIndex]
            let needed = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1
            if data.distance(from: leadIndex, to: data.endIndex) >= needed { break }
            data = data[data.startIndex..<leadIndex]
        }
        return Chunk(content: String(decoding: data, as: UTF8.self), offset: start, nextOffset: start + data.count, size: size)
    }
}

/// Server-sent events responses.
enum ServerSentEvents {
    struct Writer {
        var inner: any ResponseBodyWriter

        mutating func send(event: String, data: String, id: String?) async throws {
            var text = ""
            if let id { text += "id: \(id)\n" }
            text += "event: \(event)\n"
            for line in data.split(separator: "\n", omittingEmptySubsequences: false) { text += "data: \(line)\n" }
            text += "\n"
            try await inner.write(ByteBuffer(string: text))
        }

        mutating func comment(_ text: String) async throws {
            try await inner.write(ByteBuffer(string: ": \(text)\n\n"))
        }
    }

    static func response(_ body: @escaping @Sendable (inout Writer) async throws -> Void) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody { writer in
                var sse = Writer(inner: writer)
                do {
                    try await body(&sse)
                } catch is CancellationError {
                }
                try await sse.inner.finish(nil)
            })
    }
}
