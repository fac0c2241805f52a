import BatonCore
import BatonStore
import BatonWorker
import Foundation
import Logging

/// How a broken data contract ends an attempt that never started its process.
struct ContractOutcome: Sendable {
    var event: RunStateMachine.Event
    var attemptState: AttemptState
    var reason: String
}

/// Why an event was refused.
public struct EventError: Error, Sendable, CustomStringConvertible {
    public var field: String
    public var message: String
    public var description: String { message }
}

/// The result of publishing an event.
public struct PublishedEvent: Sendable {
    public var event: EventRecord
    /// False when an event with the same id was published before (nothing happened again).
    public var created: Bool
    /// Runs this event started (empty for a duplicate).
    public var runIDs: [Int64]
}

extension Engine {
    static let maxEventPayloadBytes = 64 * 1024
    static let eventCursorKey = "events.cursor"

    /// Stores an event (once per id) and starts a run of every pipeline with a matching trigger.
    public func publish(name: String, payload: JSONValue, id: String? = nil, source: String? = nil) async throws
        -> PublishedEvent
    {
        try Self.validateEvent(name: name, payload: payload, id: id, source: source)
        let record = EventRecord(
            id: id ?? UUID().uuidString.lowercased(), name: name, payload: payload, source: source, createdAt: clock())
        // Registered before the event is stored: from then on any pass may take it (one under
        // way for another publisher, or for a task's dataset update), and records its runs here.
        publishWaits[record.id, default: 0] += 1
        defer {
            publishWaits[record.id, default: 1] -= 1
            if publishWaits[record.id] == 0 {
                publishWaits[record.id] = nil
                publishedRuns[record.id] = nil
            }
        }
        let (stored, created) = try await store.publishEvent(record)
        guard created else { return PublishedEvent(event: stored, created: false, runIDs: []) }
        if processingEvents {
            // The pass under way runs again for this event before it ends (`eventsPending`).
            eventsPending = true
            await withCheckedContinuation { eventPassWaiters.append($0) }
        } else {
            await processEvents()
        }
        return PublishedEvent(event: stored, created: true, runIDs: publishedRuns[stored.id] ?? [])
    }

    /// Checks an event before it is stored: name, id and source lengths, an object payload of bounded size.
    public static func validateEvent(name: String, payload: JSONValue, id: String?, source: String?) throws {
        // One rule for publishing and for `triggers` in pipeline files, so every valid trigger can fire.
        guard EventTriggerSpec.isValidEventName(name) else {
            throw EventError(
                field: "name",
                message: "event name '\(name)' must be 1-200 letters, digits, '.', '_', '-' or ':', like data.customers.updated")
        }
        if let id, id.isEmpty || id.count > 200 {
            throw EventError(field: "id", message: "an event id must be 1-200 characters")
        }
        if let source, source.count > 200 {
            throw EventError(field: "source", message: "an event source must be at most 200 characters")
        }
        guard case .object = payload else {
            throw EventError(field: "payload", message: "the payload must be a JSON object, got a \(payload.kindName)")
        }
        let size = payload.compactJSON.utf8.count
        if size > maxEventPayloadBytes {
            throw EventError(field: "payload", message: "the payload is \(size) bytes, over the \(maxEventPayloadBytes)-byte limit")
        }
    }

    /// Starts runs for events not processed yet, in order. Runs are keyed by event id, so an
    /// event processed twice (after a crash, or by two callers) still starts one run per pipeline.
    /// Returns the runs started per event id.
    @discardableResult
    func processEvents() async -> [String: [Int64]] {
        if processingEvents {
            eventsPending = true
            return [:]
        }
        processingEvents = true
        defer {
            processingEvents = false
            let waiters = eventPassWaiters
            eventPassWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        var started: [String: [Int64]] = [:]
        repeat {
            eventsPending = false
            do {
                if eventCursor == nil { eventCursor = Int64(try await store.meta(Self.eventCursorKey) ?? "") ?? 0 }
                let batch = try await store.events(after: eventCursor ?? 0, limit: 500)
                for event in batch {
                    started[event.id] = await startRuns(for: event)
                    if publishWaits[event.id] != nil { publishedRuns[event.id] = started[event.id] }
                    wakeWaiters(for: event)
                }
                if let last = batch.last {
                    eventCursor = last.seq
                    try await store.setMeta(Self.eventCursorKey, String(last.seq))
                }
                if batch.count == 500 { eventsPending = true }
            } catch {
                logger.error("could not process events: \(error)")
                return started
            }
        } while eventsPending
        return started
    }

    private func startRuns(for event: EventRecord) async -> [Int64] {
        var ids: [Int64] = []
        for name in pipelines.keys.sorted() {
            guard let record = pipelines[name], !record.paused,
                record.spec.triggers.contains(where: { $0.matches(name: event.name, payload: event.payload) })
            else { continue }
            do {
                let (run, created) = try await store.createRun(RunFactory.triggered(record.spec, by: event, now: clock()))
                ids.append(run.id)
                if created {
                    logger.info("event \(event.name) (\(event.id)) started run \(run.id) of \(name)")
                    await admit(run)
                }
            } catch {
                logger.error("could not start \(name) for event \(event.id): \(error)")
            }
        }
        return ids
    }

    /// A fresh update of a dataset wakes the tasks waiting for it at once instead of at their
    /// next timed check.
    private func wakeWaiters(for event: EventRecord) {
        guard let dataset = DatasetSpec.dataset(ofUpdateEvent: event.name) else { return }
        for key in datasetWaiters.removeValue(forKey: dataset) ?? [] {
            work.yield(.timer(delay: 0, .retry(key)))
        }
        // An open SLA miss closes as soon as the fresh data is there.
        work.yield(.timer(delay: 0, .slaCheck(generation: slaGeneration)))
    }

    // MARK: - Datasets

    /// The store changes that record a producing task's dataset updates and announce them.
    func datasetChanges(run: RunRecord, task: TaskSpec, output: JSONValue?) -> [StoreChange] {
        let now = clock()
        var metadata: [String: JSONValue] = [:]
        if case .object(let members) = output { metadata = members }
        var changes: [StoreChange] = []
        for name in task.produces {
            var schema = datasets[name]?.schemaVersion
            if case .string(let declared) = metadata["schema_version"] { schema = declared }
            let update = DatasetUpdateRecord(
                dataset: name, runID: run.id, pipeline: run.pipeline, task: task.name, schemaVersion: schema,
                metadata: metadata, updatedAt: now)
            changes.append(.datasetUpdate(update))
            var payload = metadata
            payload["dataset"] = .string(name)
            payload["run_id"] = .number(Double(run.id))
            payload["pipeline"] = .string(run.pipeline)
            payload["task"] = .string(task.name)
            payload["updated_at"] = .string(DataInterval.iso(now))
            if let schema { payload["schema_version"] = .string(schema) }
            changes.append(
                .event(
                    EventRecord(
                        id: "dataset:\(name):run:\(run.id):\(task.name):\(Int(now.timeIntervalSince1970 * 1000))",
                        name: DatasetSpec.updateEventName(for: name), payload: .object(payload), source: "baton",
                        createdAt: now)))
        }
        return changes
    }

    enum ContractCheck {
        case satisfied(reads: [(dataset: String, updateID: Int64?)])
        case violated(ViolationPolicy, requirement: DatasetRequirement, reason: String)
    }

    /// Checks a task's `requires` against the latest updates of the datasets.
    func checkContracts(_ task: TaskSpec) async -> ContractCheck {
        var reads: [(dataset: String, updateID: Int64?)] = []
        let now = clock()
        for requirement in task.requires {
            let dataset = datasets[requirement.dataset]
            let owner = dataset?.owner.map { "owner \($0)" } ?? "no owner declared"
            let latest: DatasetUpdateRecord?
            do {
                latest = try await store.latestDatasetUpdate(requirement.dataset)
            } catch {
                return .violated(
                    .fail, requirement: requirement,
                    reason: "cannot read the updates of \(requirement.dataset): \(error)")
            }
            guard let latest else {
                return .violated(
                    requirement.onViolation, requirement: requirement,
                    reason: "DataSLAViolation: dataset \(requirement.dataset) has never been updated (\(owner))")
            }
            let producer = "last update \(Self.format(latest.updatedAt)) by "
                + (latest.runID.map { "run \($0) of \(latest.pipeline ?? "?")" } ?? "an external publisher") + ", \(owner)"
            if let limit = requirement.maxStaleness ?? dataset?.freshness {
                let age = now.timeIntervalSince(latest.updatedAt)
                if age > limit {
                    return .violated(
                        requirement.onViolation, requirement: requirement,
                        reason: "DataSLAViolation: dataset \(requirement.dataset) is \(DurationText.format(age)) old, over the \(DurationText.format(limit)) limit (\(producer))")
                }
            }
            if let rangeText = requirement.schema, let range = try? VersionRange(rangeText) {
                let versionText = latest.schemaVersion ?? dataset?.schemaVersion
                guard let versionText, let version = SchemaVersion(versionText), range.contains(version) else {
                    return .violated(
                        requirement.onViolation, requirement: requirement,
                        reason: "DataSLAViolation: dataset \(requirement.dataset) has schema version \(latest.schemaVersion ?? dataset?.schemaVersion ?? "unknown"), this task requires \(rangeText) (\(producer))")
                }
            }
            reads.append((requirement.dataset, latest.id))
        }
        return .satisfied(reads: reads)
    }

    static func format(_ date: Date) -> String {
        UTCTimestamp.readable(date) + " UTC"
    }

    /// Decides what a broken contract does to the attempt (never started) and records it.
    func contractViolated(
        _ key: TaskKey, attempt: Int, policy: ViolationPolicy, requirement: DatasetRequirement, reason: String,
        logPath: String
    ) async {
        var contract: ContractOutcome
        switch policy {
        case .fail:
            contract = ContractOutcome(
                event: .attemptFailedPermanently(task: key.task, reason: reason), attemptState: .failed, reason: reason)
        case .skip:
            contract = ContractOutcome(
                event: .attemptSkipped(task: key.task, reason: reason), attemptState: .skipped, reason: reason)
        case .wait:
            let firstStart = (try? await store.taskInstances(runID: key.runID).first { $0.task == key.task }?.startedAt) ?? nil
            let deadline = (firstStart ?? clock()).addingTimeInterval(requirement.waitTimeout)
            let remaining = deadline.timeIntervalSince(clock())
            if remaining > 0 {
                let waiting = "\(reason); waiting for a fresh update until \(Self.format(deadline))"
                contract = ContractOutcome(
                    event: .attemptDeferred(task: key.task, reason: waiting, seconds: min(remaining, 60)),
                    attemptState: .deferred, reason: waiting)
                datasetWaiters[requirement.dataset, default: []].insert(key)
            } else {
                let failed = "\(reason); no fresh update within \(DurationText.format(requirement.waitTimeout))"
                contract = ContractOutcome(
                    event: .attemptFailedPermanently(task: key.task, reason: failed), attemptState: .failed, reason: failed)
            }
        }
        TaskProcessRunner.appendToLog("baton: \(contract.reason)", path: logPath)
        if policy != .skip { logger.warning("task \(key.task) of run \(key.runID): \(contract.reason)") }
        await finishAttempt(
            key, attempt: attempt, outcome: AttemptOutcome(status: .failedToStart(contract.reason), duration: 0),
            contract: contract, logPath: logPath)
    }

    /// Records which dataset versions a task read, for lineage.
    func recordReads(_ key: TaskKey, reads: [(dataset: String, updateID: Int64?)]) async {
        for read in reads {
            try? await store.recordRunDataset(
                RunDatasetRecord(runID: key.runID, task: key.task, dataset: read.dataset, direction: .read, updateID: read.updateID))
        }
    }
}
