import BatonCore
import BatonStore
import Foundation
import Testing

@testable import BatonRegistry

/// A registry on a fresh SQLite file, driven through the MLflow endpoint table as the HTTP
/// routes drive it, so these tests check what the MLflow client gets back.
struct TestRegistry {
    let root: String
    let store: SQLiteStore
    let registry: Registry
    let api: MLflowAPI

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-registry-\(UUID().uuidString)").path
        store = try SQLiteStore(path: root + "/baton.db")
        registry = Registry(store: store, artifactRoot: root + "/artifacts")
        api = MLflowAPI(registry: registry)
    }

    func remove() { try? FileManager.default.removeItem(atPath: root) }

    @discardableResult
    func call(_ method: String, _ path: String, _ params: [String: JSONValue] = [:], actor: String = "tester") async throws
        -> JSONValue
    {
        try await api.handle(method: method, path: path, params: MLflowParams(params), caller: MLflowCaller(actor: actor))
    }

    /// The MLflowError a call fails with.
    func failure(_ method: String, _ path: String, _ params: [String: JSONValue]) async -> MLflowError? {
        do {
            _ = try await call(method, path, params)
            return nil
        } catch let error as MLflowError {
            return error
        } catch {
            Issue.record("expected an MLflowError, got \(error)")
            return nil
        }
    }

    func createRun(experiment: String, name: String) async throws -> String {
        let run = try await call("POST", "runs/create", ["experiment_id": .string(experiment), "run_name": .string(name)])
        return try #require(run["run"]?["info"]?["run_id"]?.string)
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var number: Double? {
        if case .number(let n) = self { return n }
        return nil
    }

    var array: [JSONValue] {
        if case .array(let items) = self { return items }
        return []
    }
}

@Suite struct SearchFilterTests {
    @Test func parsesTheClausesTheClientSends() throws {
        let filter = try SearchFilter.parse(
            "metrics.accuracy > 0.9 AND params.lr = '0.1' and tags.`mlflow.prompt.is_prompt` != 'true' AND attributes.status IN ('FINISHED', 'FAILED')"
        )
        #expect(filter.clauses.count == 4)
        #expect(filter.clauses[0].key == SearchKey(entity: .metric, key: "accuracy"))
        #expect(filter.clauses[0].comparator == .greater && filter.clauses[0].value == .number(0.9))
        #expect(filter.clauses[2].key == SearchKey(entity: .tag, key: "mlflow.prompt.is_prompt"))
        #expect(filter.clauses[3].value == .list(["FINISHED", "FAILED"]))
    }

    @Test func aMissingValueMatchesOnlyNegativeComparisons() throws {
        let filter = try SearchFilter.parse("name LIKE 'churn%' AND tags.`mlflow.prompt.is_prompt` != 'true'")
        #expect(filter.matches { $0.key == "name" ? .text("churn_v2") : nil })
        #expect(!filter.matches { $0.key == "name" ? .text("fraud") : nil })
        #expect(!filter.matches { $0.entity == .tag ? .text("true") : .text("churn") })
        #expect(try SearchFilter.parse("metrics.f1 >= 0.5").matches { _ in nil } == false)
    }

    @Test(arguments: [
        "metrics.acc >", "foo.bar = 1", "metrics.acc = 'unterminated", "metrics.acc ~ 1", "params.lr = abc",
        "metrics.a > 1 OR metrics.b > 1",
    ])
    func badFiltersAreInvalidParameterErrorsNamingTheProblem(_ text: String) {
        #expect(throws: MLflowError.self) { try SearchFilter.parse(text) }
        do {
            _ = try SearchFilter.parse(text)
        } catch {
            #expect(error.code == "INVALID_PARAMETER_VALUE" && error.status == 400)
            #expect(!error.message.isEmpty)
        }
    }

    @Test func likeMatchesPercentAndUnderscore() {
        #expect(SearchFilter.like("churn_model", "churn%", caseInsensitive: false))
        #expect(SearchFilter.like("churn", "ch_rn", caseInsensitive: false))
        #expect(!SearchFilter.like("Churn", "churn", caseInsensitive: false))
        #expect(SearchFilter.like("Churn", "churn", caseInsensitive: true))
    }
}

@Suite struct RegistryTests {
    @Test func experimentsHaveUniqueNamesEvenWhenDeletedAndTheDefaultExists() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        let created = try await registry.call("POST", "experiments/create", ["name": "churn"])
        let id = try #require(created["experiment_id"]?.string)
        #expect(id == "1")
        let taken = await registry.failure("POST", "experiments/create", ["name": "churn"])
        #expect(taken?.code == "RESOURCE_ALREADY_EXISTS" && taken?.status == 400)
        try await registry.call("POST", "experiments/delete", ["experiment_id": .string(id)])
        let deleted = await registry.failure("POST", "experiments/create", ["name": "churn"])
        #expect(deleted?.message.contains("deleted") == true)
        let missing = await registry.failure("GET", "experiments/get-by-name", ["experiment_name": "nope"])
        #expect(missing?.code == "RESOURCE_DOES_NOT_EXIST" && missing?.status == 404)
        let fallback = try await registry.call("GET", "experiments/get", ["experiment_id": "0"])
        #expect(fallback["experiment"]?["name"]?.string == "Default")
        let active = try await registry.call("POST", "experiments/search", ["view_type": "ACTIVE_ONLY"])
        #expect(active["experiments"]?.array.compactMap { $0["name"]?.string } == ["Default"])
        try await registry.call("POST", "experiments/restore", ["experiment_id": .string(id)])
        let all = try await registry.call("POST", "experiments/search", ["filter": "name = 'churn'"])
        #expect(all["experiments"]?.array.count == 1)
    }

    @Test func paramsNeverChangeAndTheRunShowsLatestMetrics() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        let run = try await registry.createRun(experiment: "0", name: "first")
        try await registry.call("POST", "runs/log-parameter", ["run_id": .string(run), "key": "lr", "value": "0.1"])
        let changed = await registry.failure("POST", "runs/log-parameter", ["run_id": .string(run), "key": "lr", "value": "0.2"])
        #expect(changed?.code == "INVALID_PARAMETER_VALUE" && changed?.message.contains("0.1") == true)
        // protobuf's JSON: 64-bit integers as strings, NaN as a string.
        try await registry.call(
            "POST", "runs/log-batch",
            [
                "run_id": .string(run),
                "metrics": [
                    ["key": "loss", "value": 0.9, "timestamp": "1000", "step": "0"],
                    ["key": "loss", "value": 0.4, "timestamp": "2000", "step": "1"],
                    ["key": "odd", "value": "NaN", "timestamp": "2000", "step": "0"],
                ],
                "tags": [["key": "team", "value": "ml"]],
            ])
        let fetched = try await registry.call("GET", "runs/get", ["run_id": .string(run)])
        let metrics = fetched["run"]?["data"]?["metrics"]?.array ?? []
        #expect(metrics.first { $0["key"]?.string == "loss" }?["value"]?.number == 0.4)
        #expect(metrics.first { $0["key"]?.string == "odd" }?["value"]?.string == "NaN")
        let tags = fetched["run"]?["data"]?["tags"]?.array.compactMap { $0["key"]?.string } ?? []
        #expect(tags.contains("team") && tags.contains("mlflow.runName"))
        let history = try await registry.call("GET", "metrics/get-history", ["run_id": .string(run), "metric_key": "loss"])
        #expect(history["metrics"]?.array.compactMap { $0["value"]?.number } == [0.9, 0.4])
        let unknown = await registry.failure("POST", "runs/log-metric", ["run_id": "feedface", "key": "x", "value": 1])
        #expect(unknown?.code == "RESOURCE_DOES_NOT_EXIST")
        let tooMany = await registry.failure(
            "POST", "runs/log-batch",
            ["run_id": .string(run), "params": .array((0...100).map { ["key": .string("p\($0)"), "value": "1"] })])
        #expect(tooMany?.code == "INVALID_PARAMETER_VALUE")
    }

    @Test func searchFiltersOrdersAndPagesRuns() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        var ids: [String] = []
        for (index, accuracy) in [0.5, 0.95, 0.8, 0.99].enumerated() {
            let run = try await registry.createRun(experiment: "0", name: "run\(index)")
            ids.append(run)
            try await registry.call(
                "POST", "runs/log-batch",
                [
                    "run_id": .string(run), "metrics": [["key": "accuracy", "value": .number(accuracy), "timestamp": 1, "step": 0]],
                    "params": [["key": "lr", "value": index.isMultiple(of: 2) ? "0.1" : "0.01"]],
                ])
        }
        try await registry.call("POST", "runs/update", ["run_id": .string(ids[3]), "status": "FAILED"])
        func search(_ body: [String: JSONValue]) async throws -> (names: [String], next: String?) {
            var params = body
            params["experiment_ids"] = ["0"]
            let answer = try await registry.call("POST", "runs/search", params)
            return (answer["runs"]?.array.compactMap { $0["info"]?["run_name"]?.string } ?? [], answer["next_page_token"]?.string)
        }
        #expect(try await search(["filter": "metrics.accuracy > 0.9", "order_by": ["metrics.accuracy DESC"]]).names == ["run3", "run1"])
        #expect(try await search(["filter": "params.lr = '0.1' AND metrics.accuracy > 0.6"]).names == ["run2"])
        #expect(try await search(["filter": "attributes.status = 'FAILED'"]).names == ["run3"])
        let first = try await search(["max_results": 3, "order_by": ["metrics.accuracy ASC"]])
        #expect(first.names == ["run0", "run2", "run1"])
        let token = try #require(first.next)
        let second = try await search(["max_results": 3, "order_by": ["metrics.accuracy ASC"], "page_token": .string(token)])
        #expect(second.names == ["run3"] && second.next == nil)
        let bad = await registry.failure("POST", "runs/search", ["experiment_ids": ["0"], "page_token": "garbage"])
        #expect(bad?.code == "INVALID_PARAMETER_VALUE")
    }

    @Test func versionNumbersAreNeverReusedAndDeletingAVersionDropsItsAliases() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        try await registry.call("POST", "registered-models/create", ["name": "churn"])
        let taken = await registry.failure("POST", "registered-models/create", ["name": "churn"])
        #expect(taken?.code == "RESOURCE_ALREADY_EXISTS")
        for _ in 0..<2 {
            try await registry.call("POST", "model-versions/create", ["name": "churn", "source": "mlflow-artifacts:/0/x/artifacts/model"])
        }
        try await registry.call("POST", "registered-models/alias", ["name": "churn", "alias": "champion", "version": "2"])
        let byAlias = try await registry.call("GET", "registered-models/alias", ["name": "churn", "alias": "champion"])
        #expect(byAlias["model_version"]?["version"]?.string == "2")
        #expect(byAlias["model_version"]?["aliases"]?.array == [.string("champion")])
        try await registry.call("DELETE", "model-versions/delete", ["name": "churn", "version": "2"])
        let gone = await registry.failure("GET", "registered-models/alias", ["name": "churn", "alias": "champion"])
        #expect(gone?.code == "INVALID_PARAMETER_VALUE" && gone?.status == 400, "an unknown alias is a 400, as in MLflow")
        let third = try await registry.call("POST", "model-versions/create", ["name": "churn", "source": "mlflow-artifacts:/0/y"])
        #expect(third["model_version"]?["version"]?.string == "3")
        let reserved = await registry.failure("POST", "registered-models/alias", ["name": "churn", "alias": "latest", "version": "3"])
        #expect(reserved?.code == "INVALID_PARAMETER_VALUE")
        let missing = await registry.failure("GET", "model-versions/get", ["name": "churn", "version": "2"])
        #expect(missing?.code == "RESOURCE_DOES_NOT_EXIST")
    }

    @Test func stagesArchiveOthersAndRegisteredModelSearchMatchesTheClientsPromptFilter() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        try await registry.call("POST", "registered-models/create", ["name": "churn"])
        try await registry.call("POST", "registered-models/create", ["name": "fraud"])
        for _ in 0..<2 { try await registry.call("POST", "model-versions/create", ["name": "churn", "source": "s3://b/m"]) }
        try await registry.call("POST", "model-versions/transition-stage", ["name": "churn", "version": "1", "stage": "Production"])
        try await registry.call(
            "POST", "model-versions/transition-stage",
            ["name": "churn", "version": "2", "stage": "production", "archive_existing_versions": true])
        let first = try await registry.call("GET", "model-versions/get", ["name": "churn", "version": "1"])
        #expect(first["model_version"]?["current_stage"]?.string == "Archived")
        let search = try await registry.call(
            "GET", "registered-models/search", ["filter": "name LIKE 'ch%' AND tag.`mlflow.prompt.is_prompt` != 'true'"])
        #expect(search["registered_models"]?.array.compactMap { $0["name"]?.string } == ["churn"])
        let badStage = await registry.failure("POST", "model-versions/transition-stage", ["name": "churn", "version": "1", "stage": "Live"])
        #expect(badStage?.code == "INVALID_PARAMETER_VALUE")
        try await registry.call("POST", "registered-models/rename", ["name": "churn", "new_name": "churn2"])
        let renamed = try await registry.call("GET", "model-versions/get", ["name": "churn2", "version": "2"])
        #expect(renamed["model_version"]?["name"]?.string == "churn2", "versions follow their model's new name")
    }

    @Test func approvalsMoveTheAliasAndAreRecordedWithWhoAndWhy() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        try await registry.call("POST", "registered-models/create", ["name": "churn"])
        let run = try await registry.createRun(experiment: "0", name: "train")
        try await registry.call("POST", "model-versions/create", ["name": "churn", "source": .string("runs:/\(run)/model"), "run_id": .string(run)])
        await #expect(throws: MLflowError.self) { try await registry.registry.version(model: "churn") }
        let approved = try await registry.registry.approve(model: "churn", version: 1, actor: "mlops", note: "f1 0.81")
        #expect(approved.aliases == ["champion"] && approved.runID == run)
        #expect(approved.artifactURI == "mlflow-artifacts:/0/\(run)/artifacts/model", "runs:/ sources resolve to the run's folder")
        #expect(approved.localPath == registry.root + "/artifacts/0/\(run)/artifacts/model")
        #expect(try await registry.registry.version(model: "churn").version == 1)
        try await registry.registry.revokeApproval(model: "churn", actor: "mlops", note: "drift")
        let history = try await registry.registry.history(model: "churn")
        #expect(history.map(\.action) == ["approval_revoked", "approved", "version_created"])
        #expect(history[1].actor == "mlops" && history[1].detail == "f1 0.81" && history[1].alias == "champion")
    }

    @Test func concurrentLoggingIsGroupCommittedAndLosesNothing() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        let run = try await registry.createRun(experiment: "0", name: "load")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for step in 0..<400 {
                group.addTask {
                    try await registry.call(
                        "POST", "runs/log-metric",
                        ["run_id": .string(run), "key": "loss", "value": .number(Double(step)), "step": .number(Double(step))])
                }
            }
            try await group.waitForAll()
        }
        let history = try await registry.call("GET", "metrics/get-history", ["run_id": .string(run), "metric_key": "loss"])
        #expect(history["metrics"]?.array.count == 400)
        let latest = try await registry.call("GET", "runs/get", ["run_id": .string(run)])
        #expect(latest["run"]?["data"]?["metrics"]?.array.first?["value"]?.number == 399)
    }

    @Test func artifactPathsCannotLeaveTheRoot() throws {
        let store = ArtifactStore(root: "/srv/artifacts")
        #expect(throws: MLflowError.self) { try store.resolve("1/run/../../../etc/passwd") }
        #expect(throws: MLflowError.self) { try store.resolve("./x") }
        #expect(try store.resolve("/1/run/artifacts//model.pkl") == "/srv/artifacts/1/run/artifacts/model.pkl")
        #expect(ArtifactStore.relativePath(ofURI: "mlflow-artifacts://host:5000/1/r/artifacts") == "1/r/artifacts")
        #expect(ArtifactStore.relativePath(ofURI: "mlflow-artifacts:/1/r") == "1/r")
        #expect(ArtifactStore.relativePath(ofURI: "s3://bucket/x") == nil)
    }

    @Test func anUnknownEndpointIsA404NotARetriedServerError() async throws {
        let registry = try TestRegistry()
        defer { registry.remove() }
        let error = await registry.failure("POST", "gateway/routes/create", [:])
        #expect(error?.status == 404 && error?.code == "ENDPOINT_NOT_FOUND")
        let missing = await registry.failure("POST", "runs/create", ["experiment_id": "77"])
        #expect(missing?.code == "RESOURCE_DOES_NOT_EXIST")
    }
}
