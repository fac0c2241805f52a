import Foundation
import Testing

@testable import BatonCore

private let file = "pipelines/demo.yaml"

private func parse(_ yaml: String) -> PipelineParser.Outcome {
    PipelineParser.parse(yaml, file: file)
}

/// The only error of `yaml`, failing the test when there is none or more than one.
private func onlyError(_ yaml: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> ValidationIssue {
    let outcome = parse(yaml)
    #expect(outcome.spec == nil, "a file with errors must not yield a spec", sourceLocation: sourceLocation)
    #expect(outcome.errors.count == 1, "\(outcome.errors.map(\.description))", sourceLocation: sourceLocation)
    return try #require(outcome.errors.first, sourceLocation: sourceLocation)
}

private func at(_ text: String) -> Date {
    guard let date = try? Date(text, strategy: .iso8601) else { fatalError("bad test date \(text)") }
    return date
}

// MARK: - A valid pipeline

@Suite struct PipelineParserValidTests {
    static let full = """
        name: churn_model
        owner: ml-team
        description: Trains and deploys the churn model
        schedule: "0 6 * * 1-5"
        timezone: Europe/Berlin
        start_date: 2026-01-01
        catchup: true
        max_active_runs: 3
        params:
          region: eu
          epochs: 3
          learning_rate: 0.01
          dry_run: false
          features: [age, plan]
          model:
            default: gbm
            type: string
            enum: [gbm, linear]
            description: Which model family to train
          threshold:
            type: number
            default: 0.9
        tasks:
          extract:
            run: python3 extract.py --region {{ params.region }} --day {{ ds }}
            env:
              REGION: "{{ params.region }}"
              LOG_LEVEL: debug
            workdir: scripts
            retries: 3
            retry_delay: 30s
            retry_backoff: 1.5
            max_retry_delay: 1h30m
            timeout: 2h
            description: Pulls yesterday's data
          train:
            run: [python3, train.py, --epochs, "{{ params.epochs }}"]
            needs: extract
            timeout: 500ms
          evaluate:
            run: python3 evaluate.py
            needs: [train]
          deploy:
            run: ./deploy.sh {{ tasks.evaluate.output.model_path }}
            needs: [evaluate]
            when: tasks.evaluate.output.accuracy >= params.threshold and not params.dry_run
          rollback:
            run: ./rollback.sh
            needs: [deploy]
            trigger_rule: one_failed
          report: echo done
          notify:
            run: echo notify
            needs: [deploy, rollback]
            trigger_rule: all_done
            when: true
        """

    @Test func fullPipelineParsesIntoTheExpectedSpec() throws {
        let outcome = parse(Self.full)
        #expect(outcome.issues.isEmpty, "\(outcome.issues.map(\.description))")
        let spec = try #require(outcome.spec)
        #expect(spec.name == "churn_model")
        #expect(spec.owner == "ml-team")
        #expect(spec.description == "Trains and deploys the churn model")
        #expect(spec.schedule == .cron("0 6 * * 1-5"))
        #expect(spec.timezone == "Europe/Berlin")
        // A date without offset is midnight in the pipeline's time zone (CET is UTC+1 in January).
        #expect(spec.startDate == at("2025-12-31T23:00:00Z"))
        #expect(spec.catchup == true)
        #expect(spec.maxActiveRuns == 3)
        #expect(spec.sourceFile == file)
        #expect(spec.tasks.map(\.name) == ["extract", "train", "evaluate", "deploy", "rollback", "report", "notify"])
    }

    @Test func paramsInShortAndLongForm() throws {
        let spec = try #require(parse(Self.full).spec)
        #expect(spec.params.map(\.name) == ["region", "epochs", "learning_rate", "dry_run", "features", "model", "threshold"])
        #expect(spec.param(named: "region") == ParamSpec(name: "region", defaultValue: "eu", type: .string))
        #expect(spec.param(named: "epochs") == ParamSpec(name: "epochs", defaultValue: 3, type: .integer))
        #expect(spec.param(named: "learning_rate") == ParamSpec(name: "learning_rate", defaultValue: 0.01, type: .number))
        #expect(spec.param(named: "dry_run") == ParamSpec(name: "dry_run", defaultValue: false, type: .boolean))
        #expect(spec.param(named: "features") == ParamSpec(name: "features", defaultValue: ["age", "plan"], type: .array))
        #expect(
            spec.param(named: "model")
                == ParamSpec(
                    name: "model", defaultValue: "gbm", type: .string, description: "Which model family to train",
                    allowedValues: ["gbm", "linear"]))
        #expect(spec.param(named: "threshold") == ParamSpec(name: "threshold", defaultValue: 0.9, type: .number))
        #expect(
            spec.resolvedParams(["region": "us"])
                == [
                    "region": "us", "epochs": 3, "learning_rate": 0.01, "dry_run": false, "features": ["age", "plan"],
                    "model": "gbm", "threshold": 0.9,
                ])
    }

    @Test func taskKeys() throws {
        let spec = try #require(parse(Self.full).spec)
        let extract = try #require(spec.task(named: "extract"))
        #expect(extract.command == .shell("python3 extract.py --region {{ params.region }} --day {{ ds }}"))
        #expect(extract.env == [EnvEntry(name: "REGION", value: "{{ params.region }}"), EnvEntry(name: "LOG_LEVEL", value: "debug")])
        #expect(extract.workdir == "scripts")
        #expect(extract.needs == [])
        #expect(extract.retries == 3)
        #expect(extract.retryDelay == 30)
        #expect(extract.retryBackoff == 1.5)
        #expect(extract.maxRetryDelay == 5400)
        #expect(extract.timeout == 7200)
        #expect(extract.triggerRule == .allSuccess)
        #expect(extract.when == nil)

        let train = try #require(spec.task(named: "train"))
        #expect(train.command == .argv(["python3", "train.py", "--epochs", "{{ params.epochs }}"]))
        #expect(train.needs == ["extract"], "a single name is shorthand for a one-element list")
        #expect(train.timeout == 0.5)

        let evaluate = try #require(spec.task(named: "evaluate"))
        #expect(evaluate.needs == ["train"])

        let deploy = try #require(spec.task(named: "deploy"))
        #expect(deploy.when == "tasks.evaluate.output.accuracy >= params.threshold and not params.dry_run")

        let rollback = try #require(spec.task(named: "rollback"))
        #expect(rollback.triggerRule == .oneFailed)

        // `name: command` is shorthand for `name: {run: command}` with all defaults.
        let report = try #require(spec.task(named: "report"))
        #expect(report == TaskSpec(name: "report", command: .shell("echo done")))
        #expect(report.retries == 0)
        #expect(report.retryDelay == TaskSpec.defaultRetryDelay)
        #expect(report.retryBackoff == TaskSpec.defaultRetryBackoff)
        #expect(report.maxRetryDelay == TaskSpec.defaultMaxRetryDelay)
        #expect(report.timeout == nil)

        let notify = try #require(spec.task(named: "notify"))
        #expect(notify.triggerRule == .allDone)
        #expect(notify.needs == ["deploy", "rollback"])
        #expect(notify.when == "true")
    }

    @Test func minimalPipelineTakesItsNameFromTheFileAndDefaults() throws {
        let outcome = PipelineParser.parse("tasks:\n  hello: echo hello\n", file: "/srv/pipelines/nightly_etl.yaml")
        #expect(outcome.issues.isEmpty)
        let spec = try #require(outcome.spec)
        #expect(spec.name == "nightly_etl")
        #expect(spec.schedule == ScheduleSpec.none)
        #expect(spec.timezone == "UTC")
        #expect(spec.startDate == nil)
        #expect(spec.catchup == false)
        #expect(spec.maxActiveRuns == PipelineSpec.defaultMaxActiveRuns)
        #expect(spec.params.isEmpty)
        #expect(spec.tasks == [TaskSpec(name: "hello", command: .shell("echo hello"))])
    }

    @Test(arguments: [
        ("@once", ScheduleSpec.once), ("none", .none), ("@daily", .cron("@daily")), ("*/15 * * * *", .cron("*/15 * * * *")),
    ])
    func scheduleForms(text: String, expected: ScheduleSpec) throws {
        let spec = try #require(parse("name: p\nschedule: \"\(text)\"\ntasks:\n  a: echo\n").spec)
        #expect(spec.schedule == expected)
    }

    @Test(arguments: [
        ("2026-03-01T06:30:00Z", "2026-03-01T06:30:00Z"), ("2026-03-01T06:30:00+02:00", "2026-03-01T04:30:00Z"),
        ("2026-03-01T06:30:00", "2026-03-01T11:30:00Z"), ("2026-03-01 06:30", "2026-03-01T11:30:00Z"),
        ("2026-03-01", "2026-03-01T05:00:00Z"),
    ])
    func startDateForms(text: String, expected: String) throws {
        let yaml = "name: p\ntimezone: America/New_York\nstart_date: \"\(text)\"\ntasks:\n  a: echo\n"
        let spec = try #require(parse(yaml).spec)
        #expect(spec.startDate == at(expected))
    }

    @Test func allTriggerRulesAreAccepted() throws {
        var yaml = "name: p\ntasks:\n  root: echo\n"
        for rule in TriggerRule.allCases {
            yaml += "  t_\(rule.rawValue):\n    run: echo\n    needs: root\n    trigger_rule: \(rule.rawValue)\n"
        }
        let spec = try #require(parse(yaml).spec)
        for rule in TriggerRule.allCases {
            #expect(spec.task(named: "t_\(rule.rawValue)")?.triggerRule == rule)
        }
    }

    @Test func templatesMayReadUpstreamOutputsTransitivelyAndRunVariables() throws {
        let yaml = """
            name: p
            tasks:
              a: echo start
              b:
                run: echo {{ tasks.a.output.rows }}
                needs: a
              c:
                run: echo {{ tasks.a.output.rows }} {{ tasks.b.output.x }} {{ run_id }} {{ logical_date }} {{ data_interval_start }} {{ data_interval_end }} {{ pipeline }} {{ task }} {{ attempt }} {{ ts }}
                env:
                  ROWS: "{{ tasks.a.output.rows }}"
                needs: b
                when: "{{ tasks.a.output.rows > 0 }}"
            """
        let outcome = parse(yaml)
        #expect(outcome.issues.isEmpty, "\(outcome.issues.map(\.description))")
        #expect(outcome.spec != nil)
    }
}

// MARK: - Errors

@Suite struct PipelineParserErrorTests {
    @Test func yamlSyntaxError() throws {
        let issue = try onlyError("name: p\ntasks:\n\tbuild: echo\n")
        #expect(issue.file == file)
        #expect(issue.line == 3)
        #expect(issue.column == 1)
        #expect(issue.message.hasPrefix("YAML syntax error"))
        #expect(issue.fix?.contains("tabs") == true)
    }

    @Test func unclosedFlowMappingIsASyntaxError() throws {
        let issue = try onlyError("name: p\ntasks:\n  a: {run: echo\n")
        #expect(issue.message.hasPrefix("YAML syntax error"))
        #expect(issue.line >= 3)
    }

    @Test(arguments: ["", "\n\n", "# only a comment\n"])
    func emptyFile(text: String) throws {
        let issue = try onlyError(text)
        #expect(issue.message == "the file is empty")
        #expect(issue.file == file)
        #expect(issue.line == 0, "the problem concerns the whole file")
        #expect(issue.fix != nil)
        #expect(issue.description.hasPrefix("\(file): error: the file is empty"))
    }

    @Test(arguments: ["- a\n- b\n", "just text\n", "42\n"])
    func topLevelMustBeAMapping(text: String) throws {
        let issue = try onlyError(text)
        #expect(issue.message.contains("must be a mapping"))
        #expect(issue.line == 1)
        #expect(issue.column == 1)
        #expect(issue.fix == "start the file with `name: my_pipeline`")
    }

    @Test func missingTasks() throws {
        let issue = try onlyError("name: p\nschedule: \"@daily\"\n")
        #expect(issue.field == "tasks")
        #expect(issue.message.contains("no `tasks`"))
    }

    @Test func tasksAsAListOrEmpty() throws {
        let list = try onlyError("name: p\ntasks:\n  - a\n  - b\n")
        #expect(list.field == "tasks")
        #expect(list.line == 3)
        #expect(list.fix?.contains("not a list") == true)

        let empty = try onlyError("name: p\ntasks: {}\n")
        #expect(empty.field == "tasks")
        #expect(empty.message == "the pipeline has no tasks")
    }

    @Test func unknownPipelineKeySuggestsTheClosest() throws {
        let issue = try onlyError("name: p\nschedul: \"@daily\"\ntasks:\n  a: echo\n")
        #expect(issue.line == 2)
        #expect(issue.column == 1)
        #expect(issue.field == nil)
        #expect(issue.message == "unknown pipeline key 'schedul'")
        #expect(issue.value == "schedul")
        #expect(issue.fix == "did you mean 'schedule'?")
        #expect(issue.description == "\(file):2:1: error: unknown pipeline key 'schedul'\n    fix: did you mean 'schedule'?")
    }

    @Test func unknownKeyFarFromAnyListsTheValidKeys() throws {
        let issue = try onlyError("name: p\nxyzzy: 1\ntasks:\n  a: echo\n")
        #expect(issue.fix?.hasPrefix("valid values: name, owner") == true)
    }

    @Test func unknownTaskKeySuggestsTheClosest() throws {
        let yaml = """
            name: p
            tasks:
              train:
                run: python3 train.py
                retires: 3
            """
        let issue = try onlyError(yaml)
        #expect(issue.line == 5)
        #expect(issue.column == 5)
        #expect(issue.field == "tasks.train")
        #expect(issue.message == "unknown task key 'retires'")
        #expect(issue.value == "retires")
        #expect(issue.fix == "did you mean 'retries'?")
    }

    @Test func unknownParamKeyAndType() throws {
        let yaml = """
            name: p
            params:
              model:
                default: gbm
                typ: string
              size:
                type: integr
                default: 3
            tasks:
              a: echo
            """
        let outcome = parse(yaml)
        #expect(outcome.spec == nil)
        let key = try #require(outcome.errors.first { $0.field == "params.model" })
        #expect(key.line == 5)
        #expect(key.fix == "did you mean 'type'?")
        let type = try #require(outcome.errors.first { $0.field == "params.size.type" })
        #expect(type.line == 7)
        #expect(type.value == "integr")
        #expect(type.fix == "did you mean 'integer'?")
    }

    @Test func paramDefaultMustMatchItsTypeAndEnum() throws {
        let yaml = """
            name: p
            params:
              epochs:
                type: integer
                default: many
              region:
                default: asia
                enum: [eu, us]
            tasks:
              a: echo
            """
        let outcome = parse(yaml)
        #expect(outcome.spec == nil)
        let epochs = try #require(outcome.errors.first { $0.field == "params.epochs.default" })
        #expect(epochs.line == 5)
        #expect(epochs.message.contains("expected integer"))
        let region = try #require(outcome.errors.first { $0.field == "params.region.default" })
        #expect(region.line == 7)
        #expect(region.message.contains("is not one of \"eu\", \"us\""))
    }

    @Test func cronHourOutOfRange() throws {
        let issue = try onlyError("name: p\nschedule: \"0 25 * * *\"\ntasks:\n  a: echo\n")
        #expect(issue.line == 2)
        #expect(issue.column == 11)
        #expect(issue.field == "schedule")
        #expect(issue.message.contains("hour"))
        #expect(issue.message.contains("25"))
        #expect(issue.value == "25")
        #expect(issue.fix?.contains("0 and 23") == true)
    }

    @Test func cronDayOfWeekAndFieldCount() throws {
        let dayOfWeek = try onlyError("name: p\nschedule: 0 0 * * 9\ntasks:\n  a: echo\n")
        #expect(dayOfWeek.message.contains("day-of-week"))
        #expect(dayOfWeek.value == "9")

        let count = try onlyError("name: p\nschedule: \"0 0 * *\"\ntasks:\n  a: echo\n")
        #expect(count.message.contains("expected 5 fields"))
        #expect(count.value == "0 0 * *")
        #expect(count.fix != nil)
    }

    @Test func unknownTimeZoneSuggestsTheClosest() throws {
        let issue = try onlyError("name: p\ntimezone: America/New_Yrok\ntasks:\n  a: echo\n")
        #expect(issue.line == 2)
        #expect(issue.column == 11)
        #expect(issue.field == "timezone")
        #expect(issue.message == "unknown time zone 'America/New_Yrok'")
        #expect(issue.value == "America/New_Yrok")
        #expect(issue.fix == "did you mean 'America/New_York'?")
    }

    @Test func unknownTimeZoneFarFromAnyGivesExamples() throws {
        let issue = try onlyError("name: p\ntimezone: Mars/Olympus_Mons_Base\ntasks:\n  a: echo\n")
        #expect(issue.fix?.contains("IANA") == true)
    }

    @Test func badStartDate() throws {
        let issue = try onlyError("name: p\nstart_date: yesterday\ntasks:\n  a: echo\n")
        #expect(issue.line == 2)
        #expect(issue.field == "start_date")
        #expect(issue.value == "yesterday")
        #expect(issue.fix?.contains("2026-01-31") == true)
    }

    @Test func unknownTaskInNeeds() throws {
        let yaml = """
            name: p
            tasks:
              extract: echo
              train:
                run: echo
                needs: [extrct]
            """
        let issue = try onlyError(yaml)
        #expect(issue.line == 6)
        #expect(issue.column == 12)
        #expect(issue.field == "tasks.train.needs")
        #expect(issue.message == "unknown task 'extrct' in needs")
        #expect(issue.value == "extrct")
        #expect(issue.fix == "did you mean 'extract'?")
    }

    @Test func unknownTaskInNeedsOfTheOnlyTaskStillGivesAFix() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    needs: b\n")
        #expect(issue.value == "b")
        let fix = try #require(issue.fix)
        #expect(fix.contains("'b'"), "the fix must say something, not an empty list: \(fix)")
    }

    @Test func selfDependency() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    needs: [a]\n")
        #expect(issue.line == 5)
        #expect(issue.field == "tasks.a.needs")
        #expect(issue.message == "task 'a' needs itself")
        #expect(issue.fix == "remove 'a' from its own needs")
    }

    @Test func cyclePrintsItsPath() throws {
        let yaml = """
            name: p
            tasks:
              a:
                run: echo
                needs: c
              b:
                run: echo
                needs: a
              c:
                run: echo
                needs: b
            """
        let issue = try onlyError(yaml)
        #expect(issue.message == "dependency cycle: a -> b -> c -> a")
        #expect(issue.field == "tasks")
        #expect(issue.line == 5, "reported at the `needs` of the cycle's first task")
        #expect(issue.fix?.contains("DAG") == true)
    }

    @Test func twoTaskCycle() throws {
        let issue = try onlyError("name: p\ntasks:\n  x:\n    run: echo\n    needs: y\n  y:\n    run: echo\n    needs: x\n")
        #expect(issue.message == "dependency cycle: x -> y -> x")
    }

    @Test func selfDependencyDoesNotHideACycleElsewhere() throws {
        let yaml = """
            name: p
            tasks:
              solo:
                run: echo
                needs: solo
              a:
                run: echo
                needs: c
              b:
                run: echo
                needs: a
              c:
                run: echo
                needs: b
            """
        let outcome = parse(yaml)
        #expect(outcome.spec == nil)
        #expect(outcome.errors.map(\.message) == ["task 'solo' needs itself", "dependency cycle: a -> b -> c -> a"])
    }

    @Test func templateWithUnknownParam() throws {
        let yaml = """
            name: p
            params:
              region: eu
            tasks:
              extract: echo {{ params.regon }}
            """
        let issue = try onlyError(yaml)
        #expect(issue.line == 5)
        #expect(issue.column == 12)
        #expect(issue.field == "tasks.extract.run")
        #expect(issue.message == "unknown param 'regon' in 'params.regon'")
        #expect(issue.value == "params.regon")
        #expect(issue.fix == "did you mean 'region'? or declare it under `params:`")
    }

    @Test func templateWithParamWhenNoneAreDeclared() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    env:\n      X: \"{{ params.nope }}\"\n")
        #expect(issue.field == "tasks.a.env.X")
        #expect(issue.line == 6, "env values are located at the env mapping, which starts at its first entry")
        #expect(issue.fix == "declare it under `params:` with a default value")
    }

    @Test func templateWithUnknownTask() throws {
        let yaml = """
            name: p
            tasks:
              train: echo
              deploy:
                run: [deploy, "{{ tasks.trian.output.path }}"]
                needs: train
            """
        let issue = try onlyError(yaml)
        #expect(issue.line == 5)
        #expect(issue.field == "tasks.deploy.run")
        #expect(issue.message == "unknown task 'trian' in 'tasks.trian.output.path'")
        #expect(issue.value == "tasks.trian.output.path")
        #expect(issue.fix == "did you mean 'train'?")
    }

    @Test func templateReadingATaskThatIsNotUpstream() throws {
        let yaml = """
            name: p
            tasks:
              train: echo
              evaluate: echo
              deploy:
                run: ./deploy.sh {{ tasks.evaluate.output.path }}
                needs: train
            """
        let issue = try onlyError(yaml)
        #expect(issue.line == 6)
        #expect(issue.column == 10)
        #expect(issue.field == "tasks.deploy.run")
        #expect(issue.message == "task 'deploy' reads the output of 'evaluate', which is not upstream of it")
        #expect(issue.value == "tasks.evaluate.output.path")
        #expect(issue.fix == "add 'evaluate' to the `needs` of 'deploy'")
    }

    @Test func templateReadingSomethingOtherThanOutput() throws {
        let issue = try onlyError("name: p\ntasks:\n  a: echo\n  b:\n    run: echo {{ tasks.a.result.x }}\n    needs: a\n")
        #expect(issue.message.contains("must read the task's output"))
        #expect(issue.fix == "write tasks.a.output.result.x")
    }

    @Test func templateWithUnknownVariable() throws {
        let issue = try onlyError("name: p\ntasks:\n  a: echo {{ logical_dat }}\n")
        #expect(issue.line == 3)
        #expect(issue.field == "tasks.a.run")
        #expect(issue.message == "unknown template variable 'logical_dat' in 'logical_dat'")
        #expect(issue.value == "logical_dat")
        #expect(issue.fix == "did you mean 'logical_date'?")
    }

    @Test func templateSyntaxError() throws {
        let issue = try onlyError("name: p\ntasks:\n  a: echo {{ params. }}\n")
        #expect(issue.field == "tasks.a.run")
        #expect(issue.value == "echo {{ params. }}")
        #expect(issue.fix != nil)
    }

    @Test func badWhenSyntaxPointsAtTheSpot() throws {
        let yaml = """
            name: p
            params:
              x: 1
            tasks:
              a:
                run: echo
                when: params.x ==
            """
        let issue = try onlyError(yaml)
        #expect(issue.line == 7)
        // `params.x ==` starts in column 11 and the operand is missing at its end, 11 characters on.
        #expect(issue.column == 22)
        #expect(issue.field == "tasks.a.when")
        #expect(issue.value == "params.x ==")
        #expect(issue.message.contains("after '=='"))
        #expect(issue.fix != nil)
    }

    @Test func badWhenSyntaxInAQuotedValuePointsAtTheSpot() throws {
        let yaml = "name: p\nparams:\n  x: 1\ntasks:\n  a:\n    run: echo\n    when: \"params.x ==\"\n"
        let issue = try onlyError(yaml)
        #expect(issue.line == 7)
        // The quote is in column 11, `params.x ==` starts in column 12 and ends 11 characters on.
        #expect(issue.column == 23)
    }

    @Test func whenWithUnknownReference() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    when: params.deploy\n")
        #expect(issue.field == "tasks.a.when")
        #expect(issue.message == "unknown param 'deploy' in 'params.deploy'")
    }

    @Test func retriesMustBeAWholeNumber() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    retries: two\n")
        #expect(issue.line == 5)
        #expect(issue.column == 14)
        #expect(issue.field == "tasks.a.retries")
        #expect(issue.message == "expected a whole number, found 'two'")
        #expect(issue.value == "two")
        #expect(issue.fix != nil)
    }

    @Test func negativeRetries() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    retries: -1\n")
        #expect(issue.field == "tasks.a.retries")
        #expect(issue.message == "-1 is below the minimum 0")
        #expect(issue.value == "-1")
        #expect(issue.fix == "use 0 or more")
    }

    @Test func catchupMustBeABoolean() throws {
        let issue = try onlyError("name: p\ncatchup: maybe\ntasks:\n  a: echo\n")
        #expect(issue.line == 2)
        #expect(issue.column == 10)
        #expect(issue.field == "catchup")
        #expect(issue.value == "maybe")
        #expect(issue.fix == "write true or false")
    }

    @Test func timeoutMustBePositive() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    timeout: 0\n")
        #expect(issue.line == 5)
        #expect(issue.column == 14)
        #expect(issue.field == "tasks.a.timeout")
        #expect(issue.message == "a timeout must be longer than zero")
        #expect(issue.value == "0")
        #expect(issue.fix != nil)
    }

    @Test func retryDelayMustBeADuration() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    retry_delay: soon\n")
        #expect(issue.line == 5)
        #expect(issue.column == 18)
        #expect(issue.field == "tasks.a.retry_delay")
        #expect(issue.message.contains("'soon' is not a duration"))
        #expect(issue.value == "soon")
        #expect(issue.fix?.contains("30s") == true)
    }

    @Test func otherBadNumbers() throws {
        let yaml = """
            name: p
            max_active_runs: 0
            tasks:
              a:
                run: echo
                retry_backoff: 0.5
                max_retry_delay: -5s
                trigger_rule: all_sucess
            """
        let outcome = parse(yaml)
        #expect(outcome.spec == nil)
        #expect(outcome.errors.map(\.field) == ["max_active_runs", "tasks.a.retry_backoff", "tasks.a.max_retry_delay", "tasks.a.trigger_rule"])
        #expect(outcome.errors.map(\.line) == [2, 6, 7, 8])
        #expect(outcome.errors.last?.fix == "did you mean 'all_success'?")
    }

    @Test(arguments: ["1abc", "bad name", "a.b", "_ok_but/slash", "ünïcode"])
    func invalidTaskNames(name: String) throws {
        let issue = try onlyError("name: p\ntasks:\n  good: echo\n  \"\(name)\": echo\n")
        #expect(issue.line == 4)
        #expect(issue.column == 3)
        #expect(issue.field == "tasks")
        #expect(issue.message == "task name '\(name)' is not valid")
        #expect(issue.value == name)
        #expect(issue.fix?.contains("starting with a letter") == true)
    }

    @Test(arguments: ["extract", "Train_2", "_private", "load-warehouse"])
    func validTaskNames(name: String) {
        #expect(parse("name: p\ntasks:\n  \(name): echo\n").spec?.tasks.map(\.name) == [name])
    }

    @Test func invalidPipelineName() throws {
        let issue = try onlyError("name: \"my pipeline!\"\ntasks:\n  a: echo\n")
        #expect(issue.line == 1)
        #expect(issue.column == 7)
        #expect(issue.field == "name")
        #expect(issue.value == "my pipeline!")
    }

    @Test func emptyCommandAndMissingRun() throws {
        let outcome = parse("name: p\ntasks:\n  a:\n    run: \"  \"\n  b:\n    needs: a\n")
        #expect(outcome.spec == nil)
        #expect(outcome.errors.map(\.field) == ["tasks.a.run", "tasks.b"])
        #expect(outcome.errors.map(\.message) == ["the command is empty", "task 'b' has no `run`"])
    }

    @Test func badEnvironmentName() throws {
        let issue = try onlyError("name: p\ntasks:\n  a:\n    run: echo\n    env:\n      BAD-NAME: x\n")
        #expect(issue.line == 6)
        #expect(issue.column == 7)
        #expect(issue.field == "tasks.a.env")
    }

    @Test func severalErrorsAreAllReported() throws {
        let yaml = """
            name: p
            schedul: "@daily"
            timezone: Europe/Berlim
            catchup: maybe
            tasks:
              extract:
                run: echo {{ params.region }}
                retires: 2
              train:
                run: echo
                needs: [extrct]
                retries: two
                timeout: 0
              "9lives": echo
            """
        let outcome = parse(yaml)
        #expect(outcome.spec == nil)
        let summary = Set(outcome.errors.map { "\($0.line):\($0.field ?? "-")" })
        #expect(
            summary == [
                "2:-", "3:timezone", "4:catchup", "8:tasks.extract", "7:tasks.extract.run", "11:tasks.train.needs",
                "12:tasks.train.retries", "13:tasks.train.timeout", "14:tasks",
            ], "\(outcome.errors.map(\.description))")
        #expect(outcome.errors.allSatisfy { $0.file == file && $0.severity == .error && $0.line > 0 && $0.column > 0 })
    }

    @Test func specIsNilExactlyWhenThereAreErrors() {
        #expect(parse("name: p\ntasks:\n  a: echo\n").spec != nil)
        #expect(parse("name: p\ntasks:\n  a:\n    run: echo\n    retries: -3\n").spec == nil)
        #expect(parse("name: p\ntasks:\n  a:\n    run: echo\n    retries: -3\n").errors.count == 1)
    }
}

// MARK: - Suggestions

@Suite struct SuggestTests {
    @Test(arguments: [
        ("schedul", "schedule"), ("retires", "retries"), ("trian", "train"), ("laod", "load"), ("Neds", "needs"),
    ])
    func typosFindTheIntendedWord(typo: String, intended: String) {
        let words = ["schedule", "retries", "train", "load", "needs", "timeout"]
        #expect(Suggest.closest(to: typo, in: words) == intended)
    }

    @Test func unrelatedWordsFindNothing() {
        #expect(Suggest.closest(to: "xyz", in: ["train", "load"]) == nil)
        #expect(Suggest.closest(to: "a", in: ["b"]) == nil, "replacing the whole word is not a typo")
        #expect(Suggest.hint(for: "xyz", in: ["train", "load"]) == "valid values: train, load")
        #expect(Suggest.hint(for: "lod", in: ["train", "load"]) == "did you mean 'load'?")
    }

    @Test func editDistanceCountsASwapOfNeighboursAsOneEdit() {
        #expect(Suggest.editDistance("trian", "train") == 1)
        #expect(Suggest.editDistance("abc", "abc") == 0)
        #expect(Suggest.editDistance("", "abc") == 3)
        #expect(Suggest.editDistance("kitten", "sitting") == 3)
        #expect(Suggest.editDistance("ca", "abc") == 3, "optimal string alignment edits no substring twice")
    }
}
