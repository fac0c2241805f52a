import BatonCore
import Foundation
import Testing

@testable import BatonEngine

/// `PipelineRepository.load` reads Python pipeline files through the SDK's describe process
/// (the repository's sdk/python, found from the test binary's path) and validates them with
/// the YAML rules, reporting problems at the Python file's lines.
@Suite struct PythonPipelineRepositoryTests {
    final class Folder {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("baton-python-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        func write(_ name: String, _ text: String) throws {
            try text.write(toFile: path + "/" + name, atomically: true, encoding: .utf8)
        }

        func load() -> PipelineFolder { PipelineRepository.load(directory: path) }
    }

    static let good = """
        from baton import dag, task

        @task(retries=2, timeout="1m")
        def extract():
            return {"rows": 3}

        @task(produces=["orders"])
        def load(data):
            return {"record_count": data["rows"]}

        @dag(schedule="@hourly", owner="data_team")
        def orders():
            load(extract())
        """

    @Test func aPythonFileBecomesAPipelineLikeAYAMLFile() throws {
        let folder = try Folder()
        try folder.write("orders.py", Self.good)
        try folder.write("catalog.yaml", "datasets:\n  orders: {owner: data_team}\n")
        try folder.write("helpers.py", "VALUE = 1\n")  // no baton import: a helper, not a pipeline
        let loaded = folder.load()
        #expect(loaded.issues.isEmpty, "\(loaded.issues)")
        #expect(loaded.filesRead == 2)
        let spec = try #require(loaded.pipelines.first?.spec)
        #expect(spec.name == "orders")
        #expect(spec.owner == "data_team")
        #expect(spec.schedule == .cron("@hourly"))
        #expect(spec.sourceFile == URL(fileURLWithPath: folder.path + "/orders.py").standardizedFileURL.path)
        #expect(spec.tasks.map(\.name) == ["extract", "load"])
        let load = try #require(spec.task(named: "load"))
        #expect(load.needs == ["extract"])
        #expect(load.produces == ["orders"])
        #expect(spec.task(named: "extract")?.retries == 2)
        #expect(spec.task(named: "extract")?.timeout == 60)
        guard case .argv(let argv) = load.command else {
            Issue.record("a Python task runs as argv, got \(load.command)")
            return
        }
        #expect(Array(argv.dropFirst()) == ["-m", "baton.run", "orders.py", "_baton_pipeline_orders:load"])
    }

    @Test func problemsAreReportedAtTheirPythonLines() throws {
        let folder = try Folder()
        try folder.write("orders.py", Self.good)
        try folder.write("catalog.yaml", "datasets:\n  orders: {owner: data_team}\n")
        // The YAML rules apply: an unknown dataset (line of the @task defining produces=) and a
        // bad cron field (line of the @dag).
        try folder.write(
            "bad_rules.py",
            """
            from baton import dag, task

            @task(produces=["ordres"])
            def load():
                pass

            @dag(schedule="0 25 * * *")
            def bad_rules():
                load()
            """)
        try folder.write("syntax.py", "from baton import dag\n\n@dag\ndef broken(:\n    pass\n")
        let loaded = folder.load()
        #expect(loaded.pipelines.map(\.spec.name) == ["orders"])
        let byFile = Dictionary(grouping: loaded.errors) { ($0.file as NSString).lastPathComponent }
        let rules = byFile["bad_rules.py"] ?? []
        #expect(rules.contains { $0.line == 3 && $0.message.contains("unknown dataset 'ordres'") && $0.fix?.contains("orders") == true },
                "\(rules)")
        #expect(rules.contains { $0.line == 7 && $0.field == "schedule" && $0.message.contains("hour 25") }, "\(rules)")
        let syntax = try #require(byFile["syntax.py"]?.first)
        #expect(syntax.line == 4)
        #expect(syntax.message.hasPrefix("SyntaxError"))
    }

    @Test func aFileThatHangsIsStoppedAtTheTimeLimit() throws {
        let folder = try Folder()
        try folder.write("slow.py", "import time\nfrom baton import dag\ntime.sleep(60)\n")
        let settings = PythonPipelines.Settings.current()
        var quick = settings
        quick.timeout = 1
        let started = Date()
        let outcome = PythonPipelines.describe(
            [(folder.path + "/slow.py", "slow.py")], folderStamp: UUID().uuidString, settings: quick)
        #expect(Date().timeIntervalSince(started) < 10)
        guard case .failed(let issue) = outcome.first else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(issue.message.contains("took longer than 1s"), "\(issue)")
    }
}
