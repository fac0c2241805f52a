import BatonCore
import Foundation
import Testing

@testable import BatonStore

/// The feature tables, on every backend.
@Suite struct FeatureStoreTests {
    static let t0: Double = 1_793_491_200
    static let now = Date(timeIntervalSince1970: 1_794_000_000)

    static func row(_ key: String, _ time: Double, _ bytes: [UInt8]) -> StoredFeatureRow {
        StoredFeatureRow(entityKey: key, eventTime: time, values: bytes)
    }

    @Test(arguments: Backend.allCases) func rewritingAnEntityAndTimeOverwritesAndNeverDuplicates(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let first = try await store.writeFeatureRows(
                view: "v", rows: [Self.row("1", Self.t0, [1]), Self.row("1", Self.t0 + 60, [2]), Self.row("2", Self.t0, [3])],
                writtenAt: Self.now, changes: [])
            #expect(first == FeatureWriteResult(inserted: 3, overwritten: 0))
            let second = try await store.writeFeatureRows(
                view: "v", rows: [Self.row("1", Self.t0, [9]), Self.row("3", Self.t0, [4]), Self.row("3", Self.t0, [5])],
                writtenAt: Self.now.addingTimeInterval(1), changes: [])
            #expect(second == FeatureWriteResult(inserted: 1, overwritten: 2), "a stored row and an in-batch duplicate replaced")
            let rows = try await store.featureRows(view: "v", from: nil, to: nil)
            #expect(rows == [Self.row("1", Self.t0, [9]), Self.row("1", Self.t0 + 60, [2]), Self.row("2", Self.t0, [3]), Self.row("3", Self.t0, [5])])
            #expect(try await store.featureRows(view: "v", from: Self.t0 + 1, to: Self.t0 + 61) == [Self.row("1", Self.t0 + 60, [2])])
            #expect(try await store.featureRows(view: "other", from: nil, to: nil).isEmpty)
            let summary = try await store.featureViewSummary(view: "v")
            #expect(summary.rows == 4 && summary.entities == 3 && summary.firstEventTime == Self.t0 && summary.lastEventTime == Self.t0 + 60)
        }
    }

    @Test(arguments: Backend.allCases) func theOnlineTableKeepsEachEntitysLatestRow(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.writeFeatureRows(view: "v", rows: [Self.row("1", Self.t0 + 60, [2])], writtenAt: Self.now, changes: [])
            // A late row (older event time) goes to the offline table only.
            _ = try await store.writeFeatureRows(view: "v", rows: [Self.row("1", Self.t0, [1])], writtenAt: Self.now, changes: [])
            #expect(try await store.onlineFeatureRow(view: "v", entityKey: "1") == Self.row("1", Self.t0 + 60, [2]))
            // A rewrite at the same time replaces it.
            _ = try await store.writeFeatureRows(view: "v", rows: [Self.row("1", Self.t0 + 60, [7])], writtenAt: Self.now.addingTimeInterval(5), changes: [])
            #expect(try await store.onlineFeatureRows(view: "v", writtenSince: nil) == [Self.row("1", Self.t0 + 60, [7])])
            #expect(try await store.onlineFeatureRows(view: "v", writtenSince: Self.now.timeIntervalSince1970 + 1).count == 1)
            #expect(try await store.onlineFeatureRows(view: "v", writtenSince: Self.now.timeIntervalSince1970 + 6).isEmpty)
            #expect(try await store.recentFeatureRows(view: "v", limit: 1) == [Self.row("1", Self.t0 + 60, [7])])
        }
    }

    @Test(arguments: Backend.allCases) func aFailingBatchStoresNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.writeFeatureRows(view: "v", rows: [Self.row("1", Self.t0, [1])], writtenAt: Self.now, changes: [])
            // Lineage naming a run that does not exist breaks the transaction at its very end.
            let broken = DatasetUpdateRecord(dataset: "v", runID: 987_654, pipeline: "p", task: "t", schemaVersion: nil, metadata: [:], updatedAt: Self.now)
            await #expect(throws: (any Error).self) {
                _ = try await store.writeFeatureRows(
                    view: "v", rows: [Self.row("1", Self.t0, [9]), Self.row("2", Self.t0, [2])], writtenAt: Self.now, changes: [.datasetUpdate(broken)])
            }
            #expect(try await store.featureRows(view: "v", from: nil, to: nil) == [Self.row("1", Self.t0, [1])])
            #expect(try await store.onlineFeatureRows(view: "v", writtenSince: nil) == [Self.row("1", Self.t0, [1])])
            #expect(try await store.latestDatasetUpdate("v") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func theBatchsDatasetUpdateAndEventCommitWithIt(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let update = DatasetUpdateRecord(dataset: "v", runID: nil, pipeline: nil, task: nil, schemaVersion: "1.0.0", metadata: ["rows": 1], updatedAt: Self.now)
            let event = EventRecord(id: "features:v:1", name: "dataset.v.updated", payload: ["rows": 1], source: "baton.features", createdAt: Self.now)
            _ = try await store.writeFeatureRows(view: "v", rows: [Self.row("1", Self.t0, [1])], writtenAt: Self.now, changes: [.datasetUpdate(update), .event(event)])
            // Read back through another store on the same database, as after a restart.
            let reopened = try await database.open()
            #expect(try await reopened.latestDatasetUpdate("v")?.schemaVersion == "1.0.0")
            #expect(try await reopened.event(id: "features:v:1")?.name == "dataset.v.updated")
            #expect(try await reopened.onlineFeatureRows(view: "v", writtenSince: nil) == [Self.row("1", Self.t0, [1])])
        }
    }
}
