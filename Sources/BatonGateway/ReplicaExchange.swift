import NIOCore

/// A kept connection to a replica and its exchange handler. Requests reach the handler by a
/// direct call on the connection's loop, not through the channel pipeline, which would box each
/// request in `NIOAny`, cast it back and make a promise for the write.
final class ReplicaConnection: Sendable {
    let channel: any Channel
    let handler: NIOLoopBound<ReplicaExchangeHandler>

    init(channel: any Channel, handler: NIOLoopBound<ReplicaExchangeHandler>) {
        self.channel = channel
        self.handler = handler
    }
}

/// Sends one request at a time on a replica connection and frames its answer from the bytes
/// (`ReplicaAnswerParser`). NIO's HTTP client codec cost about a tenth of the gateway's CPU per
/// proxied request (an llhttp callback per field, `HTTPHeaders` both ways, three writes per
/// request), for a connection that only ever carries `POST /predict`.
///
/// The deadline closes the connection, since a late answer would otherwise be read as the next
/// one's. Its timer is not made per request: one stays armed for the earliest deadline it has
/// seen and, when it fires on time for a request that has since been answered, re-arms for the
/// current one, so steady traffic schedules about one timer per connection per timeout.
final class ReplicaExchangeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Completion = (Result<ReplicaAnswer, ReplicaCallError>) -> Void

    /// Bodies up to this size are copied behind the head and go out in one write.
    static let inlineBodyBytes = 16 * 1024

    private let requestPrefix: [UInt8]
    private var parser: ReplicaAnswerParser
    private var context: ChannelHandlerContext?
    private var pending: Completion?
    private var deadline = NIODeadline.distantFuture
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(hostHeader: String, maxResponseBytes: Int) {
        requestPrefix = Array("POST /predict HTTP/1.1\r\nHost: \(hostHeader)\r\nContent-Length: ".utf8)
        parser = ReplicaAnswerParser(maxBodyBytes: maxResponseBytes)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        timer?.cancel()
        timer = nil
    }

    /// Sends a request; `completion` runs on the connection's loop with its answer, possibly
    /// before this returns (a connection that is closed or busy).
    func start(_ request: ReplicaRequest, deadline: NIODeadline, completion: @escaping Completion) {
        guard let context, context.channel.isActive else {
            return completion(.failure(.closedBeforeAnswer(reason: "the connection is closed")))
        }
        // The pool never hands out a busy connection; refuse rather than mix two answers.
        guard pending == nil else { return completion(.failure(.closedBeforeAnswer(reason: "the connection was busy"))) }
        pending = completion
        self.deadline = deadline
        parser.startAnswer()
        armTimer(context: context)

        var body = request.body
        let inline = body.readableBytes <= Self.inlineBodyBytes
        var headBytes = requestPrefix.count + 24
        for (name, value) in request.fields { headBytes += name.utf8.count + value.utf8.count + 4 }
        var out = context.channel.allocator.buffer(capacity: headBytes + (inline ? body.readableBytes : 0))
        out.writeBytes(requestPrefix)
        out.writeString(String(body.readableBytes))
        out.writeStaticString("\r\n")
        for (name, value) in request.fields {
            out.writeString(name)
            out.writeStaticString(": ")
            out.writeString(value)
            out.writeStaticString("\r\n")
        }
        out.writeStaticString("\r\n")
        // A failed write closes the channel, and `channelInactive` fails the exchange.
        if inline {
            out.writeBuffer(&body)
            context.writeAndFlush(wrapOutboundOut(out), promise: nil)
        } else {
            context.write(wrapOutboundOut(out), promise: nil)
            context.writeAndFlush(wrapOutboundOut(body), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard pending != nil else {
            // Bytes nobody asked for: the connection can no longer be trusted to pair answers.
            context.close(promise: nil)
            return
        }
        do {
            guard let answer = try parser.parse(unwrapInboundIn(data)) else { return }
            // Last: the completion may hand this connection a new request at once.
            succeed(answer)
        } catch {
            fail(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if pending != nil, let answer = parser.inputEnded() {
            succeed(answer)
        } else {
            fail(parser.answerStarted ? .closedMidAnswer(reason: "closed by the replica") : .closedBeforeAnswer(reason: "closed by the replica"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(parser.answerStarted ? .closedMidAnswer(reason: "\(error)") : .closedBeforeAnswer(reason: "\(error)"))
        context.close(promise: nil)
    }

    private func succeed(_ answer: ReplicaAnswer) {
        guard let completion = pending else { return }
        pending = nil
        completion(.success(answer))
    }

    private func fail(_ error: ReplicaCallError) {
        guard let completion = pending else { return }
        pending = nil
        completion(.failure(error))
    }

    /// Makes sure a timer fires by `deadline`; an earlier one already armed re-arms when it fires.
    private func armTimer(context: ChannelHandlerContext) {
        if let armed = timerDeadline, armed <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timer = nil
            timerDeadline = nil
            guard pending != nil else { return }
            if NIODeadline.now() >= deadline {
                fail(.deadlineExceeded)
                context.close(promise: nil)
            } else {
                armTimer(context: context)
            }
        }
    }
}

/// Frames a replica's HTTP/1.x answers from a connection's bytes (RFC 9112 §6): the head, then
/// the body by `Content-Length`, by chunked coding, or up to the connection's end. Interim (1xx)
/// answers are skipped. Only the status, `Content-Type`, the body and whether the connection
/// can be used again are kept.
struct ReplicaAnswerParser {
    /// A longer head is refused: replicas answer with a handful of fields.
    static let maxHeadBytes = 64 * 1024
    let maxBodyBytes: Int

    private enum Stage {
        case head
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
    }

    private var stage = Stage.head
    private var input: ByteBuffer?
    private var status = 0
    private var contentType: String?
    private var keepAlive = true
    private var body: ByteBuffer?
    /// Bytes of the answer have arrived (a closed connection then is mid-answer, not before it).
    private(set) var answerStarted = false

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    /// Readies for the answer to a new request.
    mutating func startAnswer() {
        stage = .head
        input = nil
        status = 0
        contentType = nil
        keepAlive = true
        body = nil
        answerStarted = false
    }

    /// Takes bytes of the connection; the answer once it is whole.
    mutating func parse(_ bytes: ByteBuffer) throws(ReplicaCallError) -> ReplicaAnswer? {
        if bytes.readableBytes > 0 { answerStarted = true }
        if input == nil || input!.readableBytes == 0 {
            input = bytes
        } else {
            var bytes = bytes
            input!.writeBuffer(&bytes)
        }
        while true {
            switch stage {
            case .head:
                guard let length = Self.headLength(input!) else {
                    if input!.readableBytes > Self.maxHeadBytes {
                        throw .malformedAnswer(reason: "no end of the head in its first \(Self.maxHeadBytes) bytes")
                    }
                    return nil
                }
                let head = input!.readSlice(length: length)!
                if try readHead(head) { return complete() }
            case .fixed(let remaining):
                let available = input!.readableBytes
                if body == nil, available >= remaining {
                    body = input!.readSlice(length: remaining)
                    return complete()
                }
                let taken = min(available, remaining)
                try append(input!.readSlice(length: taken)!)
                guard taken == remaining else {
                    stage = .fixed(remaining: remaining - taken)
                    return nil
                }
                return complete()
            case .chunkSize:
                guard let line = try nextLine(limit: 4096, what: "chunk size line") else { return nil }
                let size = try Self.chunkSize(line)
                if size == 0 {
                    stage = .trailers
                } else {
                    guard (body?.readableBytes ?? 0) + size <= maxBodyBytes else { throw .answerTooLarge(limit: maxBodyBytes) }
                    stage = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let taken = min(input!.readableBytes, remaining)
                guard taken > 0 else { return nil }
                try append(input!.readSlice(length: taken)!)
                stage = taken == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - taken)
            case .chunkDataEnd:
                guard let line = try nextLine(limit: 2, what: "end of a chunk") else { return nil }
                guard line.readableBytes == 0 else { throw .malformedAnswer(reason: "a chunk is longer than its size line says") }
                stage = .chunkSize
            case .trailers:
                guard let line = try nextLine(limit: Self.maxHeadBytes, what: "trailer") else { return nil }
                if line.readableBytes == 0 { return complete() }
            case .untilClose:
                if input!.readableBytes > 0 { try append(input!.readSlice(length: input!.readableBytes)!) }
                return nil
            }
        }
    }

    /// The connection ended: the answer when its body runs to the end, else nil.
    mutating func inputEnded() -> ReplicaAnswer? {
        guard case .untilClose = stage else { return nil }
        return complete()
    }

    private mutating func complete() -> ReplicaAnswer {
        // Bytes after the answer belong to no request: the connection is not used again.
        let trailing = (input?.readableBytes ?? 0) > 0
        let answer = ReplicaAnswer(status: status, contentType: contentType, body: body ?? ByteBuffer(), keepAlive: keepAlive && !trailing)
        startAnswer()
        return answer
    }

    private mutating func append(_ part: ByteBuffer) throws(ReplicaCallError) {
        guard (body?.readableBytes ?? 0) + part.readableBytes <= maxBodyBytes else { throw .answerTooLarge(limit: maxBodyBytes) }
        if body == nil {
            body = part
        } else {
            var part = part
            body!.writeBuffer(&part)
        }
    }

    /// The next line of the input without its line end, or nil until one has arrived.
    private mutating func nextLine(limit: Int, what: String) throws(ReplicaCallError) -> ByteBuffer? {
        let newline = input!.withUnsafeReadableBytes { $0.firstIndex(of: UInt8(ascii: "\n")) }
        guard let newline else {
            if input!.readableBytes > limit { throw .malformedAnswer(reason: "the \(what) is over \(limit) bytes") }
            return nil
        }
        var line = input!.readSlice(length: newline + 1)!
        line.moveWriterIndex(to: line.writerIndex - 1)
        if line.readableBytes > 0, line.getInteger(at: line.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "\r") {
            line.moveWriterIndex(to: line.writerIndex - 1)
        }
        return line
    }

    /// The head's length up to and with the empty line ending it (CRLF or a bare LF, which
    /// RFC 9112 lets a recipient accept), or nil until it has arrived.
    static func headLength(_ buffer: ByteBuffer) -> Int? {
        buffer.withUnsafeReadableBytes { bytes in
            var index = 0
            while let newline = bytes[index...].firstIndex(of: UInt8(ascii: "\n")) {
                let next = newline + 1
                if next < bytes.count, bytes[next] == UInt8(ascii: "\n") { return next + 1 }
                if next + 1 < bytes.count, bytes[next] == UInt8(ascii: "\r"), bytes[next + 1] == UInt8(ascii: "\n") { return next + 2 }
                index = next
            }
            return nil
        }
    }

    /// Reads a head; true when the answer is whole with it (no body follows).
    private mutating func readHead(_ head: ByteBuffer) throws(ReplicaCallError) -> Bool {
        let fields = try head.withUnsafeReadableBytes { bytes throws(ReplicaCallError) in try Self.fields(of: bytes) }
        status = fields.status
        if (100..<200).contains(status) {
            // 101 would hand the connection to another protocol, which no prediction asks for.
            guard status != 101 else { throw .malformedAnswer(reason: "the replica switched protocols (101)") }
            stage = .head
            return false
        }
        contentType = fields.contentType
        keepAlive = fields.minorVersion >= 1 ? !fields.close : fields.keepAlive && !fields.close
        if status == 204 || status == 304 { return true }
        if let codings = fields.transferEncoding {
            // With a transfer coding the length is the coding's; a Content-Length beside it
            // is a smuggling attempt or a broken server, and the connection is not reused.
            if fields.contentLength != nil { keepAlive = false }
            if codings.last == "chunked" {
                stage = .chunkSize
            } else {
                keepAlive = false
                stage = .untilClose
            }
            return false
        }
        if let length = fields.contentLength {
            guard length <= maxBodyBytes else { throw .answerTooLarge(limit: maxBodyBytes) }
            stage = .fixed(remaining: length)
            return length == 0
        }
        keepAlive = false
        stage = .untilClose
        return false
    }

    struct HeadFields {
        var minorVersion = 1
        var status = 0
        var contentType: String?
        var contentLength: Int?
        /// Transfer codings in order, lowercased; nil without the field.
        var transferEncoding: [String]?
        var close = false
        var keepAlive = false
    }

    static func fields(of bytes: UnsafeRawBufferPointer) throws(ReplicaCallError) -> HeadFields {
        var result = HeadFields()
        // Each line without its line end, the status line first; the empty line ends the head.
        var start = 0
        guard let statusLine = nextLine(bytes, from: &start) else { throw .malformedAnswer(reason: "an empty head") }
        // "HTTP/1.x NNN[ reason]"
        let line = bytes[statusLine]
        let prefix = "HTTP/1.".utf8
        guard line.count >= 12, line.starts(with: prefix) else {
            throw .malformedAnswer(reason: "the status line \(quoted(line)) is not HTTP/1.x")
        }
        var at = line.startIndex + prefix.count
        guard let minor = digit(line[at]), line[at + 1] == UInt8(ascii: " ") else {
            throw .malformedAnswer(reason: "the status line \(quoted(line)) has no valid version")
        }
        result.minorVersion = minor
        at += 2
        guard let hundreds = digit(line[at]), let tens = digit(line[at + 1]), let units = digit(line[at + 2]),
            at + 3 == line.endIndex || line[at + 3] == UInt8(ascii: " ")
        else { throw .malformedAnswer(reason: "the status line \(quoted(line)) has no three-digit status") }
        result.status = hundreds * 100 + tens * 10 + units
        guard result.status >= 100 else { throw .malformedAnswer(reason: "the status line \(quoted(line)) has a status below 100") }

        while let range = nextLine(bytes, from: &start) {
            let field = bytes[range]
            guard let first = field.first else { continue }
            if first == UInt8(ascii: " ") || first == UInt8(ascii: "\t") {
                throw .malformedAnswer(reason: "the field line \(quoted(field)) is folded onto the line before it")
            }
            guard let colon = field.firstIndex(of: UInt8(ascii: ":")), colon > field.startIndex,
                !field[..<colon].contains(where: { $0 <= 0x20 || $0 >= 0x7F })
            else { throw .malformedAnswer(reason: "the field line \(quoted(field)) has no valid name") }
            let name = field[..<colon]
            let value = ASCII.trimmed(field[(colon + 1)...])
            if ASCII.equalsIgnoringCase(name, "content-length") {
                guard !value.isEmpty, value.count <= 18, value.allSatisfy({ digit($0) != nil }) else {
                    throw .malformedAnswer(reason: "Content-Length \(quoted(value)) is not a number of bytes")
                }
                let length = value.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
                if let earlier = result.contentLength, earlier != length {
                    throw .malformedAnswer(reason: "two different Content-Length fields (\(earlier) and \(length))")
                }
                result.contentLength = length
            } else if ASCII.equalsIgnoringCase(name, "transfer-encoding") {
                result.transferEncoding = (result.transferEncoding ?? []) + tokens(value)
            } else if ASCII.equalsIgnoringCase(name, "connection") {
                for token in tokens(value) {
                    if token == "close" { result.close = true }
                    if token == "keep-alive" { result.keepAlive = true }
                }
            } else if ASCII.equalsIgnoringCase(name, "content-type"), result.contentType == nil {
                result.contentType = String(decoding: value, as: UTF8.self)
            }
        }
        return result
    }

    /// The next line's bytes from `start` without its line end, moving `start` past it; nil at
    /// the empty line that ends the head.
    private static func nextLine(_ bytes: UnsafeRawBufferPointer, from start: inout Int) -> Range<Int>? {
        guard start < bytes.count, let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        var end = newline
        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        guard end > start else { return nil }
        defer { start = newline + 1 }
        return start..<end
    }

    private static func digit(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    /// A comma-separated list's elements, trimmed and lowercased.
    private static func tokens(_ value: Slice<UnsafeRawBufferPointer>) -> [String] {
        value.split(separator: UInt8(ascii: ",")).compactMap { token in
            let token = ASCII.trimmed(token)
            return token.isEmpty ? nil : String(decoding: token.map(ASCII.lowercased), as: UTF8.self)
        }
    }

    private static func quoted(_ bytes: Slice<UnsafeRawBufferPointer>) -> String {
        let text = String(decoding: bytes.prefix(80), as: UTF8.self)
        return "\"" + text + (bytes.count > 80 ? "…" : "") + "\""
    }

    private static func chunkSize(_ line: ByteBuffer) throws(ReplicaCallError) -> Int {
        let size = line.withUnsafeReadableBytes { bytes -> Int? in
            // "hex[;extensions]": extensions mean nothing here.
            var size = 0
            var digits = 0
            for byte in bytes {
                let value: Int
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a")) + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A")) + 10
                case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"): return digits > 0 ? size : nil
                default: return nil
                }
                digits += 1
                guard digits <= 15 else { return nil }
                size = size * 16 + value
            }
            return digits > 0 ? size : nil
        }
        guard let size else { throw .malformedAnswer(reason: "the chunk size line \"\(String(buffer: line).prefix(80))\" is not a hex size") }
        return size
    }
}
