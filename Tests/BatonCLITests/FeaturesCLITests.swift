import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `baton features ...` and `baton validate` on feature definitions, through the real binary.
@Suite struct FeaturesCLITests {
    static let definitions = """
        entities:
          customer:
            join_keys: {customer_id: int}
        feature_views:
          customer_stats:
            entity: customer
            ttl: 2d
            freshness: 1h
            features:
              total_spend: float
              n_orders: int
        feature_services:
          churn:
            features: [customer_stats]
        """

    func features(_ sandbox: Sandbox, _ args: [String]) async throws -> CommandResult {
        try await sandbox.baton(["features"] + args + ["--db", sandbox.db, "--pipelines", sandbox.pipelines], addDefaults: false)
    }

    @Test func validateReportsDefinitionProblemsWithFileAndLine() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.write("pipelines/features.yaml", Self.definitions.replacingOccurrences(of: "n_orders: int", with: "n_orders: integer"))
        let result = try await sandbox.baton("validate")
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout.contains("features.yaml:11:"), "\(result)")
        #expect(result.stdout.contains("'integer' is not a feature type"), "\(result)")
        #expect(result.stdout.contains("valid values: int, float, string, bool"), "\(result)")
        #expect(!result.stdout.contains("unknown feature view"), "no follow-on error for the view left out: \(result)")
    }

    @Test func ingestOverwritesRejectsBadFilesWholeAndBuildsPointInTimeTrainingSets() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.write("pipelines/features.yaml", Self.definitions)
        try sandbox.write(
            "rows.csv", "customer_id,event_timestamp,total_spend,n_orders\n1,2026-11-01T00:00:00Z,10.5,1\n1,2026-11-03T00:00:00Z,20,2\n2,2026-11-02,5,\n")
        let first = try await features(sandbox, ["ingest", "customer_stats", "--file", sandbox.root + "/rows.csv"])
        #expect(first.exitCode == 0 && first.stdout.contains("3 new, 0 overwritten"), "\(first)")
        let again = try await features(sandbox, ["ingest", "customer_stats", "--file", sandbox.root + "/rows.csv"])
        #expect(again.stdout.contains("0 new, 3 overwritten"), "\(again)")

        try sandbox.write("bad.csv", "customer_id,event_timestamp,total_spend\n3,2026-11-04,1\n4,2026-11-04,lots\n")
        let bad = try await features(sandbox, ["ingest", "customer_stats", "--file", sandbox.root + "/bad.csv"])
        #expect(bad.exitCode != 0, "\(bad)")
        #expect(bad.stderr.contains("row 3, column total_spend") && bad.stderr.contains("lots") && bad.stderr.contains("expected: float"), "\(bad)")
        let list = try await features(sandbox, ["list", "--json"])
        let views = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
        #expect((views.first?["rows"] as? Int) == 3, "the bad file stored nothing: \(list)")

        try sandbox.write(
            "entities.csv",
            "customer_id,event_timestamp,label\n1,2026-11-02T00:00:00Z,0\n1,2026-11-03T00:00:00Z,1\n1,2026-11-10T00:00:00Z,1\n2,2026-11-01T00:00:00Z,0\n")
        let out = sandbox.root + "/training.csv"
        let historical = try await features(sandbox, ["historical", "--entities", sandbox.root + "/entities.csv", "--service", "churn", "--out", out])
        #expect(historical.exitCode == 0, "\(historical)")
        let training = try String(contentsOfFile: out, encoding: .utf8)
        #expect(
            training == """
                customer_id,event_timestamp,label,total_spend,n_orders
                1,2026-11-02T00:00:00Z,0,10.5,1
                1,2026-11-03T00:00:00Z,1,20.0,2
                1,2026-11-10T00:00:00Z,1,,
                2,2026-11-01T00:00:00Z,0,,

                """, "no value from the future, none past the ttl")
    }

    @Test func aRunningServerServesRowsTheCLIWrote() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.write("pipelines/features.yaml", Self.definitions)
        let server = try await sandbox.startUpAndWait()
        var address = ""
        try await waitUntil("baton up reports its address", detail: { server.log }) {
            let log = server.log
            address = log.range(of: #"http://127\.0\.0\.1:\d+"#, options: .regularExpression).map { String(log[$0]) } ?? ""
            return !address.isEmpty
        }
        let now = Int(Date().timeIntervalSince1970) - 60
        try sandbox.write("rows.csv", "customer_id,event_timestamp,total_spend,n_orders\n7,\(now),70,7\n")
        let written = try await features(sandbox, ["ingest", "customer_stats", "--file", sandbox.root + "/rows.csv"])
        #expect(written.exitCode == 0, "\(written)")
        var last = ""
        try await waitUntil("the server's online cache has the CLI's row", detail: { last }) {
            let (data, _) = try await URLSession.shared.data(from: URL(string: address + "/api/v1/features/online/churn?customer_id=7")!)
            last = String(decoding: data, as: UTF8.self)
            return last.contains(#""total_spend":70.0"#)
        }
        // The write is the view's dataset update, in the catalog.
        let catalog = try await sandbox.baton("catalog", "customer_stats", "--db", sandbox.db, "--pipelines", sandbox.pipelines, "--json", addDefaults: false)
        #expect(catalog.stdout.contains(#""status" : "fresh""#) || catalog.stdout.contains(#""status":"fresh""#), "\(catalog)")
    }
}
