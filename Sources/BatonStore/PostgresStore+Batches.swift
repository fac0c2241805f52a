import BatonCore
import Foundation
import PostgresNIO

/// A one-dimensional array parameter whose elements may be NULL, which postgres-nio's own
/// array encoding cannot carry. Written in PostgreSQL's binary array format.
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable {
    var elements: [Element?]

    init(_ elements: [Element?]) { self.elements = elements }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)  // dimensions
        buffer.writeInteger(elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)  // has NULLs
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !elements.isEmpty else { return }
        buffer.writeInteger(Int32(elements.count))
        buffer.writeInteger(1, as: Int32.self)  // lower bound
        for element in elements {
            guard let element else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            let lengthIndex = buffer.writerIndex
            buffer.writeInteger(0, as: Int32.self)
            let start = buffer.writerIndex
            element.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - start), at: lengthIndex)
        }
    }
}

/// How a commit's changes become statements.
///
/// Each change writes one table and reads no other, so changes to different tables commute:
/// they are grouped by table (order kept within a table), and runs of task updates or attempt
/// inserts become one statement each. Queuing a fan-out of 10,000 tasks is then two statements
/// instead of 20,000 round trips.
extension PostgresStore {
    enum CommitStep {
        case single(StoreChange)
        case taskStates([StoreChange])
        case attemptInserts([AttemptRecord])
    }

    static func plan(_ changes: [StoreChange]) -> [CommitStep] {
        var tables: [String] = []
        var byTable: [String: [StoreChange]] = [:]
        for change in changes {
            let table = Self.table(of: change)
            if byTable[table] == nil { tables.append(table) }
            byTable[table, default: []].append(change)
        }
        var steps: [CommitStep] = []
        for table in tables {
            var tasks: [StoreChange] = []
            var taskKeys: Set<String> = []
            var attempts: [AttemptRecord] = []
            var attemptKeys: Set<AttemptKey> = []
            func flush() {
                if tasks.count == 1 { steps.append(.single(tasks[0])) } else if !tasks.isEmpty { steps.append(.taskStates(tasks)) }
                if attempts.count == 1 {
                    steps.append(.single(.attemptStarted(attempts[0])))
                } else if !attempts.isEmpty {
                    steps.append(.attemptInserts(attempts))
                }
                tasks = []
                taskKeys = []
                attempts = []
                attemptKeys = []
            }
            for change in byTable[table] ?? [] {
                switch change {
                case .taskState(let runID, let task, _, _, _, _, _, _, _):
                    // A second update of one task in a batch could not see the first one's
                    // started_at: it starts a new batch.
                    if !attempts.isEmpty || !taskKeys.insert("\(runID)/\(task)").inserted {
                        flush()
                        taskKeys.insert("\(runID)/\(task)")
                    }
                    tasks.append(change)
                case .attemptStarted(let attempt):
                    if !tasks.isEmpty || !attemptKeys.insert(attempt.key).inserted {
                        flush()
                        attemptKeys.insert(attempt.key)
                    }
                    attempts.append(attempt)
                default:
                    flush()
                    steps.append(.single(change))
                }
            }
            flush()
        }
        return steps
    }

    static func table(of change: StoreChange) -> String {
        switch change {
        case .runState, .runCleared: return "runs"
        case .taskState: return "task_instances"
        case .attemptStarted, .attemptProcess, .attemptFinished: return "attempts"
        case .datasetUpdate: return "dataset_updates"
        case .event: return "events"
        }
    }

    /// Whether a step is one statement, so a commit of it alone needs no transaction.
    static func isOneStatement(_ step: CommitStep) -> Bool {
        switch step {
        case .taskStates, .attemptInserts: return true
        case .single(let change):
            switch change {
            case .datasetUpdate, .event: return false
            default: return true
            }
        }
    }

    func run(_ step: CommitStep, on connection: PostgresConnection?) async throws {
        switch step {
        case .single(let change):
            if let connection {
                try await apply(change, on: connection)
            } else if Self.isOneStatement(step) {
                do {
                    try await client.withConnection { connection in try await apply(change, on: connection) }
                } catch {
                    throw queryError(error, "(connection)")
                }
            } else {
                try await transaction { connection in try await apply(change, on: connection) }
            }
        case .taskStates(let changes):
            try await execute(Self.updateTasks(changes), on: connection)
        case .attemptInserts(let attempts):
            try await execute(Self.insertAttempts(attempts), on: connection)
        }
    }

    func execute(_ query: PostgresQuery, on connection: PostgresConnection?) async throws {
        if let connection { try await fetch(query, on: connection) } else { try await fetch(query) }
    }

    /// One UPDATE for many `.taskState` changes of distinct tasks, with the single update's rules.
    static func updateTasks(_ changes: [StoreChange]) -> PostgresQuery {
        var runIDs: [Int64] = []
        var tasks: [String] = []
        var states: [String] = []
        var attempts: [Int] = []
        var interruptions: [Int] = []
        var outputs: [String?] = []
        var reasons: [String?] = []
        var retries: [Double?] = []
        var times: [Double] = []
        var terminal: [Bool] = []
        for change in changes {
            guard case .taskState(let runID, let task, let state, let attempt, let interrupted, let output, let reason, let retryAt, let at) = change
            else { continue }
            runIDs.append(runID)
            tasks.append(task)
            states.append(state.rawValue)
            attempts.append(attempt)
            interruptions.append(interrupted)
            outputs.append(output.map { encode($0) })
            reasons.append(reason)
            retries.append(retryAt?.timeIntervalSince1970)
            times.append(at.timeIntervalSince1970)
            terminal.append(state.isTerminal)
        }
        return """
            UPDATE task_instances t SET state = u.state, attempts = u.attempts, interruptions = u.interruptions,
                output = u.output, reason = u.reason, retry_at = u.retry_at,
                started_at = CASE WHEN u.state = 'running' THEN coalesce(t.started_at, u.at) ELSE t.started_at END,
                ended_at = CASE WHEN u.terminal THEN u.at ELSE NULL END
            FROM unnest(\(runIDs)::int8[], \(tasks)::text[], \(states)::text[], \(attempts)::int8[], \(interruptions)::int8[],
                \(NullableArray(outputs))::text[], \(NullableArray(reasons))::text[], \(NullableArray(retries))::float8[],
                \(times)::float8[], \(terminal)::bool[])
                AS u(run_id, task, state, attempts, interruptions, output, reason, retry_at, at, terminal)
            WHERE t.run_id = u.run_id AND t.task = u.task
            """
    }

    /// One INSERT for many `.attemptStarted` changes, in their order (ids follow it).
    static func insertAttempts(_ attempts: [AttemptRecord]) -> PostgresQuery {
        """
        INSERT INTO attempts (run_id, task, attempt, state, pid, process_start_ticks, started_at, log_path,
            queue, pool, worker_id, lease_expires, queued_at, payload)
        SELECT run_id, task, attempt, state, pid, process_start_ticks, started_at, log_path,
            queue, pool, worker_id, lease_expires, queued_at, payload
        FROM unnest(\(attempts.map(\.runID))::int8[], \(attempts.map(\.task))::text[], \(attempts.map(\.attempt))::int8[],
            \(attempts.map(\.state.rawValue))::text[], \(NullableArray(attempts.map(\.pid)))::int4[],
            \(NullableArray(attempts.map(\.processStartTicks)))::int8[], \(attempts.map(\.startedAt.timeIntervalSince1970))::float8[],
            \(attempts.map(\.logPath))::text[], \(attempts.map(\.queue))::text[], \(NullableArray(attempts.map(\.pool)))::text[],
            \(NullableArray(attempts.map(\.workerID)))::text[],
            \(NullableArray(attempts.map { $0.leaseExpires?.timeIntervalSince1970 }))::float8[],
            \(NullableArray(attempts.map { $0.queuedAt?.timeIntervalSince1970 }))::float8[],
            \(NullableArray(attempts.map { $0.payload.map { encode($0) } }))::text[])
            WITH ORDINALITY AS a(run_id, task, attempt, state, pid, process_start_ticks, started_at, log_path,
                queue, pool, worker_id, lease_expires, queued_at, payload, position)
        ORDER BY position
        ON CONFLICT (run_id, task, attempt) DO NOTHING
        """
    }
}
