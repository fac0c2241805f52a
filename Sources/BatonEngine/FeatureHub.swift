import BatonCore
import BatonFeatures
import BatonStore
import Foundation
import Logging
import Synchronization

/// Who wrote a batch, for the view's dataset update and lineage.
public struct FeatureWriter: Sendable, Hashable {
    public var runID: Int64?
    public var pipeline: String?
    public var task: String?
    /// `api`, `cli`, `materialize`, or a team.
    public var origin: String

    public init(runID: Int64? = nil, pipeline: String? = nil, task: String? = nil, origin: String) {
        self.runID = runID
        self.pipeline = pipeline
        self.task = task
        self.origin = origin
    }
}

/// What an ingestion or materialization stored.
public struct FeatureIngestResult: Sendable, Hashable, Codable {
    public var view: String
    public var rows: Int
    public var inserted: Int
    public var overwritten: Int
    public var entities: Int
}

/// One online lookup's answer: per entity, the service's features in order.
public struct OnlineFeatures: Sendable {
    public enum Status: String, Sendable { case present = "PRESENT", notFound = "NOT_FOUND", outsideTTL = "OUTSIDE_MAX_AGE" }

    public var service: String
    public var featureNames: [String]
    public var joinKeys: [String]
    /// Per entity: the request's join key values.
    public var entities: [[JSONValue]]
    /// Row-major `entities.count` x `featureNames.count`.
    public var values: [FeatureValue]
    public var statuses: [Status]
    /// Row-major event times (nil where not found).
    public var times: [Double?]
    /// `featureNames` as JSON strings, when the lookup had them made already.
    var quotedFeatureNames: [String]?
    /// When the first present value found passes its view's `ttl` (seconds since 1970): until
    /// then, and until the next write, the same lookup gives the same answer.
    var validUntil = Double.infinity

    /// The answer as JSON, written by hand: this is the serving hot path.
    public func json() -> String {
        var out = "{\"service\":"
        out.reserveCapacity(128 + entities.count * (96 + featureNames.count * 80))
        FeatureValue.appendQuoted(service, to: &out)
        let quoted = quotedFeatureNames ?? featureNames.map { name in
            var text = ""
            FeatureValue.appendQuoted(name, to: &text)
            return text
        }
        out += ",\"features\":["
        for index in quoted.indices {
            if index > 0 { out += "," }
            out += quoted[index]
        }
        out += "],\"results\":["
        let width = featureNames.count
        for row in 0..<entities.count {
            if row > 0 { out += "," }
            out += "{\"entity\":{"
            for (index, key) in joinKeys.enumerated() {
                if index > 0 { out += "," }
                FeatureValue.appendQuoted(key, to: &out)
                out += ":"
                Self.appendJSON(entities[row][index], to: &out)
            }
            out += "},\"values\":{"
            for index in quoted.indices {
                if index > 0 { out += "," }
                out += quoted[index]
                out += ":"
                values[row * width + index].appendJSON(to: &out)
            }
            out += "},\"statuses\":{"
            for index in quoted.indices {
                if index > 0 { out += "," }
                out += quoted[index]
                out += ":\""
                out += statuses[row * width + index].rawValue
                out += "\""
            }
            out += "},\"event_timestamps\":{"
            // Features of one view share a time: formatted once.
            var formatted: (time: Double, text: String)?
            for index in quoted.indices {
                if index > 0 { out += "," }
                out += quoted[index]
                guard let time = times[row * width + index] else {
                    out += ":null"
                    continue
                }
                if formatted?.time != time { formatted = (time, FeatureTime.iso(time)) }
                out += ":\""
                out += formatted?.text ?? ""
                out += "\""
            }
            out += "}}"
        }
        out += "]}"
        return out
    }

    /// Join key values are scalars: written by hand rather than through JSONEncoder, which
    /// would cost more than the whole lookup.
    static func appendJSON(_ value: JSONValue, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .string(let text): FeatureValue.appendQuoted(text, to: &out)
        case .number(let number) where number.isFinite && number == number.rounded() && abs(number) < 1e15:
            out += String(Int64(number))
        case .number(let number) where number.isFinite: out += "\(number)"
        default: out += value.compactJSON
        }
    }
}

/// The feature store at work: definitions from the pipelines folder, writes through the store
/// (one transaction per batch, acknowledged only once committed), training sets, and online
/// lookups from the in-memory cache, which mirrors the store's online table.
public final class FeatureHub: Sendable {
    /// Rows per API batch; larger inputs must be split (files through the CLI are one batch).
    public static let maxBatchRows = 100_000
    /// Rows per file or materialization, all committed in one transaction.
    public static let maxFileRows = 5_000_000
    /// Entities per online lookup request.
    public static let maxLookupEntities = 1_000
    /// Entity rows per training set request.
    public static let maxEntityRows = 5_000_000

    public let store: any Store
    public let cache = OnlineFeatureCache()
    let answers = LookupAnswers()
    let logger: Logger
    let clock: @Sendable () -> Date
    private let state = Mutex<State>(State())
    private let listener = Mutex<(@Sendable () async -> Void)?>(nil)
    private let writeTurn = AsyncTurn()

    struct State {
        var registry = FeatureRegistry()
        /// Per view: the feature names the cache was filled with, and the latest write seen.
        var cachedLayouts: [String: [String]] = [:]
        var watermarks: [String: Double] = [:]
        /// Per service, made on first lookup; dropped with the definitions they came from.
        var onlinePlans: [String: OnlinePlan] = [:]
    }

    /// What a lookup of one service needs, worked out once per set of definitions rather than
    /// on every request (it cost as much as the lookup itself).
    struct OnlinePlan: Sendable {
        struct View: Sendable {
            var name: String
            var ttl: Double?
            var joinKeys: [JoinKeySpec]
            /// Per requested feature, its index in the view's cached values.
            var positions: [Int?]
        }
        var joinKeys: [JoinKeySpec]
        var views: [View]
        var featureNames: [String]
        var quotedFeatureNames: [String]

        init(service: FeatureServiceSpec, registry: FeatureRegistry) throws(FeatureError) {
            joinKeys = try registry.joinKeys(of: service)
            views = try service.viewsInOrder.map { (viewName, features) throws(FeatureError) in
                let view = try registry.view(viewName)
                let positions = Dictionary(view.features.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
                return View(
                    name: viewName, ttl: view.ttl, joinKeys: try registry.entity(of: view).joinKeys,
                    positions: features.map { positions[$0] })
            }
            featureNames = service.viewsInOrder.flatMap(\.features)
            quotedFeatureNames = featureNames.map { name in
                var quoted = ""
                FeatureValue.appendQuoted(name, to: &quoted)
                return quoted
            }
        }
    }

    func onlinePlan(service name: String) throws(FeatureError) -> OnlinePlan {
        try state.withLock { state throws(FeatureError) in
            if let plan = state.onlinePlans[name] { return plan }
            let plan = try OnlinePlan(service: try state.registry.service(name), registry: state.registry)
            state.onlinePlans[name] = plan
            return plan
        }
    }



    /// Whether writes and definitions keep the online cache filled (off for one-shot CLI writes).
    let keepsCache: Bool

    public init(
        store: any Store, logger: Logger = Logger(label: "baton.features"), keepsCache: Bool = true,
        clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.keepsCache = keepsCache
        self.logger = logger
        self.clock = clock
    }

    public var registry: FeatureRegistry { state.withLock { $0.registry } }

    /// Called after each committed write (the engine processes the view's update event).
    public func setListener(_ body: @escaping @Sendable () async -> Void) { listener.withLock { $0 = body } }

    /// Installs new definitions and refills the cache of every view whose features changed.
    public func update(registry new: FeatureRegistry) async {
        let stale: [String] = state.withLock { state in
            let registry = new.keepingLastGood(of: state.registry)
            state.registry = registry
            state.onlinePlans = [:]
            cache.invalidateAnswers()
            var stale: [String] = []
            for (name, view) in registry.views where state.cachedLayouts[name] != view.featureNames { stale.append(name) }
            for name in state.cachedLayouts.keys where registry.views[name] == nil {
                state.cachedLayouts[name] = nil
                state.watermarks[name] = nil
                cache.remove(view: name)
            }
            return stale
        }
        guard keepsCache else { return }
        for name in stale.sorted() {
            do {
                try await reloadCache(view: name)
            } catch {
                logger.error("could not load the online features of \(name): \(error)")
            }
        }
    }

    /// Rebuilds one view's cache from the store's online table.
    func reloadCache(view name: String) async throws {
        guard let view = registry.views[name] else { return }
        let started = clock().timeIntervalSince1970
        let rows = try await store.onlineFeatureRows(view: name, writtenSince: nil)
        let layout = FeatureLayout(view.featureNames)
        var entries: [String: OnlineEntry] = [:]
        entries.reserveCapacity(rows.count)
        for row in rows { entries[row.entityKey] = OnlineEntry(time: row.eventTime, values: FeatureCodec.decode(row.values, layout: layout)) }
        cache.replace(view: name, entries: entries)
        state.withLock {
            $0.cachedLayouts[name] = view.featureNames
            // A little before the read began: a write committing meanwhile is caught next time.
            $0.watermarks[name] = started - 5
        }
    }

    /// Applies online rows other processes wrote (the CLI, other servers) since the last look.
    public func catchUp() async {
        let (views, marks) = state.withLock { ($0.registry.views, $0.watermarks) }
        for (name, view) in views {
            guard let mark = marks[name] else { continue }
            let started = clock().timeIntervalSince1970
            guard let rows = try? await store.onlineFeatureRows(view: name, writtenSince: mark), !rows.isEmpty else { continue }
            let layout = FeatureLayout(view.featureNames)
            cache.apply(view: name, rows: rows.map { FeatureRow(entityKey: $0.entityKey, eventTime: $0.eventTime, values: FeatureCodec.decode($0.values, layout: layout)) })
            state.withLock { $0.watermarks[name] = started - 5 }
        }
    }

    // MARK: - Writing

    public func parser(for viewName: String) throws(FeatureError) -> FeatureRowParser {
        let registry = registry
        let view = try registry.view(viewName)
        return FeatureRowParser(view: view, entity: try registry.entity(of: view))
    }

    /// Validates a batch of JSON rows and writes it.
    public func ingest(view: String, json rows: [JSONValue], writer: FeatureWriter) async throws -> FeatureIngestResult {
        guard rows.count <= Self.maxBatchRows else { throw FeatureError.batchTooLarge(rows: rows.count, limit: Self.maxBatchRows) }
        let parser = try parser(for: view)
        return try await write(view: view, rows: try await offloaded { try parser.rows(json: rows) }, writer: writer)
    }

    /// Writes checked rows in one transaction, then updates the cache.
    public func write(view viewName: String, rows: [FeatureRow], writer: FeatureWriter) async throws -> FeatureIngestResult {
        let view = try registry.view(viewName)
        guard rows.count <= Self.maxFileRows else { throw FeatureError.batchTooLarge(rows: rows.count, limit: Self.maxFileRows) }
        guard !rows.isEmpty else {
            throw FeatureError.invalidRequest(field: "rows", message: "the batch has no rows")
        }
        let names = view.featureNames
        // Every pass over a large batch happens in one go, off the event loop.
        let (stored, entities, maxEventTime) = try await offloaded {
            (
                rows.map { StoredFeatureRow(entityKey: $0.entityKey, eventTime: $0.eventTime, values: FeatureCodec.encode(names: names, values: $0.values)) },
                Set(rows.map(\.entityKey)).count, rows.map(\.eventTime).max() ?? 0
            )
        }
        let now = clock()
        let metadata: [String: JSONValue] = [
            "rows": .number(Double(rows.count)), "entities": .number(Double(entities)), "origin": .string(writer.origin),
            "max_event_timestamp": .string(FeatureTime.iso(maxEventTime)),
        ]
        let update = DatasetUpdateRecord(
            dataset: view.name, runID: writer.runID, pipeline: writer.pipeline, task: writer.task, schemaVersion: view.schemaVersion,
            metadata: metadata, updatedAt: now)
        var payload = metadata
        payload["dataset"] = .string(view.name)
        payload["updated_at"] = .string(DataInterval.iso(now))
        if let runID = writer.runID { payload["run_id"] = .number(Double(runID)) }
        let event = EventRecord(
            id: "features:\(view.name):\(UUID().uuidString.lowercased())", name: DatasetSpec.updateEventName(for: view.name),
            payload: .object(payload), source: "baton.features", createdAt: now)
        // One write at a time per hub: the cache then applies batches in commit order, so a
        // rewrite of an entity at the same event time ends with the same value in both.
        await writeTurn.acquire()
        let result: FeatureWriteResult
        do {
            result = try await store.writeFeatureRows(view: view.name, rows: stored, writtenAt: now, changes: [.datasetUpdate(update), .event(event)])
            // Only a committed batch reaches the cache, and only under the layout it was encoded with.
            if state.withLock({ $0.cachedLayouts[view.name] == names }) {
                cache.apply(view: view.name, rows: rows)
            } else if keepsCache {
                try? await reloadCache(view: view.name)
            }
        } catch {
            writeTurn.release()
            throw error
        }
        writeTurn.release()
        logger.info("feature view \(view.name): stored \(rows.count) rows (\(result.inserted) new, \(result.overwritten) overwritten) from \(writer.origin)")
        if let body = listener.withLock({ $0 }) { await body() }
        return FeatureIngestResult(view: view.name, rows: rows.count, inserted: result.inserted, overwritten: result.overwritten, entities: entities)
    }

    // MARK: - Reading

    /// A point-in-time correct training set for the service's features.
    public func historical(service serviceName: String, entities: EntityTable) async throws -> TrainingSet {
        let registry = registry
        let service = try registry.service(serviceName)
        guard entities.rows.count <= Self.maxEntityRows else {
            throw FeatureError.batchTooLarge(rows: entities.rows.count, limit: Self.maxEntityRows)
        }
        var histories: [String: ViewHistory] = [:]
        if let low = entities.times.min(), let high = entities.times.max() {
            for (viewName, _) in service.viewsInOrder {
                let view = try registry.view(viewName)
                // Only rows that can be picked: none after the last entity time, none expired
                // before the first one.
                histories[viewName] = try await store.featureHistory(view: viewName, from: view.ttl.map { low - $0 }, to: high.nextUp)
            }
        }
        let readHistories = histories
        return try await BatchWork.run {
            try PointInTimeJoin.join(entities: entities, service: service, registry: registry, histories: readHistories)
        }
    }

    /// The latest values of the service's features for each entity, from memory.
    public func online(service serviceName: String, entities: [[String: JSONValue]]) throws(FeatureError) -> OnlineFeatures {
        try online(plan: try onlinePlan(service: serviceName), service: serviceName, entities: entities)
    }

    /// A one-entity lookup whose join key values arrive as text, as in a URL's query, answered
    /// as JSON: `keyText(name)` is the text given for a join key, nil when it is missing.
    /// Answers are kept (see `LookupAnswers`): applications ask for the same entities again and
    /// again between writes, and writing the JSON cost more than the lookup.
    public func onlineJSON(service serviceName: String, keyText: (String) -> String?) throws(FeatureError) -> String {
        let plan = try onlinePlan(service: serviceName)
        // Each text is prefixed with its length, so no two sets of texts make the same key.
        var key = "\(serviceName.utf8.count):\(serviceName)"
        for joinKey in plan.joinKeys {
            if let text = keyText(joinKey.name) {
                key.append("|\(text.utf8.count):")
                key.append(text)
            } else {
                key.append("|-")
            }
        }
        let generation = cache.generation
        let now = clock().timeIntervalSince1970
        if let json = answers.answer(key: key, generation: generation, now: now) { return json }
        let found = try online(plan: plan, service: serviceName, keyText: keyText)
        let json = found.json()
        answers.keep(json, key: key, generation: generation, validUntil: found.validUntil)
        return json
    }

    /// The one-entity lookup of `onlineJSON`, as values.
    public func online(service serviceName: String, keyText: (String) -> String?) throws(FeatureError) -> OnlineFeatures {
        try online(plan: try onlinePlan(service: serviceName), service: serviceName, keyText: keyText)
    }

    private func online(plan: OnlinePlan, service serviceName: String, keyText: (String) -> String?) throws(FeatureError) -> OnlineFeatures {
        var entity: [String: JSONValue] = [:]
        for key in plan.joinKeys {
            guard let text = keyText(key.name) else {
                throw FeatureError.invalidRequest(field: key.name, message: "the lookup needs join key '\(key.name)' as a query parameter")
            }
            entity[key.name] = key.type == .int ? (Double(text).map(JSONValue.number) ?? .string(text)) : .string(text)
        }
        return try online(plan: plan, service: serviceName, entities: [entity])
    }

    private func online(plan: OnlinePlan, service serviceName: String, entities: [[String: JSONValue]]) throws(FeatureError)
        -> OnlineFeatures
    {
        guard entities.count <= Self.maxLookupEntities else {
            throw FeatureError.batchTooLarge(rows: entities.count, limit: Self.maxLookupEntities)
        }
        let joinKeys = plan.joinKeys
        let width = plan.featureNames.count
        var values = [FeatureValue](repeating: .null, count: entities.count * width)
        var statuses = [OnlineFeatures.Status](repeating: .notFound, count: entities.count * width)
        var times = [Double?](repeating: nil, count: entities.count * width)
        var echoed: [[JSONValue]] = []
        echoed.reserveCapacity(entities.count)
        let now = clock().timeIntervalSince1970
        var validUntil = Double.infinity
        let plans = plan.views
        for (row, entity) in entities.enumerated() {
            echoed.append(joinKeys.map { entity[$0.name] ?? .null })
            var column = 0
            for plan in plans {
                var parts: [String] = []
                for key in plan.joinKeys {
                    guard let value = entity[key.name], let text = EntityKey.text(of: value, type: key.type) else {
                        throw FeatureError.badRow(
                            FeatureRowError(
                                row: row + 1, column: key.name, value: entity[key.name]?.templateText ?? "", expected: key.type.rawValue,
                                message: entity[key.name] == nil ? "the entity lacks join key \(key.name)" : "not a valid \(key.type.rawValue) join key"))
                    }
                    parts.append(text)
                }
                if let entry = cache.entry(view: plan.name, entityKey: EntityKey.make(parts)) {
                    let expired = plan.ttl.map { now - entry.time > $0 } ?? false
                    if !expired, let ttl = plan.ttl { validUntil = min(validUntil, entry.time + ttl) }
                    for (offset, found) in plan.positions.enumerated() {
                        let index = row * width + column + offset
                        times[index] = entry.time
                        if expired {
                            statuses[index] = .outsideTTL
                        } else if let position = found, position < entry.values.count {
                            values[index] = entry.values[position]
                            statuses[index] = .present
                        }
                    }
                }
                column += plan.positions.count
            }
        }
        return OnlineFeatures(
            service: serviceName, featureNames: plan.featureNames, joinKeys: joinKeys.map(\.name), entities: echoed, values: values,
            statuses: statuses, times: times, quotedFeatureNames: plan.quotedFeatureNames, validUntil: validUntil)
    }

    /// Stored counts and per-feature statistics over the most recent rows.
    public func statistics(view viewName: String, sample: Int = 100_000) async throws -> (FeatureViewSummary, [FeatureStatistics]) {
        let view = try registry.view(viewName)
        let summary = try await store.featureViewSummary(view: viewName)
        let layout = FeatureLayout(view.featureNames)
        let rows = try await store.recentFeatureRows(view: viewName, limit: sample).map { FeatureCodec.decode($0.values, layout: layout) }
        return (summary, FeatureStatistics.compute(features: view.features, rows: rows))
    }
}

/// A first-come, first-served lock for async code (writers wait without blocking a thread).
final class AsyncTurn: Sendable {
    private struct State {
        var held = false
        var waiting: [CheckedContinuation<Void, Never>] = []
    }
    private let state = Mutex(State())

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                if state.held {
                    state.waiting.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        // The turn passes straight to the next waiter, which stays `held`.
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiting.isEmpty {
                state.held = false
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.resume()
    }
}
