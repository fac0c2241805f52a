import BatonCore
import Foundation

@testable import BatonFeatures

/// One entity, one view with a ttl, one service: the shape most tests need.
enum Fixture {
    static let yaml = """
        entities:
          customer:
            join_keys: {customer_id: int}
            description: A CRM customer
        feature_views:
          customer_stats:
            entity: customer
            ttl: 2d
            freshness: 1h
            availability: 99.5%
            owner: ml_engineering
            features:
              total_spend: float
              n_orders: int
              segment: {type: string, description: Marketing segment}
              active: bool
        feature_services:
          churn:
            features: [customer_stats]
            models: [churn_model]
          spend_only:
            features: ["customer_stats:total_spend"]
        """

    static func registry(_ text: String = yaml) -> FeatureRegistry {
        let outcome = FeatureParser.parse(text, file: "features.yaml", directory: "/defs")
        let (registry, issues) = FeatureRegistry.assemble([outcome])
        precondition(issues.isEmpty, "fixture definitions have issues: \(issues)")
        return registry
    }

    static func parser() -> FeatureRowParser {
        let registry = registry()
        let view = registry.views["customer_stats"]!
        return FeatureRowParser(view: view, entity: registry.entities["customer"]!)
    }

    static let day: Double = 86_400
    /// 2026-11-01T00:00:00Z.
    static let t0: Double = 1_793_491_200

    static func row(_ customer: Int, at time: Double, spend: Double?, orders: Int64? = nil) -> FeatureRow {
        FeatureRow(
            entityKey: String(customer), eventTime: time,
            values: [spend.map(FeatureValue.float) ?? .null, orders.map(FeatureValue.int) ?? .null, .null, .null])
    }

    /// A history built as the hub builds it: rows sorted by entity key, then time.
    static func history(_ rows: [FeatureRow], view: FeatureViewSpec) -> ViewHistory {
        var history = ViewHistory()
        for row in rows.sorted(by: { ($0.entityKey, $0.eventTime) < ($1.entityKey, $1.eventTime) }) {
            history.append(entityKey: row.entityKey, time: row.eventTime, values: FeatureCodec.encode(names: view.featureNames, values: row.values))
        }
        history.finish()
        return history
    }
}
