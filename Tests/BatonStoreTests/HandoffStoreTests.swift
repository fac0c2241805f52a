import BatonCore
import Foundation
import Testing

@testable import BatonStore

/// Events, dataset updates, lineage and SLA misses, on every backend.
@Suite struct HandoffStoreTests {
    static let base = Date(timeIntervalSince1970: 1_790_000_000)

    static func event(_ id: String, _ name: String = "data.customers.updated", at seconds: Double = 0) -> EventRecord {
        EventRecord(id: id, name: name, payload: ["rows": 10, "id": .string(id)], source: "test", createdAt: base.addingTimeInterval(seconds))
    }

    @Test(arguments: Backend.allCases) func anEventIdIsStoredOnceAndEventsComeInArrivalOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let first = try await store.publishEvent(Self.event("e1", at: 0))
            let again = try await store.publishEvent(
                EventRecord(id: "e1", name: "other", payload: [:], source: nil, createdAt: Self.base))
            #expect(first.created)
            #expect(!again.created)
            #expect(again.event == first.event, "the stored event, not the duplicate")
            _ = try await store.publishEvent(Self.event("e2", "model.trained", at: 10))
            _ = try await store.publishEvent(Self.event("e3", at: 20))
            let all = try await store.events(EventQuery())
            #expect(all.map(\.id) == ["e3", "e2", "e1"], "newest first")
            #expect(all.last?.payload == ["rows": 10, "id": "e1"])
            #expect(all.last?.source == "test")
            #expect(all.last?.createdAt == Self.base)
            #expect(try await store.events(EventQuery(name: "data.customers.updated")).map(\.id) == ["e3", "e1"])
            #expect(try await store.events(EventQuery(from: Self.base.addingTimeInterval(5), to: Self.base.addingTimeInterval(20))).map(\.id) == ["e2"])
            #expect(try await store.events(EventQuery(limit: 1, beforeSeq: all[0].seq)).map(\.id) == ["e2"])
            #expect(try await store.events(after: all[2].seq, limit: 10).map(\.id) == ["e2", "e3"], "oldest first")
            #expect(try await store.events(after: all[2].seq, limit: 1).map(\.id) == ["e2"])
            #expect(try await store.event(id: "e2")?.name == "model.trained")
            #expect(try await store.event(id: "missing") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func eventsPublishedAtOnceAreEachStoredOnce(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let other = try await database.open()
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<30 {
                    let target = index.isMultiple(of: 2) ? store : other
                    group.addTask { try await target.publishEvent(Self.event("e\(index % 10)", at: Double(index))).created }
                }
                return try await group.reduce(into: 0) { $0 += $1 ? 1 : 0 }
            }
            #expect(created == 10)
            let events = try await store.events(after: 0, limit: 100)
            #expect(Set(events.map(\.id)).count == 10)
            #expect(events.map(\.seq) == events.map(\.seq).sorted())
        }
    }

    @Test(arguments: Backend.allCases) func metaValuesAreReplaced(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            #expect(try await store.meta("cursor") == nil)
            try await store.setMeta("cursor", "5")
            try await store.setMeta("cursor", "7")
            #expect(try await store.meta("cursor") == "7")
        }
    }

    @Test(arguments: Backend.allCases) func datasetUpdatesAndLineageCommitWithTheTransition(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let run = try await store.createRun(sampleRun(sampleSpec())).run
            let standalone = try await store.recordDatasetUpdate(
                DatasetUpdateRecord(
                    dataset: "clean_customers", runID: nil, pipeline: nil, task: nil, schemaVersion: "2.0.0", metadata: [:],
                    updatedAt: Self.base))
            #expect(standalone.id > 0)
            let update = DatasetUpdateRecord(
                dataset: "clean_customers", runID: run.id, pipeline: "etl", task: "load", schemaVersion: "2.3.0",
                metadata: ["record_count": 1000], updatedAt: Self.base.addingTimeInterval(60))
            try await store.commit([
                .taskState(
                    runID: run.id, task: "load", state: .success, attempts: 1, output: ["record_count": 1000], reason: nil,
                    retryAt: nil, at: Self.base.addingTimeInterval(60)),
                .datasetUpdate(update),
                .event(Self.event("dataset.clean_customers.updated:1", "dataset.clean_customers.updated", at: 60)),
            ])
            let latest = try #require(try await store.latestDatasetUpdate("clean_customers"))
            #expect(latest.id > standalone.id)
            #expect(latest.runID == run.id && latest.pipeline == "etl" && latest.task == "load")
            #expect(latest.schemaVersion == "2.3.0")
            #expect(latest.metadata == ["record_count": 1000])
            #expect(latest.updatedAt == Self.base.addingTimeInterval(60))
            #expect(try await store.datasetUpdates("clean_customers", limit: 10).map(\.id) == [latest.id, standalone.id])
            #expect(try await store.datasetUpdates("clean_customers", limit: 1).count == 1)
            #expect(try await store.latestDatasetUpdate("nothing") == nil)
            #expect(try await store.event(id: "dataset.clean_customers.updated:1") != nil)
            let written = try await store.runDatasets(runID: run.id)
            #expect(written == [RunDatasetRecord(runID: run.id, task: "load", dataset: "clean_customers", direction: .write, updateID: latest.id)])

            try await store.recordRunDataset(
                RunDatasetRecord(runID: run.id, task: "extract", dataset: "raw", direction: .read, updateID: nil))
            try await store.recordRunDataset(
                RunDatasetRecord(runID: run.id, task: "extract", dataset: "raw", direction: .read, updateID: 7))
            let lineage = try await store.runDatasets(runID: run.id)
            #expect(lineage.map(\.task) == ["extract", "load"])
            #expect(lineage.first?.updateID == 7, "recording again replaces the version read")
            let second = try await store.createRun(sampleRun(sampleSpec(), key: "k2")).run
            try await store.recordRunDataset(
                RunDatasetRecord(runID: second.id, task: "extract", dataset: "raw", direction: .read, updateID: 8))
            #expect(try await store.datasetRuns("raw", limit: 10).map(\.runID) == [second.id, run.id])
            #expect(try await store.datasetRuns("raw", limit: 1).map(\.runID) == [second.id])
        }
    }

    @Test(arguments: Backend.allCases) func aDatasetHasOneOpenSLAMissAtATime(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let other = try await database.open()
            let miss = SLAMissRecord(dataset: "clean_customers", detectedAt: Self.base, lastUpdateAt: nil, freshness: 3600)
            let opened = try await withThrowingTaskGroup(of: SLAMissRecord?.self) { group in
                for index in 0..<6 {
                    let target = index.isMultiple(of: 2) ? store : other
                    group.addTask { try await target.openSLAMiss(miss) }
                }
                return try await group.reduce(into: [SLAMissRecord]()) { if let miss = $1 { $0.append(miss) } }
            }
            #expect(opened.count == 1)
            #expect(try #require(opened.first).id > 0)
            #expect(try await store.resolveSLAMiss(dataset: "clean_customers", at: Self.base.addingTimeInterval(60)))
            #expect(try await store.resolveSLAMiss(dataset: "clean_customers", at: Self.base.addingTimeInterval(90)) == false)
            let next = try await store.openSLAMiss(
                SLAMissRecord(
                    dataset: "clean_customers", detectedAt: Self.base.addingTimeInterval(120),
                    lastUpdateAt: Self.base.addingTimeInterval(100), freshness: 3600))
            #expect(next != nil, "a new miss may open once the last one is resolved")
            _ = try await store.openSLAMiss(SLAMissRecord(dataset: "features", detectedAt: Self.base, lastUpdateAt: nil, freshness: 60))
            let misses = try await store.slaMisses(dataset: "clean_customers", limit: 10)
            #expect(misses.count == 2)
            #expect(misses.first?.resolvedAt == nil && misses.first?.lastUpdateAt == Self.base.addingTimeInterval(100))
            #expect(misses.last?.resolvedAt == Self.base.addingTimeInterval(60))
            #expect(try await store.slaMisses(dataset: nil, limit: 10).count == 3)
            #expect(try await store.slaMisses(dataset: nil, limit: 1).map(\.dataset) == ["features"])
        }
    }
}
