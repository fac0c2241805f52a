import Testing

@testable import BatonCore

private func param(_ type: ParamType, allowed: [JSONValue]? = nil, name: String = "p") -> ParamSpec {
    ParamSpec(name: name, defaultValue: nil, type: type, allowedValues: allowed)
}

private func coerceFailure(_ text: String, _ spec: ParamSpec) -> ParamValidation.Failure? {
    do {
        _ = try ParamValidation.coerce(text, for: spec)
        return nil
    } catch {
        return error
    }
}

private func checkFailure(_ value: JSONValue, _ spec: ParamSpec) -> ParamValidation.Failure? {
    do {
        _ = try ParamValidation.check(value, against: spec)
        return nil
    } catch {
        return error
    }
}

private let pipeline = PipelineSpec(
    name: "churn",
    params: [
        ParamSpec(name: "region", defaultValue: "eu", type: .string, allowedValues: ["eu", "us"]),
        ParamSpec(name: "epochs", defaultValue: 3, type: .integer),
        ParamSpec(name: "dry_run", defaultValue: false, type: .boolean),
        ParamSpec(name: "notes", defaultValue: nil, type: .any),
    ],
    tasks: [TaskSpec(name: "a", command: .shell("echo"))])

@Suite struct ParamCoercionTests {
    @Test(arguments: [("42", 42.0), ("-3", -3), ("0", 0)])
    func integers(text: String, expected: Double) throws {
        #expect(try ParamValidation.coerce(text, for: param(.integer)) == .number(expected))
    }

    @Test(arguments: ["4.5", "abc", "", "1e3", "3 "])
    func notIntegers(text: String) throws {
        let failure = try #require(coerceFailure(text, param(.integer, name: "epochs")))
        #expect(failure.param == "epochs")
        #expect(failure.message == "expected a whole number, got '\(text)'")
        #expect(failure.description == "param 'epochs': expected a whole number, got '\(text)'")
    }

    @Test(arguments: [("0.25", 0.25), ("3", 3), ("-1.5", -1.5), ("1e3", 1000)])
    func numbers(text: String, expected: Double) throws {
        #expect(try ParamValidation.coerce(text, for: param(.number)) == .number(expected))
    }

    @Test(arguments: ["abc", "inf", "nan", ""])
    func notNumbers(text: String) {
        #expect(coerceFailure(text, param(.number))?.message == "expected a number, got '\(text)'")
    }

    @Test(arguments: [
        ("true", true), ("TRUE", true), ("yes", true), ("1", true), ("on", true),
        ("false", false), ("No", false), ("0", false), ("off", false),
    ])
    func booleans(text: String, expected: Bool) throws {
        #expect(try ParamValidation.coerce(text, for: param(.boolean)) == .bool(expected))
    }

    @Test func notABoolean() {
        #expect(coerceFailure("maybe", param(.boolean))?.message == "expected true or false, got 'maybe'")
    }

    @Test func stringsAreTakenVerbatim() throws {
        #expect(try ParamValidation.coerce("42", for: param(.string)) == "42")
        #expect(try ParamValidation.coerce(" eu ", for: param(.string)) == " eu ")
        #expect(try ParamValidation.coerce("", for: param(.string)) == "")
    }

    @Test func jsonArraysAndObjects() throws {
        #expect(try ParamValidation.coerce("[1, \"a\", true]", for: param(.array)) == [1, "a", true])
        #expect(try ParamValidation.coerce("{\"k\": [1, 2]}", for: param(.object)) == ["k": [1, 2]])
        #expect(coerceFailure("a,b", param(.array))?.message == "expected a JSON array, got 'a,b'")
        #expect(coerceFailure("{\"k\": 1}", param(.array))?.message == "expected array, got object {\"k\":1}")
        #expect(coerceFailure("[1]", param(.object))?.message == "expected object, got array [1]")
    }

    @Test(arguments: [
        ("42", JSONValue.number(42)), ("true", .bool(true)), ("[1]", .array([1])), ("\"quoted\"", .string("quoted")),
        ("plain text", .string("plain text")), ("null", .null),
    ])
    func anyParsesJSONOrFallsBackToText(text: String, expected: JSONValue) throws {
        #expect(try ParamValidation.coerce(text, for: param(.any)) == expected)
    }
}

@Suite struct ParamCheckTests {
    @Test func matchingTypesPass() throws {
        #expect(try ParamValidation.check("eu", against: param(.string)) == "eu")
        #expect(try ParamValidation.check(3, against: param(.integer)) == 3)
        #expect(try ParamValidation.check(3.5, against: param(.number)) == 3.5)
        #expect(try ParamValidation.check(3, against: param(.number)) == 3)
        #expect(try ParamValidation.check(true, against: param(.boolean)) == true)
        #expect(try ParamValidation.check([1], against: param(.array)) == [1])
        #expect(try ParamValidation.check(["a": 1], against: param(.object)) == ["a": 1])
        #expect(try ParamValidation.check(["a": 1], against: param(.any)) == ["a": 1])
        for type in ParamType.allCases {
            #expect(checkFailure(.null, param(type)) == nil, "null is accepted for \(type)")
        }
    }

    @Test(arguments: [
        (ParamType.integer, JSONValue.number(3.5), "expected integer, got number 3.5"),
        (.integer, .string("3"), "expected integer, got string \"3\""),
        (.string, .number(3), "expected string, got number 3"),
        (.number, .bool(true), "expected number, got boolean true"),
        (.boolean, .string("true"), "expected boolean, got string \"true\""),
        (.array, .object([:]), "expected array, got object {}"),
        (.object, .array([]), "expected object, got array []"),
    ])
    func mismatchedTypesFail(type: ParamType, value: JSONValue, message: String) {
        #expect(checkFailure(value, param(type)) == ParamValidation.Failure(param: "p", message: message))
    }

    @Test func allowedValues() throws {
        let region = param(.string, allowed: ["eu", "us"], name: "region")
        #expect(try ParamValidation.check("us", against: region) == "us")
        #expect(
            checkFailure("asia", region)
                == ParamValidation.Failure(param: "region", message: "\"asia\" is not one of \"eu\", \"us\""))
        #expect(checkFailure(.null, region) == nil)
        let size = param(.integer, allowed: [1, 2, 4])
        #expect(checkFailure(3, size)?.message == "3 is not one of 1, 2, 4")
        #expect(coerceFailure("[3]", param(.array, allowed: [[1], [2]]))?.message == "[3] is not one of [1], [2]")
    }
}

@Suite struct ParamOverrideValidationTests {
    @Test func validOverridesAreMergedOverDefaults() throws {
        let resolved = try ParamValidation.validate(["region": "us", "epochs": 10], for: pipeline)
        #expect(resolved == ["region": "us", "epochs": 10, "dry_run": false, "notes": .null])
        #expect(try ParamValidation.validate([:], for: pipeline) == ["region": "eu", "epochs": 3, "dry_run": false, "notes": .null])
    }

    @Test func unknownParamSuggestsTheClosest() {
        #expect(throws: ParamValidation.Failure(
            param: "regon", message: "pipeline 'churn' has no such param; did you mean 'region'?")) {
            try ParamValidation.validate(["regon": "us"], for: pipeline)
        }
        #expect(throws: ParamValidation.Failure(
            param: "zzz", message: "pipeline 'churn' has no such param; valid values: region, epochs, dry_run, notes")) {
            try ParamValidation.validate(["zzz": 1], for: pipeline)
        }
    }

    @Test func unknownParamOfAPipelineWithoutParams() {
        let bare = PipelineSpec(name: "bare", tasks: [TaskSpec(name: "a", command: .shell("echo"))])
        #expect(throws: ParamValidation.Failure(param: "x", message: "pipeline 'bare' has no such param; it declares none")) {
            try ParamValidation.validate(["x": 1], for: bare)
        }
    }

    @Test func wrongTypeOrDisallowedValueFails() {
        #expect(throws: ParamValidation.Failure(param: "epochs", message: "expected integer, got number 2.5")) {
            try ParamValidation.validate(["epochs": 2.5], for: pipeline)
        }
        #expect(throws: ParamValidation.Failure(param: "region", message: "\"ap\" is not one of \"eu\", \"us\"")) {
            try ParamValidation.validate(["region": "ap"], for: pipeline)
        }
    }

    @Test func coercedCommandLineTextValidates() throws {
        // `--param epochs=7 --param dry_run=yes` as the CLI turns them into values.
        let epochs = try ParamValidation.coerce("7", for: #require(pipeline.param(named: "epochs")))
        let dryRun = try ParamValidation.coerce("yes", for: #require(pipeline.param(named: "dry_run")))
        let resolved = try ParamValidation.validate(["epochs": epochs, "dry_run": dryRun], for: pipeline)
        #expect(resolved["epochs"] == 7)
        #expect(resolved["dry_run"] == true)
    }
}
