import Foundation
import Testing

/// `baton validate DIR --json`: the report users and CI read.
@Suite struct ValidateCLITests {
    struct Report: Decodable {
        var files: Int
        var pipelines: [String]
        var errors: Int
        var warnings: Int
        var issues: [Issue]
        struct Issue: Decodable {
            var file: String
            var line: Int
            var column: Int
            var severity: String
            var field: String?
            var message: String
            var value: String?
            var fix: String?
        }
    }

    static let good = """
        name: good
        schedule: "@hourly"
        tasks:
          extract:
            run: echo extract
          load:
            run: echo load
            needs: [extract]
        """

    // Three errors on known lines: a bad cron hour (2), a misspelt key (6), an unknown need (9).
    static let broken = """
        name: broken
        schedule: "0 25 * * *"
        tasks:
          extract:
            run: echo hi
            retires: 3
          load:
            run: echo load
            needs: [extrakt]
        """

    @Test func brokenFileIsReportedAndGoodOneStillCounts() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("good", Self.good)
        try sandbox.writePipeline("broken", Self.broken)

        let result = try await sandbox.baton("validate", sandbox.pipelines, "--json")
        #expect(result.exitCode == 1, "\(result)")
        #expect(!result.looksLikeCrash, "\(result)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.files == 2)
        #expect(report.pipelines == ["good"], "the good file must still load next to a broken one")
        #expect(report.errors == 3, "\(report.issues.map(\.message))")
        #expect(report.issues.allSatisfy { $0.file.hasSuffix("broken.yaml") && $0.severity == "error" })

        let byField = Dictionary(report.issues.map { ($0.field ?? "-", $0) }, uniquingKeysWith: { first, _ in first })
        let schedule = try #require(byField["schedule"], "\(report.issues.map(\.field))")
        #expect(schedule.line == 2)
        #expect(schedule.message.contains("25"))
        let key = try #require(byField["tasks.extract"])
        #expect(key.line == 6)
        #expect(key.value == "retires")
        #expect(key.fix?.contains("retries") == true, "the fix should suggest the close key")
        let needs = try #require(byField["tasks.load.needs"])
        #expect(needs.line == 9)
        #expect(needs.fix?.contains("extract") == true)

        // The human form names file:line too.
        let text = try await sandbox.baton("validate", sandbox.pipelines)
        #expect(text.exitCode == 1)
        #expect(text.stdout.contains("broken.yaml:6:"), "\(text)")
        #expect(text.stdout.contains("1 pipeline valid, 3 errors"), "\(text)")
    }

    @Test func goodFolderExitsZero() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline("good", Self.good)
        let result = try await sandbox.baton("validate", sandbox.pipelines, "--json")
        #expect(result.exitCode == 0, "\(result)")
        let report = try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
        #expect(report.errors == 0)
        #expect(report.issues.isEmpty)
        #expect(report.pipelines == ["good"])
    }

    @Test func missingFolderIsAnError() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let result = try await sandbox.baton("validate", sandbox.root + "/nope", "--json")
        #expect(result.exitCode == 1, "\(result)")
        #expect(result.stdout.contains("does not exist"), "\(result)")
    }
}
