import Foundation
import Testing

@testable import BatonCore

/// `SpecText` writes a spec back as pipeline-file text; reading that text must give the same
/// spec, or pipelines built in code would be validated as something other than what runs.
@Suite struct SpecTextTests {
    static func roundTrip(_ spec: PipelineSpec) throws -> PipelineSpec {
        let rendered = SpecText.render(spec)
        let outcome = PipelineParser.parse(rendered.text, file: "generated.json")
        #expect(outcome.issues.isEmpty, "\(outcome.issues.map(\.description))\n\(rendered.text)")
        var again = try #require(outcome.spec, "\(rendered.text)")
        again.sourceFile = spec.sourceFile
        return again
    }

    @Test func everyFieldOfAYAMLPipelineSurvivesTheTrip() throws {
        let yaml = """
            name: churn_model
            owner: ml-team
            description: "Trains: the \\"churn\\" model"
            schedule: "0 6 * * 1-5"
            timezone: Europe/Berlin
            start_date: 2026-01-01T06:30:00
            catchup: true
            max_active_runs: 3
            params:
              region: eu
              epochs: 3
              rate: 0.00001
              big: 1e100
              flags: [1, "two", null, true]
              nested: {a: {b: [1.5]}}
              threshold: {default: 0.6, type: number, description: Minimum score, enum: [0.5, 0.6]}
              optional: {type: string}
            triggers:
              - event: data.customers.updated
                filter: {region: [eu, us], "payload.kind": full}
              - crm.exported
            tasks:
              extract:
                run: python3 extract.py --region {{ params.region }}
                env: {DATA_DATE: "{{ ds }}", PLAIN: x}
                workdir: ..
                retries: 2
                retry_delay: 1.5s
                retry_backoff: 3
                max_retry_delay: 10m
                timeout: 250ms
                queue: gpu
                pool: warehouse
                produces: [raw_customers]
              train:
                run: [python3, train.py, "{{ tasks.extract.output.path }}"]
                needs: [extract]
                trigger_rule: none_failed
                when: tasks.extract.output.rows > 0 and params.region in ["eu", "us"]
                requires:
                  - {dataset: raw_customers, max_staleness: 2h, schema: ">=2.0 <3", on_violation: wait, wait_timeout: 30m}
                  - other_data
            """
        let datasets: Set<String> = ["raw_customers", "other_data"]
        let spec = try #require(PipelineParser.parse(yaml, file: "churn.yaml", datasets: datasets).spec)
        let rendered = SpecText.render(spec)
        let outcome = PipelineParser.parse(rendered.text, file: "generated.json", datasets: datasets)
        #expect(outcome.issues.isEmpty, "\(outcome.issues.map(\.description))\n\(rendered.text)")
        var again = try #require(outcome.spec)
        again.sourceFile = spec.sourceFile
        #expect(again == spec, "\(rendered.text)")
    }

    @Test func textThatYAMLTreatsSpeciallyStaysExact() throws {
        // Line and paragraph separators, NEL and BOM are line breaks or markers to YAML; quotes,
        // backslashes, tabs, control characters and emoji must come back byte for byte.
        let tricky = "a\u{2028}b\u{2029}c\u{85}d\u{FEFF}e \"q\" \\ \t 🚀 é\n# not a comment\u{7}: - [x]"
        var task = TaskSpec(name: "echo", command: .argv(["printf", "%s", tricky]))
        task.env = [EnvEntry(name: "VALUE", value: tricky)]
        let spec = PipelineSpec(
            name: "tricky", description: tricky + " {{ braces are plain text here }}",
            params: [ParamSpec(name: "text", defaultValue: .string(tricky), type: .string)],
            tasks: [task, TaskSpec(name: "shell", command: .shell("echo done"), needs: ["echo"])])
        #expect(try Self.roundTrip(spec) == spec)
    }

    @Test func linesAreOwnedByTheTaskTheyDescribe() throws {
        let spec = PipelineSpec(
            name: "owners", tasks: [
                TaskSpec(name: "a", command: .shell("true"), retries: 1),
                TaskSpec(name: "b", command: .shell("true"), needs: ["missing"]),
            ])
        let rendered = SpecText.render(spec)
        let lines = rendered.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == rendered.owners.count)
        let outcome = PipelineParser.parse(rendered.text, file: "generated.json")
        let issue = try #require(outcome.errors.first)
        #expect(issue.field == "tasks.b.needs")
        #expect(rendered.owners[issue.line - 1] == "b", "\(rendered.text)")
        #expect(rendered.owners.first == .some(nil))
    }

    @Test func numbersAreWrittenSoYAMLReadsThemAsNumbers() {
        #expect(SpecText.number(3) == "3")
        #expect(SpecText.number(0.5) == "0.5")
        #expect(SpecText.number(1e-5) == "1.0e-05")
        #expect(SpecText.number(1e100) == "1.0e+100")
        #expect(SpecText.number(-2) == "-2")
    }
}

@Suite struct SwiftManifestTests {
    @Test func aManifestNamesTheExecutableRelativeToItsFolder() throws {
        let (manifest, issues) = SwiftManifest.parse(
            "executable: ../.build/debug/customer-worker\ntimeout: 1m\n", file: "pipelines/customer.baton-swift.yaml")
        #expect(issues.isEmpty)
        let parsed = try #require(manifest)
        #expect(parsed.timeout == 60)
        #expect(parsed.executablePath(manifest: "/srv/app/pipelines/customer.baton-swift.yaml") == "/srv/app/.build/debug/customer-worker")
        #expect(SwiftManifest.isManifest("/x/Customer.BATON-SWIFT.yaml"))
        #expect(!SwiftManifest.isManifest("/x/customer.yaml"))
    }

    @Test func problemsAreLocatedWithAFix() {
        let (manifest, issues) = SwiftManifest.parse("executabel: worker\ntimeout: soon\n", file: "m.baton-swift.yaml")
        #expect(manifest == nil)
        #expect(issues.map(\.line) == [1, 1, 2], "\(issues)")
        #expect(issues[0].fix == "did you mean 'executable'?")
        #expect(issues[1].message.contains("no `executable`"))
        #expect(issues[2].field == "timeout")
        let empty = SwiftManifest.parse("", file: "m.baton-swift.yaml")
        #expect(empty.issues.first?.message == "the manifest is empty")
    }
}
