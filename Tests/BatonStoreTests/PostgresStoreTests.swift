import BatonCore
import Foundation
import PostgresNIO
import Synchronization
import Testing

@testable import BatonStore

#if canImport(Glibc)
    import Glibc
#endif

/// What only PostgreSQL has: several servers on one database, migrations racing at start-up,
/// and a connection checked before use.
@Suite struct PostgresStoreTests {
    @Test func migrationsAreAppliedOnceWhetherStoresOpenOneAfterAnotherOrAtOnce() async throws {
        try await TestDatabase.with(.postgres) { database in
            // Three servers starting together on an empty database.
            let stores = try await withThrowingTaskGroup(of: PostgresStore.self) { group in
                for _ in 0..<3 { group.addTask { try await database.openPostgres() } }
                return try await group.reduce(into: [PostgresStore]()) { $0.append($1) }
            }
            let versions = try await stores[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
                .map { try $0.decode(String.self) }
            #expect(versions == PostgresStore.migrations.map(\.version))
            let run = try await stores[1].createRun(sampleRun(sampleSpec())).run
            let later = try await database.openPostgres()
            #expect(try await later.fetch("SELECT count(*) FROM schema_migrations").first?.decode(Int64.self) == Int64(versions.count))
            #expect(try await later.run(id: run.id)?.pipeline == "etl", "reopening keeps the data")
        }
    }

    /// A command's write wakes a listening server at once (no poll); the server's own writes
    /// do not, a listener whose connection ends comes back, and closing the store ends its hints.
    @Test func anotherProcesssWritesWakeAListenerAndItsOwnDoNot() async throws {
        try await TestDatabase.with(.postgres) { database in
            let server = try await database.openPostgres()
            let command = try await database.openPostgres()
            let hints = try #require(try server.externalChangeHints())
            let count = Atomic<Int>(0)
            let ended = Atomic<Bool>(false)
            let listener = Task {
                for await _ in hints { count.add(1, ordering: .relaxed) }
                ended.store(true, ordering: .relaxed)
            }
            defer { listener.cancel() }
            func waitUntil(_ what: String, _ condition: () -> Bool) async throws {
                let deadline = ContinuousClock.now + .seconds(20)
                while !condition() {
                    guard ContinuousClock.now < deadline else { throw StoreTestFailure("\(what) within 20 s") }
                    try await Task.sleep(for: .milliseconds(10))
                }
            }
            // The first hint says the listener is up.
            try await waitUntil("the listener started") { count.load(ordering: .relaxed) >= 1 }
            let settled = count.load(ordering: .relaxed)

            _ = try await server.createRun(sampleRun(sampleSpec()))
            try await Task.sleep(for: .milliseconds(300))
            #expect(count.load(ordering: .relaxed) == settled, "the server's own write must not wake it")

            let run = try await command.createRun(sampleRun(sampleSpec(), key: "manual__listen")).run
            try await waitUntil("a hint of the command's run") { count.load(ordering: .relaxed) > settled }
            let before = count.load(ordering: .relaxed)
            #expect(try await command.requestCancel(runID: run.id))
            try await waitUntil("a hint of the command's cancel") { count.load(ordering: .relaxed) > before }

            // A listener whose connection the database ends listens again on a new one.
            func listenerPIDs() async throws -> [Int32] {
                try await command.fetch(
                    """
                    SELECT pid FROM pg_stat_activity
                    WHERE application_name = \(PostgresStore.changeListenerName) AND datname = current_database()
                    """
                ).map { try $0.decode(Int32.self) }
            }
            let first = try await listenerPIDs()
            #expect(first.count == 1, "\(first)")
            try await command.fetch("SELECT pg_terminate_backend(\(try #require(first.first)))")
            let deadline = ContinuousClock.now + .seconds(30)
            while try await listenerPIDs().filter({ !first.contains($0) }).isEmpty {
                guard ContinuousClock.now < deadline else { throw StoreTestFailure("a new listener connection within 30 s") }
                try await Task.sleep(for: .milliseconds(50))
            }
            // Once it listens again the stand-in hints stop, and a command's write still wakes it.
            try await Task.sleep(for: .milliseconds(500))
            let quiet = count.load(ordering: .relaxed)
            try await Task.sleep(for: .milliseconds(500))
            #expect(count.load(ordering: .relaxed) == quiet, "hints went on after the listener was back")
            _ = try await command.publishEvent(EventRecord(id: "e-listen", name: "x", payload: [:], source: nil, createdAt: Date()))
            try await waitUntil("a hint of the command's event") { count.load(ordering: .relaxed) > quiet }

            await server.close()
            try await waitUntil("the hints ended with the store") { ended.load(ordering: .relaxed) }
        }
    }

    @Test func twoServersSeeEachOthersWritesAndTheirChangeTokensMove() async throws {
        try await TestDatabase.with(.postgres) { database in
            let a = try await database.openPostgres()
            let b = try await database.openPostgres()
            var tokenA = try await a.externalChangeToken()
            var tokenB = try await b.externalChangeToken()

            func changedForA() async throws -> Bool {
                let now = try await a.externalChangeToken()
                defer { tokenA = now }
                return now != tokenA
            }
            func changedForB() async throws -> Bool {
                let now = try await b.externalChangeToken()
                defer { tokenB = now }
                return now != tokenB
            }

            let run = try await a.createRun(sampleRun(sampleSpec())).run
            #expect(try await changedForA() == false, "a store's own write is not an external change")
            #expect(try await changedForB())
            #expect(try await b.unfinishedRuns().map(\.id) == [run.id])

            #expect(try await b.requestCancel(runID: run.id))
            #expect(try await changedForA())
            #expect(try await a.cancelRequestedRunIDs() == [run.id])

            _ = try await a.upsertPipeline(name: "etl", file: "etl.yaml", spec: sampleSpec(), now: Date())
            try await b.setPaused(true, pipeline: "etl")
            #expect(try await changedForA())
            #expect(try await a.pipeline(named: "etl")?.paused == true)

            try await a.commit([.runState(runID: run.id, state: .running, at: Date())])
            #expect(try await changedForB())
            #expect(try await b.run(id: run.id)?.state == .running)

            _ = try await b.publishEvent(EventRecord(id: "e1", name: "x", payload: [:], source: nil, createdAt: Date()))
            #expect(try await changedForA())
            #expect(try await a.events(after: 0, limit: 10).map(\.id) == ["e1"])
            _ = try await b.publishEvent(EventRecord(id: "e1", name: "x", payload: [:], source: nil, createdAt: Date()))
            #expect(try await changedForA() == false, "a duplicate event changes nothing")

            _ = try await b.recordDatasetUpdate(
                DatasetUpdateRecord(dataset: "d", runID: nil, pipeline: nil, task: nil, schemaVersion: nil, metadata: [:], updatedAt: Date()))
            #expect(try await changedForA())
            #expect(try await a.latestDatasetUpdate("d") != nil)
            #expect(try await changedForB() == false)
        }
    }

    @Test func serversCreatingTheSameRunsAtOnceGetEachRunOnce() async throws {
        try await TestDatabase.with(.postgres) { database in
            let stores = [try await database.openPostgres(), try await database.openPostgres()]
            let spec = sampleSpec(tasks: ["a", "b", "c"])
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<40 {
                    let store = stores[index % 2]
                    group.addTask { try await store.createRun(sampleRun(spec, key: "k\(index % 5)")).created }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(created == 5)
            let runs = try await stores[0].runs(RunQuery(limit: 100))
            #expect(Set(runs.map(\.runKey)) == ["k0", "k1", "k2", "k3", "k4"])
            #expect(runs.count == 5)
            for run in runs {
                #expect(try await stores[1].taskInstances(runID: run.id).map(\.task) == ["a", "b", "c"])
            }
        }
    }

    @Test func oneServerLeadsAndAnotherTakesOverWhenTheLeadersConnectionEnds() async throws {
        try await TestDatabase.with(.postgres) { database in
            let a = try await database.openPostgres()
            let b = try await database.openPostgres()
            #expect(try await a.tryLead())
            #expect(try await a.tryLead(), "a leader stays leader")
            #expect(try await b.tryLead() == false)
            #expect(try await b.tryLead() == false)
            // The leader's connection ends as when its machine vanishes: the server drops it.
            let terminated = try await b.fetch(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE application_name = \(PostgresLeaderLock.applicationName) AND datname = current_database()
                    AND pid IN (SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)
                """)
            #expect(terminated.count == 1)
            #expect(try await a.tryLead() == false, "the old leader notices it lost the lock")
            var tookOver = false
            for _ in 0..<50 where !tookOver {
                tookOver = try await b.tryLead()
                if !tookOver { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(tookOver)
            #expect(try await a.tryLead() == false, "a lost leadership is not taken back behind the new leader")
            // Closing the leader's store hands leadership on at once.
            let c = try await database.openPostgres()
            #expect(try await c.tryLead() == false)
            await b.close()
            #expect(try await c.tryLead())
        }
    }

    // The limit is for a hang only: setting up a database takes tens of seconds when every suite
    // creates its own at once (CI saw 70 s), and a claim that waits on the lock is caught below.
    @Test(.timeLimit(.minutes(5))) func aClaimLeavesATaskTheEngineIsChangingAndNeverWaitsForIt() async throws {
        try await TestDatabase.with(.postgres) { database in
            let worker = try await database.openPostgres()
            let engine = try await database.openPostgres()
            _ = try await DispatchStoreTests.queued(worker, tasks: ["x", "y"])
            let (locked, signalLocked) = AsyncStream<Void>.makeStream()
            let (release, signalRelease) = AsyncStream<Void>.makeStream()
            // The engine, mid-transaction, holds task x's row.
            let holder = Task {
                try await engine.transaction { connection in
                    try await engine.fetch("SELECT 1 FROM task_instances WHERE task = 'x' FOR UPDATE", on: connection)
                    signalLocked.yield()
                    for await _ in release { break }
                }
            }
            for await _ in locked { break }
            // A claim that waits for the lock would wait for good: the lock is let go after 30 s,
            // so such a claim fails the expectations below instead of hanging the test.
            let watchdog = Task {
                try await Task.sleep(for: .seconds(30))
                signalRelease.yield()
            }
            defer { watchdog.cancel() }
            let started = ContinuousClock.now
            #expect(try await DispatchStoreTests.claim(worker, worker: "w1").map(\.task) == ["y"])
            // A claim that waited would end only when the watchdog lets go (30 s); a 3-s bound
            // was too close to a loaded machine's own pace (a clean-clone run took 3.08 s).
            #expect(ContinuousClock.now - started < .seconds(20), "the claim did not wait for the engine")
            signalRelease.yield()
            try await holder.value
            #expect(try await DispatchStoreTests.claim(worker, worker: "w1").map(\.task) == ["x"])
        }
    }

    @Test func aMissingDatabaseIsReportedWithTheServerAndTheFix() async throws {
        try await TestDatabase.with(.postgres) { database in
            guard case .postgres(var location) = database.location else { return }
            location.database = "baton_no_such_database"
            let error = try await #require(throws: PostgresConnectError.self) {
                _ = try await PostgresStore(location)
            }
            #expect(error.host == location.host && error.port == location.port)
            #expect(error.database == "baton_no_such_database")
            #expect(error.sqlState == "3D000")
            #expect(error.reason.contains("baton_no_such_database"), "the server's message: \(error.reason)")
            #expect(error.description.contains("createdb"))
            #expect(error.description.contains("\(location.host):\(location.port)"))
        }
    }

    @Test func aServerThatDoesNotAnswerTimesOut() async throws {
        let listener = try SilentListener()
        defer { listener.close() }
        let location = PostgresLocation(host: "127.0.0.1", port: listener.port, user: "baton", database: "baton", tls: .disable)
        let started = ContinuousClock.now
        let error = try await #require(throws: PostgresConnectError.self) {
            _ = try await PostgresStore(location, connectTimeout: .milliseconds(500))
        }
        // Without the deadline the attempt would wait for good (the driver has none after the
        // TCP connection); the bound is loose because a loaded 2-core machine is slow to wake.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(error.reason.contains("no answer"), "\(error)")
        #expect(error.description.contains("127.0.0.1:\(listener.port)"))
    }

    @Test func aPortWithNoServerIsReported() async throws {
        let listener = try SilentListener()
        let port = listener.port
        listener.close()
        let location = PostgresLocation(host: "127.0.0.1", port: port, user: "baton", database: "baton", tls: .disable)
        let error = try await #require(throws: PostgresConnectError.self) {
            _ = try await PostgresStore(location, connectTimeout: .seconds(2))
        }
        #expect(error.description.contains("127.0.0.1:\(port)"))
        #expect(error.description.contains("listens"), "\(error)")
    }

    @Test func openStoreChoosesTheBackendByLocationAndAClosedStoreSaysSo() async throws {
        try await TestDatabase.with(.postgres) { database in
            let store = try await openStore(database.location, logger: TestDatabase.logger)
            let postgres = try #require(store as? PostgresStore)
            try await postgres.ping()
            await postgres.close()
            await postgres.close()
            let error = try await #require(throws: StoreError.self) { try await postgres.ping() }
            #expect("\(error)".contains("closed"), "\(error)")
        }
    }

    @Test func statementErrorsCarryTheServersMessage() async throws {
        try await TestDatabase.with(.postgres) { database in
            let store = try await database.openPostgres()
            let error = try await #require(throws: StoreError.self) {
                try await store.fetch("SELECT no_such_column FROM runs")
            }
            guard case .postgres(let statement, let sqlState, let message) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(statement == "SELECT no_such_column FROM runs")
            #expect(sqlState == "42703")
            #expect(message.contains("no_such_column"))
        }
    }
}

/// A TCP socket on 127.0.0.1 that accepts connections (the kernel does) and never answers.
final class SilentListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
                bind(fd, address, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, address, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw POSIXError(.EADDRNOTAVAIL) }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { _ = Glibc.close(fd) }
}

/// A store test's condition that did not hold, and which.
struct StoreTestFailure: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = "expected \(description)"
    }
}
