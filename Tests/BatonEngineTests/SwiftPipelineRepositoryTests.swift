import BatonCore
import Foundation
import Testing

@testable import BatonEngine

#if canImport(Glibc)
    import Glibc
#endif

/// `PipelineRepository.load` reads `*.baton-swift.yaml` manifests by running the executable they
/// name with `describe`. Shell scripts stand in for BatonKit executables here (the real one is
/// driven by the CLI tests): what matters is the answer they write and how they fail.
@Suite struct SwiftPipelineRepositoryTests {
    final class Folder {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("baton-swift-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path + "/pipelines", withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        func write(_ name: String, _ text: String, executable: Bool = false) throws {
            let file = path + "/" + name
            try text.write(toFile: file, atomically: true, encoding: .utf8)
            if executable { chmod(file, 0o755) }
        }

        func load() -> PipelineFolder { PipelineRepository.load(directory: path + "/pipelines") }
    }

    /// A script answering `describe --output FILE` with `answer`, counting its runs in `runs`.
    static func describer(_ answer: SwiftDescribeAnswer) throws -> String {
        let json = String(decoding: try JSONEncoder().encode(answer), as: UTF8.self)
        return """
            #!/bin/sh
            echo run >> "$(dirname "$0")/runs"
            [ "$1" = describe ] && [ "$2" = --output ] || exit 64
            cat > "$3" <<'ANSWER'
            \(json)
            ANSWER
            """
    }

    static func answer(spec: String, name: String = "orders") -> SwiftDescribeAnswer {
        let lines = spec.split(separator: "\n", omittingEmptySubsequences: false).dropLast().enumerated().map { index, _ in
            SwiftDescribeAnswer.Location(file: "/src/Sources/W/Orders.swift", line: 10 + index)
        }
        return SwiftDescribeAnswer(
            sdk: "batonkit 1",
            pipelines: [.init(name: name, location: .init(file: "/src/Sources/W/Orders.swift", line: 9), spec: spec, lines: lines)],
            problems: [])
    }

    static let goodSpec = """
        {
          "name": "orders",
          "owner": "data_team",
          "schedule": "@hourly",
          "tasks": {
            "extract": {"run": "echo extract"},
            "load": {"run": ["/opt/w", "run-task", "orders", "load"], "needs": ["extract"], "queue": "orders", "produces": ["orders_table"]}
          }
        }

        """

    @Test func aManifestBecomesPipelinesLikeAYAMLFile() throws {
        let folder = try Folder()
        try folder.write("worker", try Self.describer(Self.answer(spec: Self.goodSpec)), executable: true)
        try folder.write("pipelines/orders.baton-swift.yaml", "executable: ../worker\n")
        try folder.write("pipelines/catalog.yaml", "datasets:\n  orders_table: {owner: data_team}\n")
        let loaded = folder.load()
        #expect(loaded.issues.isEmpty, "\(loaded.issues)")
        #expect(loaded.filesRead == 2)
        let spec = try #require(loaded.pipelines.first?.spec)
        #expect(spec.name == "orders")
        #expect(spec.owner == "data_team")
        #expect(spec.sourceFile == URL(fileURLWithPath: folder.path + "/pipelines/orders.baton-swift.yaml").standardizedFileURL.path)
        #expect(spec.task(named: "load")?.queue == "orders")
        #expect(spec.task(named: "load")?.command == .argv(["/opt/w", "run-task", "orders", "load"]))

        // Unchanged manifest and executable: the answer is reused, not asked for again.
        _ = folder.load()
        #expect(try String(contentsOfFile: folder.path + "/runs", encoding: .utf8) == "run\n")
        // A rebuilt executable is read again, and changes the folder's fingerprint.
        let before = PipelineRepository.fingerprint(directory: folder.path + "/pipelines")
        try folder.write("worker", try Self.describer(Self.answer(spec: Self.goodSpec)) + "\n# rebuilt\n", executable: true)
        #expect(PipelineRepository.fingerprint(directory: folder.path + "/pipelines") != before)
        _ = folder.load()
        #expect(try String(contentsOfFile: folder.path + "/runs", encoding: .utf8) == "run\nrun\n")
    }

    @Test func problemsStayAtTheManifestAndNameTheSwiftLine() throws {
        let folder = try Folder()
        let bad = Self.goodSpec.replacingOccurrences(of: #""needs": ["extract"]"#, with: #""needs": ["extrct"]"#)
        try folder.write("worker", try Self.describer(Self.answer(spec: bad)), executable: true)
        try folder.write("pipelines/orders.baton-swift.yaml", "executable: ../worker\n")
        let loaded = folder.load()
        #expect(loaded.pipelines.isEmpty)
        let issue = try #require(loaded.errors.first { $0.field == "tasks.load.needs" }, "\(loaded.issues)")
        #expect(issue.file.hasSuffix("pipelines/orders.baton-swift.yaml"))
        // Line 7 of the spec text, declared at line 10 + 6 of the Swift file.
        #expect(issue.message == "unknown task 'extrct' in needs (pipeline orders, at /src/Sources/W/Orders.swift:16)")
        #expect(issue.fix == "did you mean 'extract'? (in the Swift source, then rebuild the worker)")
    }

    @Test func describeProblemsFromTheSDKAreReportedWithTheirPlace() throws {
        let folder = try Folder()
        let answer = SwiftDescribeAnswer(
            sdk: "batonkit 1", pipelines: [],
            problems: [
                .init(
                    location: .init(file: "/src/W.swift", line: 4), pipeline: "orders",
                    message: "task 'load' is declared twice in pipeline 'orders' (first at /src/W.swift:3)",
                    fix: "give one of them another name")
            ])
        try folder.write("worker", try Self.describer(answer), executable: true)
        try folder.write("pipelines/orders.baton-swift.yaml", "executable: ../worker\n")
        let issue = try #require(folder.load().errors.first)
        #expect(issue.message == "task 'load' is declared twice in pipeline 'orders' (first at /src/W.swift:3) (at /src/W.swift:4)")
    }

    @Test func executablesThatAreMissingSilentFailingOrSlowAreReportedWithAFix() throws {
        let folder = try Folder()
        let marker = "31.\(Int.random(in: 100_000_000...999_999_999))"
        try folder.write("slow", "#!/bin/sh\nexec sleep \(marker)\n", executable: true)
        try folder.write("pipelines/missing.baton-swift.yaml", "executable: ../nothing-here\n")
        try folder.write("pipelines/folder.baton-swift.yaml", "executable: ..\n")
        try folder.write("pipelines/silent.baton-swift.yaml", "executable: /bin/true\n")
        try folder.write("pipelines/failing.baton-swift.yaml", "executable: /bin/false\n")
        try folder.write("pipelines/slow.baton-swift.yaml", "executable: ../slow\ntimeout: 300ms\n")
        try folder.write("pipelines/typo.baton-swift.yaml", "exectuable: ../worker\n")
        let started = ContinuousClock.now
        let issues = folder.load().errors
        #expect(ContinuousClock.now - started < .seconds(20), "the slow describe was stopped at its limit")
        func issue(_ file: String) throws -> ValidationIssue {
            try #require(issues.first { $0.file.hasSuffix("/\(file).baton-swift.yaml") }, "\(issues)")
        }
        #expect(try issue("missing").message.contains("nothing-here does not exist"))
        #expect(try issue("missing").fix?.contains("swift build") == true)
        #expect(try issue("folder").message.contains("is not an executable file"))
        #expect(try issue("silent").message == "`/bin/true describe` wrote no answer")
        #expect(try issue("silent").fix?.contains("await Worker(...).main()") == true)
        #expect(try issue("failing").message == "`/bin/false describe` failed (exit status 1)")
        #expect(try issue("slow").message.contains("took longer than 300ms; it was stopped"))
        #expect(try issue("typo").fix == "did you mean 'executable'?")
        #expect(issues.count == 7, "\(issues.map(\.description).joined(separator: "\n"))")
    }

    @Test func aNewerProtocolIsRefusedWithTheFix() throws {
        let folder = try Folder()
        var answer = Self.answer(spec: Self.goodSpec)
        answer.protocol = SwiftDescribeAnswer.currentProtocol + 1
        answer.sdk = "batonkit 9"
        try folder.write("worker", try Self.describer(answer), executable: true)
        try folder.write("pipelines/orders.baton-swift.yaml", "executable: ../worker\n")
        let issue = try #require(folder.load().errors.first)
        #expect(issue.message.contains("built with batonkit 9, which answers in protocol 2"), "\(issue)")
    }
}
