import BatonCore
import Foundation
import Testing

@testable import BatonFeatures

@Suite struct FeatureParserTests {
    @Test func aDefinitionFileIsToldFromPipelinesAndCatalogs() {
        #expect(FeatureParser.isDefinitionFile(Fixture.yaml))
        #expect(!FeatureParser.isDefinitionFile("name: etl\ntasks:\n  a: {run: 'true'}\n"))
        #expect(!FeatureParser.isDefinitionFile("datasets:\n  a: {owner: x}\n"))
    }

    @Test func definitionsAreReadWithTypesTtlsAndServices() throws {
        let registry = Fixture.registry()
        let view = try #require(registry.views["customer_stats"])
        #expect(view.entity == "customer")
        #expect(view.ttl == 2.0 * 86_400)
        #expect(view.freshness == 3600)
        #expect(view.availability == 0.995 && view.dataset.availability == 0.995, "the catalog dataset's availability target")
        #expect(view.features.map(\.type) == [.float, .int, .string, .bool])
        #expect(view.features[2].description == "Marketing segment")
        #expect(view.dataset.name == "customer_stats" && view.dataset.freshness == 3600 && view.dataset.owner == "ml_engineering")
        #expect(registry.entities["customer"]?.joinKeys == [JoinKeySpec(name: "customer_id", type: .int)])
        #expect(registry.services["churn"]?.features.map(\.feature) == ["total_spend", "n_orders", "segment", "active"])
        #expect(registry.services["churn"]?.models == ["churn_model"])
        #expect(registry.services["spend_only"]?.features == [FeatureReference(view: "customer_stats", feature: "total_spend")])
    }

    func issues(_ text: String) -> [ValidationIssue] {
        FeatureRegistry.assemble([FeatureParser.parse(text, file: "f.yaml", directory: "/defs")]).issues
    }

    @Test func problemsNameTheFileLineFieldAndFix() throws {
        let found = issues(
            """
            entities:
              customer:
                join_keys: {customer_id: int}
            feature_views:
              stats:
                entity: customer
                ttl: soon
                availability: always
                features:
                  spend: flaot
            """)
        let availability = try #require(found.first { $0.field == "feature_views.stats.availability" })
        #expect(availability.line == 8 && availability.fix == "write a target such as 99%")
        let ttl = try #require(found.first { $0.field == "feature_views.stats.ttl" })
        #expect(ttl.file == "f.yaml" && ttl.line == 7)
        let type = try #require(found.first { $0.field == "feature_views.stats.features.spend" })
        #expect(type.line == 10)
        #expect(type.fix == "did you mean 'float'?")
    }

    @Test func crossFileMistakesAreReported() {
        let found = issues(
            """
            entities:
              customer:
                join_keys: {customer_id: int}
            feature_views:
              stats:
                entity: custmer
                features: {spend: float}
              other:
                entity: customer
                features: {spend: float, customer_id: int}
            feature_services:
              svc:
                features: [stats, "missing:x"]
            """)
        #expect(found.contains { $0.message.contains("unknown entity 'custmer'") && $0.fix == "did you mean 'customer'?" })
        #expect(found.contains { $0.message.contains("has the name of a join key") })
        #expect(found.contains { $0.message.contains("unknown feature view 'missing'") })
    }

    @Test func aServiceMayNotTakeOneFeatureNameFromTwoViews() {
        let found = issues(
            """
            entities:
              customer: {join_keys: {customer_id: int}}
            feature_views:
              a: {entity: customer, features: {spend: float}}
              b: {entity: customer, features: {spend: float}}
            feature_services:
              svc: {features: [a, b]}
            """)
        #expect(found.contains { $0.message.contains("feature 'spend' comes from both a and b") })
    }

    @Test func sourceIdentifiersMustBePlainNames() {
        let found = issues(
            """
            entities:
              customer: {join_keys: {customer_id: int}}
            feature_views:
              a:
                entity: customer
                features: {spend: float}
                source: {sqlite: w.sqlite, table: "t; DROP TABLE x", timestamp_column: ts}
            """)
        #expect(found.contains { $0.field == "feature_views.a.source.table" && $0.message.contains("not a plain SQL name") })
    }

    @Test func relativeSQLiteSourcesResolveAgainstTheDefinitionFolder() throws {
        let outcome = FeatureParser.parse(
            """
            entities:
              customer: {join_keys: {customer_id: int}}
            feature_views:
              a:
                entity: customer
                features: {spend: float}
                source: {sqlite: ../var/w.sqlite, table: main.t, timestamp_column: ts, columns: {customer_id: id}}
            """, file: "f.yaml", directory: "/defs/pipelines")
        let source = try #require(outcome.views.first?.source)
        #expect(source.database == .sqlite(path: "/defs/var/w.sqlite"))
        #expect(source.column(for: "customer_id") == "id" && source.column(for: "spend") == "spend")
    }

    @Test func aDefinitionBrokenLaterKeepsItsLastGoodVersion() throws {
        let good = Fixture.registry()
        let broken = FeatureRegistry.assemble([
            FeatureParser.parse(
                Fixture.yaml.replacingOccurrences(of: "n_orders: int", with: "n_orders: integr"), file: "features.yaml", directory: "/defs")
        ])
        #expect(broken.registry.views["customer_stats"] == nil, "the broken view is left out")
        #expect(broken.registry.rejected.isSuperset(of: ["customer_stats", "churn", "spend_only"]))
        let kept = broken.registry.keepingLastGood(of: good)
        #expect(kept.views["customer_stats"] == good.views["customer_stats"])
        #expect(kept.services["churn"] == good.services["churn"])
        // Removing a definition (no error) removes it.
        let removed = FeatureRegistry.assemble([
            FeatureParser.parse("entities:\n  customer: {join_keys: {customer_id: int}}\n", file: "features.yaml", directory: "/defs")
        ]).registry.keepingLastGood(of: good)
        #expect(removed.views.isEmpty && removed.services.isEmpty)
    }
}
