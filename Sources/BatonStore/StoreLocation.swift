import Foundation
import Logging

/// Where Baton keeps its state: a SQLite file (the default) or a PostgreSQL database.
public enum StoreLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// Reads `postgres://user[:password]@host[:port]/database[?sslmode=disable]` (or
    /// `postgresql://…`) as PostgreSQL; anything else is a SQLite file path.
    public init(parsing text: String) throws(StoreLocationError) {
        let lowered = text.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
            self = .postgres(try PostgresLocation(url: text))
        } else if let scheme = lowered.range(of: "://").map({ String(lowered[..<$0.lowerBound]) }),
            !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) })
        {
            throw StoreLocationError(text: text, problem: "the scheme '\(scheme)://' is not supported; use a file path for SQLite or postgres://user@host:port/database")
        } else {
            self = .sqlite(path: text)
        }
    }

    public var isPostgres: Bool {
        if case .postgres = self { return true }
        return false
    }

    /// The location as shown to people: the file path, or the URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let location): return location.description
        }
    }
}

/// A `--db`/`BATON_DB` value that names no usable database.
public struct StoreLocationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text as given, with any password replaced.
    public var text: String
    public var problem: String

    init(text: String, problem: String) {
        self.text = PostgresLocation.redacting(text)
        self.problem = problem
    }

    public var description: String { "database location '\(text)': \(problem)" }
}

/// A PostgreSQL server and database, parsed from a URL.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    /// How the connection uses TLS, as libpq's `sslmode` names it.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP.
        case disable
        /// TLS when the server offers it, plain otherwise; the certificate is not checked.
        case prefer
        /// TLS or no connection; the certificate is not checked.
        case require
        /// TLS with a certificate signed by a trusted authority, for any host name.
        case verifyCA = "verify-ca"
        /// TLS with a trusted certificate for this host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var tls: TLSMode

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String, tls: TLSMode = .prefer) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
    }

    /// Parses `postgres://user[:password]@host[:port]/database[?sslmode=MODE]`; user, password
    /// and database may be percent-encoded.
    public init(url text: String) throws(StoreLocationError) {
        func fail(_ problem: String) -> StoreLocationError { StoreLocationError(text: text, problem: problem) }
        let example = "postgres://user[:password]@host[:port]/database[?sslmode=disable]"
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "postgres" || scheme == "postgresql"
        else { throw fail("not a valid URL; write \(example)") }
        guard let host = components.host, !host.isEmpty else { throw fail("the URL has no host; write \(example)") }
        guard let user = components.user, !user.isEmpty else {
            throw fail("the URL has no user; write \(example)")
        }
        var database = components.path
        if database.hasPrefix("/") { database.removeFirst() }
        guard !database.isEmpty, !database.contains("/") else {
            throw fail("the URL names no database (the part after the last /); write \(example)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw fail("port \(port) is not a port number (1-65535)")
        }
        var tls = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value == "allow" ? "prefer" : value) else {
                    throw fail(
                        "sslmode '\(item.value ?? "")' is not one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            default:
                throw fail("unknown URL parameter '\(item.name)'; only sslmode is supported")
            }
        }
        // URLComponents keeps IPv6 hosts in brackets; the driver wants the bare address.
        let bareHost = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.init(
            host: bareHost, port: components.port ?? 5432, user: user, password: components.password, database: database,
            tls: tls)
    }

    /// The URL without its password, for messages and logs.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let secret = password == nil ? "" : ":***"
        let query = tls == .prefer ? "" : "?sslmode=\(tls.rawValue)"
        return "postgres://\(user)\(secret)@\(shownHost):\(port)/\(database)\(query)"
    }

    /// `text` with the password of a URL replaced, for errors about text that may not parse.
    static func redacting(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"), let at = text.range(of: "@", options: .backwards),
            schemeEnd.upperBound <= at.lowerBound,
            let colon = text[schemeEnd.upperBound..<at.lowerBound].firstIndex(of: ":")
        else { return text }
        return String(text[..<colon]) + ":***" + String(text[at.lowerBound...])
    }
}

/// Opens the store at `location`: a SQLite file, created if missing, or a PostgreSQL database,
/// checked once with a timeout and migrated. A PostgreSQL store must be closed with
/// `PostgresStore.close()` when no longer used. `announcesWrites` rings a SQLite database's
/// `ChangeBell` after each commit: for commands, so a server on the same file acts at once.
public func openStore(_ location: StoreLocation, logger: Logger, announcesWrites: Bool = false) async throws -> any Store {
    switch location {
    case .sqlite(let path):
        return try SQLiteStore(path: path, announcesWrites: announcesWrites)
    case .postgres(let postgres):
        return try await PostgresStore(postgres, logger: logger)
    }
}
