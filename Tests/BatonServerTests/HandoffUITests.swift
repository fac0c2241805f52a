import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Testing

@testable import BatonServer

/// A catalog with one dataset, the pipeline producing it, one consuming it (requires, and
/// triggered by its updates), and one started by a plain event. The description carries markup
/// that must come out escaped.
enum HandoffUIFixtures {
    static let catalog = """
        datasets:
          ui_customers:
            owner: data_team
            description: "Customers <script>alert('ds')</script> & co"
            schema_version: "2.3.0"
            freshness: 1h
            availability: 99.9%
        """

    static let producer = """
        name: ui_producer
        owner: data_team
        tasks:
          load:
            run: |
              echo '{"record_count": 42}' > "$BATON_OUTPUT"
            produces: [ui_customers]
        """

    static let consumer = """
        name: ui_consumer
        owner: ml_team
        triggers: [dataset.ui_customers.updated]
        tasks:
          train:
            run: "true"
            requires: [{dataset: ui_customers, max_staleness: 2h, schema: ">=2.0 <3"}]
        """

    static let pinged = """
        name: ui_pinged
        triggers: [ui.ping]
        tasks:
          pong:
            run: "true"
        """

    static let all = ["catalog": catalog, "ui_producer": producer, "ui_consumer": consumer, "ui_pinged": pinged]
}

@Suite("Web UI hand-off pages")
struct HandoffUITests {
    /// Runs the producer and waits for it and for the consumer run its update triggers.
    static func produce(_ server: UITestServer) async throws -> (producer: Int64, consumer: Int64) {
        let run = try await server.engine.trigger(pipeline: "ui_producer")
        #expect(try await server.waitForRun(run.id) == .success)
        let deadline = ContinuousClock.now + .seconds(20)
        while true {
            if let consumer = try await server.store.runs(RunQuery(pipeline: "ui_consumer")).first {
                #expect(try await server.waitForRun(consumer.id) == .success)
                return (run.id, consumer.id)
            }
            guard ContinuousClock.now < deadline else { throw UITestFailure("the update started no consumer run") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test("the catalog shows a dataset stale before its first update, then fresh with its producer and consumer")
    func catalog() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            let before = try await server.page("/datasets")
            #expect(before.status == 200, "\(before)")
            #expect(before.body.contains("<title>Datasets · Baton</title>"))
            #expect(before.body.contains("<a href=\"/datasets\" aria-current=\"page\">Datasets</a>"), "nav marks the section")
            #expect(before.body.contains("<span class=\"badge st-stale\""))
            #expect(before.body.contains("no update yet"))

            let runs = try await Self.produce(server)
            let page = try await server.page("/datasets")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("href=\"/datasets/ui_customers\""))
            #expect(page.body.contains("<span class=\"badge st-fresh\""))
            #expect(!page.body.contains("<span class=\"badge st-stale\""))
            #expect(page.body.contains(">data_team</a>"))
            #expect(page.body.contains("schema <code>2.3.0</code>"))
            #expect(page.body.contains("fresh within 1h"))
            #expect(page.body.contains("100%"), "measured availability")
            #expect(page.body.contains(" / 99.9%"), "against the target")
            #expect(page.body.contains("href=\"/runs/\(runs.producer)\""), "the last update's run")
            #expect(page.body.contains("<a href=\"/pipelines/ui_producer\">ui_producer</a><wbr><span class=\"muted\">.load</span>"))
            #expect(page.body.contains("<a href=\"/pipelines/ui_consumer\">ui_consumer</a><wbr><span class=\"muted\">.train</span>"))

            let otherTeam = try await server.page("/datasets?owner=ml_team")
            #expect(otherTeam.status == 200)
            #expect(!otherTeam.body.contains("href=\"/datasets/ui_customers\""))
            #expect(otherTeam.body.contains("No datasets match."))
            let mine = try await server.page("/datasets?owner=data_team")
            #expect(mine.body.contains("href=\"/datasets/ui_customers\""))
        }
    }

    @Test("the dataset page lists the update with its run and record_count, schema versions, and the runs that read and wrote it")
    func detail() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            let runs = try await Self.produce(server)
            let update = try #require(try await server.store.latestDatasetUpdate("ui_customers"))
            let page = try await server.page("/datasets/ui_customers")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<li><a href=\"/datasets\">Datasets</a></li>"), "breadcrumbs")
            #expect(page.body.contains("<tr id=\"update-\(update.id)\">"))
            #expect(page.body.contains("<span class=\"chip-key\">record_count</span> 42"))
            #expect(page.body.contains("<a href=\"/runs/\(runs.producer)\">#\(runs.producer)</a>"))
            #expect(page.body.contains("Goes stale"))
            #expect(page.body.contains("<a href=\"#update-\(update.id)\">update \(update.id)</a>"), "schema history")
            #expect(page.body.contains("No SLA misses."))
            #expect(page.body.contains("schema <code>&gt;=2.0 &lt;3</code>"), "the consumer's contract, escaped")
            #expect(page.body.contains("at most 2h old"))
            #expect(page.body.contains("<a href=\"/runs/\(runs.consumer)\">#\(runs.consumer)</a>"), "the run that read it")
            #expect(page.body.contains(">wrote<"))
            #expect(page.body.contains(">read<"))
        }
    }

    @Test("the lineage page draws datasets and pipelines as different nodes with the edges between them")
    func lineage() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            _ = try await Self.produce(server)
            let page = try await server.page("/lineage")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<svg class=\"dag lineage"))
            #expect(page.body.contains("<g class=\"node kind-dataset st-fresh\" data-node=\"d:ui_customers\""))
            #expect(page.body.contains("<g class=\"node kind-pipeline st-pipeline\" data-node=\"p:ui_producer\""))
            #expect(page.body.contains("<g class=\"node kind-pipeline st-pipeline\" data-node=\"p:ui_consumer\""))
            #expect(page.body.contains("<a href=\"/datasets/ui_customers\">"), "dataset nodes link to their page")
            #expect(page.body.contains("<a href=\"/pipelines/ui_producer\">"), "pipeline nodes link to theirs")
            #expect(page.body.contains("data-from=\"p:ui_producer\" data-to=\"d:ui_customers\""))
            #expect(page.body.contains("data-from=\"d:ui_customers\" data-to=\"p:ui_consumer\""))
            #expect(page.count("<path class=\"edge") == 2, "requires and triggers between the same pair are one edge")
            #expect(page.body.contains("Not shown, no datasets: <a href=\"/pipelines/ui_pinged\">ui_pinged</a>"))
        }
    }

    @Test("the events page lists a published event with the run it started, filters by name and escapes the payload")
    func events() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            let published = try await server.engine.publish(
                name: "ui.ping", payload: ["note": "<b>bold</b>", "count": 3], id: "ping-1", source: "test")
            let runID = try #require(published.runIDs.first)
            #expect(try await server.waitForRun(runID) == .success)
            _ = try await server.engine.publish(name: "ui.other", payload: [:], id: "other-1")

            let page = try await server.page("/events")
            #expect(page.status == 200, "\(page)")
            #expect(page.body.contains("<a href=\"/events\" aria-current=\"page\">Events</a>"))
            #expect(page.body.contains(">ui.ping</a>"))
            #expect(page.body.contains(">ping-1</code>"))
            #expect(page.body.contains("<a class=\"strong\" href=\"/runs/\(runID)\">#\(runID)</a>"), "the run the event started")
            #expect(page.body.contains("&lt;b&gt;bold&lt;/b&gt;"))
            #expect(!page.body.contains("<b>bold</b>"))
            #expect(page.body.contains("<option value=\"ui.ping\">"), "names to pick from")

            let filtered = try await server.page("/events?name=ui.ping")
            #expect(filtered.body.contains(">ping-1</code>"))
            #expect(!filtered.body.contains(">other-1</code>"))

            let run = try await server.page("/runs/\(runID)")
            #expect(run.status == 200, "\(run)")
            #expect(run.body.contains("event <a href=\"#event\"><code>ui.ping</code></a>"))
            #expect(run.body.contains("<h2 id=\"h-event\">Triggering event</h2>"))
            #expect(run.body.contains("<code>ping-1</code>"))
            #expect(run.body.contains("&quot;&lt;b&gt;bold&lt;/b&gt;&quot;"), "payload shown escaped")
        }
    }

    @Test("the events page shows fifty events and links to the older ones")
    func eventPages() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            for index in 1...(EventsPage.pageSize + 5) {
                _ = try await server.engine.publish(name: "ui.tick", payload: ["n": .number(Double(index))], id: "tick-\(index)")
            }
            let newest = try await server.page("/events?name=ui.tick")
            #expect(newest.count("<tr id=\"event-") == EventsPage.pageSize)
            #expect(newest.body.contains(">tick-\(EventsPage.pageSize + 5)</code>"))
            #expect(!newest.body.contains(">tick-5</code>"))
            let older = try #require(
                newest.body.range(of: #"href="(/events\?name=ui\.tick&amp;before=\d+)""#, options: .regularExpression))
            let link = String(newest.body[older].dropFirst(6).dropLast()).replacingOccurrences(of: "&amp;", with: "&")
            let page = try await server.page(link)
            #expect(page.status == 200, "\(page)")
            #expect(page.count("<tr id=\"event-") == 5)
            #expect(page.body.contains(">tick-1</code>"))
            #expect(page.body.contains("← Newest"))
            #expect(!page.body.contains("Older events"))
        }
    }

    @Test("run and pipeline pages show what was read and written and the datasets' contracts")
    func runAndPipelineSections() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            let runs = try await Self.produce(server)
            let update = try #require(try await server.store.latestDatasetUpdate("ui_customers"))
            let producer = try await server.page("/runs/\(runs.producer)")
            #expect(producer.body.contains("<h2 id=\"h-datasets\">Datasets</h2>"))
            #expect(producer.body.contains("<a href=\"/datasets/ui_customers\">ui_customers</a>"))
            #expect(producer.body.contains("<a href=\"/datasets/ui_customers#update-\(update.id)\">update \(update.id)</a>"))
            #expect(producer.body.contains("<span class=\"tag\">wrote</span>"))
            #expect(!producer.body.contains("Triggering event"))

            let consumer = try await server.page("/runs/\(runs.consumer)")
            #expect(consumer.body.contains("<span class=\"tag subtle\">read</span>"))
            #expect(consumer.body.contains("Triggering event"))
            #expect(consumer.body.contains("dataset.ui_customers.updated"))

            let pipeline = try await server.page("/pipelines/ui_consumer")
            #expect(pipeline.body.contains("<h2 id=\"h-datasets\">Datasets</h2>"))
            #expect(pipeline.body.contains("<span class=\"tag subtle\">requires</span>"))
            #expect(pipeline.body.contains("at most 2h old"))
            #expect(pipeline.body.contains("updates of <a class=\"strong\" href=\"/datasets/ui_customers\">"))
            #expect(pipeline.body.contains("<span class=\"muted\">every event</span>"), "markup, not escaped text")
            let plain = try await server.page("/pipelines/ui_pinged")
            #expect(!plain.body.contains("<span class=\"tag subtle\">requires</span>"))
        }
    }

    @Test("an open SLA miss is flagged on the catalog, the dataset page and the dashboard's dataset panels")
    func slaMiss() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            let detected = Date().addingTimeInterval(-600)
            _ = try await server.store.openSLAMiss(
                SLAMissRecord(dataset: "ui_customers", detectedAt: detected, lastUpdateAt: nil, freshness: 3600))

            let catalog = try await server.page("/datasets")
            #expect(catalog.body.contains("<a class=\"pill miss\" href=\"/datasets/ui_customers#sla\""))
            let detail = try await server.page("/datasets/ui_customers")
            #expect(detail.body.contains("<strong>SLA missed.</strong>"))
            #expect(detail.body.contains("<tr class=\"open\">"))

            let dashboard = try await server.page("/dashboard")
            #expect(dashboard.status == 200, "\(dashboard)")
            #expect(dashboard.body.contains("<h2 id=\"h-dataset-freshness\">Dataset freshness</h2>"))
            #expect(dashboard.body.contains("<a class=\"tile st-stale\" href=\"/datasets/ui_customers\""))
            #expect(dashboard.body.contains("<span class=\"pill miss\">SLA miss</span>"))
            #expect(dashboard.body.contains("<a href=\"/datasets/ui_customers#sla\">ui_customers</a>"), "listed under SLA misses")
            #expect(dashboard.body.contains("Customers &lt;script&gt;") == false, "descriptions stay off the dashboard")
            #expect(!dashboard.body.contains("<script>alert"))
        }
    }

    @Test("a dataset description with markup is escaped on every page")
    func escaping() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            for path in ["/datasets", "/datasets/ui_customers"] {
                let page = try await server.page(path)
                #expect(page.status == 200, "\(page)")
                #expect(page.body.contains("Customers &lt;script&gt;alert(&#39;ds&#39;)&lt;/script&gt; &amp; co"), "\(path)")
                #expect(!page.body.contains("<script>alert"), "\(path)")
            }
        }
    }

    @Test("an unknown dataset gets the 404 page with a suggestion")
    func notFound() async throws {
        try await UITestServer.with(pipelines: HandoffUIFixtures.all) { server in
            let page = try await server.page("/datasets/ui_customer")
            #expect(page.status == 404, "\(page)")
            #expect(page.contentType.hasPrefix("text/html"))
            #expect(page.body.contains("There is no dataset named ‘ui_customer’ in the catalog."))
            #expect(page.body.contains("Did you mean <a href=\"/datasets/ui_customers\">ui_customers</a>?"))
            let odd = try await server.page("/datasets/%3Cscript%3E")
            #expect(odd.status == 404)
            #expect(!odd.body.contains("<script>"))
        }
    }

    @Test("the lineage layout sets cycles aside instead of failing")
    func lineageCycle() {
        let nodes = ["d:a", "p:x"].map {
            LineagePage.Node(
                id: $0, kind: $0.hasPrefix("d:") ? .dataset : .pipeline, name: String($0.dropFirst(2)), state: "fresh",
                detail: "", tooltip: "", href: nil)
        }
        let svg = LineagePage.svg(
            nodes: nodes,
            edges: [.init(from: "p:x", to: "d:a", relations: ["produces"]), .init(from: "d:a", to: "p:x", relations: ["requires"])])
        #expect(svg.text.components(separatedBy: "<path class=\"edge").count - 1 == 2)
        #expect(svg.text.contains("class=\"edge back\""))
    }

    @Test("availability reads as a percentage, never rounded up to meet the target")
    func percentages() {
        #expect(HandoffUI.measuredPercent(1) == "100%")
        #expect(HandoffUI.measuredPercent(0.99959) == "99.95%")
        #expect(HandoffUI.measuredPercent(0.99899) == "99.89%")
        #expect(HandoffUI.targetPercent(0.999) == "99.9%")
        #expect(HandoffUI.targetPercent(0.99) == "99%")
        #expect(HandoffUI.datasetOfUpdateEvent("dataset.clean_customers.updated") == "clean_customers")
        #expect(HandoffUI.datasetOfUpdateEvent("dataset..updated") == nil)
        #expect(HandoffUI.datasetOfUpdateEvent("data.customers.updated") == nil)
    }
}
