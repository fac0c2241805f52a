import BatonAPI
import BatonCore
import BatonServer
import BatonStore
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Hand-offs between teams over the REST API: events (`/api/v1/events`), the dataset catalog
/// (`/api/v1/datasets`), lineage (`/api/v1/lineage`) and what a run read and wrote
/// (`/api/v1/runs/{id}/datasets`). Each test runs its own in-process server on a pipelines
/// folder with a catalog file (see `Support/APITestServer.swift`).

enum HandoffFixtures {
    /// The catalog file: any YAML file in the folder with a top-level `datasets:`.
    static let catalog = """
        datasets:
          clean_customers:
            owner: data_engineering
            description: Customers after cleaning
            schema_version: 2.3.0
            freshness: 1h
            availability: 99.9%
          churn_features:
            owner: ml_engineering
            freshness: 30m
        teams:
          data_engineering: {}
        """

    /// Produces clean_customers; its output becomes the update's metadata, and an output
    /// `schema_version` overrides the catalog's.
    static let producer = """
        name: customer_data_pipeline
        owner: data_engineering
        params:
          rows: 1000
          schema: "2.3.0"
        tasks:
          load:
            run: |
              printf '{"record_count": %s, "schema_version": "%s"}' {{ params.rows }} {{ params.schema }} > "$BATON_OUTPUT"
            produces: [clean_customers]
        """

    /// Started by every update of clean_customers, and checks its contract before it runs.
    static let consumer = """
        name: training_triggered_by_data_update
        owner: ml_engineering
        triggers: [dataset.clean_customers.updated]
        tasks:
          train:
            run: test {{ event.payload.record_count }} -gt 0
            requires:
              - dataset: clean_customers
                max_staleness: 2h
                schema: ">=2.0 <3"
        """

    /// Started by `data.customers.updated` events from the EU or the US.
    static let listener = """
        name: customers_listener
        owner: ml_engineering
        triggers:
          - event: data.customers.updated
            filter: {region: [eu, us]}
        tasks:
          show:
            run: test {{ event.payload.record_count }} = 1000 && echo "$BATON_EVENT" | grep -q record_count
        """

    /// Requires churn_features, which nobody produces.
    static let features = """
        name: scoring
        owner: ml_engineering
        tasks:
          score:
            run: "true"
            requires: [churn_features]
        """

    /// Requires clean_customers at most 2 hours old (no trigger: run by hand).
    static let strict = """
        name: strict_consumer
        owner: ml_engineering
        tasks:
          train:
            run: "true"
            requires:
              - dataset: clean_customers
                max_staleness: 2h
        """

    static let all: [String: String] = [
        "catalog": catalog, "customer_data_pipeline": producer, "training_triggered_by_data_update": consumer,
        "customers_listener": listener, "scoring": features, "strict_consumer": strict,
    ]
}

extension APITestServer {
    /// `POST /api/v1/events` with a raw JSON body.
    func publish(_ body: String) async throws -> APIHTTPResult {
        try await post("/api/v1/events", json: body)
    }

    /// `POST /api/v1/events` that must answer `status` with a published event.
    func publishOK(_ body: String, status: Int = 201) async throws -> APIPublishedEvent {
        let result = try await publish(body)
        guard result.status == status else { throw APITestFailure("publish \(body): expected \(status), got \(result)") }
        return try result.decode(APIPublishedEvent.self)
    }

    /// The runs of a pipeline, newest first.
    func runs(of pipeline: String) async throws -> [APIRun] {
        try await getOK("/api/v1/runs?pipeline=\(pipeline)", as: APIList<APIRun>.self).items
    }

    /// Waits until the pipeline has `count` runs and they all ended; returns them, newest first.
    func waitForRuns(of pipeline: String, count: Int, seconds: Double = 30) async throws -> [APIRun] {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while true {
            let runs = try await runs(of: pipeline)
            if runs.count >= count, runs.allSatisfy({ ["success", "failed", "cancelled"].contains($0.state) }) { return runs }
            guard ContinuousClock.now < deadline else {
                throw APITestFailure("\(pipeline) did not have \(count) finished runs within \(seconds) s: \(runs.map { "\($0.id) \($0.state)" })")
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// Runs the producer with the given schema version and waits for it and for the consumer it triggers.
    func produce(schema: String = "2.3.0", rows: Int = 1000) async throws -> (producer: APIRun, consumer: APIRun) {
        let consumersBefore = try await runs(of: "training_triggered_by_data_update").count
        let run = try await trigger("customer_data_pipeline", params: #"{"rows": \#(rows), "schema": "\#(schema)"}"#)
        let producer = try await waitForRun(run.id)
        guard producer.state == "success" else { throw APITestFailure("the producer failed: \(producer)") }
        let consumers = try await waitForRuns(of: "training_triggered_by_data_update", count: consumersBefore + 1)
        return (producer, consumers[0])
    }
}

/// Groups the hand-off API suites under one name (`swift test --filter HandoffAPITests`).
@Suite(.timeLimit(.minutes(5)))
struct HandoffAPITests {}

extension HandoffAPITests {
    @Suite(.timeLimit(.minutes(5)))
    struct Events {
        @Test func publishingStartsTheTriggeredRunOnce() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                let body = #"{"name": "data.customers.updated", "payload": {"record_count": 1000, "region": "eu"}, "id": "load-2026-11-25", "source": "warehouse"}"#
                let first = try await server.publishOK(body, status: 201)
                #expect(!first.duplicate)
                #expect(first.event.id == "load-2026-11-25")
                #expect(first.event.name == "data.customers.updated")
                #expect(first.event.source == "warehouse")
                #expect(first.event.payload == ["record_count": 1000, "region": "eu"])
                #expect(first.event.seq > 0)
                #expect(first.run_ids.count == 1)
                let runID = try #require(first.run_ids.first)
                let run = try await server.waitForRun(runID)
                #expect(run.pipeline == "customers_listener")
                #expect(run.trigger == "event")
                #expect(run.state == "success", "the payload reached the template and BATON_EVENT: \(run)")

                // The same id again: 200, marked duplicate, the stored event, nothing started.
                let again = try await server.publishOK(body, status: 200)
                #expect(again.duplicate)
                #expect(again.run_ids.isEmpty)
                #expect(again.event.seq == first.event.seq)
                // Even with another payload: the id decides.
                let changed = try await server.publishOK(
                    #"{"name": "data.customers.updated", "payload": {"record_count": 5, "region": "us"}, "id": "load-2026-11-25"}"#,
                    status: 200)
                #expect(changed.duplicate)
                #expect(changed.event.payload == ["record_count": 1000, "region": "eu"])
                #expect(try await server.runs(of: "customers_listener").map(\.id) == [runID])
            }
        }

        /// Publishers do not wait for each other: every answer lists the run its event started,
        /// also when another publish is being processed at the same moment.
        @Test func concurrentPublishesEachReportTheirRun() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                let count = 12
                let answers = try await withThrowingTaskGroup(of: APIPublishedEvent.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            try await server.publishOK(
                                #"{"name": "data.customers.updated", "payload": {"record_count": 1000, "region": "us"}, "id": "burst-\#(index)"}"#)
                        }
                    }
                    var answers: [APIPublishedEvent] = []
                    for try await answer in group { answers.append(answer) }
                    return answers
                }
                #expect(answers.count == count)
                for answer in answers {
                    #expect(answer.run_ids.count == 1, "event \(answer.event.id) reported runs \(answer.run_ids)")
                }
                let runs = try await server.waitForRuns(of: "customers_listener", count: count)
                #expect(runs.count == count)
                #expect(Set(answers.flatMap(\.run_ids)) == Set(runs.map(\.id)))
            }
        }

        @Test func eventsThatMatchNoFilterAreStoredButStartNothing() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                let apac = try await server.publishOK(#"{"name": "data.customers.updated", "payload": {"region": "apac"}}"#)
                #expect(!apac.duplicate)
                #expect(apac.run_ids.isEmpty)
                #expect(!apac.event.id.isEmpty, "the server gives an event without an id a new one")
                let noPayload = try await server.publishOK(#"{"name": "data.customers.updated"}"#)
                #expect(noPayload.event.payload == [:])
                #expect(noPayload.run_ids.isEmpty, "no region: the filter does not match")
                let other = try await server.publishOK(#"{"name": "data.orders.updated", "payload": {"region": "eu"}}"#)
                #expect(other.run_ids.isEmpty)
                #expect(try await server.runs(of: "customers_listener").isEmpty)
                let stored = try await server.getOK("/api/v1/events", as: APIList<APIEvent>.self)
                #expect(stored.items.count == 3)
            }
        }

        @Test func badEventsAreRefusedWithTheField() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                try await server.publish(#"{"name": "bad name!"}"#).expectError(
                    400, code: "invalid_request", field: "name", messageContains: "bad name!")
                try await server.publish(#"{"name": ""}"#).expectError(400, field: "name")
                try await server.publish(#"{"name": "\#(String(repeating: "a", count: 201))"}"#).expectError(400, field: "name")
                try await server.publish(#"{"name": "x", "payload": [1]}"#).expectError(
                    400, code: "invalid_request", field: "payload", messageContains: "JSON object")
                try await server.publish(#"{"name": "x", "payload": "text"}"#).expectError(400, field: "payload")
                try await server.publish(#"{"name": "x", "payload": 5}"#).expectError(400, field: "payload")
                let blob = String(repeating: "a", count: 70_000)
                try await server.publish(#"{"name": "x", "payload": {"blob": "\#(blob)"}}"#).expectError(
                    400, code: "invalid_request", field: "payload", messageContains: "65536-byte limit")
                try await server.publish(#"{"name": "x", "id": ""}"#).expectError(400, field: "id")
                try await server.publish(#"{"name": "x", "source": "\#(String(repeating: "s", count: 201))"}"#).expectError(
                    400, field: "source")
                try await server.publish(#"{"name": "x", "palyoad": {}}"#).expectError(
                    400, code: "invalid_request", field: "palyoad", messageContains: "did you mean 'payload'?")
                try await server.publish(#"{"payload": {}}"#).expectError(
                    400, code: "invalid_request", field: "name", messageContains: "missing")
                try await server.publish(#"{"name": 5}"#).expectError(400, field: "name")
                try await server.publish(#"{"name": null}"#).expectError(400, field: "name")
                // Malformed JSON names no field (there is none to name), like the other routes.
                try await server.publish(#"{"name": "x""#).expectError(
                    400, code: "invalid_request", field: .some(nil), messageContains: "not valid JSON")
                try await server.publish("").expectError(400, code: "invalid_request", messageContains: "empty")
                try await server.publish("[1]").expectError(400, code: "invalid_request")
                let huge = String(repeating: "x", count: (1 << 20) + 10)
                try await server.publish(#"{"name": "x", "payload": {"blob": "\#(huge)"}}"#).expectError(413, code: "body_too_large")

                let stored = try await server.getOK("/api/v1/events", as: APIList<APIEvent>.self)
                #expect(stored.items.isEmpty, "a refused event was stored: \(stored.items.map(\.name))")
                #expect(try await server.runs(of: "customers_listener").isEmpty)
            }
        }

        @Test func listingFiltersByNameAndPagesWithACursor() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                for index in 0..<5 {
                    _ = try await server.publishOK(#"{"name": "data.page", "payload": {"n": \#(index)}, "id": "page-\#(index)"}"#)
                }
                _ = try await server.publishOK(#"{"name": "data.other", "id": "other-1"}"#)

                let all = try await server.getOK("/api/v1/events", as: APIList<APIEvent>.self)
                #expect(all.items.map(\.id) == ["other-1", "page-4", "page-3", "page-2", "page-1", "page-0"])
                #expect(all.next_cursor == nil)
                let named = try await server.getOK("/api/v1/events?name=data.page", as: APIList<APIEvent>.self)
                #expect(named.items.map(\.id) == ["page-4", "page-3", "page-2", "page-1", "page-0"])
                #expect(try await server.getOK("/api/v1/events?name=nothing", as: APIList<APIEvent>.self).items.isEmpty)

                var seen: [String] = []
                var cursor: String?
                var pages = 0
                repeat {
                    let page = try await server.getOK(
                        "/api/v1/events?name=data.page&limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), as: APIList<APIEvent>.self)
                    #expect(page.items.count <= 2)
                    seen += page.items.map(\.id)
                    cursor = page.next_cursor
                    pages += 1
                } while cursor != nil && pages < 10
                #expect(seen == ["page-4", "page-3", "page-2", "page-1", "page-0"])
                #expect(pages == 3)

                let window = try await server.getOK("/api/v1/events?from=2000-01-01&to=2999-01-01T00:00:00Z", as: APIList<APIEvent>.self)
                #expect(window.items.count == 6)
                #expect(try await server.getOK("/api/v1/events?to=2000-01-01", as: APIList<APIEvent>.self).items.isEmpty)
                try await server.get("/api/v1/events?limit=0").expectError(400, field: "limit")
                try await server.get("/api/v1/events?limit=501").expectError(400, field: "limit")
                try await server.get("/api/v1/events?cursor=abc").expectError(400, field: "cursor")
                try await server.get("/api/v1/events?cursor=0").expectError(400, field: "cursor")
                try await server.get("/api/v1/events?from=yesterday").expectError(400, field: "from")

                let one = try await server.getOK("/api/v1/events/page-3", as: APIEvent.self)
                #expect(one.name == "data.page")
                #expect(one.payload == ["n": 3])
                #expect(one.source == "api", "no source given and no token: the API is the source")
                try await server.get("/api/v1/events/page-9").expectError(404, code: "not_found", field: "event")
            }
        }
    }
}

extension HandoffAPITests {
    @Suite(.timeLimit(.minutes(5)))
    struct Catalog {
        @Test func aProducerRunMakesTheDatasetFresh() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                // Before any update: a dataset with a freshness SLA and no update is stale.
                let before = try await server.getOK("/api/v1/datasets", as: APIList<APIDataset>.self)
                #expect(before.items.map(\.name) == ["churn_features", "clean_customers"])
                #expect(before.items.allSatisfy { $0.status == "stale" && $0.last_update == nil && $0.age_seconds == nil })

                let (producer, consumer) = try await server.produce(rows: 1000)
                #expect(consumer.state == "success", "the consumer triggered by the update: \(consumer)")
                #expect(consumer.trigger == "event")

                let listing = try await server.getOK("/api/v1/datasets", as: APIList<APIDataset>.self)
                let clean = try #require(listing.items.first { $0.name == "clean_customers" })
                #expect(clean.status == "fresh")
                #expect(clean.owner == "data_engineering")
                #expect(clean.description == "Customers after cleaning")
                #expect(clean.schema_version == "2.3.0")
                #expect(clean.freshness_seconds == 3600)
                #expect(clean.availability_target.map { abs($0 - 0.999) < 1e-9 } == true)
                let update = try #require(clean.last_update)
                #expect(update.run_id == producer.id)
                #expect(update.pipeline == "customer_data_pipeline")
                #expect(update.task == "load")
                #expect(update.schema_version == "2.3.0")
                #expect(update.metadata["record_count"] == 1000)
                #expect(clean.producers == ["customer_data_pipeline.load"])
                #expect(clean.consumers == ["strict_consumer.train", "training_triggered_by_data_update.train"])
                let age = try #require(clean.age_seconds)
                #expect(age >= 0 && age < 60)
                let staleAt = try #require(clean.stale_at)
                #expect(abs(staleAt.timeIntervalSince(update.updated_at) - 3600) < 0.01)
                // Fresh ever since its first update: the measured availability is full.
                let measured = try #require(clean.measured_availability)
                #expect(measured > 0.99 && measured <= 1)
                #expect(clean.open_sla_miss == nil)

                let features = try #require(listing.items.first { $0.name == "churn_features" })
                #expect(features.status == "stale")
                #expect(features.producers.isEmpty)
                #expect(features.consumers == ["scoring.score"])

                let owned = try await server.getOK("/api/v1/datasets?owner=data_engineering", as: APIList<APIDataset>.self)
                #expect(owned.items.map(\.name) == ["clean_customers"])
                #expect(try await server.getOK("/api/v1/datasets?owner=nobody", as: APIList<APIDataset>.self).items.isEmpty)

                // The update was announced as an event, with the metadata in its payload.
                let announced = try await server.getOK(
                    "/api/v1/events?name=dataset.clean_customers.updated", as: APIList<APIEvent>.self)
                #expect(announced.items.count == 1)
                #expect(announced.items.first?.payload["record_count"] == 1000)
                #expect(announced.items.first?.payload["run_id"] == .number(Double(producer.id)))
                #expect(announced.items.first?.source == "baton")
            }
        }

        @Test func datasetDetailHasUpdatesSchemaHistoryAndRuns() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                let first = try await server.produce(schema: "2.3.0", rows: 10)
                let second = try await server.produce(schema: "2.4.0", rows: 20)
                let third = try await server.produce(schema: "2.4.0", rows: 30)

                let detail = try await server.getOK("/api/v1/datasets/clean_customers", as: APIDatasetDetail.self)
                #expect(detail.dataset.name == "clean_customers")
                #expect(detail.dataset.last_update?.run_id == third.producer.id)
                #expect(detail.updates.map(\.run_id) == [third.producer.id, second.producer.id, first.producer.id])
                #expect(detail.updates.map { $0.metadata["record_count"] } == [30, 20, 10])
                #expect(detail.updates.map(\.schema_version) == ["2.4.0", "2.4.0", "2.3.0"])
                // One entry per version change, newest first, pointing at the update that introduced it.
                #expect(detail.schema_history.map(\.schema_version) == ["2.4.0", "2.3.0"])
                #expect(detail.schema_history.map(\.update_id) == [detail.updates[1].id, detail.updates[2].id])
                #expect(detail.schema_history.first?.first_seen_at == detail.updates[1].updated_at)
                #expect(detail.sla_misses.isEmpty)
                let writes = detail.runs.filter { $0.direction == "write" }
                let reads = detail.runs.filter { $0.direction == "read" }
                #expect(Set(writes.map(\.run_id)) == [first.producer.id, second.producer.id, third.producer.id])
                #expect(Set(reads.map(\.run_id)) == [first.consumer.id, second.consumer.id, third.consumer.id])
                #expect(detail.runs.map(\.run_id) == detail.runs.map(\.run_id).sorted(by: >), "newest first")

                let empty = try await server.getOK("/api/v1/datasets/churn_features", as: APIDatasetDetail.self)
                #expect(empty.updates.isEmpty && empty.schema_history.isEmpty && empty.runs.isEmpty)

                try await server.get("/api/v1/datasets/clean_customer").expectError(
                    404, code: "not_found", field: "dataset", messageContains: "did you mean 'clean_customers'?")
                let far = try await server.get("/api/v1/datasets/nothing_like_it").expectError(404, field: "dataset")
                #expect(!far.message.contains("did you mean"))
            }
        }

        @Test func lineageHasProducesRequiresAndTriggersEdges() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                let lineage = try await server.getOK("/api/v1/lineage", as: APILineage.self)
                let nodes = Dictionary(uniqueKeysWithValues: lineage.nodes.map { ($0.id, $0) })
                #expect(nodes["dataset:clean_customers"]?.kind == "dataset")
                #expect(nodes["dataset:clean_customers"]?.owner == "data_engineering")
                #expect(nodes["dataset:churn_features"]?.kind == "dataset")
                #expect(nodes["pipeline:customer_data_pipeline"]?.kind == "pipeline")
                #expect(nodes["pipeline:customer_data_pipeline"]?.owner == "data_engineering")
                #expect(nodes.count == 2 + 5, "two datasets and five pipelines: \(nodes.keys.sorted())")
                let edges = lineage.edges.map { "\($0.from) -\($0.relation)-> \($0.to)" }
                #expect(
                    edges == [
                        "dataset:churn_features -requires-> pipeline:scoring",
                        "dataset:clean_customers -requires-> pipeline:strict_consumer",
                        "dataset:clean_customers -requires-> pipeline:training_triggered_by_data_update",
                        "dataset:clean_customers -triggers-> pipeline:training_triggered_by_data_update",
                        "pipeline:customer_data_pipeline -produces-> dataset:clean_customers",
                    ])
            }
        }

        /// A pipeline may trigger on the updates of a dataset no catalog declares (an outside
        /// system publishes them): the graph still has a node for every edge's end.
        @Test func everyLineageEdgeEndsAtANode() async throws {
            var pipelines = HandoffFixtures.all
            pipelines["external_listener"] = """
                name: external_listener
                triggers: [dataset.vendor_prices.updated]
                tasks:
                  a: {run: "true"}
                """
            try await APITestServer.with(pipelines: pipelines) { server in
                let lineage = try await server.getOK("/api/v1/lineage", as: APILineage.self)
                let ids = Set(lineage.nodes.map(\.id))
                for edge in lineage.edges {
                    #expect(ids.contains(edge.from) && ids.contains(edge.to), "dangling edge \(edge)")
                }
                #expect(
                    lineage.edges.contains {
                        $0.from == "dataset:vendor_prices" && $0.to == "pipeline:external_listener" && $0.relation == "triggers"
                    })
                let vendor = try #require(lineage.nodes.first { $0.id == "dataset:vendor_prices" })
                #expect(vendor.kind == "dataset")
                #expect(vendor.name == "vendor_prices")
                #expect(vendor.owner == nil)
                #expect(lineage.nodes.filter { $0.id == "dataset:clean_customers" }.count == 1)
            }
        }

        @Test func aRunsDatasetsAreItsReadsAndWrites() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                let (producer, consumer) = try await server.produce()
                let wrote = try await server.getOK("/api/v1/runs/\(producer.id)/datasets", as: APIList<APIRunDataset>.self)
                #expect(wrote.items.count == 1)
                let write = try #require(wrote.items.first)
                #expect(write.run_id == producer.id)
                #expect(write.task == "load")
                #expect(write.dataset == "clean_customers")
                #expect(write.direction == "write")

                let read = try await server.getOK("/api/v1/runs/\(consumer.id)/datasets", as: APIList<APIRunDataset>.self)
                #expect(read.items.map(\.direction) == ["read"])
                #expect(read.items.first?.task == "train")
                #expect(read.items.first?.dataset == "clean_customers")
                // The consumer read exactly the version the producer wrote.
                #expect(read.items.first?.update_id == write.update_id)
                let latest = try await server.getOK("/api/v1/datasets/clean_customers", as: APIDatasetDetail.self)
                #expect(write.update_id == latest.updates.first?.id)

                // A run that touched no dataset has an empty list; bad and unknown ids are errors.
                let listener = try await server.trigger("customers_listener")
                try await server.waitForRun(listener.id)
                #expect(try await server.getOK("/api/v1/runs/\(listener.id)/datasets", as: APIList<APIRunDataset>.self).items.isEmpty)
                try await server.get("/api/v1/runs/abc/datasets").expectError(400, code: "invalid_request", field: "run")
                try await server.get("/api/v1/runs/0/datasets").expectError(400, field: "run")
                try await server.get("/api/v1/runs/987654/datasets").expectError(404, code: "not_found", field: "run")
            }
        }

        @Test func aStaleRequirementFailsTheConsumerWithADataSLAViolation() async throws {
            try await APITestServer.with(pipelines: HandoffFixtures.all) { server in
                // The last update is three hours old; strict_consumer accepts at most two.
                let old = try await server.store.recordDatasetUpdate(
                    DatasetUpdateRecord(
                        dataset: "clean_customers", runID: nil, pipeline: "customer_data_pipeline", task: "load",
                        schemaVersion: "2.3.0", metadata: ["record_count": 7], updatedAt: Date().addingTimeInterval(-3 * 3600)))
                let listing = try await server.getOK("/api/v1/datasets", as: APIList<APIDataset>.self)
                let clean = try #require(listing.items.first { $0.name == "clean_customers" })
                #expect(clean.status == "stale")
                #expect(clean.last_update?.id == old.id)
                #expect(clean.last_update?.run_id == nil)
                #expect((clean.age_seconds ?? 0) > 3 * 3600 - 60)

                let run = try await server.trigger("strict_consumer")
                let done = try await server.waitForRun(run.id)
                #expect(done.state == "failed")
                let train = try #require(done.tasks?.first { $0.task == "train" })
                #expect(train.state == "failed")
                #expect(train.attempts == 1)
                let reason = try #require(train.reason)
                #expect(reason.hasPrefix("DataSLAViolation: dataset clean_customers is 3h"), "\(reason)")
                #expect(reason.contains("over the 2h limit"), "\(reason)")
                #expect(reason.contains("owner data_engineering"), "\(reason)")
                // The task's own endpoint and its log say the same.
                let task = try await server.getOK("/api/v1/runs/\(run.id)/tasks/train", as: APITaskDetail.self)
                #expect(task.task.reason == reason)
                let log = try await server.get("/api/v1/runs/\(run.id)/tasks/train/logs?format=text")
                #expect(log.text.contains("DataSLAViolation"), "\(log)")
                // Nothing was read.
                #expect(try await server.getOK("/api/v1/runs/\(run.id)/datasets", as: APIList<APIRunDataset>.self).items.isEmpty)

                // A dataset that was never updated fails its consumer too, naming the dataset.
                let scoring = try await server.trigger("scoring")
                let scored = try await server.waitForRun(scoring.id)
                #expect(scored.state == "failed")
                let score = try #require(scored.tasks?.first { $0.task == "score" }?.reason)
                #expect(score.contains("DataSLAViolation: dataset churn_features has never been updated"), "\(score)")
            }
        }

        @Test func aMissedFreshnessSLAIsShownAndResolvedByTheNextUpdate() async throws {
            var pipelines = HandoffFixtures.all
            pipelines["catalog"] = """
                datasets:
                  clean_customers:
                    owner: data_engineering
                    schema_version: 2.3.0
                    freshness: 1s
                """
            pipelines["scoring"] = nil  // requires churn_features, not declared here
            try await APITestServer.with(pipelines: pipelines) { server in
                // No update within a second of the engine starting: the monitor opens a miss.
                let deadline = ContinuousClock.now + .seconds(20)
                var dataset = try await server.getOK("/api/v1/datasets/clean_customers", as: APIDatasetDetail.self)
                while dataset.dataset.open_sla_miss == nil {
                    guard ContinuousClock.now < deadline else { throw APITestFailure("no SLA miss opened: \(dataset)") }
                    try await Task.sleep(for: .milliseconds(50))
                    dataset = try await server.getOK("/api/v1/datasets/clean_customers", as: APIDatasetDetail.self)
                }
                let miss = try #require(dataset.dataset.open_sla_miss)
                #expect(miss.freshness_seconds == 1)
                #expect(miss.last_update_at == nil)
                #expect(miss.resolved_at == nil)
                #expect(dataset.sla_misses.first?.id == miss.id)
                let alerts = try await server.getOK("/api/v1/events?name=sla.missed", as: APIList<APIEvent>.self)
                #expect(alerts.items.first?.payload["dataset"] == "clean_customers")
                #expect(alerts.items.first?.payload["owner"] == "data_engineering")

                // The producer's update closes it.
                let run = try await server.trigger("customer_data_pipeline")
                #expect(try await server.waitForRun(run.id).state == "success")
                while try await server.getOK("/api/v1/datasets/clean_customers", as: APIDatasetDetail.self)
                    .sla_misses.first(where: { $0.id == miss.id })?.resolved_at == nil
                {
                    guard ContinuousClock.now < deadline else { throw APITestFailure("the SLA miss was not resolved") }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        }
    }
}
