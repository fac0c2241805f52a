import BatonEngine
import NIOCore
import Synchronization

/// Answers plain one-entity online lookups straight from the connection's bytes, ahead of the
/// HTTP/1 decoder. Parsing a request into HTTP/1 and HTTP-types values and encoding the answer
/// back took about half of the server's CPU per lookup (the rest is the kernel's), and on a
/// small machine that half decided whether 20,000 lookups a second kept their latency.
///
/// It only ever reads a connection from its start: while every request on it is a complete,
/// strictly formed `GET /api/v1/features/online/{service}?key=value` that the online store can
/// answer, it answers them, in order. The first request that is anything else (another route,
/// a lookup that fails, a header it does not accept, HTTP/1.0, `Connection: close`, a body)
/// goes to the decoder with everything after it, and the connection stays with the decoder,
/// the router and `HotPathHandler` from then on. So there is no point where this handler and
/// the decoder could disagree about where a request ends, and errors keep the router's shape.
final class RawLookupHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// A request head longer than this goes to the decoder (whose own limits then apply).
    static let maxHeadBytes = 8 * 1024

    /// Lookups answered here since the process started (the tests check the path is in use).
    static let answers = Atomic<Int>(0)

    private let features: FeatureHub
    /// False once the decoder has been given bytes: it owns the connection from then on.
    private var answering = true
    /// The start of a request that has not arrived whole yet.
    private var pending: ByteBuffer?

    init(features: FeatureHub) {
        self.features = features
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
        var answered = false
        while input.readableBytes > 0 {
            switch Self.parse(input) {
            case .incomplete:
                guard input.readableBytes < Self.maxHeadBytes else { return handOver(input, answered: answered, context: context) }
                pending = input
                if answered { context.flush() }
                return
            case .other:
                return handOver(input, answered: answered, context: context)
            case .lookup(let target, let headLength):
                // A client that sends without reading its answers is left to the router, whose
                // writer waits for the socket, so answers never pile up here unbounded.
                guard context.channel.isWritable else { return handOver(input, answered: answered, context: context) }
                let started = ContinuousClock.now
                guard let answer = HotPathHandler.lookupAnswer(target: target, features: features) else {
                    return handOver(input, answered: answered, context: context)
                }
                input.moveReaderIndex(forwardBy: headLength)
                context.write(wrapInboundOut(Self.response(answer, allocator: context.channel.allocator)), promise: nil)
                RequestMetricsMiddleware.record(method: "GET", status: 200, since: started)
                Self.answers.wrappingAdd(1, ordering: .relaxed)
                answered = true
            }
        }
        if answered { context.flush() }
    }

    /// The end of input with half a request held: the decoder gets it, so the client hears
    /// what the router says about an incomplete request.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if answering, let held = pending, (event as? ChannelEvent) == .inputClosed {
            pending = nil
            answering = false
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func handOver(_ rest: ByteBuffer, answered: Bool, context: ChannelHandlerContext) {
        answering = false
        if answered { context.flush() }
        context.fireChannelRead(wrapInboundOut(rest))
    }

    enum Parsed: Equatable {
        /// A whole lookup request: its target (path and query) and the length of its head.
        case lookup(target: String, headLength: Int)
        /// Could still become a lookup request once more bytes arrive.
        case incomplete
        case other
    }

    /// Reads the request at the start of `buffer`, accepting only what every HTTP/1.1 parser
    /// reads the same way: `GET`, an origin-form target under the lookup prefix with no escapes,
    /// `HTTP/1.1`, token header names, printable ASCII values, and none of the headers that
    /// would give the request a body or change the connection.
    static func parse(_ buffer: ByteBuffer) -> Parsed {
        buffer.withUnsafeReadableBytes { bytes in parse(bytes) }
    }

    static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        let count = bytes.count
        var index = 0
        // "GET " and the lookup prefix, compared as far as bytes have arrived.
        for expected in requestStart {
            guard index < count else { return .incomplete }
            guard bytes[index] == expected else { return .other }
            index += 1
        }
        let targetStart = index - HotPathHandler.lookupPrefix.utf8.count
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
            guard acceptable(name: UnsafeRawBufferPointer(rebasing: bytes[nameStart..<nameEnd]),
                             value: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<index]))
            else { return .other }
            index += 2
        }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<targetEnd]), as: UTF8.self)
        return .lookup(target: target, headLength: index)
    }

    private static let requestStart = Array("GET \(HotPathHandler.lookupPrefix)".utf8)
    private static let versionLine = Array("HTTP/1.1\r\n".utf8)

    /// Headers that give a GET a body, ask for an upgrade or a close, or expect a 100 go to
    /// the decoder; `Connection: keep-alive` (HTTP/1.1's default anyway) is fine.
    private static func acceptable(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) -> Bool {
        if equalsIgnoringCase(name, "connection") {
            return equalsIgnoringCase(trimmed(value), "keep-alive")
        }
        for refused in refusedHeaders where equalsIgnoringCase(name, refused) { return false }
        return true
    }

    private static let refusedHeaders = ["content-length", "transfer-encoding", "expect", "upgrade", "te", "trailer"]

    private static func trimmed(_ value: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var start = 0
        var end = value.count
        while start < end, value[start] == 0x20 || value[start] == 0x09 { start += 1 }
        while end > start, value[end - 1] == 0x20 || value[end - 1] == 0x09 { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: value[start..<end])
    }

    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercase: String) -> Bool {
        guard bytes.count == lowercase.utf8.count else { return false }
        for (byte, expected) in zip(bytes, lowercase.utf8) where byte | 0x20 != expected { return false }
        return true
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
