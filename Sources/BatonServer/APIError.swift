import BatonAPI
import BatonCore
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// An error answered with Baton's one error shape:
/// `{"error": {"code": "...", "message": "...", "field": "..."}}`.
public struct APIError: HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var code: String
    public var message: String
    public var field: String?
    public var fix: String?

    public init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil, fix: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.fix = fix
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        APIResponse.json(APIErrorBody(code: code, message: message, field: field, fix: fix), status: status)
    }

    static func badRequest(_ message: String, field: String? = nil) -> APIError {
        APIError(.badRequest, code: "invalid_request", message, field: field)
    }

    static func notFound(_ message: String, field: String? = nil) -> APIError {
        APIError(.notFound, code: "not_found", message, field: field)
    }

    static func conflict(_ message: String, field: String? = nil) -> APIError {
        APIError(.conflict, code: "conflict", message, field: field)
    }
}

/// Turns every error, including Hummingbird's own (unknown route, body too large) and
/// unexpected ones, into the one error shape, so clients never see HTML or an empty 500.
struct ErrorShapeMiddleware: RouterMiddleware {
    typealias Context = BatonRequestContext

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let code: String
            switch error.status {
            case .notFound: code = "not_found"
            case .contentTooLarge: code = "body_too_large"
            case .methodNotAllowed: code = "method_not_allowed"
            case .unauthorized: code = "unauthorized"
            default: code = error.status.code < 500 ? "invalid_request" : "internal_error"
            }
            var message = error.body ?? error.status.reasonPhrase
            if error.status == .notFound && error.body == nil {
                message = "no route for \(request.method.rawValue) \(request.uri.path)"
            }
            throw APIError(error.status, code: code, message)
        } catch let error as DecodingError {
            throw APIError.badRequest(Self.describe(error), field: Self.field(of: error))
        } catch {
            context.logger.error("unexpected error on \(request.method.rawValue) \(request.uri.path): \(error)")
            throw APIError(.internalServerError, code: "internal_error", "unexpected error: \(error)")
        }
    }

    static func field(of error: DecodingError) -> String? {
        let path: [any CodingKey]
        switch error {
        case .keyNotFound(let key, let context): path = context.codingPath + [key]
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            path = context.codingPath
        @unknown default: return nil
        }
        let text = path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return text.isEmpty ? nil : text
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "missing field '\(key.stringValue)'"
        case .typeMismatch(let type, let context):
            return "wrong type at '\(field(of: error) ?? "body")': expected \(type)" + (context.debugDescription.isEmpty ? "" : " (\(context.debugDescription))")
        case .valueNotFound(_, _): return "a value is missing at '\(field(of: error) ?? "body")'"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty ? "the body is not valid JSON" : "invalid value at '\(field(of: error) ?? "body")': \(context.debugDescription)"
        @unknown default: return "invalid body"
        }
    }
}

/// Response helpers.
enum APIResponse {
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? APICoding.sharedEncoder.encode(value)) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok, contentType: String = "text/plain; charset=utf-8") -> Response {
        var headers = HTTPFields()
        headers[.contentType] = contentType
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

extension Request {
    /// Decodes a JSON body of at most `limit` bytes, with errors naming the field. `fields` are
    /// the top-level fields the body may have. A `batch` request (a training set's entity rows)
    /// is decoded on a batch thread whatever its size, so it never holds up the event loop's
    /// lookups (see `BatchWork`).
    mutating func decodeJSON<T: Decodable & Sendable>(_ type: T.Type, limit: Int, fields: [String], batch: Bool = false)
        async throws -> T
    {
        let buffer: ByteBuffer
        do {
            buffer = try await collectBody(upTo: limit)
        } catch {
            throw APIError(.contentTooLarge, code: "body_too_large", "the request body is over the \(limit)-byte limit")
        }
        guard buffer.readableBytes > 0 else { throw APIError.badRequest("the request body is empty; send a JSON object") }
        let data = Data(buffer.readableBytesView)
        if batch {
            return try await BatchWork.run { try Self.decode(type, from: data, fields: fields) }
        }
        // A large body (a batch of feature rows is up to 64 MiB) takes a second or more to
        // decode: off the event loop, like other long work (see `offloaded`).
        if data.count > 256 << 10 {
            return try await offloaded { try Self.decode(type, from: data, fields: fields) }
        }
        return try Self.decode(type, from: data, fields: fields)
    }

    private static func decode<T: Decodable>(_ type: T.Type, from data: Data, fields: [String]) throws -> T {
        // JSONDecoder skips keys it does not know, so a misspelled optional field (`parms` for
        // `params`) was dropped silently and the request went ahead with defaults. Checked
        // before decoding, so `{"pipline": ...}` gets a did-you-mean rather than "missing field".
        // Only the names matter here: values are skipped, not built (a large batch was decoded twice).
        if let object = try? APICoding.sharedDecoder.decode([String: SkippedValue].self, from: data),
            let unknown = object.keys.sorted().first(where: { !fields.contains($0) })
        {
            throw APIError.badRequest(
                "unknown field '\(unknown)'; \(Suggest.hint(for: unknown, in: fields))", field: unknown)
        }
        // A DecodingError becomes a 400 naming the field in ErrorShapeMiddleware, like any other.
        return try APICoding.sharedDecoder.decode(type, from: data)
    }

    /// Any JSON value, left undecoded.
    private struct SkippedValue: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    /// The `cursor` query parameter of list endpoints: the id (or sequence number) to page below.
    func queryCursor() throws -> Int64? {
        guard let cursor = query("cursor") else { return nil }
        guard let value = Int64(cursor), value > 0 else {
            throw APIError.badRequest("'\(cursor)' is not a cursor returned by this API", field: "cursor")
        }
        return value
    }

    /// A query parameter, if present.
    func query(_ name: String) -> String? {
        uri.queryParameters[name[...]].map(String.init)
    }

    func queryInt(_ name: String, default value: Int, range: ClosedRange<Int>) throws -> Int {
        guard let text = query(name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError.badRequest("'\(text)' is not a whole number between \(range.lowerBound) and \(range.upperBound)", field: name)
        }
        return number
    }

    func queryDate(_ name: String) throws -> Date? {
        guard let text = query(name) else { return nil }
        let formatter = ISO8601DateFormatter()
        for options: ISO8601DateFormatter.Options in [[.withInternetDateTime, .withFractionalSeconds], [.withInternetDateTime]] {
            formatter.formatOptions = options
            if let date = formatter.date(from: text) { return date }
        }
        // A date alone means midnight UTC. The full-date parser ignores whatever follows the date
        // (`2026-11-25T10:00:00` without a zone became midnight) and rolls invalid days over
        // (`2026-02-30` became March 2nd), so only an exact, valid YYYY-MM-DD is accepted.
        formatter.formatOptions = [.withFullDate]
        if text.utf8.count == 10, let date = formatter.date(from: text), formatter.string(from: date) == text {
            return date
        }
        throw APIError.badRequest("'\(text)' is not an ISO 8601 date such as 2026-11-25T10:00:00Z", field: name)
    }
}

extension Parameters {
    func runID() throws -> Int64 {
        guard let text = get("run"), let id = Int64(text), id > 0 else {
            throw APIError.badRequest("the run id must be a positive whole number", field: "run")
        }
        return id
    }
}
