import BatonCore
import Foundation
import Testing

@testable import BatonFeatures

@Suite struct PointInTimeJoinTests {
    let registry = Fixture.registry()
    var view: FeatureViewSpec { registry.views["customer_stats"]! }

    func join(_ rows: [FeatureRow], _ entities: [(Int, Double)], service: String = "spend_only") throws -> [FeatureValue] {
        let table = EntityTable(
            header: ["customer_id", "event_timestamp", "label"],
            rows: entities.map { [.number(Double($0.0)), .number($0.1), .string("y")] }, times: entities.map(\.1))
        let set = try PointInTimeJoin.join(
            entities: table, service: registry.services[service]!, registry: registry,
            histories: ["customer_stats": Fixture.history(rows, view: view)])
        #expect(set.entityRows == table.rows, "entity columns (labels too) are kept as given")
        return (0..<set.rowCount).map { set.value(row: $0, feature: 0) }
    }

    @Test func aFeatureIsNeverTakenFromTheFuture() throws {
        let t = Fixture.t0
        let rows = [Fixture.row(1, at: t, spend: 1), Fixture.row(1, at: t + 3600, spend: 2), Fixture.row(1, at: t + 7200, spend: 3)]
        let values = try join(rows, [(1, t - 1), (1, t + 3599), (1, t + 5000), (1, t + 9000)])
        #expect(values == [.null, .float(1), .float(2), .float(3)])
    }

    @Test func aRowAtExactlyTheEntityTimeCounts() throws {
        let t = Fixture.t0
        #expect(try join([Fixture.row(1, at: t, spend: 5)], [(1, t)]) == [.float(5)])
    }

    @Test func valuesOlderThanTheTtlAreDropped() throws {
        let t = Fixture.t0
        let ttl = 2 * Fixture.day
        let values = try join([Fixture.row(1, at: t, spend: 5)], [(1, t + ttl), (1, t + ttl + 1)])
        #expect(values == [.float(5), .null], "valid through t + ttl, gone after")
    }

    @Test func lateArrivingRowsAreOrderedByEventTimeNotArrival() throws {
        let t = Fixture.t0
        // The row for t+1h arrives after the one for t+2h (input order): the join must not care.
        let rows = [Fixture.row(1, at: t + 7200, spend: 3), Fixture.row(1, at: t, spend: 1), Fixture.row(1, at: t + 3600, spend: 2)]
        #expect(try join(rows, [(1, t + 3700)]) == [.float(2)])
    }

    @Test func entitiesDoNotSeeEachOthersRows() throws {
        let t = Fixture.t0
        let values = try join([Fixture.row(1, at: t, spend: 1), Fixture.row(2, at: t + 10, spend: 2)], [(2, t + 5), (3, t + 100), (1, t + 100)])
        #expect(values == [.null, .null, .float(1)])
    }

    @Test func aServiceGetsEveryFeatureItNamesInOrder() throws {
        let t = Fixture.t0
        let table = EntityTable(header: ["customer_id", "event_timestamp"], rows: [[.number(1), .number(t)]], times: [t])
        let set = try PointInTimeJoin.join(
            entities: table, service: registry.services["churn"]!, registry: registry,
            histories: ["customer_stats": Fixture.history([Fixture.row(1, at: t, spend: 9, orders: 4)], view: view)])
        #expect(set.featureNames == ["total_spend", "n_orders", "segment", "active"])
        #expect((0..<4).map { set.value(row: 0, feature: $0) } == [.float(9), .int(4), .null, .null])
        #expect(set.csv() == "customer_id,event_timestamp,total_spend,n_orders,segment,active\n1,\(Int(t)),9.0,4,,\n")
    }

    @Test func entityRowsWithoutTheJoinKeyAreRefused() throws {
        let table = EntityTable(header: ["user", "event_timestamp"], rows: [[.number(1), .number(0)]], times: [0])
        #expect(throws: FeatureError.self) {
            _ = try PointInTimeJoin.join(entities: table, service: registry.services["churn"]!, registry: registry, histories: [:])
        }
    }

    @Test func theOnlineCacheKeepsTheLatestRowPerEntity() {
        let cache = OnlineFeatureCache()
        let t = Fixture.t0
        cache.apply(view: "v", rows: [Fixture.row(1, at: t + 10, spend: 2), Fixture.row(1, at: t, spend: 1)])
        #expect(cache.entry(view: "v", entityKey: "1")?.values.first == .float(2), "an older row arriving later does not win")
        cache.apply(view: "v", rows: [Fixture.row(1, at: t + 10, spend: 3)])
        #expect(cache.entry(view: "v", entityKey: "1")?.values.first == .float(3), "a rewrite at the same time does")
        #expect(cache.entry(view: "v", entityKey: "2") == nil)
    }

    @Test func statisticsCountNullsAndBinNumbers() {
        let stats = FeatureStatistics.compute(
            features: [FeatureSpec(name: "x", type: .float), FeatureSpec(name: "s", type: .string)],
            rows: [[.float(0), .string("a")], [.float(10), .string("a")], [.null, .string("b")], [.float(5), .null]])
        #expect(stats[0].nulls == 1 && stats[0].min == 0 && stats[0].max == 10 && stats[0].mean == 5)
        #expect(stats[0].histogram.reduce(0, +) == 3 && stats[0].histogram.first == 1 && stats[0].histogram.last == 1)
        #expect(stats[1].topValues == ["a": 2, "b": 1] && stats[1].nullShare == 0.25)
    }
}
