import BatonCore
import Foundation
import PostgresNIO

// Pipelines, runs, transitions and tokens; each method mirrors its `SQLiteStore` namesake.
extension PostgresStore {
    // MARK: - Records

    static func pipeline(from row: PostgresRow) throws -> PipelineRecord {
        let row = PostgresColumns(row, table: "pipelines")
        return PipelineRecord(
            name: try row["name"], file: try row["file"], spec: try decodeSpec(try row["spec"], table: "pipelines"),
            paused: try row["paused"], firstSeen: Date(timeIntervalSince1970: try row["first_seen"]),
            lastScheduledEnd: date(try row["last_scheduled_end"]), updatedAt: Date(timeIntervalSince1970: try row["updated_at"]))
    }

    static func run(from row: PostgresRow) throws -> RunRecord {
        let row = PostgresColumns(row, table: "runs")
        let triggerText: String = try row["trigger"]
        let stateText: String = try row["state"]
        guard let trigger = RunTrigger(rawValue: triggerText), let state = RunState(rawValue: stateText) else {
            throw StoreError.corruptRow(table: "runs", detail: "unknown trigger \(triggerText) or state \(stateText)")
        }
        let eventText: String? = try row["event"]
        return RunRecord(
            id: try row["id"], pipeline: try row["pipeline"], runKey: try row["run_key"],
            logicalDate: Date(timeIntervalSince1970: try row["logical_date"]),
            intervalStart: Date(timeIntervalSince1970: try row["interval_start"]),
            intervalEnd: Date(timeIntervalSince1970: try row["interval_end"]), trigger: trigger,
            params: try decodeParams(try row["params"]), spec: try decodeSpec(try row["spec"]), state: state,
            createdAt: Date(timeIntervalSince1970: try row["created_at"]), startedAt: date(try row["started_at"]),
            endedAt: date(try row["ended_at"]), cancelRequested: try row["cancel_requested"],
            event: try eventText.map { try decode(JSONValue.self, $0, table: "runs") })
    }

    static func taskInstance(from row: PostgresRow) throws -> TaskInstanceRecord {
        let row = PostgresColumns(row, table: "task_instances")
        let stateText: String = try row["state"]
        guard let state = TaskState(rawValue: stateText) else {
            throw StoreError.corruptRow(table: "task_instances", detail: "unknown state \(stateText)")
        }
        let outputText: String? = try row["output"]
        return TaskInstanceRecord(
            runID: try row["run_id"], task: try row["task"], state: state, attempts: try row["attempts"],
            output: try outputText.map { try decode(JSONValue.self, $0, table: "task_instances") },
            reason: try row["reason"], startedAt: date(try row["started_at"]), endedAt: date(try row["ended_at"]),
            retryAt: date(try row["retry_at"]), interruptions: try row["interruptions"])
    }

    static func attempt(from row: PostgresRow) throws -> AttemptRecord {
        let row = PostgresColumns(row, table: "attempts")
        let stateText: String = try row["state"]
        guard let state = AttemptState(rawValue: stateText) else {
            throw StoreError.corruptRow(table: "attempts", detail: "unknown state \(stateText)")
        }
        return AttemptRecord(
            runID: try row["run_id"], task: try row["task"], attempt: try row["attempt"], state: state, pid: try row["pid"],
            processStartTicks: try row["process_start_ticks"], startedAt: Date(timeIntervalSince1970: try row["started_at"]),
            endedAt: date(try row["ended_at"]), exitCode: try row["exit_code"], reason: try row["reason"],
            logPath: try row["log_path"], queue: try row["queue"], pool: try row["pool"], workerID: try row["worker_id"],
            leaseExpires: date(try row["lease_expires"]), queuedAt: date(try row["queued_at"]),
            payload: try (try row["payload"] as String?).map { try decode(DispatchPayload.self, $0, table: "attempts") },
            output: try (try row["output"] as String?).map { try decode(JSONValue.self, $0, table: "attempts") })
    }

    static func token(from row: PostgresRow) throws -> TokenRecord {
        let row = PostgresColumns(row, table: "tokens")
        let roleText: String = try row["role"]
        guard let role = TokenRole(rawValue: roleText) else {
            throw StoreError.corruptRow(table: "tokens", detail: "unknown role \(roleText)")
        }
        return TokenRecord(
            id: try row["id"], team: try row["team"], role: role, description: try row["description"],
            secretHash: try row["secret_hash"], createdAt: Date(timeIntervalSince1970: try row["created_at"]),
            revokedAt: date(try row["revoked_at"]), lastUsedAt: date(try row["last_used_at"]))
    }

    // MARK: - Pipelines

    public func upsertPipeline(name: String, file: String, spec: PipelineSpec, now: Date) async throws -> PipelineRecord {
        let time = now.timeIntervalSince1970
        let rows = try await fetch(
            """
            INSERT INTO pipelines (name, file, spec, first_seen, updated_at)
            VALUES (\(name), \(file), \(Self.encode(spec)), \(time), \(time))
            ON CONFLICT (name) DO UPDATE SET file = excluded.file, spec = excluded.spec, updated_at = excluded.updated_at
            RETURNING *
            """)
        guard let row = rows.first else { throw StoreError.corruptRow(table: "pipelines", detail: "upsert of \(name) returned no row") }
        return try Self.pipeline(from: row)
    }

    public func pipelines() async throws -> [PipelineRecord] {
        try await fetch("SELECT * FROM pipelines ORDER BY name").map(Self.pipeline(from:))
    }

    public func pipeline(named name: String) async throws -> PipelineRecord? {
        try await fetch("SELECT * FROM pipelines WHERE name = \(name)").first.map(Self.pipeline(from:))
    }

    public func setPaused(_ paused: Bool, pipeline: String) async throws {
        try await fetch("UPDATE pipelines SET paused = \(paused) WHERE name = \(pipeline)")
        await bumpChangeCounter()
    }

    public func setLastScheduledEnd(_ end: Date, pipeline: String) async throws {
        try await fetch(
            """
            UPDATE pipelines SET last_scheduled_end = greatest(coalesce(last_scheduled_end, 0), \(end.timeIntervalSince1970))
            WHERE name = \(pipeline)
            """)
    }

    // MARK: - Runs

    public func createRun(_ run: RunRecord) async throws -> (run: RunRecord, created: Bool) {
        let params = Self.encode(run.params)
        let spec = Self.encode(run.spec)
        let event = run.event.map { Self.encode($0) }
        let tasks = run.spec.tasks.map(\.name)
        let result = try await transaction { connection -> (run: RunRecord, created: Bool) in
            // A concurrent creator of the same key makes this wait for its commit, then do nothing.
            let inserted = try await fetch(
                """
                INSERT INTO runs (pipeline, run_key, logical_date, interval_start, interval_end, trigger, params,
                    spec, owner, state, created_at, cancel_requested, event)
                VALUES (\(run.pipeline), \(run.runKey), \(run.logicalDate.timeIntervalSince1970),
                    \(run.intervalStart.timeIntervalSince1970), \(run.intervalEnd.timeIntervalSince1970),
                    \(run.trigger.rawValue), \(params), \(spec), \(run.spec.owner), \(run.state.rawValue),
                    \(run.createdAt.timeIntervalSince1970), false, \(event))
                ON CONFLICT (pipeline, run_key) DO NOTHING
                RETURNING *
                """, on: connection)
            if let row = inserted.first {
                let stored = try Self.run(from: row)
                try await fetch(
                    """
                    INSERT INTO task_instances (run_id, task, state)
                    SELECT \(stored.id), task, 'pending' FROM unnest(\(tasks)::text[]) WITH ORDINALITY AS t(task, position)
                    ORDER BY position
                    """, on: connection)
                return (stored, true)
            }
            let existing = try await fetch(
                "SELECT * FROM runs WHERE pipeline = \(run.pipeline) AND run_key = \(run.runKey)", on: connection)
            guard let row = existing.first else {
                throw StoreError.corruptRow(table: "runs", detail: "run \(run.pipeline)/\(run.runKey) neither inserted nor found")
            }
            return (try Self.run(from: row), false)
        }
        if result.created { await bumpChangeCounter() }
        return result
    }

    public func run(id: Int64) async throws -> RunRecord? {
        try await fetch("SELECT * FROM runs WHERE id = \(id)").first.map(Self.run(from:))
    }

    public func runs(_ query: RunQuery) async throws -> [RunRecord] {
        var conditions: [String] = []
        var binds = PostgresBindings()
        if let pipeline = query.pipeline {
            binds.append(pipeline)
            conditions.append("pipeline = $\(binds.count)")
        }
        if let states = query.states, !states.isEmpty {
            binds.append(states.map(\.rawValue))
            conditions.append("state = ANY($\(binds.count))")
        }
        if let before = query.beforeID {
            binds.append(before)
            conditions.append("id < $\(binds.count)")
        }
        binds.append(query.limit)
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM runs \(whereClause) ORDER BY id DESC LIMIT $\(binds.count)"
        return try await fetch(PostgresQuery(unsafeSQL: sql, binds: binds)).map(Self.run(from:))
    }

    public func unfinishedRuns() async throws -> [RunRecord] {
        try await fetch("SELECT * FROM runs WHERE state IN ('queued', 'running') ORDER BY logical_date, id").map(Self.run(from:))
    }

    public func taskInstances(runID: Int64) async throws -> [TaskInstanceRecord] {
        try await fetch("SELECT * FROM task_instances WHERE run_id = \(runID) ORDER BY seq").map(Self.taskInstance(from:))
    }

    public func attempts(runID: Int64, task: String?) async throws -> [AttemptRecord] {
        if let task {
            return try await fetch("SELECT * FROM attempts WHERE run_id = \(runID) AND task = \(task) ORDER BY attempt")
                .map(Self.attempt(from:))
        }
        return try await fetch("SELECT * FROM attempts WHERE run_id = \(runID) ORDER BY started_at, task, attempt")
            .map(Self.attempt(from:))
    }

    public func openAttempts() async throws -> [AttemptRecord] {
        try await fetch("SELECT * FROM attempts WHERE state IN ('queued', 'running') ORDER BY seq").map(Self.attempt(from:))
    }

    public func requestCancel(runID: Int64) async throws -> Bool {
        let rows = try await fetch(
            "UPDATE runs SET cancel_requested = true WHERE id = \(runID) AND state IN ('queued', 'running') RETURNING id")
        guard !rows.isEmpty else { return false }
        await bumpChangeCounter()
        return true
    }

    public func cancelRequestedRunIDs() async throws -> [Int64] {
        try await fetch("SELECT id FROM runs WHERE cancel_requested AND state IN ('queued', 'running') ORDER BY id")
            .map { try $0.decode(Int64.self) }
    }

    // MARK: - Transitions

    public func commit(_ changes: [StoreChange]) async throws {
        guard !changes.isEmpty else { return }
        let steps = Self.plan(changes)
        if steps.count == 1, Self.isOneStatement(steps[0]) {
            // One statement is atomic on its own: no BEGIN and COMMIT round trips.
            try await run(steps[0], on: nil)
        } else {
            try await transaction { connection in
                for step in steps { try await run(step, on: connection) }
            }
        }
        // Other processes rescan runs, cancellations, pauses and events on a bump, never attempts
        // (as finishAttempt): a per-task pid record must not cost another round trip.
        if !changes.allSatisfy({ Self.table(of: $0) == "attempts" }) { await bumpChangeCounter() }
    }

    func apply(_ change: StoreChange, on connection: PostgresConnection) async throws {
        switch change {
        case .runState(let runID, let state, let at):
            let time = at.timeIntervalSince1970
            if state == .running {
                try await fetch(
                    """
                    UPDATE runs SET state = \(state.rawValue), started_at = coalesce(started_at, \(time)), ended_at = NULL
                    WHERE id = \(runID)
                    """, on: connection)
            } else if state.isTerminal {
                try await fetch(
                    "UPDATE runs SET state = \(state.rawValue), ended_at = \(time) WHERE id = \(runID)", on: connection)
            } else {
                try await fetch("UPDATE runs SET state = \(state.rawValue) WHERE id = \(runID)", on: connection)
            }
        case .taskState(let runID, let task, let state, let attempts, let interruptions, let output, let reason, let retryAt, let at):
            let time = at.timeIntervalSince1970
            let outputText = output.map { Self.encode($0) }
            try await fetch(
                """
                UPDATE task_instances SET state = \(state.rawValue), attempts = \(attempts), interruptions = \(interruptions),
                    output = \(outputText), reason = \(reason), retry_at = \(retryAt?.timeIntervalSince1970),
                    started_at = CASE WHEN \(state == .running) THEN coalesce(started_at, \(time)) ELSE started_at END,
                    ended_at = CASE WHEN \(state.isTerminal) THEN \(time) ELSE NULL END
                WHERE run_id = \(runID) AND task = \(task)
                """, on: connection)
        case .datasetUpdate(let update):
            let updateID = try Self.insertedID(
                try await fetch(Self.insertion(of: update), on: connection), table: "dataset_updates")
            if let runID = update.runID, let task = update.task {
                try await fetch(
                    """
                    INSERT INTO run_datasets (run_id, task, dataset, direction, update_id)
                    VALUES (\(runID), \(task), \(update.dataset), 'write', \(updateID))
                    ON CONFLICT (run_id, task, dataset, direction) DO UPDATE SET update_id = excluded.update_id
                    """, on: connection)
            }
        case .event(let event):
            _ = try await insertEvent(event, on: connection)
        case .runCleared(let runID):
            try await fetch("UPDATE runs SET cancel_requested = false WHERE id = \(runID)", on: connection)
        case .attemptStarted(let attempt):
            try await fetch(
                """
                INSERT INTO attempts (run_id, task, attempt, state, pid, process_start_ticks, started_at, log_path,
                    queue, pool, worker_id, lease_expires, queued_at, payload)
                VALUES (\(attempt.runID), \(attempt.task), \(attempt.attempt), \(attempt.state.rawValue), \(attempt.pid),
                    \(attempt.processStartTicks), \(attempt.startedAt.timeIntervalSince1970), \(attempt.logPath),
                    \(attempt.queue), \(attempt.pool), \(attempt.workerID), \(attempt.leaseExpires?.timeIntervalSince1970),
                    \(attempt.queuedAt?.timeIntervalSince1970), \(attempt.payload.map { Self.encode($0) }))
                ON CONFLICT (run_id, task, attempt) DO NOTHING
                """, on: connection)
        case .attemptProcess(let runID, let task, let attempt, let pid, let ticks):
            try await fetch(
                """
                UPDATE attempts SET pid = \(pid), process_start_ticks = \(ticks)
                WHERE run_id = \(runID) AND task = \(task) AND attempt = \(attempt)
                """, on: connection)
        case .attemptFinished(let runID, let task, let attempt, let state, let exitCode, let reason, let at):
            try await fetch(
                """
                UPDATE attempts SET state = \(state.rawValue), exit_code = \(exitCode), reason = \(reason),
                    ended_at = \(at.timeIntervalSince1970), payload = NULL
                WHERE run_id = \(runID) AND task = \(task) AND attempt = \(attempt) AND state IN ('queued', 'running')
                """, on: connection)
        }
    }

    // MARK: - Tokens

    public func createToken(_ token: TokenRecord) async throws {
        try await fetch(
            """
            INSERT INTO tokens (id, team, role, description, secret_hash, created_at)
            VALUES (\(token.id), \(token.team), \(token.role.rawValue), \(token.description), \(token.secretHash),
                \(token.createdAt.timeIntervalSince1970))
            """)
    }

    public func tokens() async throws -> [TokenRecord] {
        try await fetch("SELECT * FROM tokens ORDER BY created_at").map(Self.token(from:))
    }

    public func token(id: String) async throws -> TokenRecord? {
        try await fetch("SELECT * FROM tokens WHERE id = \(id)").first.map(Self.token(from:))
    }

    public func revokeToken(id: String, at: Date) async throws -> Bool {
        let rows = try await fetch(
            "UPDATE tokens SET revoked_at = \(at.timeIntervalSince1970) WHERE id = \(id) AND revoked_at IS NULL RETURNING id")
        return !rows.isEmpty
    }

    public func markTokenUsed(id: String, at: Date) async throws {
        try await fetch("UPDATE tokens SET last_used_at = \(at.timeIntervalSince1970) WHERE id = \(id)")
    }
}
