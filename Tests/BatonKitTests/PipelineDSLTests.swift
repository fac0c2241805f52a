import BatonCore
import Foundation
import Testing

@testable import BatonKit

struct Raw: Codable, Equatable {
    var path: String
    var rows: Int
}

struct Clean: Codable, Equatable {
    var rows: Int
    var region: String
}

/// The DSL produces the `PipelineSpec` a YAML file would, and its problems come back at the
/// Swift lines that caused them.
@Suite struct PipelineDSLTests {
    @Test func theDSLProducesTheExpectedSpec() throws {
        let start = Date(timeIntervalSince1970: 1_798_761_600)
        let pipeline = Pipeline(
            "customer_data_pipeline", schedule: .hourly, owner: "data_engineering", description: "Customer data",
            timezone: "Europe/Berlin", startDate: start, catchup: true, maxActiveRuns: 2,
            params: [Param("region", default: "eu", allowed: ["eu", "us"]), Param("limit", default: 0.5, description: "share")],
            triggers: [.event("crm.exported", filter: ["kind": ["full", "delta"]])]
        ) {
            Command("extract", "python3 extract.py --region {{ params.region }}")
                .retries(2, delay: .seconds(30), backoff: 3, maxDelay: .minutes(10))
                .timeout(.minutes(5))
                .env("DATA_DATE", "{{ ds }}")
                .pool("warehouse")
            Step("clean", needs: "extract") { context in
                let raw = try context.input("extract", as: Raw.self)
                return Clean(rows: raw.rows - 3, region: try context.param("region"))
            }
            .produces("clean_customers")
            .requires("raw_customers", maxStaleness: .hours(2), schema: ">=2 <3", onViolation: .wait, waitTimeout: .minutes(30))
            Command("notify", arguments: ["curl", "-d", "{{ tasks.clean.output.rows }}", "https://chat.example"])
                .needs("clean")
                .triggerRule(.allDone)
                .when("tasks.clean.output.rows > 0")
                .queue("io")
        }
        var extract = TaskSpec(
            name: "extract", command: .shell("python3 extract.py --region {{ params.region }}"), retries: 2,
            retryDelay: 30, retryBackoff: 3, maxRetryDelay: 600, timeout: 300)
        extract.env = [EnvEntry(name: "DATA_DATE", value: "{{ ds }}")]
        extract.pool = "warehouse"
        var clean = TaskSpec(
            name: "clean", command: .argv(["/opt/worker", "run-task", "customer_data_pipeline", "clean"]), needs: ["extract"])
        clean.queue = "customer_data_pipeline"
        clean.produces = ["clean_customers"]
        clean.requires = [
            DatasetRequirement(dataset: "raw_customers", maxStaleness: 7200, schema: ">=2 <3", onViolation: .wait, waitTimeout: 1800)
        ]
        var notify = TaskSpec(
            name: "notify", command: .argv(["curl", "-d", "{{ tasks.clean.output.rows }}", "https://chat.example"]),
            needs: ["clean"], triggerRule: .allDone, when: "tasks.clean.output.rows > 0")
        notify.queue = "io"
        var expected = PipelineSpec(
            name: "customer_data_pipeline", owner: "data_engineering", description: "Customer data",
            schedule: .cron("@hourly"), timezone: "Europe/Berlin", startDate: start, catchup: true, maxActiveRuns: 2,
            params: [
                ParamSpec(name: "region", defaultValue: "eu", type: .string, allowedValues: ["eu", "us"]),
                ParamSpec(name: "limit", defaultValue: 0.5, type: .number, description: "share"),
            ],
            tasks: [extract, clean, notify])
        expected.triggers = [EventTriggerSpec(event: "crm.exported", filter: ["kind": ["full", "delta"]])]
        let spec = pipeline.spec(executable: "/opt/worker")
        #expect(spec == expected)

        // The text Baton reads gives the same spec: what is validated is what runs.
        let described = try #require(pipeline.describe(executable: "/opt/worker").pipeline)
        let datasets: Set<String> = ["clean_customers", "raw_customers"]
        var parsed = try #require(PipelineParser.parse(described.spec, file: "x", datasets: datasets).spec)
        parsed.sourceFile = nil
        #expect(parsed == expected, "\(described.spec)")
        #expect(pipeline.validate(datasets: datasets).isEmpty, "\(pipeline.validate(datasets: datasets))")
    }

    @Test func buildersTakeConditionsLoopsAndDefaults() {
        let regions = ["eu", "us"]
        let withLoad = true
        let pipeline = Pipeline("9-regions") {
            for region in regions {
                Command("extract_\(region)", "echo \(region)")
            }
            if withLoad {
                Step("load", needs: "extract_eu", "extract_us") { _ in }
            } else {
                Command("skip", "true")
            }
        }
        let spec = pipeline.spec(executable: "/w")
        #expect(spec.tasks.map(\.name) == ["extract_eu", "extract_us", "load"])
        #expect(spec.schedule == ScheduleSpec.none)
        #expect(spec.tasks[0].queue == nil, "commands go to the default queue")
        // A queue name must start with a letter; the pipeline's name does not.
        #expect(spec.tasks[2].queue == "swift-9-regions")
        #expect(Worker(pipeline).queues == ["swift-9-regions"])
        #expect(Schedule.cron("0 6 * * *").spec == .cron("0 6 * * *"))
        let once: Schedule = "@once"
        #expect(once.spec == .once)
    }

    @Test func problemsAreReportedAtTheirSwiftLines() throws {
        let pipelineLine = #line + 1
        let pipeline = Pipeline("broken", schedule: "0 25 * * *") {
            Step("first") { _ in }
            Step("second", needs: "frist") { _ in }  // the line of the unknown need
            Command("echo", "echo {{ tasks.nothing.output.x }}")
            Step("third") { _ in }.queue("9 bad")
        }
        let issues = pipeline.validate()
        let file = #filePath
        #expect(issues.allSatisfy { $0.file == file }, "\(issues)")
        let cron = try #require(issues.first { $0.field == "schedule" })
        #expect(cron.line == pipelineLine)
        #expect(cron.message.contains("hour"), "\(cron)")
        let needs = try #require(issues.first { $0.field == "tasks.second.needs" })
        #expect(needs.line == pipelineLine + 2)
        #expect(needs.fix == "did you mean 'first'?")
        let template = try #require(issues.first { $0.field == "tasks.echo.run" })
        #expect(template.line == pipelineLine + 3)
        let queue = try #require(issues.first { $0.field == "tasks.third.queue" })
        #expect(queue.line == pipelineLine + 4)
        #expect(issues.count == 4, "\(issues.map(\.description).joined(separator: "\n"))")
    }

    @Test func aTaskDeclaredTwiceIsNamedWithBothPlaces() throws {
        let line = #line + 2
        let pipeline = Pipeline("twice") {
            Command("same", "true")
            Step("same") { _ in }
        }
        let issues = pipeline.validate()
        let issue = try #require(issues.first)
        #expect(issues.count == 1)
        #expect(issue.line == line + 1)
        #expect(issue.message.contains("declared twice") && issue.message.contains(":\(line)"), "\(issue)")
        let answer = Worker(pipeline, pipeline).describe(executable: "/w")
        #expect(answer.pipelines.isEmpty)
        #expect(answer.problems.map(\.message).contains { $0.contains("registered twice") })
    }

    @Test func describeAnswersWithTheLineBehindEverySpecLine() throws {
        let line = #line + 2
        let pipeline = Pipeline("lines") {
            Command("a", "true")
            Step("b", needs: "a") { _ in }
        }
        let answer = Worker(pipeline).describe(executable: "/opt/w")
        #expect(answer.protocol == SwiftDescribeAnswer.currentProtocol)
        let described = try #require(answer.pipelines.first)
        #expect(described.location.line == line - 1)
        let text = described.spec.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(text.count == described.lines.count)
        for (index, content) in text.enumerated() where content.contains("run-task") {
            #expect(described.lines[index].line == line + 1)
        }
        let encoded = try JSONEncoder().encode(answer)
        #expect(try JSONDecoder().decode(SwiftDescribeAnswer.self, from: encoded) == answer)
    }
}
