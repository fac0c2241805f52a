import BatonCore
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A small client for Baton's REST API, used by the CLI's `--server` mode.
public struct BatonClient: Sendable {
    public let baseURL: URL
    public let token: String?
    let session: URLSession

    /// A session for clients that keep a long poll open beside other calls (workers): the
    /// shared session's per-host connection limit would queue those calls behind the poll.
    public static let concurrentSession: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 256
        return URLSession(configuration: configuration)
    }()

    public init(server: String, token: String?, session: URLSession = .shared) throws(ClientError) {
        self.session = session
        let trimmed = server.hasSuffix("/") ? String(server.dropLast()) : server
        guard let url = URL(string: trimmed), let scheme = url.scheme, ["http", "https"].contains(scheme), url.host != nil else {
            throw ClientError(message: "--server '\(server)' is not an http(s) URL such as http://127.0.0.1:8080")
        }
        baseURL = url
        self.token = token
    }

    /// A failed call, with the server's error message when it sent one.
    public struct ClientError: Error, Sendable, CustomStringConvertible {
        public var status: Int?
        public var code: String?
        public var message: String
        public var description: String { message }

        public init(status: Int? = nil, code: String? = nil, message: String) {
            self.status = status
            self.code = code
            self.message = message
        }
    }

    public func get<T: Decodable>(_ path: String, as type: T.Type) async throws(ClientError) -> T {
        try await send("GET", path, body: Optional<Data>.none, as: type)
    }

    public func post<T: Decodable>(_ path: String, body: (some Encodable)?, as type: T.Type) async throws(ClientError) -> T {
        let data: Data?
        do {
            data = try body.map { try APICoding.encoder().encode($0) }
        } catch {
            throw ClientError(message: "cannot encode the request: \(error)")
        }
        return try await send("POST", path, body: data, as: type)
    }

    /// A POST with a JSON body, waiting up to `timeout` seconds (long polls need more than 30).
    public func post<T: Decodable>(_ path: String, body: some Encodable, timeout: Double, as type: T.Type)
        async throws(ClientError) -> T
    {
        let data: Data
        do {
            data = try APICoding.encoder().encode(body)
        } catch {
            throw ClientError(message: "cannot encode the request: \(error)")
        }
        return try await send("POST", path, body: data, timeout: timeout, as: type)
    }

    /// A POST of raw bytes (a log chunk).
    public func post<T: Decodable>(_ path: String, bytes: Data, as type: T.Type) async throws(ClientError) -> T {
        try await send("POST", path, body: bytes, contentType: "application/octet-stream", as: type)
    }

    func send<T: Decodable>(
        _ method: String, _ path: String, body: Data?, contentType: String = "application/json", timeout: Double = 30,
        as type: T.Type
    ) async throws(ClientError) -> T {
        guard let url = URL(string: baseURL.absoluteString + path) else {
            throw ClientError(message: "bad path \(path)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = method
        request.timeoutInterval = timeout
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        if let body {
            request.httpBody = body
            request.setValue(contentType, forHTTPHeaderField: "Content-Type")
        }
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await session.data(for: request)
        } catch {
            throw ClientError(message: "cannot reach Baton at \(baseURL.absoluteString): \(error.localizedDescription)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            if let failure = try? APICoding.decoder().decode(APIErrorBody.self, from: data) {
                var message = failure.error.message
                if let field = failure.error.field { message += " (field: \(field))" }
                if let fix = failure.error.fix { message += "\n  fix: \(fix)" }
                throw ClientError(status: status, code: failure.error.code, message: message)
            }
            throw ClientError(status: status, message: "HTTP \(status) from \(url.absoluteString)")
        }
        do {
            return try APICoding.decoder().decode(type, from: data)
        } catch {
            throw ClientError(status: status, message: "unexpected response from \(url.absoluteString): \(error)")
        }
    }
}
