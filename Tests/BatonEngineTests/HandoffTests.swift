import BatonCore
import BatonStore
import Foundation
import Testing

@testable import BatonEngine

@Suite struct EventTriggerTests {
    @Test func anEventStartsOneRunPerMatchingPipelineWithItsPayload() async throws {
        let harness = try EngineHarness()
        try harness.write(
            "train",
            """
            name: train
            triggers:
              - event: data.customers.updated
                filter: {region: [eu, us]}
            tasks:
              show:
                run: test {{ event.payload.record_count }} = 1000 && echo "$BATON_EVENT" | grep -q record_count
            """)
        try harness.write("other", "name: other\ntriggers: [data.other]\ntasks:\n  a: {run: \"true\"}\n")
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let first = try await engine.publish(
                name: "data.customers.updated", payload: ["record_count": 1000, "region": "eu"], id: "load-1")
            #expect(first.created)
            #expect(first.runIDs.count == 1)
            let runID = try #require(first.runIDs.first)
            #expect(try await harness.waitFor(runID, on: engine) == .success)
            let run = try #require(try await harness.store.run(id: runID))
            #expect(run.trigger == .event)
            #expect(run.event?["payload"]?["record_count"] == 1000)

            let again = try await engine.publish(
                name: "data.customers.updated", payload: ["record_count": 1000, "region": "eu"], id: "load-1")
            #expect(!again.created)
            #expect(again.runIDs.isEmpty)
            let filtered = try await engine.publish(name: "data.customers.updated", payload: ["region": "apac"])
            #expect(filtered.runIDs.isEmpty)
            #expect(try await harness.store.runs(RunQuery(pipeline: "train")).count == 1)
            #expect(try await harness.store.runs(RunQuery(pipeline: "other")).isEmpty)
        }
    }

    @Test func eventsStoredWhileTheEngineWasDownStartRunsOnce() async throws {
        let harness = try EngineHarness()
        try harness.write("consumer", "name: consumer\ntriggers: [ping]\ntasks:\n  a: {run: \"true\"}\n")
        let cli = try SQLiteStore(path: harness.root + "/baton.db")
        _ = try await cli.publishEvent(EventRecord(id: "offline-1", name: "ping", payload: [:], source: "cli", createdAt: Date()))
        for _ in 0..<2 {
            try await harness.withEngine(harness.makeEngine()) { _ async throws in
                let deadline = ContinuousClock.now + .seconds(20)
                while try await harness.store.runs(RunQuery(pipeline: "consumer", states: [.success])).isEmpty {
                    guard ContinuousClock.now < deadline else { throw RunRequestError("no run for the stored event") }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
        }
        #expect(try await harness.store.runs(RunQuery(pipeline: "consumer")).count == 1)
    }

    @Test func badEventsAreRefusedWithTheField() async throws {
        let harness = try EngineHarness()
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            await #expect { _ = try await engine.publish(name: "bad name!", payload: [:]) } throws: {
                ($0 as? EventError)?.field == "name"
            }
            await #expect { _ = try await engine.publish(name: "x", payload: [1, 2]) } throws: {
                ($0 as? EventError)?.field == "payload"
            }
            let big = JSONValue.object(["blob": .string(String(repeating: "a", count: 70_000))])
            await #expect { _ = try await engine.publish(name: "x", payload: big) } throws: {
                ($0 as? EventError)?.field == "payload"
            }
        }
    }
}

@Suite struct DatasetContractTests {
    static let catalog = """
        datasets:
          clean_customers:
            owner: data_engineering
            schema_version: 2.3.0
            freshness: 1h
            availability: 99.9%
        """

    @Test func aProducerUpdatesTheDatasetAndTriggersItsConsumer() async throws {
        let harness = try EngineHarness()
        try harness.write("catalog", Self.catalog)
        try harness.write(
            "producer",
            """
            name: producer
            owner: data_engineering
            tasks:
              load:
                run: |
                  echo '{"record_count": 42}' > "$BATON_OUTPUT"
                produces: [clean_customers]
            """)
        try harness.write(
            "consumer",
            """
            name: consumer
            triggers: [dataset.clean_customers.updated]
            tasks:
              train:
                run: test {{ event.payload.record_count }} = 42
                requires: [{dataset: clean_customers, max_staleness: 2h, schema: ">=2.0 <3"}]
            """)
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let run = try await engine.trigger(pipeline: "producer")
            #expect(try await harness.waitFor(run.id, on: engine) == .success)
            let update = try #require(try await harness.store.latestDatasetUpdate("clean_customers"))
            #expect(update.metadata["record_count"] == 42)
            #expect(update.schemaVersion == "2.3.0")
            #expect(update.runID == run.id)
            let deadline = ContinuousClock.now + .seconds(20)
            var consumers: [RunRecord] = []
            while consumers.first?.state.isTerminal != true {
                guard ContinuousClock.now < deadline else { throw RunRequestError("consumer did not finish") }
                try await Task.sleep(for: .milliseconds(20))
                consumers = try await harness.store.runs(RunQuery(pipeline: "consumer"))
            }
            #expect(consumers.count == 1)
            #expect(consumers.first?.state == .success)
            let lineage = try await harness.store.runDatasets(runID: try #require(consumers.first).id)
            #expect(lineage.map(\.dataset) == ["clean_customers"])
            #expect(lineage.first?.updateID == update.id)
        }
    }

    @Test func aStaleDatasetFailsTheConsumerWithADataSLAViolation() async throws {
        let harness = try EngineHarness()
        try harness.write("catalog", Self.catalog)
        try harness.write(
            "consumer",
            """
            name: consumer
            tasks:
              train:
                run: "true"
                requires: [{dataset: clean_customers, max_staleness: 2h}]
              skipper:
                run: "true"
                requires: [{dataset: clean_customers, on_violation: skip}]
            """)
        _ = try await harness.store.recordDatasetUpdate(
            DatasetUpdateRecord(
                dataset: "clean_customers", runID: nil, pipeline: "customer_data_pipeline", task: "load",
                schemaVersion: "2.3.0", metadata: [:], updatedAt: Date().addingTimeInterval(-3 * 3600)))
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let run = try await engine.trigger(pipeline: "consumer")
            #expect(try await harness.waitFor(run.id, on: engine) == .failed)
            let tasks = try await harness.store.taskInstances(runID: run.id)
            let train = try #require(tasks.first { $0.task == "train" })
            #expect(train.state == .failed)
            #expect(train.attempts == 1)
            let reason = try #require(train.reason)
            #expect(reason.contains("DataSLAViolation"))
            #expect(reason.contains("clean_customers"))
            #expect(reason.contains("2h limit"))
            #expect(reason.contains("owner data_engineering"))
            #expect(tasks.first { $0.task == "skipper" }?.state == .skipped)
        }
    }

    @Test func aWaitingConsumerStartsWhenFreshDataArrives() async throws {
        let harness = try EngineHarness()
        try harness.write("catalog", Self.catalog)
        try harness.write(
            "producer",
            "name: producer\ntasks:\n  load:\n    run: \"true\"\n    produces: [clean_customers]\n")
        try harness.write(
            "consumer",
            """
            name: consumer
            tasks:
              train:
                run: "true"
                requires: [{dataset: clean_customers, on_violation: wait, wait_timeout: 10m}]
            """)
        try await harness.withEngine(harness.makeEngine()) { engine async throws in
            let consumer = try await engine.trigger(pipeline: "consumer")
            let deadline = ContinuousClock.now + .seconds(20)
            while try await harness.store.taskInstances(runID: consumer.id).first?.state != .upForRetry {
                guard ContinuousClock.now < deadline else { throw RunRequestError("the consumer never waited") }
                try await Task.sleep(for: .milliseconds(20))
            }
            let started = ContinuousClock.now
            let producer = try await engine.trigger(pipeline: "producer")
            #expect(try await harness.waitFor(producer.id, on: engine) == .success)
            #expect(try await harness.waitFor(consumer.id, on: engine) == .success)
            // Woken by the update event, not by the timed re-check a minute after the deferral
            // (the bound leaves room for a machine loaded by the whole suite).
            #expect(ContinuousClock.now - started < .seconds(45))
            let attempts = try await harness.store.attempts(runID: consumer.id, task: "train")
            #expect(attempts.map(\.state) == [.deferred, .success])
        }
    }
}
