import BatonCore
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import BatonStore

/// The store implementations every store test runs against.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }
}

/// Why a PostgreSQL variant cannot run; fails the test with the way to fix it.
struct PostgresUnavailable: Error, CustomStringConvertible {
    var description: String {
        """
        BATON_TEST_POSTGRES_URL is not set, so the PostgreSQL variant of this test cannot run. \
        Run the tests through scripts/with-postgres.sh (scripts/test.sh does), which starts a throwaway \
        PostgreSQL on 127.0.0.1 (Debian's postgresql: scripts/install-deps.sh --test), e.g. \
        `scripts/with-postgres.sh swift test --filter BatonStoreTests`; or point BATON_TEST_POSTGRES_URL at a \
        server whose user may create databases (postgres://postgres@127.0.0.1:5432/postgres); or set \
        BATON_TEST_POSTGRES=skip to skip the PostgreSQL variants knowingly.
        """
    }
}

/// One fresh, empty database of one backend for one test. Stores opened on it are closed, and
/// the database is removed, when the test's body ends (see `withDatabase`).
final class TestDatabase: Sendable {
    let backend: Backend
    let location: StoreLocation
    private let opened = Mutex<[PostgresStore]>([])

    private init(backend: Backend, location: StoreLocation) {
        self.backend = backend
        self.location = location
    }

    /// Another store on the same database, as a second process would have.
    func open() async throws -> any Store {
        switch location {
        case .sqlite(let path):
            return try SQLiteStore(path: path)
        case .postgres(let postgres):
            let store = try await openPostgres(postgres)
            return store
        }
    }

    /// A PostgreSQL store on this database (tests of PostgreSQL-only behaviour).
    func openPostgres(_ location: PostgresLocation? = nil) async throws -> PostgresStore {
        guard case .postgres(let own) = self.location else { throw PostgresUnavailable() }
        // A small pool: many tests run at once against one test server.
        let store = try await PostgresStore(location ?? own, logger: Self.logger, maxConnections: 4)
        opened.withLock { $0.append(store) }
        return store
    }

    /// Warnings only: a hundred test databases migrating are not news.
    static let logger: Logger = {
        var logger = Logger(label: "baton.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// The admin database URL, or nil when PostgreSQL variants are skipped on purpose.
    static func adminLocation() throws -> PostgresLocation? {
        let environment = ProcessInfo.processInfo.environment
        guard let url = environment["BATON_TEST_POSTGRES_URL"], !url.isEmpty else {
            if environment["BATON_TEST_POSTGRES"] == "skip" { return nil }
            throw PostgresUnavailable()
        }
        return try PostgresLocation(url: url)
    }

    /// Runs `body` on a fresh database of `backend`, then closes its stores and removes it.
    static func with(_ backend: Backend, _ body: (TestDatabase) async throws -> Void) async throws {
        switch backend {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-store-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: folder) }
            try await body(TestDatabase(backend: backend, location: .sqlite(path: folder + "/baton.db")))
        case .postgres:
            guard let admin = try adminLocation() else {
                print("note: PostgreSQL variant of \(Test.current?.name ?? "a test") skipped (BATON_TEST_POSTGRES=skip)")
                try Test.cancel("PostgreSQL variant skipped: BATON_TEST_POSTGRES=skip")
            }
            let name = "baton_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
            try await administer(admin, "CREATE DATABASE \(name)")
            var location = admin
            location.database = name
            let database = TestDatabase(backend: backend, location: .postgres(location))
            let result: Result<Void, any Error>
            do {
                try await body(database)
                result = .success(())
            } catch {
                result = .failure(error)
            }
            for store in database.opened.withLock({ $0 }) { await store.close() }
            try await administer(admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
            try result.get()
        }
    }

    /// Runs one statement on the admin database (names are generated here, never user input).
    static func administer(_ admin: PostgresLocation, _ sql: String) async throws {
        let connection = try await PostgresConnection.connect(
            configuration: PostgresConnection.Configuration(
                host: admin.host, port: admin.port, username: admin.user, password: admin.password, database: admin.database,
                tls: .disable),
            id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}

/// Runs `body` with a store on a fresh database of `backend`; `database` opens more stores on it.
func withStore(_ backend: Backend, _ body: (_ store: any Store, _ database: TestDatabase) async throws -> Void) async throws {
    try await TestDatabase.with(backend) { database in
        try await body(try await database.open(), database)
    }
}

func sampleSpec(name: String = "etl", tasks: [String] = ["extract", "load"]) -> PipelineSpec {
    PipelineSpec(
        name: name, owner: "data_engineering", schedule: .cron("@hourly"),
        tasks: tasks.enumerated().map { index, task in
            TaskSpec(name: task, command: .shell("true"), needs: index == 0 ? [] : [tasks[index - 1]])
        })
}

func sampleRun(_ spec: PipelineSpec, key: String = "2026-11-25T10:00:00Z", at date: Date = Date(timeIntervalSince1970: 1_790_000_000))
    -> RunRecord
{
    RunRecord(
        pipeline: spec.name, runKey: key, logicalDate: date, intervalStart: date, intervalEnd: date.addingTimeInterval(3600),
        trigger: .schedule, params: ["region": "eu"], spec: spec, createdAt: date)
}
