import Foundation
import Testing

@testable import BatonCore

// Hand-offs in pipeline and catalog files: `triggers`, `produces`, `requires`, catalog files
// with `datasets:` and `teams:`, version ranges and trigger filters.

private let file = "pipelines/handoff.yaml"
private let catalogFile = "pipelines/datasets.yaml"
private let known: Set<String> = ["clean_customers", "churn_features"]

private func parse(_ yaml: String, datasets: Set<String>? = nil) -> PipelineParser.Outcome {
    PipelineParser.parse(yaml, file: file, datasets: datasets)
}

/// The only error of a pipeline file, failing the test when there is none or more than one.
private func onlyError(
    _ yaml: String, datasets: Set<String>? = nil, sourceLocation: SourceLocation = #_sourceLocation
) throws -> ValidationIssue {
    let outcome = parse(yaml, datasets: datasets)
    #expect(outcome.spec == nil, "a file with errors must not yield a spec", sourceLocation: sourceLocation)
    #expect(outcome.errors.count == 1, "\(outcome.errors.map(\.description))", sourceLocation: sourceLocation)
    return try #require(outcome.errors.first, sourceLocation: sourceLocation)
}

/// A spec that must parse without errors.
private func spec(
    _ yaml: String, datasets: Set<String>? = nil, sourceLocation: SourceLocation = #_sourceLocation
) throws -> PipelineSpec {
    let outcome = parse(yaml, datasets: datasets)
    #expect(outcome.errors.isEmpty, "\(outcome.errors.map(\.description))", sourceLocation: sourceLocation)
    return try #require(outcome.spec, sourceLocation: sourceLocation)
}

/// The only issue of a catalog file.
private func onlyCatalogIssue(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ValidationIssue {
    let outcome = PipelineParser.parseCatalog(yaml, file: catalogFile)
    #expect(outcome.issues.count == 1, "\(outcome.issues.map(\.description))", sourceLocation: sourceLocation)
    return try #require(outcome.issues.first, sourceLocation: sourceLocation)
}

private func version(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> SchemaVersion {
    try #require(SchemaVersion(text), "'\(text)' should be a version", sourceLocation: sourceLocation)
}

/// Groups the hand-off parser suites under one name (`swift test --filter HandoffParserTests`).
@Suite struct HandoffParserTests {}

// MARK: - triggers

extension HandoffParserTests {
    @Suite struct Triggers {
        @Test func stringAndMappingForms() throws {
            let parsed = try spec(
                """
                name: train
                triggers:
                  - data.customers.updated
                  - event: dataset.clean_customers.updated
                  - event: data.orders.updated
                    filter:
                      region: [eu, us]
                      record_count: 1000
                      customer.tier: gold
                      full: true
                tasks:
                  fit:
                    run: echo {{ event.payload.record_count }}
                """)
            #expect(parsed.triggers.count == 3)
            #expect(parsed.triggers[0] == EventTriggerSpec(event: "data.customers.updated"))
            #expect(parsed.triggers[1] == EventTriggerSpec(event: "dataset.clean_customers.updated"))
            #expect(parsed.triggers[2].event == "data.orders.updated")
            #expect(
                parsed.triggers[2].filter == [
                    "region": ["eu", "us"], "record_count": 1000, "customer.tier": "gold", "full": true,
                ])
        }

        @Test func flowListOfNamesAndNoTriggers() throws {
            let parsed = try spec("name: p\ntriggers: [a.b, \"c:d\", e-f_g]\ntasks:\n  a: echo\n")
            #expect(parsed.triggers.map(\.event) == ["a.b", "c:d", "e-f_g"])
            #expect(parsed.triggers.allSatisfy { $0.filter.isEmpty })
            #expect(try spec("name: p\ntasks:\n  a: echo\n").triggers.isEmpty)
        }

        @Test func quotedFilterValuesStayText() throws {
            let parsed = try spec(
                """
                name: p
                triggers:
                  - event: x
                    filter: {version: "2", flag: "true", plain: 2}
                tasks:
                  a: echo
                """)
            #expect(parsed.triggers[0].filter == ["version": "2", "flag": "true", "plain": 2])
        }

        @Test func triggersMustBeAList() throws {
            let issue = try onlyError("name: p\ntriggers: data.customers.updated\ntasks:\n  a: echo\n")
            #expect(issue.field == "triggers")
            #expect(issue.line == 2)
            #expect(issue.message == "`triggers` must be a list")
            #expect(issue.fix?.contains("triggers: [{event: data.customers.updated}]") == true)

            let mapping = try onlyError("name: p\ntriggers: {event: x}\ntasks:\n  a: echo\n")
            #expect(mapping.field == "triggers")
        }

        @Test func eachTriggerIsANameOrAMapping() throws {
            let issue = try onlyError("name: p\ntriggers:\n  - [a, b]\ntasks:\n  a: echo\n")
            #expect(issue.field == "triggers[0]")
            #expect(issue.line == 3)
            #expect(issue.message.contains("event name or a mapping with `event`"))
        }

        @Test func aTriggerNeedsAnEvent() throws {
            let missing = try onlyError("name: p\ntriggers:\n  - filter: {region: eu}\ntasks:\n  a: echo\n")
            #expect(missing.field == "triggers[0]")
            #expect(missing.line == 3)
            #expect(missing.message == "the trigger names no `event`")
            #expect(missing.fix == "add `event: data.customers.updated`")

            let empty = try onlyError("name: p\ntriggers:\n  - {event: \"\"}\ntasks:\n  a: echo\n")
            #expect(empty.field == "triggers[0]")

            let notText = parse("name: p\ntriggers:\n  - event: [a]\ntasks:\n  a: echo\n")
            #expect(notText.spec == nil)
            #expect(
                notText.errors.contains { $0.field == "triggers[0].event" && $0.message == "expected text, found a list" },
                "\(notText.errors.map(\.description))")
        }

        /// No event can be published with an empty name or one with spaces, so a trigger on such a
        /// name would never fire: validation says so instead of accepting it silently.
        @Test func triggerEventNamesFollowThePublishingRules() throws {
            let empty = try onlyError("name: p\ntriggers: [\"\"]\ntasks:\n  a: echo\n")
            #expect(empty.field == "triggers[0]")
            #expect(empty.line == 2)

            let spaced = try onlyError("name: p\ntriggers:\n  - data customers updated\ntasks:\n  a: echo\n")
            #expect(spaced.field == "triggers[0]")
            #expect(spaced.line == 3)
            #expect(spaced.value == "data customers updated")
            #expect(spaced.message.contains("data customers updated"))

            let mapped = try onlyError("name: p\ntriggers:\n  - event: data/customers\ntasks:\n  a: echo\n")
            #expect(mapped.field == "triggers[0].event")
            #expect(mapped.line == 3)
            #expect(mapped.column == 12)
        }

        @Test func unknownTriggerKeySuggestsTheClosest() throws {
            let issue = try onlyError("name: p\ntriggers:\n  - event: x\n    filtr: {a: 1}\ntasks:\n  a: echo\n")
            #expect(issue.field == "triggers[0]")
            #expect(issue.line == 4)
            #expect(issue.column == 5)
            #expect(issue.message == "unknown trigger key 'filtr'")
            #expect(issue.fix == "did you mean 'filter'?")
        }

        @Test func filterMustBeAMapping() throws {
            for filter in ["[eu, us]", "eu"] {
                let issue = try onlyError("name: p\ntriggers:\n  - event: x\n    filter: \(filter)\ntasks:\n  a: echo\n")
                #expect(issue.field == "triggers[0].filter")
                #expect(issue.line == 4)
                #expect(issue.message == "`filter` must map payload fields to values")
                #expect(issue.fix == "write `filter: {region: eu}`")
            }
        }

        @Test func eventTemplatesAreAllowed() throws {
            let parsed = try spec(
                """
                name: p
                triggers: [x]
                tasks:
                  a:
                    run: echo {{ event.payload.rows }} {{ event.id }}
                    env: {NAME: "{{ event.name }}"}
                """)
            #expect(parsed.tasks.first?.env == [EnvEntry(name: "NAME", value: "{{ event.name }}")])
        }
    }
}

// MARK: - produces and requires

extension HandoffParserTests {
    @Suite struct DatasetContracts {
        @Test func producesAsANameOrAList() throws {
            let single = try spec("name: p\ntasks:\n  load:\n    run: echo\n    produces: clean_customers\n", datasets: known)
            #expect(single.tasks[0].produces == ["clean_customers"])
            let list = try spec(
                "name: p\ntasks:\n  load:\n    run: echo\n    produces: [clean_customers, churn_features]\n", datasets: known)
            #expect(list.tasks[0].produces == ["clean_customers", "churn_features"])
            // Without a catalog (parsing one file alone) dataset names are not checked.
            let unchecked = try spec("name: p\ntasks:\n  load:\n    run: echo\n    produces: [anything]\n")
            #expect(unchecked.tasks[0].produces == ["anything"])
        }

        @Test func producesMustBeNames() throws {
            for value in ["{clean_customers: 1}", "[[clean_customers]]", "[clean_customers, {a: 1}]"] {
                let issue = try onlyError("name: p\ntasks:\n  load:\n    run: echo\n    produces: \(value)\n")
                #expect(issue.field == "tasks.load.produces", "\(value)")
                #expect(issue.line == 5)
                #expect(issue.message == "`produces` must be a dataset name or a list of them")
                #expect(issue.fix == "write `produces: [clean_customers]`")
            }
        }

        @Test func unknownProducedDatasetSuggestsTheClosest() throws {
            let issue = try onlyError(
                "name: p\ntasks:\n  load:\n    run: echo\n    produces: [clean_customer]\n", datasets: known)
            #expect(issue.field == "tasks.load.produces")
            #expect(issue.line == 5)
            #expect(issue.message == "unknown dataset 'clean_customer'")
            #expect(issue.value == "clean_customer")
            #expect(issue.fix == "did you mean 'clean_customers'? (or declare it under `datasets:`)")
        }

        /// In a block list the error points at the unknown name's own line, not the list's first item.
        @Test func unknownProducedDatasetInABlockListPointsAtItsLine() throws {
            let yaml = """
                name: p
                tasks:
                  load:
                    run: echo
                    produces:
                      - clean_customers
                      - churn_featurs
                """
            let issue = try onlyError(yaml, datasets: known)
            #expect(issue.field == "tasks.load.produces")
            #expect(issue.line == 7)
            #expect(issue.column == 9)
            #expect(issue.fix == "did you mean 'churn_features'? (or declare it under `datasets:`)")
        }

        @Test func unknownDatasetWithNoCatalogSaysWhereToDeclareIt() throws {
            let issue = try onlyError("name: p\ntasks:\n  load:\n    run: echo\n    produces: [x]\n", datasets: [])
            #expect(issue.message == "unknown dataset 'x'")
            #expect(issue.fix == "declare it in a datasets file (a YAML file with `datasets:`) in the pipelines folder")
        }

        @Test func unknownDatasetFarFromAnyListsTheDeclaredOnes() throws {
            let issue = try onlyError("name: p\ntasks:\n  load:\n    run: echo\n    produces: [zzz]\n", datasets: known)
            #expect(issue.fix == "valid values: churn_features, clean_customers (or declare it under `datasets:`)")
        }

        @Test func requirementsInShortAndFullForm() throws {
            let parsed = try spec(
                """
                name: p
                tasks:
                  train:
                    run: echo
                    requires:
                      - churn_features
                      - dataset: clean_customers
                        max_staleness: 2h
                        schema: ">=2.0 <3"
                        on_violation: wait
                        wait_timeout: 30m
                      - {dataset: clean_customers, on_violation: skip}
                """, datasets: known)
            let requires = parsed.tasks[0].requires
            #expect(requires.count == 3)
            #expect(requires[0] == DatasetRequirement(dataset: "churn_features"))
            #expect(requires[0].onViolation == .fail)
            #expect(requires[0].maxStaleness == nil, "defaults to the dataset's own freshness SLA")
            #expect(requires[0].waitTimeout == DatasetRequirement.defaultWaitTimeout)
            #expect(
                requires[1]
                    == DatasetRequirement(
                        dataset: "clean_customers", maxStaleness: 7200, schema: ">=2.0 <3", onViolation: .wait, waitTimeout: 1800))
            #expect(requires[2].onViolation == .skip)
        }

        @Test func requiresMustBeAList() throws {
            for value in ["clean_customers", "{dataset: clean_customers}"] {
                let issue = try onlyError("name: p\ntasks:\n  train:\n    run: echo\n    requires: \(value)\n")
                #expect(issue.field == "tasks.train.requires", "\(value)")
                #expect(issue.line == 5)
                #expect(issue.message == "`requires` must be a list of datasets")
                #expect(issue.fix == "write `requires: [{dataset: clean_customers, max_staleness: 2h}]`")
            }
        }

        @Test func requirementShapes() throws {
            let list = try onlyError("name: p\ntasks:\n  train:\n    run: echo\n    requires: [[a]]\n")
            #expect(list.field == "tasks.train.requires[0]")
            #expect(list.message == "each requirement is a dataset name or a mapping with `dataset`")

            let noDataset = try onlyError("name: p\ntasks:\n  train:\n    run: echo\n    requires: [{max_staleness: 2h}]\n")
            #expect(noDataset.field == "tasks.train.requires[0]")
            #expect(noDataset.message == "the requirement names no `dataset`")
            #expect(noDataset.fix == "add `dataset: NAME`")
        }

        @Test func unknownRequiredDatasetSuggestsTheClosest() throws {
            let yaml = """
                name: p
                tasks:
                  train:
                    run: echo
                    requires:
                      - dataset: clean_custmers
                        max_staleness: 2h
                      - churn_feature
                """
            let outcome = parse(yaml, datasets: known)
            #expect(outcome.spec == nil)
            #expect(outcome.errors.count == 2, "\(outcome.errors.map(\.description))")
            let first = try #require(outcome.errors.first { $0.field == "tasks.train.requires[0].dataset" })
            #expect(first.line == 6)
            #expect(first.column == 18)
            #expect(first.message == "unknown dataset 'clean_custmers'")
            #expect(first.fix == "did you mean 'clean_customers'? (or declare it under `datasets:`)")
            let second = try #require(outcome.errors.first { $0.field == "tasks.train.requires[1]" })
            #expect(second.line == 8)
            #expect(second.fix == "did you mean 'churn_features'? (or declare it under `datasets:`)")
        }

        @Test func badMaxStaleness() throws {
            let issue = try onlyError(
                "name: p\ntasks:\n  train:\n    run: echo\n    requires:\n      - {dataset: clean_customers, max_staleness: soon}\n",
                datasets: known)
            #expect(issue.field == "tasks.train.requires[0].max_staleness")
            #expect(issue.line == 6)
            #expect(issue.value == "soon")
            #expect(issue.message.contains("'soon' is not a duration"))
            #expect(issue.fix == "write a number with a unit, like 500ms, 30s, 5m, 1h30m or 2d")

            let list = try onlyError(
                "name: p\ntasks:\n  train:\n    run: echo\n    requires:\n      - {dataset: clean_customers, wait_timeout: [1]}\n")
            #expect(list.field == "tasks.train.requires[0].wait_timeout")
            #expect(list.message.contains("expected a duration"))
        }

        @Test func badVersionRange() throws {
            let yaml = """
                name: p
                tasks:
                  train:
                    run: echo
                    requires:
                      - dataset: clean_customers
                        schema: ">=two"
                """
            let issue = try onlyError(yaml, datasets: known)
            #expect(issue.field == "tasks.train.requires[0].schema")
            #expect(issue.line == 7)
            #expect(issue.column == 17)
            #expect(issue.value == ">=two")
            #expect(issue.message.hasPrefix("'>=two' is not a version range ('two' is not a version)"))
            #expect(issue.fix == "write a range such as \">=2.0 <3\", \"^2.3\" or \"2.x\"")
        }

        @Test func unknownViolationPolicySuggestsTheClosest() throws {
            let issue = try onlyError(
                "name: p\ntasks:\n  train:\n    run: echo\n    requires:\n      - {dataset: clean_customers, on_violation: fial}\n")
            #expect(issue.field == "tasks.train.requires[0].on_violation")
            #expect(issue.line == 6)
            #expect(issue.message == "unknown policy 'fial'")
            #expect(issue.value == "fial")
            #expect(issue.fix == "did you mean 'fail'?")

            let far = try onlyError(
                "name: p\ntasks:\n  train:\n    run: echo\n    requires:\n      - {dataset: clean_customers, on_violation: explode}\n")
            #expect(far.fix == "valid values: fail, skip, wait")
        }

        @Test func unknownRequirementKeySuggestsTheClosest() throws {
            let yaml = """
                name: p
                tasks:
                  train:
                    run: echo
                    requires:
                      - dataset: clean_customers
                        max_stalenes: 2h
                """
            let issue = try onlyError(yaml)
            #expect(issue.field == "tasks.train.requires[0]")
            #expect(issue.line == 7)
            #expect(issue.column == 9)
            #expect(issue.message == "unknown requirement key 'max_stalenes'")
            #expect(issue.fix == "did you mean 'max_staleness'?")
        }

        @Test func misspelledTaskKeysSuggestTheHandoffKeys() throws {
            let produces = try onlyError("name: p\ntasks:\n  load:\n    run: echo\n    produce: [a]\n")
            #expect(produces.fix == "did you mean 'produces'?")
            let requires = try onlyError("name: p\ntasks:\n  load:\n    run: echo\n    require: [a]\n")
            #expect(requires.fix == "did you mean 'requires'?")
            let triggers = try onlyError("name: p\ntrigers: [a]\ntasks:\n  load: echo\n")
            #expect(triggers.fix == "did you mean 'triggers'?")
        }
    }
}

// MARK: - catalog files

extension HandoffParserTests {
    @Suite struct Catalogs {
        static let valid = """
            datasets:
              clean_customers:
                owner: data_engineering
                description: Customers after cleaning
                schema_version: 2.3.0
                freshness: 1h
                availability: 99.9%
                webhook: https://chat.example/hooks/customers
              churn_features:
                owner: ml_engineering
                freshness: 30m
                availability: 0.95
              raw_events:
            teams:
              data_engineering:
                webhook: https://chat.example/hooks/de
              ml_engineering: {}
            """

        @Test func validDatasetsAndTeams() throws {
            let outcome = PipelineParser.parseCatalog(Self.valid, file: catalogFile)
            #expect(outcome.issues.isEmpty, "\(outcome.issues.map(\.description))")
            let datasets = Dictionary(uniqueKeysWithValues: outcome.catalog.datasets.map { ($0.name, $0) })
            #expect(outcome.catalog.datasets.map(\.name) == ["clean_customers", "churn_features", "raw_events"])
            #expect(
                datasets["clean_customers"]
                    == DatasetSpec(
                        name: "clean_customers", owner: "data_engineering", description: "Customers after cleaning",
                        schemaVersion: "2.3.0", freshness: 3600, availability: datasets["clean_customers"]?.availability,
                        webhook: "https://chat.example/hooks/customers", sourceFile: catalogFile))
            #expect(abs((datasets["clean_customers"]?.availability ?? 0) - 0.999) < 1e-12)
            #expect(datasets["churn_features"]?.freshness == 1800)
            #expect(datasets["churn_features"]?.availability == 0.95)
            #expect(datasets["churn_features"]?.schemaVersion == nil)
            #expect(datasets["raw_events"] == DatasetSpec(name: "raw_events", sourceFile: catalogFile), "a bare name declares a dataset")
            #expect(
                outcome.catalog.teams == [
                    TeamSpec(name: "data_engineering", webhook: "https://chat.example/hooks/de"), TeamSpec(name: "ml_engineering"),
                ])
        }

        @Test func badFreshness() throws {
            let issue = try onlyCatalogIssue("datasets:\n  clean_customers:\n    freshness: soon\n")
            #expect(issue.file == catalogFile)
            #expect(issue.line == 3)
            #expect(issue.column == 16)
            #expect(issue.field == "datasets.clean_customers.freshness")
            #expect(issue.value == "soon")
            #expect(issue.message.contains("'soon' is not a duration"))
        }

        @Test(arguments: ["120%", "-5%", "95", "high", "%"])
        func badAvailability(value: String) throws {
            let issue = try onlyCatalogIssue("datasets:\n  clean_customers:\n    owner: de\n    availability: \"\(value)\"\n")
            #expect(issue.line == 4)
            #expect(issue.field == "datasets.clean_customers.availability")
            #expect(issue.value == value)
            #expect(issue.message == "'\(value)' is not a percentage")
            #expect(issue.fix == "write a target such as 99.9%")
        }

        @Test(arguments: [("100%", 1.0), ("0%", 0.0), ("99.95%", 0.9995), ("1", 1.0), ("0.5", 0.5)])
        func goodAvailability(value: String, expected: Double) throws {
            let outcome = PipelineParser.parseCatalog("datasets:\n  d:\n    availability: \"\(value)\"\n", file: catalogFile)
            #expect(outcome.issues.isEmpty)
            #expect(abs((outcome.catalog.datasets.first?.availability ?? -1) - expected) < 1e-12)
        }

        @Test func badSchemaVersion() throws {
            let issue = try onlyCatalogIssue("datasets:\n  clean_customers:\n    schema_version: two\n")
            #expect(issue.line == 3)
            #expect(issue.field == "datasets.clean_customers.schema_version")
            #expect(issue.value == "two")
            #expect(issue.message == "'two' is not a version like 2.3.0")
            for text in ["1.2.3.4", "v2", "2..3"] {
                let other = try onlyCatalogIssue("datasets:\n  d:\n    schema_version: \"\(text)\"\n")
                #expect(other.field == "datasets.d.schema_version", "\(text)")
            }
            // A YAML number is read as the version it spells.
            let number = PipelineParser.parseCatalog("datasets:\n  d:\n    schema_version: 2.3\n", file: catalogFile)
            #expect(number.issues.isEmpty)
            #expect(number.catalog.datasets.first?.schemaVersion == "2.3")
        }

        @Test func badWebhook() throws {
            for url in ["not a url", "ftp://chat.example/hook", "chat.example/hook"] {
                let issue = try onlyCatalogIssue("datasets:\n  clean_customers:\n    webhook: \"\(url)\"\n")
                #expect(issue.line == 3, "\(url)")
                #expect(issue.field == "datasets.clean_customers.webhook")
                #expect(issue.value == url)
                #expect(issue.message == "'\(url)' is not an http(s) URL")
            }
            let team = try onlyCatalogIssue("teams:\n  data_engineering:\n    webhook: ftp://x\n")
            #expect(team.line == 3)
            #expect(team.field == "teams.data_engineering")
            #expect(team.message.contains("'webhook'"))
        }

        @Test func unknownKeysSuggestTheClosest() throws {
            let dataset = try onlyCatalogIssue("datasets:\n  clean_customers:\n    owner: de\n    freshnes: 1h\n")
            #expect(dataset.line == 4)
            #expect(dataset.column == 5)
            #expect(dataset.field == "datasets.clean_customers")
            #expect(dataset.message == "unknown dataset key 'freshnes'")
            #expect(dataset.value == "freshnes")
            #expect(dataset.fix == "did you mean 'freshness'?")

            let top = try onlyCatalogIssue("datasets:\n  a: {}\nteam:\n  de: {}\n")
            #expect(top.line == 3)
            #expect(top.column == 1)
            #expect(top.message == "unknown catalog key 'team'")
            #expect(top.fix == "did you mean 'teams'?")

            let team = try onlyCatalogIssue("teams:\n  de:\n    webhok: https://x.example\n")
            #expect(team.line == 3)
            #expect(team.field == "teams.de")
            #expect(team.fix == "did you mean 'webhook'?")
        }

        @Test func badShapes() throws {
            let list = try onlyCatalogIssue("datasets:\n  - clean_customers\n")
            #expect(list.line == 2)
            #expect(list.field == "datasets")
            #expect(list.message == "`datasets` must map dataset names to their contracts")

            let scalar = try onlyCatalogIssue("datasets:\n  clean_customers: fresh\n")
            #expect(scalar.line == 2)
            #expect(scalar.field == "datasets.clean_customers")

            let name = try onlyCatalogIssue("datasets:\n  bad name!: {owner: x}\n")
            #expect(name.line == 2)
            #expect(name.field == "datasets")
            #expect(name.message == "'bad name!' is not a valid dataset name")

            let teams = try onlyCatalogIssue("teams: [de]\n")
            #expect(teams.field == "teams")
        }

        @Test func severalProblemsAreAllReported() {
            let outcome = PipelineParser.parseCatalog(
                """
                datasets:
                  a:
                    freshness: soon
                    availability: 120%
                    schema_version: x
                    webhook: nope
                    color: blue
                """, file: catalogFile)
            #expect(
                outcome.issues.map(\.field) == [
                    "datasets.a.freshness", "datasets.a.availability", "datasets.a.schema_version", "datasets.a.webhook",
                    "datasets.a",
                ])
            #expect(outcome.issues.map(\.line) == [3, 4, 5, 6, 7])
            #expect(outcome.issues.allSatisfy { $0.severity == .error && $0.file == catalogFile })
        }

        @Test func yamlSyntaxErrorHasALine() throws {
            let issue = try onlyCatalogIssue("datasets:\n  a: {owner: x\n")
            #expect(issue.line >= 2)
            #expect(issue.message.hasPrefix("YAML syntax error"))
        }

        @Test func isCatalogDecidesByTheTopLevelKeys() {
            #expect(PipelineParser.isCatalog("datasets:\n  a: {}\n"))
            #expect(PipelineParser.isCatalog("teams:\n  de: {}\n"))
            #expect(PipelineParser.isCatalog(Self.valid))
            #expect(!PipelineParser.isCatalog("name: p\ntasks:\n  a: echo\n"))
            // A file with tasks is a pipeline, even with `datasets:` (which is then an unknown key).
            #expect(!PipelineParser.isCatalog("datasets:\n  a: {}\ntasks:\n  a: echo\n"))
            #expect(!PipelineParser.isCatalog(""))
            #expect(!PipelineParser.isCatalog("- datasets\n"))
            #expect(!PipelineParser.isCatalog("datasets: [unclosed\n"))
        }
    }
}

// MARK: - versions

extension HandoffParserTests {
    @Suite struct VersionRanges {
        @Test(arguments: [
            (">=2.0 <3", ["2.0.0", "2.3.0", "2.99.99"], ["1.9.9", "3.0.0", "3.1"]),
            ("^2.3", ["2.3.0", "2.3.7", "2.9.0"], ["2.2.9", "3.0.0", "1.0"]),
            ("~2.3", ["2.3.0", "2.3.9"], ["2.4.0", "2.2.0", "3.3.0"]),
            ("2.x", ["2.0.0", "2.5.1"], ["1.9.9", "3.0.0"]),
            ("2.3.x", ["2.3.0", "2.3.12"], ["2.4.0", "2.2.9"]),
            ("2.*", ["2.0", "2.9"], ["3.0"]),
            ("=2.3.0", ["2.3.0", "2.3"], ["2.3.1", "2.2.9"]),
            ("2.3", ["2.3.0"], ["2.3.1", "2.4"]),
            (">2.3 <=2.5", ["2.3.1", "2.5.0"], ["2.3.0", "2.5.1"]),
            ("  >=1   <2  ", ["1.0.0", "1.9.9"], ["2.0.0", "0.9"]),
        ])
        func contains(range text: String, inside: [String], outside: [String]) throws {
            let range = try VersionRange(text)
            #expect(range.description == text)
            for item in inside { #expect(range.contains(try version(item)), "\(text) should contain \(item)") }
            for item in outside { #expect(!range.contains(try version(item)), "\(text) should not contain \(item)") }
        }

        @Test(arguments: [
            (">=two", "'two' is not a version"),
            ("", "it is empty"),
            ("   ", "it is empty"),
            ("^x", "'x' is not a version"),
            ("~", "'' is not a version"),
            ("x.x", "'x' is not a version"),
            ("2.3.4.5", "'2.3.4.5' is not a version"),
            (">= 2.0", "'' is not a version"),
            ("v2", "'v2' is not a version"),
            ("2.0 || 3.0", "'||' is not a version"),
        ])
        func parseErrors(text: String, problem: String) {
            #expect {
                _ = try VersionRange(text)
            } throws: { error in
                guard let error = error as? VersionRange.ParseError else { return false }
                return error.text == text && error.problem == problem
                    && error.description == "'\(text)' is not a version range (\(problem)); write e.g. \">=2.0 <3\", \"^2.3\" or \"2.x\""
            }
        }

        @Test func schemaVersionsCompareNumerically() throws {
            #expect(try version("2") == version("2.0.0"))
            #expect(try version("2.3") == version("2.3.0"))
            #expect(try version("2.9.0") < version("2.10.0"))
            #expect(try version("1.2.3") < version("1.10"))
            #expect(try version("0.9.9") < version("1"))
            #expect(try version("1.0.1") > version("1.0.0"))
            #expect(try [version("3"), version("1.10"), version("1.2.3"), version("1.2")].sorted().map(\.description) == [
                "1.2.0", "1.2.3", "1.10.0", "3.0.0",
            ])
            #expect(try version(" 2.3 ").description == "2.3.0")
            for bad in ["", "a", "1.2.3.4", "-1", "1..2", "1.", ".1", "1.a"] {
                #expect(SchemaVersion(bad) == nil, "'\(bad)'")
            }
        }
    }
}

// MARK: - trigger filters

extension HandoffParserTests {
    @Suite struct TriggerFilters {
        @Test func theNameMustBeEqual() {
            let trigger = EventTriggerSpec(event: "data.customers.updated")
            #expect(trigger.matches(name: "data.customers.updated", payload: [:]))
            #expect(trigger.matches(name: "data.customers.updated", payload: ["anything": 1]))
            #expect(!trigger.matches(name: "data.customers.update", payload: [:]))
            #expect(!trigger.matches(name: "DATA.customers.updated", payload: [:]))
            #expect(!trigger.matches(name: "data.customers.updated.extra", payload: [:]))
        }

        @Test func aListAcceptsAnyOfItsValues() {
            let trigger = EventTriggerSpec(event: "e", filter: ["region": ["eu", "us"]])
            #expect(trigger.matches(name: "e", payload: ["region": "eu"]))
            #expect(trigger.matches(name: "e", payload: ["region": "us"]))
            #expect(!trigger.matches(name: "e", payload: ["region": "apac"]))
            #expect(!trigger.matches(name: "e", payload: [:]), "a missing field matches no value")
            #expect(!trigger.matches(name: "e", payload: ["region": ["eu"]]))
        }

        @Test func nestedPathsAndArrayIndexes() {
            let trigger = EventTriggerSpec(event: "e", filter: ["customer.address.country": "DE", "items.0.kind": "order"])
            let payload: JSONValue = [
                "customer": ["address": ["country": "DE"]], "items": [["kind": "order"], ["kind": "refund"]],
            ]
            #expect(trigger.matches(name: "e", payload: payload))
            #expect(
                !trigger.matches(
                    name: "e", payload: ["customer": ["address": ["country": "FR"]], "items": [["kind": "order"]]]))
            #expect(!trigger.matches(name: "e", payload: ["customer": ["address": "DE"], "items": [["kind": "order"]]]))
            #expect(!trigger.matches(name: "e", payload: ["customer": ["address": ["country": "DE"]], "items": []]))
        }

        @Test func looseEqualityBetweenNumbersTextAndBooleans() {
            let counted = EventTriggerSpec(event: "e", filter: ["count": 1000])
            #expect(counted.matches(name: "e", payload: ["count": 1000]))
            #expect(counted.matches(name: "e", payload: ["count": 1000.0]))
            #expect(counted.matches(name: "e", payload: ["count": "1000"]))
            #expect(!counted.matches(name: "e", payload: ["count": 999]))
            #expect(!counted.matches(name: "e", payload: ["count": "many"]))

            let flagged = EventTriggerSpec(event: "e", filter: ["full": true])
            #expect(flagged.matches(name: "e", payload: ["full": true]))
            #expect(flagged.matches(name: "e", payload: ["full": "true"]))
            #expect(!flagged.matches(name: "e", payload: ["full": false]))
            #expect(!flagged.matches(name: "e", payload: ["full": 1]))

            let versions = EventTriggerSpec(event: "e", filter: ["version": ["2", 3]])
            #expect(versions.matches(name: "e", payload: ["version": 2]))
            #expect(versions.matches(name: "e", payload: ["version": "3"]))
            #expect(!versions.matches(name: "e", payload: ["version": 4]))
        }

        @Test func everyFilterMustMatch() {
            let trigger = EventTriggerSpec(event: "e", filter: ["region": ["eu", "us"], "tier": "gold"])
            #expect(trigger.matches(name: "e", payload: ["region": "eu", "tier": "gold", "extra": 1]))
            #expect(!trigger.matches(name: "e", payload: ["region": "eu", "tier": "silver"]))
            #expect(!trigger.matches(name: "e", payload: ["region": "apac", "tier": "gold"]))
        }

        @Test func aNullFilterMatchesAMissingField() {
            let trigger = EventTriggerSpec(event: "e", filter: ["deleted": nil])
            #expect(trigger.matches(name: "e", payload: [:]))
            #expect(trigger.matches(name: "e", payload: ["deleted": nil]))
            #expect(!trigger.matches(name: "e", payload: ["deleted": true]))
        }

        @Test func filtersFromAParsedFileMatchAsWritten() throws {
            let parsed = try spec(
                """
                name: p
                triggers:
                  - event: data.customers.updated
                    filter: {region: [eu, us], customer.tier: gold, record_count: 1000}
                tasks:
                  a: echo
                """)
            let trigger = try #require(parsed.triggers.first)
            #expect(
                trigger.matches(
                    name: "data.customers.updated", payload: ["region": "us", "customer": ["tier": "gold"], "record_count": "1000"]))
            #expect(!trigger.matches(name: "data.customers.updated", payload: ["region": "us", "customer": ["tier": "gold"]]))
        }
    }
}
