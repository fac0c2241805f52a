import BatonCore
import BatonEngine
import BatonGateway
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization

/// What the hot path needs from the server.
struct HotPathContext: Sendable {
    let features: FeatureHub
    let gateway: Gateway
    let leadership: Leadership?

    init(_ context: ServerContext) {
        features = context.engine.features
        gateway = context.gateway
        leadership = context.leadership
    }
}

/// Answers the two requests applications send at high rates, one-entity online feature lookups
/// (`GET /api/v1/features/online/{service}?key=value`) and predictions
/// (`POST /serve/{deployment}/predict`), in the connection's channel pipeline, before
/// Hummingbird's router. The router's per-request machinery (an async stream per connection and
/// per body, a middleware chain, a response writer) cost 40–60 µs of CPU per request, which on a
/// small machine put the latency targets out of reach.
///
/// Only the plain, successful case is answered here: a lookup that fails, a query with escapes,
/// a request that asks to close the connection, and anything else go to the router unchanged,
/// so errors keep one shape and one source. The handler is installed only where every caller
/// acts as admin (auth off), so it checks no token. Responses stay in request order: nothing is
/// answered here while the router still owes a response on the connection, and requests that
/// arrive while a prediction is in flight wait (reads pause) until it has been answered.
final class HotPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    static let lookupPrefix = "/api/v1/features/online/"

    private enum Current {
        case none
        /// The request goes to the router, head to end.
        case routed
        /// The answer is ready; it is written once the request's end arrives.
        case lookup(ByteBuffer, started: ContinuousClock.Instant)
        case predict(Prediction)
    }

    private struct Prediction {
        var deployment: String
        var contentType: String?
        var headers: [(String, String)]
        var body: ByteBuffer
        var tooLarge: Bool
        var started: ContinuousClock.Instant
    }

    private let shared: HotPathContext
    private var current = Current.none
    /// Requests passed to the router whose response has not been written in full yet.
    private var routerOwes = 0
    /// A prediction is being forwarded; what arrives meanwhile waits in `backlog`.
    private var predicting = false
    private var backlog = CircularBuffer<HTTPRequestPart>()
    private var readHeld = false
    private var heldEvents: [Any] = []
    /// The HTTP/1 codec's place in the pipeline: answers written from there go to the response
    /// encoder as HTTP/1 parts, skipping the conversion from HTTP types and back.
    private var codec: ChannelHandlerContext?

    init(_ shared: HotPathContext) {
        self.shared = shared
    }

    func handlerAdded(context: ChannelHandlerContext) {
        codec = try? context.pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)
        // Right before the HTTP/1 handlers (the response encoder comes first), after anything
        // that would frame or decrypt the byte stream, for connections that only look features up.
        if let encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self) {
            try? context.pipeline.syncOperations.addHandler(RawRequestHandler(shared), position: .before(encoder.handler))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        codec = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if predicting || !backlog.isEmpty {
            backlog.append(part)
            return
        }
        handle(part, context: context)
    }

    private func handle(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch (part, current) {
        case (.head(let head), _):
            // Unwritable: the client is not reading its answers; the router's writer waits for
            // it, where answers made here would pile up in the channel.
            if routerOwes == 0, context.channel.isWritable, let taken = take(head) {
                current = taken
                return
            }
            current = .routed
            routerOwes += 1
            context.fireChannelRead(wrapInboundOut(part))
        case (.body(let chunk), .predict(var prediction)):
            if !prediction.tooLarge, prediction.body.readableBytes + chunk.readableBytes <= shared.gateway.maxBodyBytes {
                var chunk = chunk
                prediction.body.writeBuffer(&chunk)
            } else {
                prediction.tooLarge = true
                prediction.body = ByteBuffer()
            }
            current = .predict(prediction)
        case (.body, .lookup):
            break  // a GET's body means nothing; the router would ignore it too
        case (.end, .lookup(let answer, let started)):
            current = .none
            write(status: .ok, headers: [("Content-Type", "application/json")], body: answer, context: context)
            RequestMetricsMiddleware.record(method: "GET", status: 200, since: started)
        case (.end, .predict(let prediction)):
            current = .none
            predict(prediction, context: context)
        case (.end, _):
            current = .none
            context.fireChannelRead(wrapInboundOut(part))
        case (.body, _):
            context.fireChannelRead(wrapInboundOut(part))
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), routerOwes > 0 { routerOwes -= 1 }
        context.write(data, promise: promise)
    }

    /// The end of input (a client that half-closes after its last request) and the server's
    /// call to wind down wait until a prediction in flight is answered: the router's side would
    /// close the connection on either, seeing no request of its own in progress.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let holdable = (event as? ChannelEvent) == .inputClosed || event is ChannelShouldQuiesceEvent
        if holdable, predicting || !backlog.isEmpty {
            heldEvents.append(event)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if predicting {
            readHeld = true
            return
        }
        context.read()
    }

    /// What this handler answers itself, decided from the head alone.
    private func take(_ head: HTTPRequest) -> Current? {
        guard codec != nil, let path = head.path, head.headerFields[.connection]?.lowercased() != "close" else { return nil }
        if head.method == .get, path.hasPrefix(Self.lookupPrefix) {
            return lookup(path).map { .lookup($0, started: .now) }
        }
        if head.method == .post, path.hasPrefix("/serve/"), let deployment = Self.deployment(inPredictPath: path),
            !AuthMiddleware.isCrossSiteChange(method: head.method, headers: head.headerFields),
            head.headerFields[.expect] == nil,
            shared.leadership?.isLeader ?? true
        {
            return .predict(
                Prediction(
                    deployment: deployment, contentType: head.headerFields[.contentType],
                    headers: ServeRoutes.forwardedHeaders(head.headerFields), body: ByteBuffer(),
                    tooLarge: false, started: .now))
        }
        return nil
    }

    /// The answer to a one-entity lookup, or nil for the router to answer (and explain).
    private func lookup(_ path: String) -> ByteBuffer? {
        Self.lookupAnswer(target: path, features: shared.features).map { ByteBuffer(string: $0) }
    }

    /// The JSON answer to `GET {lookupPrefix}{service}?key=value`, or nil when the router
    /// should answer: a failed lookup or a target with escapes.
    static func lookupAnswer(target: String, features: FeatureHub) -> String? {
        let rest = target.utf8.dropFirst(lookupPrefix.utf8.count)
        guard let mark = rest.firstIndex(of: UInt8(ascii: "?")) else { return nil }
        // Escaped names and values are left to the router's decoding.
        guard !rest.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else { return nil }
        let service = String(Substring(rest[..<mark]))
        guard !service.isEmpty, !service.utf8.contains(UInt8(ascii: "/")) else { return nil }
        var query: [Substring: Substring] = [:]
        for pair in Substring(rest[rest.index(after: mark)...]).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if query[parts[0]] == nil { query[parts[0]] = parts.count > 1 ? parts[1] : "" }
        }
        return try? features.onlineJSON(service: service, keyText: { query[$0[...]].map(String.init) })
    }

    /// `{deployment}` of `/serve/{deployment}/predict[?query]`, or nil for any other path or an
    /// escaped name (the router decodes those).
    static func deployment(inPredictPath path: String) -> String? {
        var path = path
        return path.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            let prefix = "/serve/".utf8
            guard raw.count > prefix.count, raw.starts(with: prefix) else { return nil }
            guard let deployment = RawRequestHandler.predictDeployment(raw, from: prefix.count, to: raw.count),
                !deployment.utf8.contains(UInt8(ascii: "%"))
            else { return nil }
            return deployment
        }
    }

    private func predict(_ prediction: Prediction, context: ChannelHandlerContext) {
        let gateway = shared.gateway
        if prediction.tooLarge {
            respond(GatewayResponse.bodyTooLarge(limit: gateway.maxBodyBytes, deployment: prediction.deployment), since: prediction.started, context: context)
            return
        }
        predicting = true
        gateway.forward(
            deployment: prediction.deployment, body: prediction.body, contentType: prediction.contentType, headers: prediction.headers,
            on: context.eventLoop
        ) { answer in
            self.predicting = false
            self.respond(answer, since: prediction.started, context: context)
            self.resume(context: context)
        }
    }

    private func respond(_ answer: GatewayResponse, since started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        write(status: HTTPResponse.Status(code: answer.status), headers: answer.headers, body: answer.body, context: context)
        RequestMetricsMiddleware.record(method: "POST", status: answer.status, since: started)
    }

    /// Hands on what arrived while a prediction was in flight, then lets reads go on.
    private func resume(context: ChannelHandlerContext) {
        var handedOn = false
        while !predicting, let part = backlog.popFirst() {
            handle(part, context: context)
            handedOn = true
        }
        if handedOn { context.fireChannelReadComplete() }
        if !predicting, backlog.isEmpty, !heldEvents.isEmpty {
            let events = heldEvents
            heldEvents = []
            for event in events { context.fireUserInboundEventTriggered(event) }
        }
        if !predicting, readHeld {
            readHeld = false
            context.read()
        }
    }

    private func write(status: HTTPResponse.Status, headers: [(String, String)], body: ByteBuffer, context: ChannelHandlerContext) {
        // No codec: the handler has left the pipeline (the connection closed while a prediction
        // was out), or it never found one and took nothing; there is no one to answer.
        guard let codec else { return }
        let fields = Self.checkedFields(headers, bodyLength: body.readableBytes)
        let head = HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase), headers: fields)
        codec.write(NIOAny(HTTPServerResponsePart.head(head)), promise: nil)
        codec.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(body))), promise: nil)
        codec.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)), promise: nil)
    }

    /// A hot answer's headers with its framing, `Server` and `Date`. Names and values pass the
    /// same checks as on the router's path (a replica's headers are not trusted): invalid names
    /// are dropped, invalid characters in values made spaces.
    static func checkedFields(_ headers: [(String, String)], bodyLength: Int) -> HTTPHeaders {
        var fields = HTTPHeaders()
        fields.reserveCapacity(headers.count + 3)
        forEachCheckedField(headers, bodyLength: bodyLength) { fields.add(name: $0, value: $1) }
        return fields
    }

    /// `checkedFields` one field at a time, for the raw path, which writes them straight into
    /// its answer's bytes.
    static func forEachCheckedField(_ headers: [(String, String)], bodyLength: Int, _ field: (String, String) -> Void) {
        for (name, value) in headers {
            // Framing and these two are set below, once.
            guard !isSetBelow(name), let checked = HTTPField.Name(name) else { continue }
            field(name, HTTPField.isValidValue(value) ? value : HTTPField(name: checked, value: value).value)
        }
        field("Content-Length", String(bodyLength))
        field("Server", "Baton")
        field("Date", HTTPDate.now())
    }

    /// `Content-Length`, `Transfer-Encoding`, `Connection`, `Server` or `Date`, in any case;
    /// compared as bytes, as hashing each name into a set of `HTTPField.Name` cost more.
    static func isSetBelow(_ name: String) -> Bool {
        setBelow.contains { ASCII.equalsIgnoringCase(name.utf8, $0) }
    }

    private static let setBelow = ["content-length", "transfer-encoding", "connection", "server", "date"]
}

/// The `Date` header's text, made once a second rather than once a response.
enum HTTPDate {
    private static let cached = Mutex<(second: Int, text: String)>((-1, ""))

    static func now() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        let second = time.tv_sec
        return cached.withLock { cached in
            if cached.second == second { return cached.text }
            cached = (second, format(second))
            return cached.text
        }
    }

    static func format(_ second: Int) -> String {
        var seconds = time_t(second)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
