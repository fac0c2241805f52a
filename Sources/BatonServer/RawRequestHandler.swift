import BatonEngine
import BatonGateway
import NIOCore
import NIOHTTP1
import Synchronization

/// Answers plain one-entity online lookups and predictions straight from the connection's
/// bytes, ahead of the HTTP/1 decoder. Parsing a request into HTTP/1 and HTTP-types values and
/// encoding the answer back took about half of the server's CPU per lookup (the rest is the
/// kernel's) and a third of it per proxied prediction, and on a small machine that decided
/// whether the latency targets held under load.
///
/// It only ever reads a connection from its start: while every request on it is a complete,
/// strictly formed `GET /api/v1/features/online/{service}?key=value` that the online store can
/// answer, or `POST /serve/{deployment}/predict` with a `Content-Length` body, it answers them,
/// in order. The first request that is anything else (another route, a lookup that fails, a
/// header it does not accept, HTTP/1.0, `Connection: close`, a chunked or large body) goes to
/// the decoder with everything after it, and the connection stays with the decoder, the router
/// and `HotPathHandler` from then on. So there is no point where this handler and the decoder
/// could disagree about where a request ends, and errors keep the router's shape. A prediction
/// is answered by the gateway asynchronously: until then what arrives waits, so answers keep
/// request order, and reads pause only once a whole request's worth is waiting. (Pausing on
/// every prediction cost two `epoll_ctl` calls per request, a third of the server's system
/// calls per proxied prediction, for clients that never send ahead of an answer.)
final class RawRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// A request head longer than this goes to the decoder (whose own limits then apply).
    static let maxHeadBytes = 8 * 1024
    /// Prediction bodies up to this size are read here; larger ones go to the decoder, which
    /// streams them into `HotPathHandler` with the gateway's own limit.
    static let maxRawBodyBytes = 64 * 1024

    /// Requests answered here since the process started (the tests check the path is in use).
    static let answers = Atomic<Int>(0)

    private let shared: HotPathContext
    private let bodyLimit: Int
    /// False once the decoder has been given bytes: it owns the connection from then on.
    private var answering = true
    /// What has arrived and not been answered yet: the start of a request that is not whole,
    /// or requests that came in while a prediction was out.
    private var pending: ByteBuffer?
    private var predicting = false
    private var readHeld = false
    private var heldEvents: [Any] = []
    private var removed = false

    init(_ shared: HotPathContext) {
        self.shared = shared
        bodyLimit = min(shared.gateway.maxBodyBytes, Self.maxRawBodyBytes)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        removed = true
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard answering else {
            context.fireChannelRead(data)
            return
        }
        var input = unwrapInboundIn(data)
        if var held = pending {
            pending = nil
            held.writeBuffer(&input)
            input = held
        }
        pending = input
        if !predicting { answerPending(context: context) }
    }

    /// Answers the whole requests in `pending`, in order, until one is incomplete, is not
    /// for this handler (which hands the rest over), or is a prediction (answered later).
    private func answerPending(context: ChannelHandlerContext) {
        guard var input = pending else { return }
        pending = nil
        var answered = false
        defer { if answered { context.flush() } }
        while input.readableBytes > 0 {
            switch Self.parse(input, maxBodyBytes: bodyLimit) {
            case .incomplete:
                guard input.readableBytes < Self.maxHeadBytes + bodyLimit else { return handOver(input, context: context) }
                pending = input
                return
            case .other:
                return handOver(input, context: context)
            case .lookup(let target, let headLength):
                // A client that sends without reading its answers is left to the router, whose
                // writer waits for the socket, so answers never pile up here unbounded.
                guard context.channel.isWritable else { return handOver(input, context: context) }
                let started = ContinuousClock.now
                guard let answer = HotPathHandler.lookupAnswer(target: target, features: shared.features) else {
                    return handOver(input, context: context)
                }
                input.moveReaderIndex(forwardBy: headLength)
                context.write(wrapOutboundOut(Self.response(answer, allocator: context.channel.allocator)), promise: nil)
                RequestMetricsMiddleware.record(method: "GET", status: 200, since: started)
                Self.answers.wrappingAdd(1, ordering: .relaxed)
                answered = true
            case .predict(let prediction):
                guard context.channel.isWritable, shared.leadership?.isLeader ?? true else { return handOver(input, context: context) }
                input.moveReaderIndex(forwardBy: prediction.headLength)
                let body = input.readSlice(length: prediction.bodyLength) ?? ByteBuffer()
                pending = input.readableBytes > 0 ? input : nil
                forward(prediction, body: body, context: context)
                return
            }
        }
    }

    private func forward(_ prediction: RawPrediction, body: ByteBuffer, context: ChannelHandlerContext) {
        predicting = true
        let started = ContinuousClock.now
        shared.gateway.forward(
            deployment: prediction.deployment, body: body, contentType: prediction.contentType, headers: prediction.headers,
            on: context.eventLoop
        ) { answer in
            self.answered(answer, since: started, context: context)
        }
    }

    private func answered(_ answer: GatewayResponse, since started: ContinuousClock.Instant, context: ChannelHandlerContext) {
        predicting = false
        // The connection closed while the prediction was out: no one to answer.
        guard !removed else { return }
        context.writeAndFlush(wrapOutboundOut(Self.response(answer, allocator: context.channel.allocator)), promise: nil)
        RequestMetricsMiddleware.record(method: "POST", status: answer.status, since: started)
        Self.answers.wrappingAdd(1, ordering: .relaxed)
        // Reads and events were held while the prediction was out, so the handler still has
        // the connection (nothing could hand it over meanwhile).
        answerPending(context: context)
        // Bytes handed over here are outside a read; the HTTP handlers act on them at the end
        // of one.
        if !answering { context.fireChannelReadComplete() }
        if readHeld, !mustHoldReads {
            readHeld = false
            context.read()
        }
        guard !predicting else { return }
        let events = heldEvents
        heldEvents = []
        for event in events { userInboundEventTriggered(context: context, event: event) }
    }

    func read(context: ChannelHandlerContext) {
        if mustHoldReads {
            readHeld = true
            return
        }
        context.read()
    }

    /// While a prediction is out, bytes read wait in `pending`; past one request's worth of
    /// them, reading stops until the answer has gone, so a client sending ahead is bounded.
    private var mustHoldReads: Bool {
        predicting && (pending?.readableBytes ?? 0) >= Self.maxHeadBytes + bodyLimit
    }

    /// The end of input (a client that half-closes after its last request) and the server's
    /// call to wind down wait until a prediction in flight is answered: the router's side would
    /// close the connection on either, seeing no request of its own in progress. The end of
    /// input with half a request held gives the decoder that half, so the client hears what
    /// the router says about an incomplete request.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let inputClosed = (event as? ChannelEvent) == .inputClosed
        if predicting, inputClosed || event is ChannelShouldQuiesceEvent {
            heldEvents.append(event)
            return
        }
        if answering, let held = pending, inputClosed {
            pending = nil
            answering = false
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handOver(_ rest: ByteBuffer, context: ChannelHandlerContext) {
        answering = false
        context.fireChannelRead(wrapInboundOut(rest))
    }

    /// A whole prediction request, as the gateway needs it.
    struct RawPrediction: Equatable {
        var deployment: String
        var contentType: String?
        /// `Accept` and `X-` headers, names lowercased, as `ServeRoutes.forwardedHeaders` gives them.
        var headers: [(String, String)]
        var headLength: Int
        var bodyLength: Int

        static func == (left: RawPrediction, right: RawPrediction) -> Bool {
            left.deployment == right.deployment && left.contentType == right.contentType && left.headLength == right.headLength
                && left.bodyLength == right.bodyLength && left.headers.elementsEqual(right.headers) { $0 == $1 }
        }
    }

    enum Parsed: Equatable {
        /// A whole lookup request: its target (path and query) and the length of its head.
        case lookup(target: String, headLength: Int)
        /// A whole prediction request, head and body.
        case predict(RawPrediction)
        /// Could still become a request read here once more bytes arrive.
        case incomplete
        case other
    }

    private enum Kind { case lookup, predict }

    static func parse(_ buffer: ByteBuffer, maxBodyBytes: Int) -> Parsed {
        buffer.withUnsafeReadableBytes { bytes in parse(bytes, maxBodyBytes: maxBodyBytes) }
    }

    /// Reads the request at the start of `bytes`, accepting only what every HTTP/1.1 parser
    /// reads the same way: `GET` under the lookup prefix or `POST /serve/`, an origin-form
    /// target with no escapes, `HTTP/1.1`, token header names, printable ASCII values, none of
    /// the headers that would change the connection or ask for a 100, and a body only as one
    /// `Content-Length` on a prediction.
    static func parse(_ bytes: UnsafeRawBufferPointer, maxBodyBytes: Int) -> Parsed {
        let count = bytes.count
        guard count > 0 else { return .incomplete }
        let kind: Kind
        let start: [UInt8]
        switch bytes[0] {
        case UInt8(ascii: "G"): (kind, start) = (.lookup, lookupStart)
        case UInt8(ascii: "P"): (kind, start) = (.predict, predictStart)
        default: return .other
        }
        var index = 0
        // The method and the path's fixed start, compared as far as bytes have arrived.
        for expected in start {
            guard index < count else { return .incomplete }
            guard bytes[index] == expected else { return .other }
            index += 1
        }
        let targetStart = index - (kind == .lookup ? HotPathHandler.lookupPrefix.utf8.count : servePrefix.utf8.count)
        while true {
            guard index < count else { return count < maxHeadBytes ? .incomplete : .other }
            let byte = bytes[index]
            if byte == UInt8(ascii: " ") { break }
            // Visible ASCII only, no escapes (the router decodes those) and no fragment.
            guard byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "%"), byte != UInt8(ascii: "+"), byte != UInt8(ascii: "#") else {
                return .other
            }
            index += 1
        }
        let targetEnd = index
        index += 1
        for expected in versionLine {
            guard index < count else { return .incomplete }
            guard bytes[index] == expected else { return .other }
            index += 1
        }
        var headers = 0
        var contentLength: Int?
        var contentType: String?
        var forwarded: [(String, String)] = []
        while true {
            guard index + 1 < count else { return .incomplete }
            if bytes[index] == UInt8(ascii: "\r") {
                guard bytes[index + 1] == UInt8(ascii: "\n") else { return .other }
                index += 2
                break
            }
            headers += 1
            guard headers <= 64 else { return .other }
            let nameStart = index
            while true {
                guard index < count else { return .incomplete }
                let byte = bytes[index]
                if byte == UInt8(ascii: ":") { break }
                guard isTokenByte(byte) else { return .other }
                index += 1
            }
            let nameEnd = index
            guard nameEnd > nameStart else { return .other }
            index += 1
            let valueStart = index
            while true {
                guard index < count else { return .incomplete }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\r") { break }
                guard byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte < 0x7F) else { return .other }
                index += 1
            }
            guard index + 1 < count else { return .incomplete }
            guard bytes[index + 1] == UInt8(ascii: "\n") else { return .other }
            let name = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd])
            let value = UnsafeRawBufferPointer(rebasing: ASCII.trimmed(bytes[valueStart..<index]))
            index += 2
            guard acceptable(name: name, value: value, kind: kind) else { return .other }
            guard kind == .predict else { continue }
            if ASCII.equalsIgnoringCase(name, "content-length") {
                guard contentLength == nil, let length = decimal(value) else { return .other }
                contentLength = length
            } else if ASCII.equalsIgnoringCase(name, "content-type") {
                guard contentType == nil else { return .other }
                contentType = String(decoding: value, as: UTF8.self)
            } else if ASCII.equalsIgnoringCase(name, "accept") || (name.count > 2 && name[0] | 0x20 == UInt8(ascii: "x") && name[1] == UInt8(ascii: "-")) {
                forwarded.append((lowercased(name), String(decoding: value, as: UTF8.self)))
            }
        }
        guard kind == .predict else {
            let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<targetEnd]), as: UTF8.self)
            return .lookup(target: target, headLength: index)
        }
        guard let deployment = predictDeployment(bytes, from: start.count, to: targetEnd), let length = contentLength, length <= maxBodyBytes else {
            return .other
        }
        guard count - index >= length else { return .incomplete }
        return .predict(
            RawPrediction(deployment: deployment, contentType: contentType, headers: forwarded, headLength: index, bodyLength: length))
    }

    /// `{deployment}` of a target `/serve/{deployment}/predict[?query]` whose bytes from `start`
    /// (after `/serve/`) to `end` are given.
    static func predictDeployment(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> String? {
        var slash = start
        while slash < end, bytes[slash] != UInt8(ascii: "/"), bytes[slash] != UInt8(ascii: "?") { slash += 1 }
        guard slash > start, slash < end, bytes[slash] == UInt8(ascii: "/") else { return nil }
        var index = slash + 1
        for expected in "predict".utf8 {
            guard index < end, bytes[index] == expected else { return nil }
            index += 1
        }
        guard index == end || bytes[index] == UInt8(ascii: "?") else { return nil }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<slash]), as: UTF8.self)
    }

    private static let lookupStart = Array("GET \(HotPathHandler.lookupPrefix)".utf8)
    private static let servePrefix = "/serve/"
    private static let predictStart = Array("POST \(servePrefix)".utf8)
    private static let versionLine = Array("HTTP/1.1\r\n".utf8)

    /// Headers that give a lookup a body, give a prediction another kind of body, ask for an
    /// upgrade, a close or a 100, or mark a cross-site change (refused by the router) go to the
    /// decoder; `Connection: keep-alive` (HTTP/1.1's default anyway) is fine.
    private static func acceptable(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, kind: Kind) -> Bool {
        if ASCII.equalsIgnoringCase(name, "connection") {
            return ASCII.equalsIgnoringCase(value, "keep-alive")
        }
        if kind == .lookup, ASCII.equalsIgnoringCase(name, "content-length") { return false }
        if kind == .predict, ASCII.equalsIgnoringCase(name, "sec-fetch-site") { return !ASCII.equalsIgnoringCase(value, "cross-site") }
        for refused in refusedHeaders where ASCII.equalsIgnoringCase(name, refused) { return false }
        return true
    }

    private static let refusedHeaders = ["transfer-encoding", "expect", "upgrade", "te", "trailer"]

    /// A `Content-Length` value: digits only, at most nine of them.
    private static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 9 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func lowercased(_ bytes: UnsafeRawBufferPointer) -> String {
        String(unsafeUninitializedCapacity: bytes.count) { buffer in
            for (offset, byte) in bytes.enumerated() {
                buffer[offset] = ASCII.lowercased(byte)
            }
            return bytes.count
        }
    }

    /// RFC 9110's `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    /// The gateway's answer as `HotPathHandler` sends it through the encoder.
    static func response(_ answer: GatewayResponse, allocator: ByteBufferAllocator) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 256 + answer.body.readableBytes)
        if answer.status == 200 {
            buffer.writeStaticString("HTTP/1.1 200 OK\r\n")
        } else {
            let status = HTTPResponseStatus(statusCode: answer.status)
            buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        }
        HotPathHandler.forEachCheckedField(answer.headers, bodyLength: answer.body.readableBytes) { name, value in
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
        buffer.writeImmutableBuffer(answer.body)
        return buffer
    }

    /// The same status line and headers `HotPathHandler` sends through the encoder.
    static func response(_ json: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        let date = HTTPDate.now()
        var buffer = allocator.buffer(capacity: 128 + date.utf8.count + json.utf8.count)
        buffer.writeString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ")
        buffer.writeString(String(json.utf8.count))
        buffer.writeString("\r\nServer: Baton\r\nDate: ")
        buffer.writeString(date)
        buffer.writeString("\r\n\r\n")
        buffer.writeString(json)
        return buffer
    }
}
