import BatonAPI
import BatonCore
import BatonServer
import BatonStore
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// The REST API driven over real HTTP: a server runs in-process on a free loopback port (see
/// `Support/APITestServer.swift`) and URLSession talks to it, the way any client does.
@Suite(.timeLimit(.minutes(5)))
struct APIPipelineTests {
    @Test func listsAndFiltersPipelines() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let all = try await server.getOK("/api/v1/pipelines", as: APIList<APIPipeline>.self)
            #expect(all.items.map(\.name) == ["chatty", "etl", "flaky", "slow", "train"])
            #expect(all.next_cursor == nil)

            let etl = try #require(all.items.first { $0.name == "etl" })
            #expect(etl.owner == "data_eng")
            #expect(etl.schedule == "none")
            #expect(etl.schedule_description == "manual only")
            #expect(etl.next_run == nil)
            #expect(etl.task_count == 2)
            #expect(etl.file?.hasSuffix("/pipelines/etl.yaml") == true)
            #expect(etl.params.map(\.name).sorted() == ["batch_size", "mode", "region"])
            let batch = try #require(etl.params.first { $0.name == "batch_size" })
            #expect(batch.type == "integer")
            #expect(batch.default_value == .number(100))
            #expect(batch.description == "Rows per batch")
            let mode = try #require(etl.params.first { $0.name == "mode" })
            #expect(mode.allowed_values == [.string("fast"), .string("full")])

            let train = try #require(all.items.first { $0.name == "train" })
            #expect(train.schedule == "@daily")
            #expect(train.timezone == "Europe/Berlin")
            #expect(train.next_run != nil)

            let byOwner = try await server.getOK("/api/v1/pipelines?owner=data_eng", as: APIList<APIPipeline>.self)
            #expect(byOwner.items.map(\.name) == ["etl", "flaky"])
            let noOwner = try await server.getOK("/api/v1/pipelines?owner=nobody", as: APIList<APIPipeline>.self)
            #expect(noOwner.items.isEmpty)

            // q matches the name or the description, ignoring case.
            let byName = try await server.getOK("/api/v1/pipelines?q=FLAK", as: APIList<APIPipeline>.self)
            #expect(byName.items.map(\.name) == ["flaky"])
            let byDescription = try await server.getOK("/api/v1/pipelines?q=warehouse", as: APIList<APIPipeline>.self)
            #expect(byDescription.items.map(\.name) == ["etl"])

            let paused = try await server.getOK("/api/v1/pipelines?paused=true", as: APIList<APIPipeline>.self)
            #expect(paused.items.isEmpty)
            let active = try await server.getOK("/api/v1/pipelines?paused=false&owner=ml_team", as: APIList<APIPipeline>.self)
            #expect(active.items.map(\.name) == ["train"])

            try await server.get("/api/v1/pipelines?paused=maybe").expectError(400, code: "invalid_request", field: "paused")
        }
    }

    @Test func pipelineDetailHasTheGraph() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let run = try await server.trigger("train")
            try await server.waitForRun(run.id)

            let detail = try await server.getOK("/api/v1/pipelines/train", as: APIPipelineDetail.self)
            #expect(detail.pipeline.name == "train")
            #expect(detail.catchup == false)
            #expect(detail.max_active_runs == 3)
            #expect(detail.start_date == nil)
            #expect(detail.pipeline.recent_runs.map(\.id) == [run.id])
            #expect(detail.graph.nodes.map(\.id) == ["fit", "evaluate"])
            let fit = try #require(detail.graph.nodes.first { $0.id == "fit" })
            #expect(fit.command == "echo fitted")
            #expect(fit.retries == 2)
            #expect(fit.timeout_seconds == 30)
            #expect(fit.trigger_rule == "all_success")
            #expect(fit.when == nil)
            let evaluate = try #require(detail.graph.nodes.first { $0.id == "evaluate" })
            #expect(evaluate.command == "echo evaluated")
            #expect(evaluate.trigger_rule == "all_done")
            #expect(evaluate.when == "params.gate == 1")
            #expect(detail.graph.edges.map { "\($0.from)->\($0.to)" } == ["fit->evaluate"])

            let missing = try await server.get("/api/v1/pipelines/trian")
            try missing.expectError(404, code: "not_found", field: "pipeline", messageContains: "did you mean 'train'?")
            try await server.get("/api/v1/pipelines/nothing_like_it").expectError(404, code: "not_found", field: "pipeline")
        }
    }

    @Test func pauseAndUnpause() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let pausedResult = try await server.post("/api/v1/pipelines/train/pause")
            #expect(pausedResult.status == 200, "\(pausedResult)")
            let paused = try pausedResult.decode(APIPipeline.self)
            #expect(paused.paused)
            #expect(paused.next_run == nil, "a paused pipeline has no next run")

            // Pausing twice is fine, and the listing agrees.
            #expect(try await server.post("/api/v1/pipelines/train/pause").status == 200)
            let listed = try await server.getOK("/api/v1/pipelines?paused=true", as: APIList<APIPipeline>.self)
            #expect(listed.items.map(\.name) == ["train"])
            #expect(try await server.store.pipeline(named: "train")?.paused == true, "the pause is stored")

            // A paused pipeline can still be triggered by hand.
            let run = try await server.trigger("train")
            #expect(try await server.waitForRun(run.id).state == "success")

            let unpaused = try await server.post("/api/v1/pipelines/train/unpause").decode(APIPipeline.self)
            #expect(!unpaused.paused)
            #expect(unpaused.next_run != nil)
            let stillPaused = try await server.getOK("/api/v1/pipelines?paused=true", as: APIList<APIPipeline>.self)
            #expect(stillPaused.items.isEmpty)

            try await server.post("/api/v1/pipelines/trainn/pause").expectError(
                404, code: "not_found", field: "pipeline", messageContains: "did you mean 'train'?")
            try await server.post("/api/v1/pipelines/nope/unpause").expectError(404, field: "pipeline")
        }
    }
}

@Suite(.timeLimit(.minutes(5)))
struct APIRunTests {
    @Test func triggerWithParams() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let result = try await server.post(
                "/api/v1/runs", json: #"{"pipeline": "etl", "params": {"region": "us", "batch_size": 7}}"#)
            #expect(result.status == 201, "\(result)")
            #expect(result.contentType.hasPrefix("application/json"))
            let run = try result.decode(APIRun.self)
            #expect(run.pipeline == "etl")
            #expect(run.owner == "data_eng")
            #expect(run.trigger == "manual")
            #expect(run.params == ["region": .string("us"), "batch_size": .number(7), "mode": .string("fast")])
            #expect(run.tasks?.map(\.task) == ["extract", "load"])
            #expect(!run.cancel_requested)

            let done = try await server.waitForRun(run.id)
            #expect(done.state == "success")
            #expect(done.ended_at != nil && done.started_at != nil)
            #expect((done.duration_seconds ?? -1) >= 0)
            let extract = try #require(done.tasks?.first { $0.task == "extract" })
            #expect(extract.state == "success")
            #expect(extract.attempts == 1)
            #expect(extract.output == .object(["rows": .number(7)]))

            // Defaults only: no params field, or an explicit null.
            let plain = try await server.trigger("etl")
            #expect(plain.params["region"] == .string("eu"))
            let nullParams = try await server.post("/api/v1/runs", json: #"{"pipeline": "etl", "params": null}"#)
            #expect(nullParams.status == 201, "\(nullParams)")

            try await server.post("/api/v1/runs", json: #"{"pipeline": "etll"}"#).expectError(
                404, code: "not_found", field: "pipeline", messageContains: "did you mean 'etl'?")
            try await server.post("/api/v1/runs", json: #"{"pipeline": "etl", "params": {"batch_size": "seven"}}"#)
                .expectError(422, code: "invalid_params", field: "params.batch_size", messageContains: "expected integer")
            try await server.post("/api/v1/runs", json: #"{"pipeline": "etl", "params": {"batch_size": 2.5}}"#)
                .expectError(422, code: "invalid_params", field: "params.batch_size")
            try await server.post("/api/v1/runs", json: #"{"pipeline": "etl", "params": {"mode": "slow"}}"#)
                .expectError(422, code: "invalid_params", field: "params.mode", messageContains: "not one of")
            try await server.post("/api/v1/runs", json: #"{"pipeline": "etl", "params": {"regoin": "us"}}"#)
                .expectError(422, code: "invalid_params", field: "params.regoin", messageContains: "did you mean 'region'?")
        }
    }

    @Test func listFiltersByPipelineStateOwnerAndDate() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            var etlRuns: [APIRun] = []
            for _ in 0..<3 {
                etlRuns.append(try await server.trigger("etl"))
                // Distinct milliseconds, so the date filters below can split them.
                try await Task.sleep(for: .milliseconds(5))
            }
            let trainRun = try await server.trigger("train")
            let slowRuns = [try await server.trigger("slow"), try await server.trigger("slow")]
            for run in etlRuns + [trainRun] { try await server.waitForRun(run.id) }
            try await server.waitForRun(slowRuns[0].id) { $0.state == "running" }

            let all = try await server.getOK("/api/v1/runs", as: APIList<APIRun>.self)
            #expect(all.items.map(\.id) == (etlRuns + [trainRun] + slowRuns).map(\.id).sorted(by: >), "newest first")
            #expect(all.next_cursor == nil)
            #expect(all.items.allSatisfy { $0.tasks == nil }, "listings carry no tasks")

            let etl = try await server.getOK("/api/v1/runs?pipeline=etl", as: APIList<APIRun>.self)
            #expect(Set(etl.items.map(\.id)) == Set(etlRuns.map(\.id)))

            let running = try await server.getOK("/api/v1/runs?state=running", as: APIList<APIRun>.self)
            #expect(running.items.map(\.id) == [slowRuns[0].id])
            let waiting = try await server.getOK("/api/v1/runs?state=queued,running", as: APIList<APIRun>.self)
            #expect(waiting.items.map(\.id) == [slowRuns[1].id, slowRuns[0].id])
            let succeeded = try await server.getOK("/api/v1/runs?state=success&pipeline=train", as: APIList<APIRun>.self)
            #expect(succeeded.items.map(\.id) == [trainRun.id])

            let mine = try await server.getOK("/api/v1/runs?owner=data_eng", as: APIList<APIRun>.self)
            #expect(Set(mine.items.map(\.id)) == Set(etlRuns.map(\.id)))
            let platform = try await server.getOK("/api/v1/runs?owner=platform&state=queued", as: APIList<APIRun>.self)
            #expect(platform.items.map(\.id) == [slowRuns[1].id])

            // Manual runs of unscheduled pipelines have the trigger instant as logical date.
            // Rounded down to the millisecond, the stamp is still after the previous run's date.
            let pivot = etlRuns[1].logical_date.timeIntervalSince1970
            let stamp = Date(timeIntervalSince1970: (pivot * 1000).rounded(.down) / 1000)
                .formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
            let from = try await server.getOK(
                "/api/v1/runs?pipeline=etl&from=\(stamp)", as: APIList<APIRun>.self)
            #expect(from.items.map(\.id) == [etlRuns[2].id, etlRuns[1].id])
            let to = try await server.getOK("/api/v1/runs?pipeline=etl&to=\(stamp)", as: APIList<APIRun>.self)
            #expect(to.items.map(\.id) == [etlRuns[0].id])
            let window = try await server.getOK(
                "/api/v1/runs?pipeline=etl&from=2000-01-01&to=2999-01-01T00:00:00Z", as: APIList<APIRun>.self)
            #expect(window.items.count == 3)
            let future = try await server.getOK("/api/v1/runs?from=2999-01-01", as: APIList<APIRun>.self)
            #expect(future.items.isEmpty)
        }
    }

    /// Walks every page at several page sizes, with and without filters: every run exactly
    /// once, newest first, and no cursor on the last page.
    @Test func cursorPaginationWalksEveryRunOnce() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            // `slow` runs one at a time, so these stay queued and the list does not change.
            var created: [Int64] = []
            for _ in 0..<230 { created.append(try await server.trigger("slow").id) }
            for _ in 0..<5 { created.append(try await server.trigger("flaky").id) }
            let expected = created.sorted(by: >)
            try await server.waitForRun(created[0]) { $0.state == "running" }

            func walk(_ query: String, limit: Int) async throws -> (ids: [Int64], pages: Int) {
                var ids: [Int64] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let path = "/api/v1/runs?limit=\(limit)" + query + (cursor.map { "&cursor=\($0)" } ?? "")
                    let page = try await server.getOK(path, as: APIList<APIRun>.self)
                    #expect(page.items.count <= limit)
                    if page.next_cursor != nil { #expect(page.items.count == limit, "only the last page may be short") }
                    ids += page.items.map(\.id)
                    cursor = page.next_cursor
                    pages += 1
                    guard pages < 1000 else { throw APITestFailure("pagination does not end") }
                } while cursor != nil
                return (ids, pages)
            }

            for limit in [1, 7, 50, 200, 234, 235, 236, 500] {
                let (ids, pages) = try await walk("", limit: limit)
                #expect(ids == expected, "limit \(limit): \(ids.count) ids, expected \(expected.count)")
                #expect(Set(ids).count == ids.count, "limit \(limit): duplicates")
                #expect(pages == (expected.count + limit - 1) / limit, "limit \(limit): \(pages) pages")
            }
            // Filters applied after the store query (owner) paginate the same way.
            let dataEng = created.suffix(5).sorted(by: >)
            for limit in [1, 2, 5, 6] {
                let (ids, _) = try await walk("&owner=data_eng", limit: limit)
                #expect(ids == dataEng, "owner filter, limit \(limit)")
            }
            let (platform, _) = try await walk("&owner=platform", limit: 100)
            #expect(platform == Array(expected.filter { !dataEng.contains($0) }))
            let (queued, _) = try await walk("&state=queued&pipeline=slow", limit: 60)
            #expect(queued == Array(expected.filter { !dataEng.contains($0) }.dropLast()), "all but the first slow run wait")
        }
    }

    @Test func runDetailAndCancel() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let first = try await server.trigger("slow")
            let second = try await server.trigger("slow")
            let running = try await server.waitForRun(first.id) { $0.tasks?.first?.state == "running" }
            #expect(running.state == "running")
            #expect(running.started_at != nil && running.ended_at == nil)
            #expect(running.tasks?.map(\.task) == ["wait"])
            let queued = try await server.getOK("/api/v1/runs/\(second.id)", as: APIRun.self)
            #expect(queued.state == "queued")
            #expect(queued.started_at == nil && queued.duration_seconds == nil)

            // Retrying an active run is a conflict.
            try await server.post("/api/v1/runs/\(first.id)/retry").expectError(409, code: "conflict")

            let cancelled = try await server.post("/api/v1/runs/\(first.id)/cancel")
            #expect(cancelled.status == 200, "\(cancelled)")
            #expect(try cancelled.decode(APIRun.self).tasks != nil)
            let ended = try await server.waitForRun(first.id)
            #expect(ended.state == "cancelled")
            #expect(ended.tasks?.first?.state == "cancelled")

            // The queued run now gets its turn; cancel it while queued or running.
            #expect(try await server.post("/api/v1/runs/\(second.id)/cancel").status == 200)
            #expect(try await server.waitForRun(second.id).state == "cancelled")

            try await server.post("/api/v1/runs/\(first.id)/cancel").expectError(
                409, code: "conflict", messageContains: "already ended")

            try await server.get("/api/v1/runs/999999").expectError(404, code: "not_found", field: "run")
            try await server.post("/api/v1/runs/999999/cancel").expectError(404, field: "run")
            try await server.get("/api/v1/runs/abc").expectError(400, code: "invalid_request", field: "run")
            try await server.get("/api/v1/runs/0").expectError(400, field: "run")
            try await server.get("/api/v1/runs/-3").expectError(400, field: "run")
            try await server.post("/api/v1/runs/abc/cancel").expectError(400, field: "run")
            try await server.get("/api/v1/runs/abc/tasks/wait").expectError(400, field: "run")
            try await server.get("/api/v1/runs/12345678901234567890123").expectError(400, field: "run")
        }
    }

    @Test func retryRunsFailedTasksAgain() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let run = try await server.trigger("flaky")
            let failed = try await server.waitForRun(run.id)
            #expect(failed.state == "failed")
            #expect(failed.tasks?.map(\.state) == ["failed", "upstream_failed"])
            #expect(failed.tasks?.first?.reason?.contains("3") == true)

            try await server.post("/api/v1/runs/\(run.id)/retry?tasks=nope").expectError(
                400, code: "invalid_request", field: "tasks")

            let retried = try await server.post("/api/v1/runs/\(run.id)/retry")
            #expect(retried.status == 200, "\(retried)")
            let again = try retried.decode(APIRun.self)
            #expect(["queued", "running", "success"].contains(again.state))
            let done = try await server.waitForRun(run.id)
            #expect(done.state == "success", "\(done)")
            #expect(done.tasks?.map(\.state) == ["success", "success"])

            let detail = try await server.getOK("/api/v1/runs/\(run.id)/tasks/fragile", as: APITaskDetail.self)
            #expect(detail.task.state == "success")
            #expect(detail.attempts.map(\.attempt) == [1, 2])
            #expect(detail.attempts.map(\.state) == ["failed", "success"])
            #expect(detail.attempts.map(\.exit_code) == [3, 0])

            // Nothing left to retry.
            try await server.post("/api/v1/runs/\(run.id)/retry").expectError(409, code: "conflict")
        }
    }
}

@Suite(.timeLimit(.minutes(5)))
struct APITaskAndLogTests {
    @Test func taskDetailAttemptsAndLogRanges() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let run = try await server.trigger("etl", params: #"{"region": "ap"}"#)
            #expect(try await server.waitForRun(run.id).state == "success")
            let base = "/api/v1/runs/\(run.id)/tasks/extract"

            let detail = try await server.getOK(base, as: APITaskDetail.self)
            #expect(detail.task.task == "extract")
            #expect(detail.task.attempts == 1)
            #expect(detail.attempts.count == 1)
            let attempt = try #require(detail.attempts.first)
            #expect(attempt.attempt == 1 && attempt.state == "success" && attempt.exit_code == 0)
            #expect(attempt.ended_at != nil)

            let attempts = try await server.getOK(base + "/attempts", as: APIList<APIAttempt>.self)
            #expect(attempts.items == detail.attempts)

            let expected = (1...200).map { "extract line \($0) for ap\n" }.joined()
            let whole = try await server.getOK(base + "/logs", as: APILogChunk.self)
            #expect(whole.content == expected)
            #expect(whole.attempt == 1 && whole.offset == 0)
            #expect(whole.size == expected.utf8.count && whole.next_offset == whole.size)
            #expect(whole.complete)

            // Read it again in 1000-byte ranges.
            var offset = 0
            var assembled = ""
            while offset < whole.size {
                let chunk = try await server.getOK(base + "/logs?offset=\(offset)&limit=1000", as: APILogChunk.self)
                #expect(chunk.offset == offset)
                #expect(chunk.content.utf8.count <= 1000)
                #expect(chunk.next_offset == offset + chunk.content.utf8.count)
                assembled += chunk.content
                offset = chunk.next_offset
            }
            #expect(assembled == expected)
            let past = try await server.getOK(base + "/logs?offset=999999", as: APILogChunk.self)
            #expect(past.content.isEmpty && past.next_offset == whole.size)

            let tail = try await server.getOK(base + "/logs?tail=3", as: APILogChunk.self)
            #expect(tail.content == "extract line 198 for ap\nextract line 199 for ap\nextract line 200 for ap\n")
            #expect(tail.next_offset == whole.size)
            #expect(tail.offset == whole.size - tail.content.utf8.count)

            let text = try await server.get(base + "/logs?format=text&tail=2")
            #expect(text.status == 200)
            #expect(text.contentType.hasPrefix("text/plain"))
            #expect(text.text == "extract line 199 for ap\nextract line 200 for ap\n")
            let accepted = try await server.get(base + "/logs?limit=14", headers: ["Accept": "text/plain"])
            #expect(accepted.contentType.hasPrefix("text/plain"))
            #expect(accepted.text == "extract line 1")
            let explicit = try await server.getOK(base + "/logs?attempt=1&limit=7", as: APILogChunk.self)
            #expect(explicit.content == "extract")

            try await server.get(base + "/logs?attempt=2").expectError(404, code: "not_found", field: "attempt")
            try await server.get(base + "/logs?attempt=x").expectError(400, field: "attempt")
            try await server.get(base + "/logs?attempt=0").expectError(400, field: "attempt")
            try await server.get(base + "/logs?limit=0").expectError(400, code: "invalid_request", field: "limit")
            try await server.get(base + "/logs?limit=abc").expectError(400, field: "limit")
            try await server.get(base + "/logs?offset=-1").expectError(400, field: "offset")
            try await server.get(base + "/logs?tail=0").expectError(400, field: "tail")
            try await server.get(base + "/logs?tail=many").expectError(400, field: "tail")
            try await server.get(base + "/logs?format=xml").expectError(400, field: "format")

            try await server.get("/api/v1/runs/\(run.id)/tasks/extrat").expectError(
                404, code: "not_found", field: "task", messageContains: "did you mean 'extract'?")
            try await server.get("/api/v1/runs/\(run.id)/tasks/nope/attempts").expectError(404, field: "task")
            try await server.get("/api/v1/runs/\(run.id)/tasks/nope/logs").expectError(404, field: "task")
            try await server.get("/api/v1/runs/424242/tasks/extract/logs").expectError(404, field: "run")

            // A task that never started has no log yet.
            let queuedFirst = try await server.trigger("slow")
            let queuedSecond = try await server.trigger("slow")
            try await server.waitForRun(queuedFirst.id) { $0.state == "running" }
            try await server.get("/api/v1/runs/\(queuedSecond.id)/tasks/wait/logs").expectError(
                404, field: "attempt", messageContains: "has not started")
            let none = try await server.getOK("/api/v1/runs/\(queuedSecond.id)/tasks/wait", as: APITaskDetail.self)
            #expect(none.attempts.isEmpty && none.task.state == "pending")
        }
    }

    @Test func logStreamFollowsARunningAttempt() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let run = try await server.trigger("chatty")
            let base = "/api/v1/runs/\(run.id)/tasks/talk"
            // Follow from the moment the attempt exists, while it still writes.
            let deadline = ContinuousClock.now + .seconds(10)
            while try await server.getOK(base, as: APITaskDetail.self).attempts.isEmpty {
                guard ContinuousClock.now < deadline else { throw APITestFailure("the attempt did not start") }
                try await Task.sleep(for: .milliseconds(10))
            }
            let stream = server.events(base + "/logs/stream")
            defer { stream.close() }
            // Release the rest of the log only once the stream has delivered its first piece, so
            // the rest must arrive as a later piece however slow the machine is.
            let head = try await stream.read(seconds: 40) { item in
                if case .event(let event) = item { return event.event == "log" || event.event == "end" }
                return false
            }
            #expect(FileManager.default.createFile(atPath: server.pipelinesDirectory + "/go", contents: nil))
            let items = try await head + stream.read(seconds: 40) { item in
                if case .event(let event) = item { return event.event == "end" }
                return false
            }
            guard case .status(let status, let contentType) = items.first else {
                throw APITestFailure("no response head: \(items)")
            }
            #expect(status == 200)
            #expect(contentType.hasPrefix("text/event-stream"))
            let events = items.compactMap { item -> APIServerSentEvent? in
                if case .event(let event) = item { return event }
                return nil
            }
            let logs = events.filter { $0.event == "log" }
            #expect(logs.count >= 2, "the log arrives in pieces while it is written: \(events)")
            // SSE data lines drop the trailing newline of each piece; ids are the next offsets.
            var followed = ""
            var previous = 0
            for event in logs {
                let offset = try #require(event.id.flatMap(Int.init))
                #expect(offset > previous)
                followed += event.data
                #expect(offset == followed.utf8.count)
                previous = offset
            }
            let expected = (1...6).map { "chat line \($0)\n" }.joined()
            #expect(followed == expected)
            #expect(previous == expected.utf8.count)
            #expect(events.last == APIServerSentEvent(event: "end", data: "success", id: nil))

            // Once the attempt is over, the stream sends what is left and ends at once.
            let replay = server.events(base + "/logs/stream?offset=\(expected.utf8.count - 12)")
            defer { replay.close() }
            let rest = try await replay.read(seconds: 10) { item in
                if case .closed = item { return true }
                return false
            }
            let restEvents = rest.compactMap { item -> APIServerSentEvent? in
                if case .event(let event) = item { return event }
                return nil
            }
            #expect(restEvents == [
                APIServerSentEvent(event: "log", data: "chat line 6\n", id: String(expected.utf8.count)),
                APIServerSentEvent(event: "end", data: "success", id: nil),
            ])

            try await server.get("/api/v1/runs/\(run.id)/tasks/nope/logs/stream").expectError(404, field: "task")
            try await server.get(base + "/logs/stream?offset=x").expectError(400, field: "offset")
        }
    }

    @Test func eventStreamReportsRunAndTaskChanges() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let stream = server.events("/api/v1/events/stream")
            defer { stream.close() }
            try await stream.read(seconds: 10) { item in
                if case .comment(let text) = item { return text == "connected" }
                return false
            }
            let run = try await server.trigger("etl")
            let runID = run.id
            let items = try await stream.read(seconds: 20) { item in
                guard case .event(let event) = item, event.event == "run",
                    let object = try? JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any]
                else { return false }
                return (object["run_id"] as? Int).map(Int64.init) == runID && object["state"] as? String == "success"
            }
            var seen: [String] = []
            for case .event(let event) in items {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(event.data.utf8)) as? [String: Any])
                #expect(object["kind"] as? String == event.event)
                #expect(Set(object.keys).isSubset(of: ["kind", "run_id", "pipeline", "task", "state", "reason", "at"]))
                #expect(object["at"] is String && object["pipeline"] as? String == "etl")
                let state = object["state"] as? String ?? "?"
                if let task = object["task"] as? String { seen.append("\(task):\(state)") } else { seen.append("run:\(state)") }
            }
            #expect(seen.contains("run:running"), "\(seen)")
            #expect(seen.contains("extract:running") && seen.contains("extract:success"), "\(seen)")
            #expect(seen.contains("load:running") && seen.contains("load:success"), "\(seen)")
            #expect(seen.last == "run:success")
            #expect(try #require(seen.firstIndex(of: "extract:success")) < (seen.firstIndex(of: "load:running") ?? -1))
        }
    }
}

@Suite(.timeLimit(.minutes(5)))
struct APIRobustnessTests {
    @Test func healthAndReadiness() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let health = try await server.get("/healthz")
            #expect(health.status == 200)
            #expect(try health.object() as? [String: String] == ["status": "ok"])
            let ready = try await server.get("/readyz")
            #expect(ready.status == 200)
            #expect(try ready.object() as? [String: String] == ["status": "ready", "role": "leader"])
        }
    }

    @Test func badBodiesGetTheErrorShape() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            func trigger(_ body: String) async throws -> APIHTTPResult {
                try await server.post("/api/v1/runs", json: body)
            }
            try await trigger(#"{"pipeline": "etl""#).expectError(400, code: "invalid_request", messageContains: "not valid JSON")
            try await trigger("not json at all").expectError(400, code: "invalid_request")
            try await trigger("").expectError(400, code: "invalid_request", messageContains: "empty")
            try await server.request("POST", "/api/v1/runs").expectError(400, code: "invalid_request")
            try await trigger("null").expectError(400, code: "invalid_request")
            try await trigger("[1, 2]").expectError(400, code: "invalid_request")
            try await trigger(#""etl""#).expectError(400, code: "invalid_request")
            try await trigger("{}").expectError(400, code: "invalid_request", field: "pipeline", messageContains: "missing")
            try await trigger(#"{"pipeline": 5}"#).expectError(400, code: "invalid_request", field: "pipeline")
            try await trigger(#"{"pipeline": null}"#).expectError(400, field: "pipeline")
            try await trigger(#"{"pipeline": "etl", "params": [1]}"#).expectError(400, field: "params")
            try await trigger(#"{"pipeline": "etl", "params": "region=us"}"#).expectError(400, field: "params")
            // A misspelled field must not be ignored silently (the run would use the defaults).
            try await trigger(#"{"pipeline": "etl", "parms": {"region": "us"}}"#).expectError(
                400, code: "invalid_request", field: "parms", messageContains: "did you mean 'params'?")
            try await trigger(#"{"pipeline": "etl", "extra": 1}"#).expectError(400, field: "extra")

            // Over 1 MiB.
            let padding = String(repeating: "x", count: (1 << 20) + 10)
            let huge = try await trigger(#"{"pipeline": "etl", "params": {"region": "\#(padding)"}}"#)
            try huge.expectError(413, code: "body_too_large")
            // Just under the limit is read (and then judged on its content).
            let big = String(repeating: "y", count: (1 << 20) - 100)
            try await trigger(#"{"pipeline": "etl", "params": {"regio": "\#(big)"}}"#).expectError(
                422, code: "invalid_params", field: "params.regio")

            let runs = try await server.getOK("/api/v1/runs", as: APIList<APIRun>.self)
            #expect(runs.items.isEmpty, "no bad request created a run")

            // Tokens: same shape for bad bodies (auth is off here, so the caller acts as admin).
            try await server.post("/api/v1/tokens", json: #"{"team": "ml", "role": "owner"}"#).expectError(
                400, code: "invalid_request", field: "role")
            try await server.post("/api/v1/tokens", json: #"{"team": "  ", "role": "viewer"}"#).expectError(
                400, field: "team")
            try await server.post("/api/v1/tokens", json: #"{"role": "viewer"}"#).expectError(400, field: "team")
            try await server.post("/api/v1/tokens", json: #"{"team": "ml", "role": 1}"#).expectError(400, field: "role")
            try await server.post("/api/v1/tokens", json: #"{"team": "ml", "role": "viewer", "rolee": 1}"#).expectError(
                400, field: "rolee")
            try await server.post("/api/v1/tokens", json: "{").expectError(400)
        }
    }

    @Test func badQueryAndPathParameters() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all) { server in
            let cases: [(String, String)] = [
                ("/api/v1/runs?limit=0", "limit"),
                ("/api/v1/runs?limit=abc", "limit"),
                ("/api/v1/runs?limit=501", "limit"),
                ("/api/v1/runs?limit=-5", "limit"),
                ("/api/v1/runs?limit=", "limit"),
                ("/api/v1/runs?cursor=abc", "cursor"),
                ("/api/v1/runs?cursor=0", "cursor"),
                ("/api/v1/runs?cursor=", "cursor"),
                ("/api/v1/runs?from=yesterday", "from"),
                ("/api/v1/runs?to=2026-13-45", "to"),
                ("/api/v1/runs?from=2026-11-25T10:00:00", "from"),
                ("/api/v1/runs?from=2026-11-25junk", "from"),
                ("/api/v1/runs?to=2026-02-30", "to"),
                ("/api/v1/runs?to=", "to"),
                ("/api/v1/runs?state=bogus", "state"),
                ("/api/v1/runs?state=running,bogus", "state"),
                ("/api/v1/runs?state=RUNNING", "state"),
                ("/api/v1/pipelines?paused=yes", "paused"),
            ]
            for (path, field) in cases {
                let result = try await server.get(path)
                try result.expectError(400, code: "invalid_request", field: field)
            }
            let unknown = try await server.get("/api/v1/nope")
            try unknown.expectError(404, code: "not_found", messageContains: "/api/v1/nope")
            try await server.get("/nope/at/all").expectError(404, code: "not_found")
            try await server.request("DELETE", "/api/v1/runs").expectError(404, code: "not_found")
            try await server.request("PUT", "/api/v1/pipelines/etl").expectError(404)
            try await server.get("/api/v1/runs/1/tasks").expectError(404)
        }
    }
}

@Suite(.timeLimit(.minutes(5)))
struct APIAuthTests {
    @Test func tokensAndRoles() async throws {
        try await APITestServer.with(pipelines: APIFixtures.all, requireAuth: true) { server in
            // The first admin token comes from the store, like `baton tokens create`.
            let admin = try await server.context.tokens.create(team: "platform", role: .admin, description: "bootstrap").token

            // Probes stay open.
            #expect(try await server.get("/healthz").status == 200)
            #expect(try await server.get("/readyz").status == 200)

            try await server.get("/api/v1/pipelines").expectError(401, code: "unauthorized", messageContains: "Bearer")
            try await server.get("/metrics").expectError(401, code: "unauthorized")
            try await server.get("/api/v1/openapi.json").expectError(401)
            try await server.post("/api/v1/runs", json: #"{"pipeline": "etl"}"#).expectError(401)
            try await server.get("/api/v1/nope").expectError(401)
            try await server.get("/api/v1/pipelines", token: "nope").expectError(401, code: "unauthorized")
            try await server.get("/api/v1/pipelines", token: "baton__").expectError(401)
            try await server.get("/api/v1/pipelines", token: "baton_0123456789ab_feedface").expectError(401)
            let adminID = String(admin.split(separator: "_")[1])
            try await server.get("/api/v1/pipelines", token: "baton_\(adminID)_wrongsecret").expectError(401)
            try await server.get("/api/v1/pipelines", headers: ["Authorization": "Basic \(admin)"]).expectError(401)

            #expect(try await server.get("/api/v1/pipelines", token: admin).status == 200)
            #expect(try await server.get("/api/v1/pipelines", headers: ["Authorization": "bearer \(admin)"]).status == 200)

            func create(_ role: String, team: String) async throws -> [String: Any] {
                let result = try await server.post(
                    "/api/v1/tokens", json: #"{"team": "\#(team)", "role": "\#(role)", "description": "for tests"}"#,
                    token: admin)
                #expect(result.status == 201, "\(result)")
                let object = try result.object()
                #expect(object["role"] as? String == role && object["team"] as? String == team)
                #expect((object["token"] as? String)?.hasPrefix("baton_\(object["id"] as? String ?? "?")_") == true)
                return object
            }
            let viewerObject = try await create("viewer", team: "analytics")
            let operatorObject = try await create("operator", team: "data_eng")
            let viewer = try #require(viewerObject["token"] as? String)
            let operatorToken = try #require(operatorObject["token"] as? String)

            // viewer: reads everything, changes nothing.
            #expect(try await server.get("/api/v1/pipelines", token: viewer).status == 200)
            #expect(try await server.get("/api/v1/runs", token: viewer).status == 200)
            #expect(try await server.get("/metrics", token: viewer).status == 200)
            #expect(try await server.get("/api/v1/pipelines", headers: ["Cookie": "theme=dark; baton_token=\(viewer)"]).status == 200)
            try await server.post("/api/v1/runs", json: #"{"pipeline": "etl"}"#, token: viewer).expectError(
                403, code: "forbidden", messageContains: "operator")
            try await server.post("/api/v1/pipelines/etl/pause", token: viewer).expectError(403, code: "forbidden")
            try await server.get("/api/v1/tokens", token: viewer).expectError(403, code: "forbidden")

            // operator: runs pipelines, does not manage tokens.
            let run = try await server.trigger("etl", token: operatorToken)
            #expect(run.pipeline == "etl")
            #expect(try await server.post("/api/v1/pipelines/etl/pause", token: operatorToken).status == 200)
            try await server.get("/api/v1/tokens", token: operatorToken).expectError(403, code: "forbidden", messageContains: "admin")
            try await server.post("/api/v1/tokens", json: #"{"team": "x", "role": "admin"}"#, token: operatorToken)
                .expectError(403, code: "forbidden")
            try await server.request("DELETE", "/api/v1/tokens/\(viewerObject["id"] as? String ?? "")", token: operatorToken)
                .expectError(403)

            // admin: lists tokens without secrets, revokes one.
            let list = try await server.get("/api/v1/tokens", token: admin)
            #expect(list.status == 200)
            let items = try list.object()["items"] as? [[String: Any]] ?? []
            #expect(items.count == 3)
            #expect(items.allSatisfy { $0["token"] == nil }, "secrets are never listed")
            #expect(Set(items.compactMap { $0["role"] as? String }) == ["admin", "viewer", "operator"])

            let operatorID = try #require(operatorObject["id"] as? String)
            let revoked = try await server.request("DELETE", "/api/v1/tokens/\(operatorID)", token: admin)
            #expect(revoked.status == 200, "\(revoked)")
            #expect(try revoked.object() as? [String: String] == ["revoked": operatorID])
            try await server.get("/api/v1/runs", token: operatorToken).expectError(
                401, code: "unauthorized", messageContains: "revoked")
            try await server.request("DELETE", "/api/v1/tokens/\(operatorID)", token: admin).expectError(
                404, code: "not_found", field: "token")
            try await server.request("DELETE", "/api/v1/tokens/unknown", token: admin).expectError(404, field: "token")
            let after = try await server.get("/api/v1/tokens", token: admin).object()["items"] as? [[String: Any]] ?? []
            #expect(after.first { $0["id"] as? String == operatorID }?["revoked_at"] is String)

            // The viewer still works.
            #expect(try await server.get("/api/v1/runs/\(run.id)", token: viewer).status == 200)
        }
    }
}
