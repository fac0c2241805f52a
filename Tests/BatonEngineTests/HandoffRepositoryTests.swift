import BatonCore
import Foundation
import Testing

@testable import BatonEngine

/// The folder half of the hand-off parser tests (`Tests/BatonCoreTests/HandoffParserTests.swift`):
/// `PipelineRepository.load` reads catalog files first and checks the pipelines' `produces` and
/// `requires` against the datasets they declare. It lives here because `PipelineRepository` is
/// part of BatonEngine; the suite shares the name so `--filter HandoffParserTests` runs both.
@Suite struct HandoffParserTests {
    /// A temp pipelines folder, removed at the end of the test.
    final class Folder {
        let path: String

        init() throws {
            path = FileManager.default.temporaryDirectory.appendingPathComponent("baton-handoff-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }

        deinit { try? FileManager.default.removeItem(atPath: path) }

        func write(_ name: String, _ text: String) throws {
            let file = path + "/" + name
            try FileManager.default.createDirectory(
                atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: file, atomically: true, encoding: .utf8)
        }

        func load() -> PipelineFolder { PipelineRepository.load(directory: path) }
    }

    static let catalog = """
        datasets:
          clean_customers:
            owner: data_engineering
            schema_version: 2.3.0
            freshness: 1h
          churn_features:
            owner: ml_engineering
        teams:
          data_engineering: {webhook: "https://chat.example/hooks/de"}
        """

    static let producer = """
        name: producer
        tasks:
          load:
            run: echo
            produces: [clean_customers]
        """

    static let consumer = """
        name: consumer
        triggers: [dataset.clean_customers.updated]
        tasks:
          train:
            run: echo
            requires:
              - dataset: clean_customers
                max_staleness: 2h
              - churn_features
        """

    @Test func aFolderWithACatalogAndPipelinesLoads() throws {
        let folder = try Folder()
        try folder.write("datasets.yaml", Self.catalog)
        try folder.write("producer.yaml", Self.producer)
        try folder.write("nested/consumer.yml", Self.consumer)
        let loaded = folder.load()
        #expect(loaded.issues.isEmpty, "\(loaded.issues.map(\.description))")
        #expect(loaded.filesRead == 3)
        #expect(loaded.pipelines.map(\.spec.name).sorted() == ["consumer", "producer"], "the catalog is not a pipeline")
        #expect(loaded.catalog.datasets.map(\.name) == ["clean_customers", "churn_features"])
        #expect(loaded.catalog.datasets.first?.freshness == 3600)
        #expect(loaded.catalog.datasets.first?.sourceFile?.hasSuffix("/datasets.yaml") == true)
        #expect(loaded.catalog.teams == [TeamSpec(name: "data_engineering", webhook: "https://chat.example/hooks/de")])
        let consumer = try #require(loaded.pipelines.first { $0.spec.name == "consumer" })
        #expect(consumer.spec.tasks.first?.requires.map(\.dataset) == ["clean_customers", "churn_features"])
        #expect(consumer.spec.triggers == [EventTriggerSpec(event: "dataset.clean_customers.updated")])
    }

    @Test func anUnknownDatasetIsReportedAgainstThePipelineFile() throws {
        let folder = try Folder()
        try folder.write("datasets.yaml", Self.catalog)
        try folder.write("producer.yaml", Self.producer)
        try folder.write(
            "consumer.yaml",
            """
            name: consumer
            tasks:
              train:
                run: echo
                requires:
                  - dataset: clean_customer
                    max_staleness: 2h
            """)
        let loaded = folder.load()
        let issue = try #require(loaded.errors.first, "\(loaded.issues)")
        #expect(loaded.errors.count == 1, "\(loaded.errors.map(\.description))")
        #expect(issue.file.hasSuffix("/consumer.yaml"))
        #expect(issue.line == 6)
        #expect(issue.column == 18)
        #expect(issue.field == "tasks.train.requires[0].dataset")
        #expect(issue.message == "unknown dataset 'clean_customer'")
        #expect(issue.fix == "did you mean 'clean_customers'? (or declare it under `datasets:`)")
        // One bad file never stops the others.
        #expect(loaded.pipelines.map(\.spec.name) == ["producer"])
    }

    @Test func producingAnUndeclaredDatasetWithoutAnyCatalogSaysWhereToDeclareIt() throws {
        let folder = try Folder()
        try folder.write("producer.yaml", Self.producer)
        let loaded = folder.load()
        let issue = try #require(loaded.errors.first)
        #expect(issue.file.hasSuffix("/producer.yaml"))
        #expect(issue.line == 5)
        #expect(issue.field == "tasks.load.produces")
        #expect(issue.fix == "declare it in a datasets file (a YAML file with `datasets:`) in the pipelines folder")
        #expect(loaded.pipelines.isEmpty)
    }

    @Test func aDatasetDeclaredInTwoCatalogFilesIsReportedOnce() throws {
        let folder = try Folder()
        try folder.write("a_datasets.yaml", Self.catalog)
        try folder.write(
            "b_more.yaml",
            """
            datasets:
              clean_customers:
                owner: someone_else
              raw_orders:
                owner: data_engineering
            """)
        try folder.write("producer.yaml", Self.producer)
        let loaded = folder.load()
        #expect(loaded.errors.count == 1, "\(loaded.errors.map(\.description))")
        let issue = try #require(loaded.errors.first)
        #expect(issue.file.hasSuffix("/b_more.yaml"))
        #expect(issue.field == "datasets.clean_customers")
        #expect(issue.message.hasPrefix("dataset 'clean_customers' is already declared in "))
        #expect(issue.message.hasSuffix("/a_datasets.yaml"))
        #expect(issue.fix == "declare it once")
        // The first declaration wins; the other file's other datasets still count.
        #expect(loaded.catalog.datasets.map(\.name) == ["clean_customers", "churn_features", "raw_orders"])
        #expect(loaded.catalog.datasets.first?.owner == "data_engineering")
        #expect(loaded.pipelines.map(\.spec.name) == ["producer"])
    }

    @Test func catalogProblemsAreReportedWithTheirFileAndLine() throws {
        let folder = try Folder()
        try folder.write(
            "datasets.yaml",
            """
            datasets:
              clean_customers:
                freshness: soon
                availability: 120%
            """)
        try folder.write("producer.yaml", Self.producer)
        let loaded = folder.load()
        #expect(loaded.errors.map(\.field) == ["datasets.clean_customers.freshness", "datasets.clean_customers.availability"])
        #expect(loaded.errors.map(\.line) == [3, 4])
        #expect(loaded.errors.allSatisfy { $0.file.hasSuffix("/datasets.yaml") })
        // The dataset itself is declared, so its producer still loads.
        #expect(loaded.pipelines.map(\.spec.name) == ["producer"])
    }

    @Test func aPipelineWithTasksIsNeverTakenForACatalog() throws {
        let folder = try Folder()
        try folder.write("datasets.yaml", Self.catalog)
        try folder.write(
            "odd.yaml", "name: odd\ndatasets: {x: {}}\ntasks:\n  a: {run: echo}\n")
        let loaded = folder.load()
        let issue = try #require(loaded.errors.first)
        #expect(issue.file.hasSuffix("/odd.yaml"))
        #expect(issue.message == "unknown pipeline key 'datasets'")
        #expect(loaded.catalog.datasets.map(\.name) == ["clean_customers", "churn_features"])
    }
}
