import BatonAPI
import BatonCore
import BatonRegistry
import BatonServer
import BatonStore
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The MLflow-compatible routes and `/api/v1/models` over real HTTP against an in-process
/// server: error shapes and statuses, artifacts on disk, lineage through `/tasks/...`, tokens.
@Suite(.timeLimit(.minutes(5)))
struct RegistryAPITests {
    static let quick = [
        "train": """
        name: train
        owner: ml
        tasks:
          fit:
            run: "true"
        """
    ]

    func json(_ result: APIHTTPResult) throws -> [String: Any] { try result.object() }

    @Test func errorsComeInMLflowsShapeWithTheStatusesTheClientExpects() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let missing = try await server.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=nope")
            #expect(missing.status == 404, "\(missing)")
            #expect(try json(missing)["error_code"] as? String == "RESOURCE_DOES_NOT_EXIST")
            let notJSON = try await server.post("/api/2.0/mlflow/experiments/create", json: "{not json")
            let notJSONCode = try json(notJSON)["error_code"] as? String
            #expect(notJSON.status == 400 && notJSONCode == "MALFORMED_REQUEST", "\(notJSON)")
            let noName = try await server.post("/api/2.0/mlflow/experiments/create", json: "{}")
            #expect(noName.status == 400 && noName.text.contains("'name'"), "\(noName)")
            let unknown = try await server.post("/api/2.0/mlflow/traces/start", json: "{}")
            #expect(unknown.status == 404 && unknown.text.contains("ENDPOINT_NOT_FOUND"), "\(unknown)")
            // A form-encoded query (+ for spaces) as Python's client sends it.
            _ = try await server.post("/api/2.0/mlflow/registered-models/create", json: #"{"name": "churn model"}"#)
            let search = try await server.get("/api/2.0/mlflow/registered-models/search?filter=name+%3D+%27churn+model%27&max_results=10")
            #expect(search.status == 200 && search.text.contains("churn model"), "\(search)")
            let info = try await server.get("/api/3.0/mlflow/server-info")
            #expect(info.status == 200 && info.text.contains("store_type"))
        }
    }

    @Test func artifactsAreStoredListedAndServedAndCannotEscapeTheRoot() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            let payload = Data((0..<200_000).map { UInt8($0 % 251) })
            let put = try await server.request("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model/weights.bin", body: payload)
            #expect(put.status == 200, "\(put)")
            let listed = try await server.get("/api/2.0/mlflow-artifacts/artifacts?path=0/abc/artifacts")
            let files = try #require(try json(listed)["files"] as? [[String: Any]])
            #expect(files.first?["path"] as? String == "model" && files.first?["is_dir"] as? Bool == true, "\(listed)")
            let inner = try json(try await server.get("/api/2.0/mlflow-artifacts/artifacts?path=0/abc/artifacts/model"))
            let file = try #require((inner["files"] as? [[String: Any]])?.first)
            #expect(file["path"] as? String == "weights.bin" && (file["file_size"] as? NSNumber)?.intValue == payload.count)
            let back = try await server.get("/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/model/weights.bin")
            #expect(back.status == 200 && back.body == payload)
            let empty = try await server.get("/api/2.0/mlflow-artifacts/artifacts?path=9/none")
            #expect(empty.status == 200 && empty.text == "{}")
            let escape = try await server.request("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/%2E%2E/%2E%2E/escape.txt", body: Data("x".utf8))
            #expect(escape.status == 400, "\(escape)")
            #expect(!FileManager.default.fileExists(atPath: server.root + "/escape.txt"))
            let absent = try await server.get("/api/2.0/mlflow-artifacts/artifacts/0/abc/artifacts/nothing.bin")
            #expect(absent.status == 404 && absent.text.contains("RESOURCE_DOES_NOT_EXIST"))
            #expect(FileManager.default.fileExists(atPath: server.root + "/artifacts/0/abc/artifacts/model/weights.bin"))
        }
    }

    @Test func runsMadeThroughATasksPathAreLinkedToItsPipelineRun() async throws {
        try await APITestServer.with(pipelines: Self.quick) { server in
            let run = try await server.trigger("train")
            let path = "/tasks/\(run.id)/fit/1/api/2.0/mlflow/runs/create"
            let created = try await server.post(path, json: #"{"experiment_id": "0", "run_name": "xgb"}"#)
            #expect(created.status == 200, "\(created)")
            let info = try #require((try json(created)["run"] as? [String: Any])?["info"] as? [String: Any])
            let runID = try #require(info["run_id"] as? String)
            let fetched = try await server.get("/api/2.0/mlflow/runs/get?run_id=\(runID)")
            #expect(fetched.text.contains(#""baton.pipeline""#) && fetched.text.contains(#""baton.task""#), "\(fetched)")
            let lineage = try await server.context.registry.lineage(pipelineRunID: run.id)
            #expect(lineage.map(\.id) == [runID])
            // A path naming a pipeline run that does not exist links to nothing.
            let stray = try await server.post("/tasks/999999/fit/1/api/2.0/mlflow/runs/create", json: #"{"experiment_id": "0"}"#)
            #expect(stray.status == 200 && !stray.text.contains("baton.pipeline"), "\(stray)")
        }
    }

    @Test func theModelAPIApprovesRevokesAndAnswersTheApprovedVersion() async throws {
        try await APITestServer.with(pipelines: [:]) { server in
            _ = try await server.post("/api/2.0/mlflow/registered-models/create", json: #"{"name": "churn"}"#)
            _ = try await server.post("/api/2.0/mlflow/model-versions/create", json: #"{"name": "churn", "source": "mlflow-artifacts:/0/r/artifacts/model"}"#)
            let none = try await server.get("/api/v1/models/churn/approved")
            #expect(none.status == 404 && none.text.contains("champion"), "\(none)")
            let approve = try await server.post("/api/v1/models/churn/versions/1/approve", json: #"{"note": "f1 0.8", "by": "alice"}"#)
            let approvedFlag = try json(approve)["approved"] as? Bool
            #expect(approve.status == 200 && approvedFlag == true, "\(approve)")
            let approved = try json(try await server.get("/api/v1/models/churn/approved"))
            #expect((approved["version"] as? NSNumber)?.intValue == 1)
            #expect(approved["artifact_path"] as? String == server.root + "/artifacts/0/r/artifacts/model")
            let model = try json(try await server.get("/api/v1/models/churn"))
            let history = try #require(model["history"] as? [[String: Any]])
            #expect(history.first?["action"] as? String == "approved" && history.first?["actor"] as? String == "alice")
            #expect(history.first?["note"] as? String == "f1 0.8")
            let badVersion = try await server.post("/api/v1/models/churn/versions/zero/approve", json: "{}")
            #expect(badVersion.status == 400, "\(badVersion)")
            let missingVersion = try await server.post("/api/v1/models/churn/versions/7/approve", json: "{}")
            #expect(missingVersion.status == 404, "\(missingVersion)")
            let typo = try await server.post("/api/v1/models/churn/versions/1/approve", json: #"{"nte": "x"}"#)
            #expect(typo.status == 400 && typo.text.contains("note"), "\(typo)")
            let revoke = try await server.post("/api/v1/models/churn/revoke", json: #"{"note": "drift"}"#)
            #expect(revoke.status == 200, "\(revoke)")
            #expect(try await server.get("/api/v1/models/churn/approved").status == 404)
            let list = try json(try await server.get("/api/v1/models"))
            #expect((list["items"] as? [[String: Any]])?.first?["name"] as? String == "churn")
        }
    }

    @Test func aViewerTokenMaySearchButNotWrite() async throws {
        try await APITestServer.with(pipelines: [:], requireAuth: true) { server in
            let viewer = try await server.context.tokens.create(team: "analysts", role: .viewer, description: nil).token
            let op = try await server.context.tokens.create(team: "ml", role: .operator, description: nil).token
            let anonymous = try await server.post("/api/2.0/mlflow/experiments/search", json: "{}")
            #expect(anonymous.status == 401)
            let search = try await server.post("/api/2.0/mlflow/experiments/search", json: "{}", token: viewer)
            #expect(search.status == 200, "\(search)")
            let write = try await server.post("/api/2.0/mlflow/experiments/create", json: #"{"name": "x"}"#, token: viewer)
            #expect(write.status == 403, "\(write)")
            _ = try await server.post("/api/2.0/mlflow/registered-models/create", json: #"{"name": "m"}"#, token: op)
            _ = try await server.post("/api/2.0/mlflow/model-versions/create", json: #"{"name": "m", "source": "s"}"#, token: op)
            _ = try await server.post("/api/v1/models/m/versions/1/approve", json: "{}", token: op)
            let history = try json(try await server.get("/api/v1/models/m", token: op))["history"] as? [[String: Any]]
            #expect(history?.first?["actor"] as? String == "ml", "the token's team is the actor")
        }
    }
}
