import BatonCore
import Foundation
import Testing

@testable import BatonStore

/// The registry's persistence on both backends: unique names, compare-and-set updates, run data
/// applied all or nothing per batch, the latest-metric rule and counters that never repeat.
@Suite struct RegistryStoreTests {
    static func object(_ kind: RegistryKind, _ id: String, name: String? = nil, parent: String? = nil, at: Int64 = 1)
        -> RegistryObject
    {
        RegistryObject(kind: kind, id: id, parent: parent, name: name, createdAt: at, updatedAt: at, document: "{\"n\":1}")
    }

    @Test(arguments: Backend.allCases) func namesAreUniquePerKindAndIDsPerKind(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            #expect(try await store.insertRegistryObject(Self.object(.experiment, "1", name: "churn")) == .inserted)
            #expect(try await store.insertRegistryObject(Self.object(.experiment, "2", name: "churn")) == .nameTaken)
            #expect(try await store.insertRegistryObject(Self.object(.experiment, "1", name: "other")) == .idTaken)
            // Another kind may reuse the name and the id.
            #expect(try await store.insertRegistryObject(Self.object(.registeredModel, "1", name: "churn")) == .inserted)
            let found = try #require(try await store.registryObject(.experiment, name: "churn"))
            #expect(found.id == "1" && found.revision == 1 && found.document == "{\"n\":1}")
            #expect(try await store.registryObject(.experiment, id: "2") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func anUpdateFromAStaleReadIsRefusedAndRenamesKeepNamesUnique(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.insertRegistryObject(Self.object(.registeredModel, "a", name: "churn"))
            _ = try await store.insertRegistryObject(Self.object(.registeredModel, "b", name: "fraud"))
            var first = try #require(try await store.registryObject(.registeredModel, id: "a"))
            var second = first
            first.document = "{\"n\":2}"
            #expect(try await store.updateRegistryObject(first) == .updated(revision: 2))
            second.document = "{\"n\":3}"
            #expect(try await store.updateRegistryObject(second) == .stale, "a writer that read revision 1 must re-read")
            #expect(try await store.registryObject(.registeredModel, id: "a")?.document == "{\"n\":2}")
            var rename = try #require(try await store.registryObject(.registeredModel, id: "a"))
            rename.name = "fraud"
            #expect(try await store.updateRegistryObject(rename) == .nameTaken)
            rename.name = "churn_v2"
            #expect(try await store.updateRegistryObject(rename) == .updated(revision: 3))
            #expect(try await store.registryObject(.registeredModel, name: "churn_v2")?.id == "a")
            var gone = rename
            gone.id = "missing"
            #expect(try await store.updateRegistryObject(gone) == .missing)
        }
    }

    @Test(arguments: Backend.allCases) func countersNeverHandOutANumberTwice(_ backend: Backend) async throws {
        try await withStore(backend) { store, database in
            let other = try await database.open()
            let numbers = try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<20 {
                    group.addTask { try await (index.isMultiple(of: 2) ? store : other).nextRegistryNumber("experiment") }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(numbers.sorted() == Array(1...20))
            #expect(try await store.nextRegistryNumber("other") == 1)
        }
    }

    @Test(arguments: Backend.allCases) func runDataIsAppliedPerBatchAllOrNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.insertRegistryObject(Self.object(.run, "r1", parent: "0"))
            var deleted = Self.object(.run, "r2", parent: "0")
            deleted.lifecycle = "deleted"
            _ = try await store.insertRegistryObject(deleted)
            let refusals = try await store.logRunData([
                RunDataBatch(runID: "r1", metrics: [TrackedMetric(key: "loss", value: 0.5, timestamp: 10, step: 1)], params: [("lr", "0.1")]),
                RunDataBatch(runID: "nope", params: [("lr", "1")]),
                RunDataBatch(runID: "r2", params: [("lr", "1")]),
                // Changes lr: refused whole, so its tag and metric are not stored either.
                RunDataBatch(
                    runID: "r1", metrics: [TrackedMetric(key: "loss", value: 9, timestamp: 99, step: 99)], params: [("lr", "0.2")],
                    tags: [("team", "ml")]),
                RunDataBatch(runID: "r1", params: [("lr", "0.1"), ("epochs", "3")], tags: [("team", "ml"), ("team", "mlops")]),
            ])
            #expect(refusals[0] == nil)
            #expect(refusals[1] == .runMissing)
            #expect(refusals[2] == .runDeleted)
            #expect(refusals[3] == .paramChanged(key: "lr", stored: "0.1", given: "0.2"))
            #expect(refusals[4] == nil, "logging the same value again is allowed")
            let data = try #require(try await store.runData(runIDs: ["r1"])["r1"])
            #expect(data.params == ["lr": "0.1", "epochs": "3"])
            #expect(data.tags == ["team": "mlops"], "the last value given for a tag wins")
            #expect(data.latestMetrics["loss"]?.value == 0.5)
            #expect(try await store.metricHistory(runID: "r1", key: "loss", limit: 10, offset: 0).count == 1)
        }
    }

    @Test(arguments: Backend.allCases) func theLatestMetricIsTheHighestStepThenTimestampWhateverTheOrder(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.insertRegistryObject(Self.object(.run, "r", parent: "0"))
            let points = [
                TrackedMetric(key: "acc", value: 0.7, timestamp: 300, step: 2),
                TrackedMetric(key: "acc", value: 0.9, timestamp: 100, step: 5),
                TrackedMetric(key: "acc", value: 0.8, timestamp: 200, step: 5),  // same step, later: wins
                TrackedMetric(key: "acc", value: 0.1, timestamp: 999, step: 1),
                TrackedMetric(key: "nan", value: nil, timestamp: 1, step: 0),
            ]
            for point in points { _ = try await store.logRunData([RunDataBatch(runID: "r", metrics: [point])]) }
            let latest = try #require(try await store.runData(runIDs: ["r"])["r"]?.latestMetrics)
            #expect(latest["acc"]?.value == 0.8 && latest["acc"]?.step == 5)
            #expect(latest["nan"] != nil && latest["nan"]?.value == nil, "NaN is kept, as nil")
            let history = try await store.metricHistory(runID: "r", key: "acc", limit: 10, offset: 0)
            #expect(history.map(\.step) == [1, 2, 5, 5], "history is ordered by step, then timestamp")
            #expect(history.map(\.value) == [0.1, 0.7, 0.9, 0.8])
            #expect(try await store.metricHistory(runID: "r", key: "acc", limit: 2, offset: 2).map(\.value) == [0.9, 0.8])
        }
    }

    @Test(arguments: Backend.allCases) func deletingARunDeletesItsDataAndObjectsListByParentAndPipelineRun(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            var linked = Self.object(.run, "r1", parent: "1", at: 5)
            linked.pipelineRunID = 42
            _ = try await store.insertRegistryObject(linked)
            _ = try await store.insertRegistryObject(Self.object(.run, "r2", parent: "2", at: 3))
            _ = try await store.logRunData([RunDataBatch(runID: "r1", params: [("a", "1")], tags: [("t", "v")])])
            #expect(try await store.registryObjects(.run, parents: ["1", "2"]).map(\.id) == ["r2", "r1"], "oldest first")
            #expect(try await store.registryObjects(.run, parents: []).isEmpty)
            #expect(try await store.registryObjects(pipelineRunID: 42).map(\.id) == ["r1"])
            #expect(try await store.deleteRunTag(runID: "r1", key: "t"))
            #expect(try await store.deleteRunTag(runID: "r1", key: "t") == false)
            #expect(try await store.deleteRegistryObject(.run, id: "r1"))
            #expect(try await store.runData(runIDs: ["r1"])["r1"] == RunData())
            #expect(try await store.deleteRegistryObject(.run, id: "r1") == false)
        }
    }

    @Test(arguments: Backend.allCases) func modelEventsComeBackNewestFirst(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            for (index, action) in ["version_created", "approved", "approval_revoked"].enumerated() {
                try await store.recordModelEvent(
                    ModelEventRecord(
                        modelID: "m", version: "1", action: action, alias: "champion", detail: "note \(index)", actor: "ml",
                        at: Date(timeIntervalSince1970: Double(index))))
            }
            let events = try await store.modelEvents(modelID: "m", limit: 2)
            #expect(events.map(\.action) == ["approval_revoked", "approved"])
            #expect(events.first?.detail == "note 2" && events.first?.actor == "ml")
            #expect(try await store.modelEvents(modelID: "other", limit: 5).isEmpty)
        }
    }
}
