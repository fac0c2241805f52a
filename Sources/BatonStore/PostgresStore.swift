import BatonCore
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The PostgreSQL store, for several Baton processes on one database.
///
/// It mirrors `SQLiteStore`: the same tables, uniqueness rules, ordering and guarded updates,
/// with JSON kept as text and times as epoch seconds (`double precision`), so records read back
/// identically. Differences that follow from PostgreSQL: ids come from identity columns, so a
/// refused duplicate run or event leaves a gap in the ids; text that is sorted on (names, tags,
/// task names) uses the "C" collation, which orders bytes as SQLite does.
///
/// Connections come from a `PostgresClient` pool driven by a task the store owns: call
/// `close()` when done (dropping the store also stops the pool, without waiting).
public final class PostgresStore: Store, RecordCoding {
    /// The database this store uses.
    public let location: PostgresLocation
    let client: PostgresClient
    let logger: Logger
    /// For postgres-nio, which logs every query and connection at debug and info levels: only
    /// its warnings and errors are worth a Baton operator's attention.
    let queryLogger: Logger
    private let runner: Task<Void, Never>
    private let changes = Mutex(ChangeCounter())
    let closed = Atomic<Bool>(false)
    let leaderLock = PostgresLeaderLock()
    /// Names this store in its change notifications, so its own listener can skip them.
    let changeSource = UUID().uuidString
    /// The tasks listening for other processes' changes (`externalChangeHints`), ended by `close()`.
    let changeListeners = Mutex<[Task<Void, Never>]>([])

    /// Connects, checks the connection once (a wrong password otherwise makes every query
    /// wait while the pool retries in silence) and brings the schema up to date.
    ///
    /// - Parameters:
    ///   - connectTimeout: how long the first connection may take before `PostgresConnectError`.
    ///   - maxConnections: the pool's size; each Baton process holds at most this many.
    public init(
        _ location: PostgresLocation, logger: Logger = Logger(label: "baton"), connectTimeout: Duration = .seconds(10),
        maxConnections: Int = 20
    ) async throws {
        self.location = location
        self.logger = logger
        var queryLogger = logger
        queryLogger.logLevel = max(logger.logLevel, .warning)
        self.queryLogger = queryLogger
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: try Self.clientTLS(location))
        configuration.options.maximumConnections = max(1, maxConnections)
        configuration.options.connectTimeout = connectTimeout
        let client = PostgresClient(configuration: configuration, backgroundLogger: queryLogger)
        self.client = client
        // The pool must be running before the first lease, or postgres-nio warns. Started here,
        // it has all of the probe's round trips to get going.
        runner = Task { await client.run() }
        do {
            try await Self.probe(location, timeout: connectTimeout, logger: queryLogger)
            try await migrate()
        } catch {
            await close()
            throw error
        }
    }

    deinit { runner.cancel() }

    /// Closes every connection; later calls fail. Safe to call more than once.
    public func close() async {
        closed.store(true, ordering: .relaxed)
        let listeners = changeListeners.withLock { listeners in
            defer { listeners.removeAll() }
            return listeners
        }
        for listener in listeners {
            listener.cancel()
            await listener.value
        }
        await leaderLock.close()
        runner.cancel()
        await runner.value
    }

    // MARK: - Connecting

    static func tlsConfiguration(_ mode: PostgresLocation.TLSMode) -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        // libpq checks no certificate below verify-ca; a URL that worked with psql works here.
        case .disable, .prefer, .require: tls.certificateVerification = .none
        case .verifyCA: tls.certificateVerification = .noHostnameVerification
        case .verifyFull: tls.certificateVerification = .fullVerification
        }
        return tls
    }

    static func clientTLS(_ location: PostgresLocation) throws -> PostgresClient.Configuration.TLS {
        switch location.tls {
        case .disable: return .disable
        case .prefer: return .prefer(tlsConfiguration(.prefer))
        case .require, .verifyCA, .verifyFull: return .require(tlsConfiguration(location.tls))
        }
    }

    /// TLS for a connection of our own (outside the pool), as `clientTLS` for the pool.
    public static func connectionTLS(_ location: PostgresLocation) throws -> PostgresConnection.Configuration.TLS {
        switch location.tls {
        case .disable: return .disable
        case .prefer: return .prefer(try NIOSSLContext(configuration: tlsConfiguration(.prefer)))
        case .require, .verifyCA, .verifyFull: return .require(try NIOSSLContext(configuration: tlsConfiguration(location.tls)))
        }
    }

    /// Opens one connection and closes it, turning every way that fails into an error that
    /// names the server, the database and what to do.
    static func probe(_ location: PostgresLocation, timeout: Duration, logger: Logger) async throws(PostgresConnectError) {
        func failure(_ reason: String, sqlState: String? = nil, fix: String) -> PostgresConnectError {
            PostgresConnectError(location: location, reason: reason, sqlState: sqlState, fix: fix)
        }
        let tls: PostgresConnection.Configuration.TLS
        do {
            tls = try connectionTLS(location)
        } catch {
            throw failure("cannot set up TLS: \(error)", fix: "check the system's CA certificates, or use ?sslmode=disable on a trusted network")
        }
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: location.password,
            database: location.database, tls: tls)
        // The driver's own timeout covers the TCP connection only and would cut the probe's
        // clearer message short: ours (on the whole start-up) comes first.
        configuration.options.connectTimeout = .nanoseconds(
            (timeout + .seconds(1)).components.seconds * 1_000_000_000
                + (timeout + .seconds(1)).components.attoseconds / 1_000_000_000)
        let settings = configuration
        do {
            guard let connection = try await connect(settings, within: timeout, logger: logger) else {
                throw failure(
                    "no answer within \(timeout)",
                    fix: "check that the host and port are right and that no firewall drops the connection")
            }
            try? await connection.close()
        } catch let error as PostgresConnectError {
            throw error
        } catch let error as PSQLError {
            throw connectError(error, location: location)
        } catch {
            throw failure("\(error)", fix: "check the URL and that PostgreSQL runs")
        }
    }

    /// One connection, or nil when it takes longer than `timeout` (see `withDeadline`).
    public static func connect(_ settings: PostgresConnection.Configuration, within timeout: Duration, logger: Logger) async throws
        -> PostgresConnection?
    {
        try await withDeadline(timeout) {
            try await PostgresConnection.connect(configuration: settings, id: 1, logger: logger)
        } late: { connection in
            try? await connection.close()
        }
    }

    static func connectError(_ error: PSQLError, location: PostgresLocation) -> PostgresConnectError {
        let server = "\(location.host):\(location.port)"
        if let info = error.serverInfo {
            let state = info[.sqlState]
            let message = info[.message] ?? "\(error.code)"
            let fix: String
            switch state {
            case "28P01":
                fix = "check the user and password in the URL (postgres://USER:PASSWORD@\(server)/\(location.database))"
            case "28000":
                fix = "allow user '\(location.user)' to reach database '\(location.database)' from this host in the server's pg_hba.conf"
            case "3D000":
                fix = "create the database first: createdb -h \(location.host) -p \(location.port) -U \(location.user) \(location.database)"
            case "53300":
                fix = "the server has no free connections: raise max_connections or lower the connections other clients hold"
            case "57P03":
                fix = "the server is starting or shutting down; try again in a moment"
            default:
                fix = "see the server's message above and its log"
            }
            return PostgresConnectError(location: location, reason: message, sqlState: state, fix: fix)
        }
        switch error.code {
        case .sslUnsupported:
            return PostgresConnectError(
                location: location, reason: "the server does not offer TLS", sqlState: nil,
                fix: "enable ssl on the server, or add ?sslmode=disable to the URL on a trusted network")
        case .authMechanismRequiresPassword:
            return PostgresConnectError(
                location: location, reason: "the server asks for a password and the URL has none", sqlState: nil,
                fix: "put it in the URL: postgres://\(location.user):PASSWORD@\(server)/\(location.database)")
        case .unsupportedAuthMechanism:
            return PostgresConnectError(
                location: location, reason: "the server asks for an authentication method Baton does not support", sqlState: nil,
                fix: "use scram-sha-256, md5, password or trust for this user in pg_hba.conf")
        default:
            return PostgresConnectError(
                location: location, reason: explain(error), sqlState: nil,
                fix: "check that PostgreSQL runs and listens on \(server) (listen_addresses and port in postgresql.conf)")
        }
    }

    // MARK: - Running statements

    /// Runs a statement on a pooled connection and collects its rows (Baton's answers are small).
    @discardableResult
    func fetch(_ query: PostgresQuery) async throws -> [PostgresRow] {
        do {
            return try await client.query(query, logger: queryLogger).collect()
        } catch {
            throw queryError(error, query)
        }
    }

    @discardableResult
    func fetch(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> [PostgresRow] {
        do {
            return try await connection.query(query, logger: queryLogger).collect()
        } catch {
            throw queryError(error, query)
        }
    }

    /// Runs `body` in one transaction on one connection: committed when it returns, rolled
    /// back when it throws (its error is rethrown unchanged).
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in
                try await fetch("BEGIN", on: connection)
                let value: T
                do {
                    value = try await body(connection)
                } catch {
                    do {
                        try await fetch("ROLLBACK", on: connection)
                    } catch {
                        // A connection left inside a failed transaction must not go back to the pool.
                        try? await connection.close()
                    }
                    throw error
                }
                try await fetch("COMMIT", on: connection)
                return value
            }
        } catch {
            throw queryError(error, "BEGIN")
        }
    }

    /// The error to report for a failed statement: the server's message and SQLSTATE when it
    /// answered, what happened to the connection otherwise. Baton's own errors pass unchanged.
    func queryError(_ error: any Error, _ query: PostgresQuery) -> any Error {
        if error is StoreError || error is MetricValidationError || error is CancellationError { return error }
        let statement = query.sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        let shown = String(statement.count > 120 ? statement.prefix(117) + "..." : Substring(statement))
        if closed.load(ordering: .relaxed) {
            return StoreError.postgres(statement: shown, sqlState: nil, message: "the store was closed")
        }
        guard let error = error as? PSQLError else {
            return StoreError.postgres(statement: shown, sqlState: nil, message: "\(error)")
        }
        if let info = error.serverInfo {
            var message = info[.message] ?? "\(error.code)"
            if let detail = info[.detail] { message += " (\(detail))" }
            return StoreError.postgres(statement: shown, sqlState: info[.sqlState], message: message)
        }
        return StoreError.postgres(statement: shown, sqlState: nil, message: Self.explain(error))
    }

    /// PSQLError's own description hides everything on purpose; this says what happened.
    static func explain(_ error: PSQLError) -> String {
        let what: String
        switch error.code {
        case .serverClosedConnection: what = "the server closed the connection"
        case .clientClosedConnection: what = "the connection was closed"
        case .connectionError: what = "cannot reach the server"
        case .queryCancelled: what = "the statement was cancelled"
        case .poolClosed: what = "the store was closed"
        case .uncleanShutdown: what = "the connection ended uncleanly"
        default: what = "\(error.code)"
        }
        guard let underlying = error.underlying, !(underlying is PSQLError) else { return what }
        return "\(what) (\(underlying))"
    }

    // MARK: - Change token

    /// Counts this store's own bumps of `baton_change_seq`, so that `externalChangeToken()` can
    /// leave them out the way SQLite's `data_version` leaves out a connection's own writes.
    struct ChangeCounter {
        var started: Int64 = 0
        var succeeded: Int64 = 0
        var failed: Int64 = 0
        /// Values handed out while a bump of ours was in flight: negative, never repeated.
        var uncertain: Int64 = 0
        var idle: Bool { started == succeeded + failed }
    }

    /// Tells other processes that this store changed something they act on (runs, cancel
    /// requests, pauses, events, transitions, dataset updates).
    ///
    /// It runs after the commit: a reader that sees the counter move must also see the rows,
    /// or it would look, find nothing, and never look again. Sequences are not transactional,
    /// so a bump inside the transaction would be visible before the rows are. The same statement
    /// notifies `changeChannel` (delivered when it commits, so after the bump), which wakes
    /// listening servers at once (`externalChangeHints`).
    func bumpChangeCounter() async {
        changes.withLock { $0.started += 1 }
        do {
            try await fetch("SELECT nextval('baton_change_seq') FROM pg_notify(\(Self.changeChannel), \(changeSource))")
            changes.withLock { $0.succeeded += 1 }
        } catch {
            // If it did move, other processes see one change too many: harmless.
            changes.withLock { $0.failed += 1 }
            logger.warning("could not signal a change to other Baton processes: \(error)")
        }
    }

    /// The number of changes other processes made: the shared counter less this store's own
    /// bumps. While a bump of ours is in flight that difference is not exact, so a fresh
    /// negative value is returned instead: it reads as "changed" (a harmless extra look) and can
    /// never equal a later exact value, so no real change is hidden.
    public func externalChangeToken() async throws -> Int64 {
        let before = changes.withLock { $0 }
        let rows = try await fetch("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM baton_change_seq")
        guard let shared = try rows.first?.decode(Int64.self) else {
            throw StoreError.corruptRow(table: "baton_change_seq", detail: "no row")
        }
        return changes.withLock { counter in
            if before.idle && counter.idle && counter.started == before.started {
                return shared - counter.succeeded
            }
            counter.uncertain -= 1
            return counter.uncertain
        }
    }

    public func ping() async throws {
        try await fetch("SELECT 1")
    }
}

/// PostgreSQL could not be reached or refused the connection at start-up.
public struct PostgresConnectError: Error, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    /// The server's message, or what went wrong on the way to it.
    public var reason: String
    /// The server's SQLSTATE code, when it answered.
    public var sqlState: String?
    /// What to change so that it works.
    public var fix: String

    init(location: PostgresLocation, reason: String, sqlState: String?, fix: String) {
        host = location.host
        port = location.port
        database = location.database
        user = location.user
        self.reason = reason
        self.sqlState = sqlState
        self.fix = fix
    }

    public var description: String {
        let code = sqlState.map { " (SQLSTATE \($0))" } ?? ""
        return "cannot connect to PostgreSQL at \(host):\(port), database '\(database)', user '\(user)': \(reason)\(code); \(fix)"
    }
}

/// Reads a column of a PostgreSQL row as the type the context asks for.
struct PostgresColumns {
    let row: PostgresRandomAccessRow
    let table: String

    init(_ row: PostgresRow, table: String) {
        self.row = row.makeRandomAccess()
        self.table = table
    }

    subscript<T: PostgresDecodable>(_ column: String) -> T {
        get throws {
            guard row.contains(column) else {
                throw StoreError.corruptRow(table: table, detail: "no column \(column)")
            }
            do {
                return try row[column].decode(T.self)
            } catch {
                throw StoreError.corruptRow(table: table, detail: "column \(column): \(error)")
            }
        }
    }
}

/// The result of `body`, or nil when it takes longer than `timeout`.
///
/// Unlike a task group, this does not wait for `body` to end after the deadline: a server that
/// accepted a connection and never answers, or a connection the server ended while a query was
/// on it, can leave `body` waiting far longer than the caller may. `late` disposes of a result
/// that arrives after the deadline.
func withDeadline<T: Sendable>(
    _ timeout: Duration, _ body: @escaping @Sendable () async throws -> T,
    late: @escaping @Sendable (T) async -> Void = { _ in }
) async throws -> T? {
    let outcome = FirstOutcome<T?>()
    return try await withCheckedThrowingContinuation { continuation in
        outcome.set(continuation)
        let attempt = Task {
            do {
                let value = try await body()
                if let waiting = outcome.take() {
                    waiting.resume(returning: value)
                } else {
                    await late(value)
                }
            } catch {
                outcome.take()?.resume(throwing: error)
            }
        }
        Task {
            try? await Task.sleep(for: timeout)
            guard let waiting = outcome.take() else { return }
            attempt.cancel()
            waiting.resume(returning: nil)
        }
    }
}

/// A continuation resumed by whichever of several tasks finishes first.
final class FirstOutcome<T: Sendable>: Sendable {
    private let waiting = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func set(_ continuation: CheckedContinuation<T, any Error>) { waiting.withLock { $0 = continuation } }
    func take() -> CheckedContinuation<T, any Error>? { waiting.withLock { $0.take() } }
}
