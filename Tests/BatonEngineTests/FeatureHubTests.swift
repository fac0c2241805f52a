import BatonCore
import BatonFeatures
import BatonStore
import Foundation
import GRDB
import Synchronization
import Testing

@testable import BatonEngine

/// The feature store end to end on a SQLite store: definitions from a folder, writes, restarts,
/// training sets and materialization.
@Suite struct FeatureHubTests {
    static let definitions = """
        entities:
          customer:
            join_keys: {customer_id: int}
        feature_views:
          customer_stats:
            entity: customer
            ttl: 2d
            freshness: 1h
            features:
              total_spend: float
              segment: string
            source:
              sqlite: warehouse.sqlite
              table: stats_src
              timestamp_column: ts
        feature_services:
          churn:
            features: [customer_stats]
        """
    static let t0: Double = 1_793_491_200

    /// A folder with the definitions (and a pipeline reading the view) and a fresh database.
    static func withFolder(_ body: (_ folder: String, _ database: String) async throws -> Void) async throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-features-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root + "/pipelines", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try definitions.write(toFile: root + "/pipelines/features.yaml", atomically: true, encoding: .utf8)
        try """
            name: train
            tasks:
              fit:
                run: "true"
                requires: [customer_stats]
            """.write(toFile: root + "/pipelines/train.yaml", atomically: true, encoding: .utf8)
        try await body(root + "/pipelines", root + "/baton.db")
    }

    static func hub(_ folder: String, _ database: String, clock: @escaping @Sendable () -> Date = { Date() }) async throws -> FeatureHub {
        let loaded = PipelineRepository.load(directory: folder)
        #expect(loaded.errors.isEmpty, "\(loaded.errors)")
        let hub = FeatureHub(store: try SQLiteStore(path: database), clock: clock)
        await hub.update(registry: loaded.features)
        return hub
    }

    static func rows(_ items: [(Int, Double, Double?)]) -> [JSONValue] {
        items.map { ["customer_id": .number(Double($0.0)), "event_timestamp": .number($0.1), "total_spend": $0.2.map(JSONValue.number) ?? .null] }
    }

    @Test func aFeatureViewIsACatalogDatasetThatPipelinesMayRequire() async throws {
        try await Self.withFolder { folder, _ in
            let loaded = PipelineRepository.load(directory: folder)
            #expect(loaded.errors.isEmpty)
            #expect(loaded.catalog.datasets.map(\.name) == ["customer_stats"])
            #expect(loaded.catalog.datasets.first?.freshness == 3600)
            try "datasets:\n  customer_stats: {owner: x}\n".write(toFile: folder + "/datasets.yaml", atomically: true, encoding: .utf8)
            let clash = PipelineRepository.load(directory: folder)
            #expect(clash.errors.contains { $0.message.contains("has the name of dataset 'customer_stats'") })
        }
    }

    @Test func onlineValuesSurviveARestartBecauseTheCacheIsRebuiltFromTheStore() async throws {
        try await Self.withFolder { folder, database in
            let now = Date()
            let hub = try await Self.hub(folder, database)
            let written = try await hub.ingest(
                view: "customer_stats", json: Self.rows([(1, now.timeIntervalSince1970 - 60, 10), (2, now.timeIntervalSince1970 - 30, 20)]),
                writer: FeatureWriter(origin: "test"))
            #expect(written.inserted == 2)
            let before = try hub.online(service: "churn", entities: [["customer_id": 1], ["customer_id": 2], ["customer_id": 3]])
            #expect(before.values[0] == .float(10) && before.values[2] == .float(20))
            #expect(before.statuses[4] == .notFound)

            let restarted = try await Self.hub(folder, database)
            let after = try restarted.online(service: "churn", entities: [["customer_id": 1], ["customer_id": 2], ["customer_id": 3]])
            #expect(after.values == before.values && after.statuses == before.statuses)
            // The write was recorded as the view's dataset update, with its event.
            #expect(try await restarted.store.latestDatasetUpdate("customer_stats")?.metadata["rows"] == 2)
            #expect(try await restarted.store.events(EventQuery(name: "dataset.customer_stats.updated")).count == 1)
        }
    }

    @Test func aKeptLookupAnswerGivesWayToWritesTheTTLAndNewDefinitions() async throws {
        try await Self.withFolder { folder, database in
            let clock = Mutex(Date(timeIntervalSince1970: Self.t0))
            let hub = try await Self.hub(folder, database, clock: { clock.withLock { $0 } })
            func lookup(_ id: String = "1") throws -> String {
                try hub.onlineJSON(service: "churn", keyText: { $0 == "customer_id" ? id : nil })
            }
            _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(1, Self.t0 - 3600, 10)]), writer: FeatureWriter(origin: "test"))
            let first = try lookup()
            #expect(first.contains("10") && first.contains("PRESENT"), "\(first)")
            #expect(try lookup() == first)
            // Another entity's answer is its own.
            #expect(try lookup("2").contains("NOT_FOUND"))

            // A newer row for the entity: the next lookup sees it.
            _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(1, Self.t0 - 60, 25)]), writer: FeatureWriter(origin: "test"))
            let rewritten = try lookup()
            #expect(rewritten.contains("25") && !rewritten.contains(":10"), "\(rewritten)")
            // A write for entity 2 shows in its answer, kept as NOT_FOUND until then.
            _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(2, Self.t0 - 60, 5)]), writer: FeatureWriter(origin: "test"))
            #expect(try lookup("2").contains("PRESENT"))

            // The view's ttl is 2 days: one second past it, the kept answer is stale.
            clock.withLock { $0 = Date(timeIntervalSince1970: Self.t0 - 60 + 2 * 86_400 - 1) }
            #expect(try lookup().contains("PRESENT"))
            clock.withLock { $0 = Date(timeIntervalSince1970: Self.t0 - 60 + 2 * 86_400 + 1) }
            let expired = try lookup()
            #expect(expired.contains("OUTSIDE_MAX_AGE") && !expired.contains("PRESENT"), "\(expired)")

            // New definitions (a feature dropped from the service) change the answer's shape.
            clock.withLock { $0 = Date(timeIntervalSince1970: Self.t0) }
            try Self.definitions.replacingOccurrences(of: "      segment: string\n", with: "")
                .write(toFile: folder + "/features.yaml", atomically: true, encoding: .utf8)
            await hub.update(registry: PipelineRepository.load(directory: folder).features)
            let reshaped = try lookup()
            #expect(!reshaped.contains("segment") && reshaped.contains("25"), "\(reshaped)")
        }
    }

    @Test func aBadBatchChangesNeitherTheStoreNorTheCache() async throws {
        try await Self.withFolder { folder, database in
            let now = Date().timeIntervalSince1970
            let hub = try await Self.hub(folder, database)
            _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(1, now - 60, 10)]), writer: FeatureWriter(origin: "test"))
            var bad = Self.rows([(1, now, 99), (2, now, 5)])
            bad.append(["customer_id": 3, "event_timestamp": .number(now), "total_spend": "lots"])
            await #expect {
                _ = try await hub.ingest(view: "customer_stats", json: bad, writer: FeatureWriter(origin: "test"))
            } throws: { error in
                guard case .badRow(let row) = error as? FeatureError else { return false }
                return row.row == 3 && row.column == "total_spend" && row.value == "lots" && row.expected == "float"
            }
            #expect(try hub.online(service: "churn", entities: [["customer_id": 1]]).values[0] == .float(10))
            #expect(try await hub.store.featureViewSummary(view: "customer_stats").rows == 1)
            await #expect(throws: FeatureError.self) {
                _ = try await hub.ingest(
                    view: "customer_stats", json: Array(repeating: ["customer_id": 1], count: FeatureHub.maxBatchRows + 1),
                    writer: FeatureWriter(origin: "test"))
            }
        }
    }

    @Test func aTrainingSetIsPointInTimeCorrectThroughTheStore() async throws {
        try await Self.withFolder { folder, database in
            let hub = try await Self.hub(folder, database)
            let t = Self.t0
            _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(1, t + 7200, 3), (1, t, 1)]), writer: FeatureWriter(origin: "test"))
            // Arrives later, belongs in between.
            _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(1, t + 3600, 2)]), writer: FeatureWriter(origin: "test"))
            let entities = try EntityTable.csv(
                "customer_id,event_timestamp,label\n1,\(Int(t) - 1),a\n1,\(Int(t) + 3600),b\n1,\(Int(t) + 5000),c\n1,\(Int(t) + 7200 + 2 * 86_400 + 1),d\n2,\(Int(t) + 9000),e\n")
            let set = try await hub.historical(service: "churn", entities: entities)
            #expect((0..<5).map { set.value(row: $0, feature: 0) } == [.null, .float(2), .float(2), .null, .null])
            #expect(set.entityRows.map { $0[2] } == ["a", "b", "c", "d", "e"])
        }
    }

    @Test func materializeCopiesTheRangeFromTheSQLSourceAsOneBatch() async throws {
        try await Self.withFolder { folder, database in
            let queue = try DatabaseQueue(path: folder + "/warehouse.sqlite")
            try await queue.write { db in
                try db.execute(sql: "CREATE TABLE stats_src (customer_id INTEGER, ts, total_spend REAL, segment TEXT)")
                try db.execute(sql: "INSERT INTO stats_src VALUES (1, ?, 10.0, 'gold'), (2, '2026-11-01T12:00:00Z', 20, NULL), (3, ?, 30, 'late')",
                               arguments: [Self.t0, Self.t0 + 40 * 86_400])
            }
            let hub = try await Self.hub(folder, database)
            let result = try await hub.materialize(
                view: "customer_stats", from: Date(timeIntervalSince1970: Self.t0), to: Date(timeIntervalSince1970: Self.t0 + 86_400),
                writer: FeatureWriter(origin: "test"))
            #expect(result.rows == 2 && result.inserted == 2)
            let again = try await hub.materialize(
                view: "customer_stats", from: Date(timeIntervalSince1970: Self.t0), to: Date(timeIntervalSince1970: Self.t0 + 86_400),
                writer: FeatureWriter(origin: "test"))
            #expect(again.inserted == 0 && again.overwritten == 2, "re-materializing overwrites, never duplicates")
            try await queue.write { db in try db.execute(sql: "INSERT INTO stats_src VALUES (4, ?, 'not a number', NULL)", arguments: [Self.t0 + 10]) }
            await #expect(throws: FeatureError.self) {
                _ = try await hub.materialize(
                    view: "customer_stats", from: Date(timeIntervalSince1970: Self.t0), to: Date(timeIntervalSince1970: Self.t0 + 86_400),
                    writer: FeatureWriter(origin: "test"))
            }
            #expect(try await hub.store.featureViewSummary(view: "customer_stats").rows == 2)
        }
    }

    @Test func concurrentRewritesLeaveTheCacheEqualToTheStore() async throws {
        try await Self.withFolder { folder, database in
            let hub = try await Self.hub(folder, database)
            let time = Date().timeIntervalSince1970 - 60
            try await withThrowingTaskGroup(of: Void.self) { group in
                for value in 0..<20 {
                    group.addTask {
                        _ = try await hub.ingest(view: "customer_stats", json: Self.rows([(1, time, Double(value))]), writer: FeatureWriter(origin: "test"))
                    }
                }
                try await group.waitForAll()
            }
            let stored = try #require(try await hub.store.onlineFeatureRow(view: "customer_stats", entityKey: "1"))
            let decoded = FeatureCodec.decode(stored.values, layout: FeatureLayout(["total_spend", "segment"]))
            #expect(try hub.online(service: "churn", entities: [["customer_id": 1]]).values[0] == decoded[0])
            #expect(try await hub.store.featureViewSummary(view: "customer_stats").rows == 1, "twenty rewrites, one row")
        }
    }
}
