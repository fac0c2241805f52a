import BatonCore
import Foundation
import Testing

/// `baton events` and `baton catalog` through the real binary. The CLI writes events straight to
/// the database; a running `baton up` notices them with its change check (a read of SQLite's
/// `data_version` every 200 ms) and starts the triggered runs. Runs are keyed by the event id,
/// so an event is acted on exactly once whether `baton up` was running, stopped or restarted.
@Suite(.timeLimit(.minutes(5)))
struct EventsCLITests {
    static let listener = """
        name: customers_listener
        owner: ml_engineering
        triggers:
          - event: data.customers.updated
            filter: {region: [eu, us]}
        tasks:
          show:
            run: test {{ event.payload.record_count }} = 1000 && echo rows {{ event.payload.record_count }}
        """

    static let catalog = """
        datasets:
          clean_customers:
            owner: data_engineering
            schema_version: 2.3.0
            freshness: 1h
            availability: 99.9%
        """

    static let producer = """
        name: customer_data_pipeline
        owner: data_engineering
        tasks:
          load:
            run: |
              echo '{"record_count": 42}' > "$BATON_OUTPUT"
            produces: [clean_customers]
        """

    static let consumer = """
        name: training_triggered_by_data_update
        owner: ml_engineering
        triggers: [dataset.clean_customers.updated]
        tasks:
          train:
            run: test {{ event.payload.record_count }} = 42
            requires:
              - dataset: clean_customers
                max_staleness: 2h
                schema: ">=2.0 <3"
        """

    /// `baton events publish NAME --data JSON [--id ID] [extra]` on the sandbox's database.
    static func publish(
        _ sandbox: Sandbox, _ name: String, data: String, id: String? = nil, extra: [String] = []
    ) async throws -> CommandResult {
        var args = ["events", "publish", name, "--data", data, "--db", sandbox.db]
        if let id { args += ["--id", id] }
        return try await sandbox.baton(args + extra)
    }

    struct Published: Decodable {
        struct Event: Decodable {
            var id: String
            var name: String
            var seq: Int64
        }

        var event: Event
        var duplicate: Bool
        var run_ids: [Int64]
    }

    struct ListedEvent: Decodable {
        var seq: Int64
        var id: String
        var name: String
        var payload: JSONValue
        var source: String?
        var created_at: Date
    }

    struct CatalogRow: Decodable {
        struct Update: Decodable {
            var id: Int64
            var runID: Int64?
            var metadata: [String: JSONValue]
        }

        var name: String
        var owner: String?
        var schema_version: String?
        var freshness_seconds: Double?
        var availability_target: Double?
        var status: String
        var age_seconds: Double?
        var measured_availability: Double?
        var producers: [String]
        var consumers: [String]
        var updates: [Update]?
    }

    @Test func publishingStartsTheTriggeredPipelineOfARunningServer() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("customers_listener", Self.listener)
        let server = try await sandbox.startUpAndWait()

        let published = try await Self.publish(
            sandbox, "data.customers.updated", data: #"{"record_count": 1000, "region": "eu"}"#, id: "load-2026-11-25")
        // The event is committed once the command returns; from then on the server acts.
        let publishedAt = Date()
        #expect(published.exitCode == 0, "\(published)")
        #expect(published.stdout.contains("published data.customers.updated (id load-2026-11-25)"), "\(published)")
        try await waitUntil("the triggered run starts", timeout: .seconds(10), detail: { server.log }) {
            try await sandbox.runs("customers_listener").count == 1
        }
        let runs = try await sandbox.waitForRuns(pipeline: "customers_listener", count: 1)
        let run = try #require(runs.first)
        // Timed by the server's record of the run's start, not by this test's polling (each
        // poll is a `baton` process): the change check noticed the event, not the 10 s rescan.
        let runStarted = try #require(run.started_at)
        #expect(runStarted.timeIntervalSince(publishedAt) < 5, "noticed through the change check, not a slow poll")
        #expect(run.trigger == "event")
        #expect(run.state == "success", "\(run.summary)\n\(server.log)")
        #expect(try await sandbox.logs(run.id, "show").contains("rows 1000"))

        // The same id again: stored once, nothing new starts.
        let again = try await Self.publish(
            sandbox, "data.customers.updated", data: #"{"record_count": 1000, "region": "eu"}"#, id: "load-2026-11-25",
            extra: ["--json"])
        #expect(again.exitCode == 0, "\(again)")
        let duplicate = try RunInfo.decoder.decode(Published.self, from: Data(again.stdout.utf8))
        #expect(duplicate.duplicate)
        #expect(duplicate.event.id == "load-2026-11-25")
        let plain = try await Self.publish(
            sandbox, "data.customers.updated", data: #"{"record_count": 1000, "region": "eu"}"#, id: "load-2026-11-25")
        #expect(plain.stdout.contains("already published"), "\(plain)")
        // An event its filter does not match starts nothing either.
        let apac = try await Self.publish(sandbox, "data.customers.updated", data: #"{"record_count": 1000, "region": "apac"}"#)
        #expect(apac.exitCode == 0, "\(apac)")
        // Several change checks later there is still exactly one run.
        try await Task.sleep(for: .seconds(1.5))
        #expect(try await sandbox.runs("customers_listener").map(\.id) == [run.id])
        #expect(!server.log.contains("could not process events"), "\(server.log)")
    }

    /// Tasks get BATON_SERVER and the `baton` CLI on their PATH, so a task publishes through the
    /// server that runs it; any client can do the same with --server.
    @Test func tasksAndRemoteClientsPublishThroughTheServer() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "publisher",
            """
            name: publisher
            tasks:
              announce:
                run: |
                  baton events publish data.from_task --data "{\\"run\\": $BATON_RUN_ID}" --id "task-$BATON_RUN_ID"
            """)
        try sandbox.writePipeline(
            "from_task_listener",
            """
            name: from_task_listener
            triggers: [data.from_task]
            tasks:
              show:
                run: echo "$BATON_EVENT"
            """)
        let server = try await sandbox.startUpAndWait()
        try await waitUntil("baton up listens", timeout: .seconds(20), detail: { server.log }) {
            server.log.contains("web UI and API on http://")
        }
        let url = try #require(
            server.log.firstMatch(of: /web UI and API on (http:\/\/\S+)/).map { String($0.1) }, "\(server.log)")

        let publisher = try await sandbox.trigger("publisher")
        let published = try await sandbox.waitForRuns([publisher])
        #expect(published.first?.state == "success", "\(published.map(\.summary))\n\(server.log)")
        let listened = try await sandbox.waitForRuns(pipeline: "from_task_listener", count: 1)
        #expect(listened.map(\.trigger) == ["event"])
        #expect(try await sandbox.logs(listened[0].id, "show").contains("\"id\":\"task-\(publisher)\""))

        let remote = try await Self.publish(sandbox, "data.from_task", data: "{}", id: "remote-1", extra: ["--server", url, "--json"])
        #expect(remote.exitCode == 0, "\(remote)")
        let first = try RunInfo.decoder.decode(Published.self, from: Data(remote.stdout.utf8))
        #expect(!first.duplicate)
        #expect(first.run_ids.count == 1, "the server answers with the run it started")
        let again = try await Self.publish(sandbox, "data.from_task", data: "{}", id: "remote-1", extra: ["--server", url, "--json"])
        #expect(again.exitCode == 0, "\(again)")
        let second = try RunInfo.decoder.decode(Published.self, from: Data(again.stdout.utf8))
        #expect(second.duplicate)
        #expect(second.run_ids.isEmpty)
        let refused = try await Self.publish(sandbox, "bad name", data: "{}", extra: ["--server", url])
        #expect(refused.exitCode != 0, "\(refused)")
        #expect(refused.stderr.contains("event name 'bad name'"), "\(refused)")
        let runs = try await sandbox.waitForRuns(pipeline: "from_task_listener", count: 2)
        #expect(runs.count == 2, "\(runs.map(\.summary))")
    }

    @Test func badDataFailsWithAClearMessage() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("customers_listener", Self.listener)
        let cases: [(name: String, data: String, message: String)] = [
            ("data.customers.updated", "[1]", "--data must be a JSON object, got a array"),
            ("data.customers.updated", "nope", "--data is not valid JSON: nope"),
            ("data.customers.updated", "42", "--data must be a JSON object, got a number"),
            ("data.customers.updated", "{\"a\": ", "--data is not valid JSON"),
            ("bad name", "{}", "event name 'bad name' must be 1-200 letters"),
            ("data.customers.updated", "{\"blob\": \"\(String(repeating: "a", count: 70_000))\"}", "over the 65536-byte limit"),
        ]
        for item in cases {
            let result = try await Self.publish(sandbox, item.name, data: item.data)
            #expect(result.exitCode != 0, "\(result)")
            #expect(!result.looksLikeCrash, "\(result)")
            #expect(result.stderr.contains(item.message), "expected '\(item.message)' in \(result)")
            #expect(result.stdout.isEmpty, "\(result)")
        }
        let listed = try await sandbox.baton("events", "list", "--json", "--db", sandbox.db)
        #expect(listed.exitCode == 0, "\(listed)")
        #expect(try RunInfo.decoder.decode([ListedEvent].self, from: Data(listed.stdout.utf8)).isEmpty, "nothing was stored")
    }

    @Test func eventsListShowsWhatWasPublished() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let empty = try await sandbox.baton("events", "list", "--db", sandbox.db)
        #expect(empty.exitCode == 0, "\(empty)")
        #expect(empty.stdout.contains("no events yet"))
        for index in 0..<3 {
            let result = try await Self.publish(
                sandbox, "data.page", data: #"{"n": \#(index)}"#, id: "page-\(index)", extra: ["--source", "tests"])
            #expect(result.exitCode == 0, "\(result)")
        }
        #expect(try await Self.publish(sandbox, "data.other", data: "{}").exitCode == 0)

        let listed = try await sandbox.baton("events", "list", "--json", "--db", sandbox.db)
        #expect(listed.exitCode == 0, "\(listed)")
        let events = try RunInfo.decoder.decode([ListedEvent].self, from: Data(listed.stdout.utf8))
        #expect(events.map(\.name) == ["data.other", "data.page", "data.page", "data.page"], "newest first")
        #expect(events.map(\.seq) == events.map(\.seq).sorted(by: >))
        let page = try #require(events.first { $0.id == "page-1" })
        #expect(page.payload == ["n": 1])
        #expect(page.source == "tests")
        #expect(events.first?.source == "cli", "the CLI is the source unless --source says otherwise")

        let named = try await sandbox.baton("events", "list", "--name", "data.page", "--limit", "2", "--json", "--db", sandbox.db)
        let pageEvents = try RunInfo.decoder.decode([ListedEvent].self, from: Data(named.stdout.utf8))
        #expect(pageEvents.map(\.id) == ["page-2", "page-1"])

        let table = try await sandbox.baton("events", "list", "--db", sandbox.db)
        #expect(table.stdout.contains("SEQ"), "\(table)")
        #expect(table.stdout.contains("page-0"), "\(table)")
        #expect(table.stdout.contains(#"{"n":0}"#), "\(table)")
    }

    @Test func catalogShowsADatasetAfterItsProducerRan() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("datasets", Self.catalog)
        try sandbox.writePipeline("customer_data_pipeline", Self.producer)
        try sandbox.writePipeline("training_triggered_by_data_update", Self.consumer)

        func catalog(_ extra: String...) async throws -> [CatalogRow] {
            let result = try await sandbox.baton(
                ["catalog"] + extra + ["--json", "--db", sandbox.db, "--pipelines", sandbox.pipelines])
            guard result.exitCode == 0 else { throw TestFailure("baton catalog failed: \(result)") }
            return try RunInfo.decoder.decode([CatalogRow].self, from: Data(result.stdout.utf8))
        }

        let before = try #require(try await catalog().first)
        #expect(before.name == "clean_customers")
        #expect(before.status == "stale", "a dataset with an SLA and no update yet")
        #expect(before.age_seconds == nil)
        #expect(before.producers == ["customer_data_pipeline.load"])
        #expect(before.consumers == ["training_triggered_by_data_update.train"])

        let server = try await sandbox.startUpAndWait()
        let producer = try await sandbox.trigger("customer_data_pipeline")
        let produced = try await sandbox.waitForRuns([producer])
        #expect(produced.first?.state == "success", "\(produced.map(\.summary))")
        // Its update publishes dataset.clean_customers.updated, which starts the consumer.
        let consumers = try await sandbox.waitForRuns(pipeline: "training_triggered_by_data_update", count: 1)
        #expect(consumers.map(\.state) == ["success"], "\(consumers.map(\.summary))\n\(server.log)")
        #expect(consumers.first?.trigger == "event")

        let after = try #require(try await catalog().first)
        #expect(after.status == "fresh")
        #expect(after.owner == "data_engineering")
        #expect(after.schema_version == "2.3.0")
        #expect(after.freshness_seconds == 3600)
        #expect((after.age_seconds ?? -1) >= 0 && (after.age_seconds ?? 99) < 60)
        #expect((after.measured_availability ?? 0) > 0.99)
        #expect(after.updates == nil, "history only for one dataset")

        let one = try #require(try await catalog("clean_customers").first)
        #expect(one.updates?.count == 1)
        #expect(one.updates?.first?.runID == producer)
        #expect(one.updates?.first?.metadata["record_count"] == 42)

        let table = try await sandbox.baton(["catalog", "--db", sandbox.db, "--pipelines", sandbox.pipelines])
        #expect(table.stdout.contains("clean_customers"), "\(table)")
        #expect(table.stdout.contains("fresh < 1h"), "\(table)")
        let unknown = try await sandbox.baton(["catalog", "clean_customer", "--db", sandbox.db, "--pipelines", sandbox.pipelines])
        #expect(unknown.exitCode != 0)
        #expect(unknown.stderr.contains("did you mean 'clean_customers'?"), "\(unknown)")
    }

    @Test func eventsPublishedWhileStoppedStartOnceAcrossRestarts() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("customers_listener", Self.listener)
        let data = #"{"record_count": 1000, "region": "us"}"#

        // Published with no `baton up` running: stored, nothing runs yet.
        #expect(try await Self.publish(sandbox, "data.customers.updated", data: data, id: "offline-1").exitCode == 0)
        #expect(try await sandbox.runs("customers_listener").isEmpty)

        let first = try await sandbox.startUpAndWait()
        let runs = try await sandbox.waitForRuns(pipeline: "customers_listener", count: 1)
        #expect(runs.map(\.state) == ["success"], "\(runs.map(\.summary))\n\(first.log)")
        #expect(await first.stop(), "baton up stops on SIGTERM")

        // Stopped again: the same id once more, and one new event.
        #expect(try await Self.publish(sandbox, "data.customers.updated", data: data, id: "offline-1").exitCode == 0)
        #expect(try await Self.publish(sandbox, "data.customers.updated", data: data, id: "offline-2").exitCode == 0)

        let second = try await sandbox.startUpAndWait()
        let afterRestart = try await sandbox.waitForRuns(pipeline: "customers_listener", count: 2)
        #expect(afterRestart.count == 2, "one run for offline-2, none again for offline-1: \(afterRestart.map(\.summary))")
        #expect(await second.stop())

        // A restart with nothing new starts nothing.
        let third = try await sandbox.startUpAndWait()
        try await Task.sleep(for: .seconds(1.5))
        let final = try await sandbox.runs("customers_listener")
        #expect(final.count == 2, "\(final.map(\.summary))\n\(third.log)")
        #expect(Set(final.map(\.id)) == Set(afterRestart.map(\.id)))
        #expect(final.allSatisfy { $0.trigger == "event" && $0.state == "success" })
    }
}
