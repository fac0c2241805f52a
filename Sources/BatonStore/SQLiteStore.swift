import BatonCore
import Foundation
import GRDB
import Synchronization

/// Errors the store reports with the context needed to act on them.
public enum StoreError: Error, CustomStringConvertible {
    case cannotOpen(path: String, underlying: any Error)
    case corruptRow(table: String, detail: String)
    /// The lock that keeps two processes from migrating one SQLite file at once could not be taken.
    case migrationLock(path: String, reason: String)
    /// PostgreSQL refused or could not run a statement (shown shortened, without its values).
    case postgres(statement: String, sqlState: String?, message: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let underlying):
            return "cannot open the Baton database at \(path): \(underlying)"
        case .corruptRow(let table, let detail):
            return "unreadable row in \(table): \(detail)"
        case .migrationLock(let path, let reason):
            return "cannot lock \(path) to migrate the database beside it: \(reason) (the folder must be writable by Baton)"
        case .postgres(let statement, let sqlState, let message):
            return "PostgreSQL: \(message)\(sqlState.map { " (SQLSTATE \($0))" } ?? "") in `\(statement)`"
        }
    }
}

/// The embedded store: one SQLite file in WAL mode.
///
/// Durability: `synchronous=NORMAL`, so a committed transaction survives the Baton process
/// being killed at any point; only an operating-system crash or power loss can lose the last
/// commits. `durability: .full` trades about 10x write latency for surviving those too.
public final class SQLiteStore: Store, RecordCoding {
    public enum Durability: Sendable { case normal, full }

    let pool: DatabasePool
    public let path: String
    private let checkpointer: WALCheckpointer
    /// Writes that scheduled (or rode along with) a checkpoint.
    var writesNoted: Int { checkpointer.writesNoted.load(ordering: .relaxed) }

    /// Whether this store rings the database's change bell after each of its commits (see `ChangeBell`).
    private let announcing: Atomic<Bool>
    private let bell: String

    /// `announcesWrites`: ring the database's change bell after each commit, so a server running
    /// on the same file acts on this process's writes at once. For commands, never the server.
    public init(path: String, durability: Durability = .normal, announcesWrites: Bool = false) throws {
        self.path = path
        bell = ChangeBell.path(forDatabase: path)
        announcing = Atomic(announcesWrites)
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(durability == .full ? "FULL" : "NORMAL")")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // The checkpointer copies the log back instead of whichever commit fills it up.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
            // A log grown under a burst of writes shrinks back to this when it is rewound.
            try db.execute(sql: "PRAGMA journal_size_limit = 67108864")
        }
        do {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            // GRDB reads which migrations are applied before taking the write lock, and
            // switching a new file to WAL wants it alone, so two processes opening a new
            // database at once (`baton up` and a CLI command) could both apply the same
            // migration or see "database is locked"; an exclusive lock on a file beside the
            // database makes opening and migrating one step across processes.
            let pool = try MigrationLock.holding(besides: path) {
                try Self.retryingWhileBusy {
                    let pool = try DatabasePool(path: path, configuration: config)
                    try Self.migrator.migrate(pool)
                    return pool
                }
            }
            self.pool = pool
            checkpointer = try WALCheckpointer(path: path) {
                _ = try await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(RESTART)") }
            }
        } catch {
            throw StoreError.cannotOpen(path: path, underlying: error)
        }
    }

    /// Runs `open` again while SQLite answers "database is locked" without waiting for its busy
    /// timeout, for up to 10 s: opening a WAL database can meet another connection's close
    /// (its last checkpoint, or removing the log) in a state where SQLite fails at once instead
    /// of calling the busy handler. Seen once in six openers racing on a new file.
    static func retryingWhileBusy<T>(_ open: () throws -> T) throws -> T {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            do {
                return try open()
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && ContinuousClock.now < deadline {
                usleep(20_000)
            }
        }
    }

    /// An advisory `flock` on `<database>-migrate.lock`: never SQLite's own files, whose POSIX
    /// locks a process loses when it closes any descriptor of them.
    enum MigrationLock {
        static func holding<T>(besides path: String, _ body: () throws -> T) throws -> T {
            let lockPath = path + "-migrate.lock"
            let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw StoreError.migrationLock(path: lockPath, reason: String(cString: strerror(errno)))
            }
            defer { close(descriptor) }
            while flock(descriptor, LOCK_EX) != 0 {
                guard errno == EINTR else {
                    throw StoreError.migrationLock(path: lockPath, reason: String(cString: strerror(errno)))
                }
            }
            defer { flock(descriptor, LOCK_UN) }
            return try body()
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1_core") { db in
            try db.execute(
                sql: """
                    CREATE TABLE pipelines (
                        name TEXT PRIMARY KEY,
                        file TEXT NOT NULL,
                        spec TEXT NOT NULL,
                        paused INTEGER NOT NULL DEFAULT 0,
                        first_seen REAL NOT NULL,
                        last_scheduled_end REAL,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE runs (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        pipeline TEXT NOT NULL,
                        run_key TEXT NOT NULL,
                        logical_date REAL NOT NULL,
                        interval_start REAL NOT NULL,
                        interval_end REAL NOT NULL,
                        trigger TEXT NOT NULL,
                        params TEXT NOT NULL,
                        spec TEXT NOT NULL,
                        owner TEXT,
                        state TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        started_at REAL,
                        ended_at REAL,
                        cancel_requested INTEGER NOT NULL DEFAULT 0,
                        UNIQUE (pipeline, run_key)
                    );
                    CREATE INDEX runs_by_state ON runs (state) WHERE state IN ('queued', 'running');
                    CREATE INDEX runs_by_pipeline ON runs (pipeline, id);
                    CREATE TABLE task_instances (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        task TEXT NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        output TEXT,
                        reason TEXT,
                        started_at REAL,
                        ended_at REAL,
                        retry_at REAL,
                        interruptions INTEGER NOT NULL DEFAULT 0,
                        PRIMARY KEY (run_id, task)
                    );
                    CREATE TABLE attempts (
                        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                        task TEXT NOT NULL,
                        attempt INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        pid INTEGER,
                        process_start_ticks INTEGER,
                        started_at REAL NOT NULL,
                        ended_at REAL,
                        exit_code INTEGER,
                        reason TEXT,
                        log_path TEXT NOT NULL,
                        PRIMARY KEY (run_id, task, attempt)
                    );
                    CREATE INDEX attempts_running ON attempts (state) WHERE state = 'running';
                    """)
        }
        migrator.registerMigration("v2_tokens") { db in
            try db.execute(
                sql: """
                    CREATE TABLE tokens (
                        id TEXT PRIMARY KEY,
                        team TEXT NOT NULL,
                        role TEXT NOT NULL,
                        description TEXT,
                        secret_hash TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        revoked_at REAL,
                        last_used_at REAL
                    );
                    """)
        }
        registerHandoffMigrations(&migrator)
        registerMetricsMigrations(&migrator)
        registerDispatchMigrations(&migrator)
        registerRegistryMigrations(&migrator)
        registerFeatureMigrations(&migrator)
        registerDeploymentMigrations(&migrator)
        return migrator
    }

    static func pipeline(from row: Row) throws -> PipelineRecord {
        PipelineRecord(
            name: row["name"], file: row["file"], spec: try decodeSpec(row["spec"], table: "pipelines"),
            paused: row["paused"], firstSeen: Date(timeIntervalSince1970: row["first_seen"]),
            lastScheduledEnd: date(row["last_scheduled_end"]), updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
    }

    static func run(from row: Row) throws -> RunRecord {
        let triggerText: String = row["trigger"]
        let stateText: String = row["state"]
        guard let trigger = RunTrigger(rawValue: triggerText), let state = RunState(rawValue: stateText) else {
            throw StoreError.corruptRow(table: "runs", detail: "unknown trigger \(triggerText) or state \(stateText)")
        }
        return RunRecord(
            id: row["id"], pipeline: row["pipeline"], runKey: row["run_key"],
            logicalDate: Date(timeIntervalSince1970: row["logical_date"]),
            intervalStart: Date(timeIntervalSince1970: row["interval_start"]),
            intervalEnd: Date(timeIntervalSince1970: row["interval_end"]), trigger: trigger,
            params: try decodeParams(row["params"]),
            spec: try decodeSpec(row["spec"]), state: state,
            createdAt: Date(timeIntervalSince1970: row["created_at"]), startedAt: date(row["started_at"]),
            endedAt: date(row["ended_at"]), cancelRequested: row["cancel_requested"],
            event: try (row["event"] as String?).map { try decode(JSONValue.self, $0, table: "runs") })
    }

    static func taskInstance(from row: Row) throws -> TaskInstanceRecord {
        let stateText: String = row["state"]
        guard let state = TaskState(rawValue: stateText) else {
            throw StoreError.corruptRow(table: "task_instances", detail: "unknown state \(stateText)")
        }
        let outputText: String? = row["output"]
        return TaskInstanceRecord(
            runID: row["run_id"], task: row["task"], state: state, attempts: row["attempts"],
            output: try outputText.map { try decode(JSONValue.self, $0, table: "task_instances") },
            reason: row["reason"], startedAt: date(row["started_at"]), endedAt: date(row["ended_at"]),
            retryAt: date(row["retry_at"]), interruptions: row["interruptions"])
    }

    static func attempt(from row: Row) throws -> AttemptRecord {
        let stateText: String = row["state"]
        guard let state = AttemptState(rawValue: stateText) else {
            throw StoreError.corruptRow(table: "attempts", detail: "unknown state \(stateText)")
        }
        return AttemptRecord(
            runID: row["run_id"], task: row["task"], attempt: row["attempt"], state: state, pid: row["pid"],
            processStartTicks: row["process_start_ticks"], startedAt: Date(timeIntervalSince1970: row["started_at"]),
            endedAt: date(row["ended_at"]), exitCode: row["exit_code"], reason: row["reason"],
            logPath: row["log_path"], queue: row["queue"], pool: row["pool"], workerID: row["worker_id"],
            leaseExpires: date(row["lease_expires"]), queuedAt: date(row["queued_at"]),
            payload: try (row["payload"] as String?).map { try decode(DispatchPayload.self, $0, table: "attempts") },
            output: try (row["output"] as String?).map { try decode(JSONValue.self, $0, table: "attempts") })
    }

    // Synchronous access on purpose: a single-row transaction costs microseconds, less than a
    // hop to GRDB's dispatch queue that the async variants would add on every transition.
    func syncWrite<T>(_ body: (Database) throws -> T) throws -> T {
        defer { noteWrite() }
        return try pool.write(body)
    }
    private func noteWrite() {
        checkpointer.noteWrite()
        if announcing.load(ordering: .relaxed) { ChangeBell.ring(bell) }
    }

    /// Stops or resumes ringing the change bell: a command that runs the engine itself (no
    /// server on this file) would only wake its own engine.
    public func setAnnouncesWrites(_ announces: Bool) { announcing.store(announces, ordering: .relaxed) }
    func syncRead<T>(_ body: (Database) throws -> T) throws -> T { try pool.read(body) }
    /// A read that must see the writer connection's own state, such as `PRAGMA data_version`.
    func syncReadOnWriter<T>(_ body: (Database) throws -> T) throws -> T { try pool.writeWithoutTransaction(body) }
    func syncWriteWithoutTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        defer { noteWrite() }
        return try pool.writeWithoutTransaction(body)
    }

    // MARK: - Pipelines

    public func upsertPipeline(name: String, file: String, spec: PipelineSpec, now: Date) async throws
        -> PipelineRecord
    {
        try syncWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO pipelines (name, file, spec, first_seen, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET file = excluded.file, spec = excluded.spec,
                        updated_at = excluded.updated_at
                    """,
                arguments: [name, file, Self.encode(spec), now.timeIntervalSince1970, now.timeIntervalSince1970])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM pipelines WHERE name = ?", arguments: [name])!
            return try Self.pipeline(from: row)
        }
    }

    public func pipelines() async throws -> [PipelineRecord] {
        try syncRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM pipelines ORDER BY name").map(Self.pipeline(from:))
        }
    }

    public func pipeline(named name: String) async throws -> PipelineRecord? {
        try syncRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM pipelines WHERE name = ?", arguments: [name]).map(
                Self.pipeline(from:))
        }
    }

    public func setPaused(_ paused: Bool, pipeline: String) async throws {
        try syncWrite { db in
            try db.execute(sql: "UPDATE pipelines SET paused = ? WHERE name = ?", arguments: [paused, pipeline])
        }
    }

    public func setLastScheduledEnd(_ end: Date, pipeline: String) async throws {
        try syncWrite { db in
            try db.execute(
                sql: """
                    UPDATE pipelines SET last_scheduled_end = max(coalesce(last_scheduled_end, 0), ?) WHERE name = ?
                    """,
                arguments: [end.timeIntervalSince1970, pipeline])
        }
    }

    // MARK: - Runs

    public func createRun(_ run: RunRecord) async throws -> (run: RunRecord, created: Bool) {
        try syncWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO runs (pipeline, run_key, logical_date, interval_start, interval_end, trigger, params,
                        spec, owner, state, created_at, cancel_requested, event)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
                    ON CONFLICT (pipeline, run_key) DO NOTHING
                    """,
                arguments: [
                    run.pipeline, run.runKey, run.logicalDate.timeIntervalSince1970,
                    run.intervalStart.timeIntervalSince1970, run.intervalEnd.timeIntervalSince1970,
                    run.trigger.rawValue, Self.encode(run.params), Self.encode(run.spec), run.spec.owner,
                    run.state.rawValue, run.createdAt.timeIntervalSince1970, run.event.map(Self.encode),
                ])
            let created = db.changesCount > 0
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM runs WHERE pipeline = ? AND run_key = ?", arguments: [run.pipeline, run.runKey])!
            let stored = try Self.run(from: row)
            if created {
                for task in run.spec.tasks {
                    try db.execute(
                        sql: "INSERT INTO task_instances (run_id, task, state) VALUES (?, ?, 'pending')",
                        arguments: [stored.id, task.name])
                }
            }
            return (stored, created)
        }
    }

    public func run(id: Int64) async throws -> RunRecord? {
        try syncRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [id]).map(Self.run(from:))
        }
    }

    public func runs(_ query: RunQuery) async throws -> [RunRecord] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let pipeline = query.pipeline {
            conditions.append("pipeline = ?")
            arguments += [pipeline]
        }
        if let states = query.states, !states.isEmpty {
            conditions.append("state IN (\(states.map { _ in "?" }.joined(separator: ",")))")
            for state in states { arguments += [state.rawValue] }
        }
        if let before = query.beforeID {
            conditions.append("id < ?")
            arguments += [before]
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        arguments += [query.limit]
        let finalArguments = arguments
        let sql = "SELECT * FROM runs \(whereClause) ORDER BY id DESC LIMIT ?"
        return try syncRead { db in
            try Row.fetchAll(db, sql: sql, arguments: finalArguments).map(Self.run(from:))
        }
    }

    public func unfinishedRuns() async throws -> [RunRecord] {
        try syncRead { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM runs WHERE state IN ('queued', 'running') ORDER BY logical_date, id"
            ).map(Self.run(from:))
        }
    }

    public func taskInstances(runID: Int64) async throws -> [TaskInstanceRecord] {
        try syncRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM task_instances WHERE run_id = ? ORDER BY rowid", arguments: [runID])
                .map(Self.taskInstance(from:))
        }
    }

    public func attempts(runID: Int64, task: String?) async throws -> [AttemptRecord] {
        try syncRead { db in
            if let task {
                return try Row.fetchAll(
                    db, sql: "SELECT * FROM attempts WHERE run_id = ? AND task = ? ORDER BY attempt",
                    arguments: [runID, task]
                ).map(Self.attempt(from:))
            }
            return try Row.fetchAll(
                db, sql: "SELECT * FROM attempts WHERE run_id = ? ORDER BY started_at", arguments: [runID]
            ).map(Self.attempt(from:))
        }
    }

    public func openAttempts() async throws -> [AttemptRecord] {
        try syncRead { db in
            try Row.fetchAll(db, sql: "SELECT * FROM attempts WHERE state IN ('queued', 'running') ORDER BY rowid")
                .map(Self.attempt(from:))
        }
    }

    public func requestCancel(runID: Int64) async throws -> Bool {
        try syncWrite { db in
            try db.execute(
                sql: "UPDATE runs SET cancel_requested = 1 WHERE id = ? AND state IN ('queued', 'running')",
                arguments: [runID])
            return db.changesCount > 0
        }
    }

    public func cancelRequestedRunIDs() async throws -> [Int64] {
        try syncRead { db in
            try Int64.fetchAll(
                db, sql: "SELECT id FROM runs WHERE cancel_requested = 1 AND state IN ('queued', 'running')")
        }
    }

    // MARK: - Transitions

    public func commit(_ changes: [StoreChange]) async throws {
        guard !changes.isEmpty else { return }
        try syncWrite { db in
            for change in changes { try Self.apply(change, db) }
        }
    }

    // Every transition goes through here: statements are compiled once per connection and reused
    // (`cachedStatement`), since parsing SQL cost more than executing it.
    static func apply(_ change: StoreChange, _ db: Database) throws {
        switch change {
        case .runState(let runID, let state, let at):
            let time = at.timeIntervalSince1970
            if state == .running {
                try db.cachedStatement(
                    sql: """
                        UPDATE runs SET state = ?, started_at = coalesce(started_at, ?), ended_at = NULL
                        WHERE id = ?
                        """).execute(
                    arguments: [state.rawValue, time, runID])
            } else if state.isTerminal {
                try db.cachedStatement(
                    sql: "UPDATE runs SET state = ?, ended_at = ? WHERE id = ?").execute(arguments: [state.rawValue, time, runID])
            } else {
                try db.cachedStatement(sql: "UPDATE runs SET state = ? WHERE id = ?").execute(arguments: [state.rawValue, runID])
            }
        case .taskState(let runID, let task, let state, let attempts, let interruptions, let output, let reason, let retryAt, let at):
            let time = at.timeIntervalSince1970
            try db.cachedStatement(
                sql: """
                    UPDATE task_instances SET state = ?, attempts = ?, interruptions = ?, output = ?, reason = ?, retry_at = ?,
                        started_at = CASE WHEN ? = 'running' THEN coalesce(started_at, ?) ELSE started_at END,
                        ended_at = CASE WHEN ? THEN ? ELSE NULL END
                    WHERE run_id = ? AND task = ?
                    """).execute(
                arguments: [
                    state.rawValue, attempts, interruptions, output.map(Self.encode), reason, retryAt?.timeIntervalSince1970,
                    state.rawValue, time, state.isTerminal, time, runID, task,
                ])
        case .datasetUpdate(let update):
            try db.cachedStatement(
                sql: """
                    INSERT INTO dataset_updates (dataset, run_id, pipeline, task, schema_version, metadata, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """).execute(
                arguments: [
                    update.dataset, update.runID, update.pipeline, update.task, update.schemaVersion,
                    Self.encode(update.metadata), update.updatedAt.timeIntervalSince1970,
                ])
            if let runID = update.runID, let task = update.task {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO run_datasets (run_id, task, dataset, direction, update_id) VALUES (?, ?, ?, 'write', ?)
                        ON CONFLICT (run_id, task, dataset, direction) DO UPDATE SET update_id = excluded.update_id
                        """).execute(
                    arguments: [runID, task, update.dataset, db.lastInsertedRowID])
            }
        case .event(let event):
            try db.cachedStatement(
                sql: """
                    INSERT INTO events (id, name, payload, source, created_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (id) DO NOTHING
                    """).execute(
                arguments: [event.id, event.name, Self.encode(event.payload), event.source, event.createdAt.timeIntervalSince1970])
        case .runCleared(let runID):
            try db.cachedStatement(sql: "UPDATE runs SET cancel_requested = 0 WHERE id = ?").execute(arguments: [runID])
        case .attemptStarted(let attempt):
            try db.cachedStatement(
                sql: """
                    INSERT INTO attempts (run_id, task, attempt, state, pid, process_start_ticks, started_at, log_path,
                        queue, pool, worker_id, lease_expires, queued_at, payload)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (run_id, task, attempt) DO NOTHING
                    """).execute(
                arguments: [
                    attempt.runID, attempt.task, attempt.attempt, attempt.state.rawValue, attempt.pid,
                    attempt.processStartTicks, attempt.startedAt.timeIntervalSince1970, attempt.logPath,
                    attempt.queue, attempt.pool, attempt.workerID, attempt.leaseExpires?.timeIntervalSince1970,
                    attempt.queuedAt?.timeIntervalSince1970, attempt.payload.map(Self.encode),
                ])
        case .attemptProcess(let runID, let task, let attempt, let pid, let ticks):
            try db.cachedStatement(
                sql: "UPDATE attempts SET pid = ?, process_start_ticks = ? WHERE run_id = ? AND task = ? AND attempt = ?"
            ).execute(arguments: [pid, ticks, runID, task, attempt])
        case .attemptFinished(let runID, let task, let attempt, let state, let exitCode, let reason, let at):
            try db.cachedStatement(
                sql: """
                    UPDATE attempts SET state = ?, exit_code = ?, reason = ?, ended_at = ?, payload = NULL
                    WHERE run_id = ? AND task = ? AND attempt = ? AND state IN ('queued', 'running')
                    """).execute(
                arguments: [state.rawValue, exitCode, reason, at.timeIntervalSince1970, runID, task, attempt])
        }
    }

    // MARK: - Tokens

    static func token(from row: Row) throws -> TokenRecord {
        let roleText: String = row["role"]
        guard let role = TokenRole(rawValue: roleText) else {
            throw StoreError.corruptRow(table: "tokens", detail: "unknown role \(roleText)")
        }
        return TokenRecord(
            id: row["id"], team: row["team"], role: role, description: row["description"],
            secretHash: row["secret_hash"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            revokedAt: date(row["revoked_at"]), lastUsedAt: date(row["last_used_at"]))
    }

    public func createToken(_ token: TokenRecord) async throws {
        try syncWrite { db in
            try db.cachedStatement(
                sql: """
                    INSERT INTO tokens (id, team, role, description, secret_hash, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """).execute(
                arguments: [
                    token.id, token.team, token.role.rawValue, token.description, token.secretHash,
                    token.createdAt.timeIntervalSince1970,
                ])
        }
    }

    public func tokens() async throws -> [TokenRecord] {
        try syncRead { db in try Row.fetchAll(db, sql: "SELECT * FROM tokens ORDER BY created_at").map(Self.token(from:)) }
    }

    public func token(id: String) async throws -> TokenRecord? {
        try syncRead { db in
            try Row.fetchOne(db, sql: "SELECT * FROM tokens WHERE id = ?", arguments: [id]).map(Self.token(from:))
        }
    }

    public func revokeToken(id: String, at: Date) async throws -> Bool {
        try syncWrite { db in
            try db.execute(
                sql: "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                arguments: [at.timeIntervalSince1970, id])
            return db.changesCount > 0
        }
    }

    public func markTokenUsed(id: String, at: Date) async throws {
        try syncWrite { db in
            try db.execute(
                sql: "UPDATE tokens SET last_used_at = ? WHERE id = ?", arguments: [at.timeIntervalSince1970, id])
        }
    }

    public func externalChangeToken() async throws -> Int64 {
        // On the writer's connection (the counter moves for other connections' commits only),
        // but not through `syncWriteWithoutTransaction`: nothing is written, and noting a write
        // woke the checkpointer 50 ms after every check, ten wake-ups a second on an idle server.
        try syncReadOnWriter { db in
            try Int64.fetchOne(db, sql: "PRAGMA data_version") ?? 0
        }
    }

    public func externalChangeHints() throws -> AsyncStream<Void>? {
        try ChangeBell.listen(ChangeBell.path(forDatabase: path))
    }

    public func ping() async throws {
        _ = try syncRead { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }
}
