import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Testing

@testable import BatonServer

@Suite("Web UI feature store pages")
struct FeaturesUITests {
    static let definitions = """
        entities:
          customer:
            join_keys: {customer_id: int}
        feature_views:
          ui_stats:
            entity: customer
            description: "Spend <script>alert('f')</script> & co"
            freshness: 1h
            owner: ml_team
            features:
              spend: float
              segment: string
        feature_services:
          ui_churn:
            features: [ui_stats]
            models: [churn]
        """

    @Test("the list shows rows, entities and freshness; the view page shows statistics, a histogram and a lookup")
    func pages() async throws {
        try await UITestServer.with(pipelines: ["features": Self.definitions]) { server in
            let now = Date().timeIntervalSince1970
            let rows: [JSONValue] = (1...5).map {
                ["customer_id": .number(Double($0)), "event_timestamp": .number(now - 60), "spend": .number(Double($0) * 10), "segment": $0 == 5 ? .null : "gold"]
            }
            _ = try await server.engine.features.ingest(view: "ui_stats", json: rows, writer: FeatureWriter(origin: "test"))

            let list = try await server.page("/features")
            #expect(list.status == 200, "\(list)")
            #expect(list.body.contains("<a href=\"/features\" aria-current=\"page\">Features</a>"), "nav marks the section")
            #expect(list.body.contains("<a href=\"/features/ui_stats\">ui_stats</a>"))
            #expect(list.body.contains("<td>customer</td><td>2</td><td>5</td><td>5</td>"), "features, rows, entities")
            #expect(list.body.contains("<span class=\"badge st-fresh\""))
            #expect(list.body.contains("&lt;script&gt;") && !list.body.contains("<script>alert"), "descriptions are escaped")
            #expect(list.body.contains("ui_churn"))

            let view = try await server.page("/features/ui_stats?customer_id=3")
            #expect(view.status == 200, "\(view)")
            #expect(view.body.contains("<svg class=\"histogram\""))
            #expect(view.count("<rect class=\"hist-bar\"") == 10)
            #expect(view.body.contains("<td>20.0%</td>"), "segment is null in one row of five")
            #expect(view.body.contains("<code>30.0</code>"), "the looked-up entity's spend")
            let missing = try await server.page("/features/ui_stats?customer_id=99")
            #expect(missing.body.contains("No row for this entity."))
            let bad = try await server.page("/features/ui_stats?customer_id=abc")
            #expect(bad.body.contains("is not a valid int"))
            let unknown = try await server.page("/features/ui_stat")
            #expect(unknown.status == 404)
            #expect(unknown.body.contains("href=\"/features/ui_stats\""), "did you mean")
        }
    }
}
