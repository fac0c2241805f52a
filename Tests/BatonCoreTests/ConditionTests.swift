import Testing

@testable import BatonCore

private let context: JSONValue = [
    "params": [
        "region": "eu", "force": false, "deploy": true, "mode": "rollback", "count": 3, "threshold": "0.9",
        "nothing": nil, "empty_list": [], "regions": ["eu", "us"], "labels": ["team": "ml"],
    ],
    "tasks": [
        "validate": ["output": ["passed": true, "passed_text": "true", "rows": "1200"]],
        "eval": ["output": ["accuracy": 0.93, "accuracy_text": "0.93\n", "grade": "high"]],
    ],
    "data_interval_start": "2024-05-01T00:00:00Z",
]

private func evaluate(_ text: String, in values: JSONValue = context) throws -> Bool {
    try Condition.parse(text).evaluate(in: values)
}

private func reference(_ text: String, at offset: Int) -> Condition {
    .reference(TemplateReference(path: text.split(separator: ".").map(String.init), offset: offset, text: text))
}

private func parseError(_ text: String) -> TemplateError? {
    do {
        _ = try Condition.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct ConditionParsingTests {
    @Test func comparisonStructure() throws {
        #expect(
            try Condition.parse("tasks.validate.output.passed == true")
                == .comparison(reference("tasks.validate.output.passed", at: 0), .equal, .literal(true)))
        #expect(
            try Condition.parse("params.region not in ['eu', \"us\"]")
                == .comparison(reference("params.region", at: 0), .isNotIn, .list([.literal("eu"), .literal("us")])))
    }

    @Test func orBindsLooserThanAnd() throws {
        let a = reference("a", at: 0)
        let b = reference("b", at: 5)
        let c = reference("c", at: 11)
        #expect(try Condition.parse("a or b and c") == .or(a, .and(b, c)))
        #expect(try Condition.parse("a || b && c") == .or(a, .and(b, reference("c", at: 10))))
        #expect(try Condition.parse("a and b or c") == .or(.and(a, reference("b", at: 6)), reference("c", at: 11)))
        #expect(try Condition.parse("a or b and c").description == "a or (b and c)")
        #expect(try Condition.parse("(a or b) and c").description == "(a or b) and c")
        #expect(try Condition.parse("a and b and c").description == "a and b and c")
    }

    @Test func notBindsLooserThanComparisonAndTighterThanAnd() throws {
        #expect(
            try Condition.parse("not a == b")
                == .not(.comparison(reference("a", at: 4), .equal, reference("b", at: 9))))
        #expect(try Condition.parse("not a and b") == .and(.not(reference("a", at: 4)), reference("b", at: 10)))
        #expect(try Condition.parse("!a") == .not(reference("a", at: 1)))
        #expect(try Condition.parse("not not a") == .not(.not(reference("a", at: 8))))
        #expect(
            try Condition.parse("not (params.mode == \"rollback\")").description == "not (params.mode == \"rollback\")")
    }

    @Test(
        arguments: [false, true].flatMap { a in [false, true].flatMap { b in [false, true].map { c in [a, b, c] } } })
    func precedenceTruthTable(_ bits: [Bool]) throws {
        let values: JSONValue = ["a": .bool(bits[0]), "b": .bool(bits[1]), "c": .bool(bits[2])]
        let (a, b, c) = (bits[0], bits[1], bits[2])
        #expect(try evaluate("a or b and c", in: values) == (a || (b && c)))
        #expect(try evaluate("a and b or c", in: values) == ((a && b) || c))
        #expect(try evaluate("(a or b) and c", in: values) == ((a || b) && c))
        #expect(try evaluate("not a or b", in: values) == (!a || b))
        #expect(try evaluate("!(a || b) && c", in: values) == (!(a || b) && c))
        #expect(try evaluate("not a == b", in: values) == !(a == b))
    }

    @Test func wrappingBracesAreStrippedAndOffsetsKept() throws {
        let condition = try Condition.parse("  {{ params.deploy and tasks.eval.output.accuracy >= 0.9 }} ")
        #expect(condition.references.map(\.offset) == [5, 23])
        #expect(condition.references.map(\.text) == ["params.deploy", "tasks.eval.output.accuracy"])
        #expect(try condition.evaluate(in: context))
    }

    @Test func referencesInSourceOrder() throws {
        let condition = try Condition.parse(
            "(tasks.a.output.x > 1 or not params.y) and event.payload.kind in [params.k, 'z']")
        #expect(condition.references.map(\.text) == ["tasks.a.output.x", "params.y", "event.payload.kind", "params.k"])
        #expect(condition.references.map(\.root) == ["tasks", "params", "event", "params"])
        #expect(try Condition.parse("true and 1 == 1").references.isEmpty)
    }

    @Test func literals() throws {
        #expect(try Condition.parse("-1.5e2") == .literal(-150))
        #expect(try Condition.parse("'a\\'b\\n'") == .literal("a'b\n"))
        #expect(try Condition.parse("null") == .literal(nil))
        #expect(try Condition.parse("[]") == .list([]))
        #expect(try Condition.parse("[1, [2],]") == .list([.literal(1), .list([.literal(2)])]))
        #expect(try Condition.parse(#"x["a b"][0] == 1"#).references.first?.path == ["x", "a b", "0"])
    }

    @Test(arguments: [
        "a or (b and c)", "(a or b) and c", "not (a == 1)", "not a", "a == \"x\" and b != null",
        "params.region in [\"eu\", \"us\"]", "x not in [1, 2.5, true, null]", "a or (b or c)", "a and (b and c)",
        "a or b or c",
        "(not a) == b",
    ])
    func descriptionRoundTrips(_ text: String) throws {
        let condition = try Condition.parse(text)
        #expect(condition.description == text)
        #expect(try Condition.parse(condition.description).description == text)
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var text: String
        var offset: Int
        var message: String
        var fix: String = ""
        var testDescription: String { text }
    }

    @Test(arguments: [
        ErrorCase(text: "", offset: 0, message: "empty condition"),
        ErrorCase(text: "{{ }}", offset: 3, message: "empty condition"),
        ErrorCase(text: "a and", offset: 5, message: "expected an operand after 'and'"),
        ErrorCase(text: "a && ", offset: 4, message: "expected an operand after '&&'"),
        ErrorCase(text: "a or )", offset: 5, message: "expected an operand after 'or', found ')'"),
        ErrorCase(text: "a ==", offset: 4, message: "expected an operand after '=='"),
        ErrorCase(text: "a not in", offset: 8, message: "expected an operand after 'not in'"),
        ErrorCase(text: "not", offset: 3, message: "expected an operand after 'not'"),
        ErrorCase(text: "and x", offset: 0, message: "expected a value or reference, found 'and'"),
        ErrorCase(text: "x == [", offset: 6, message: "expected an operand after '['"),
        ErrorCase(
            text: "params.x = 1", offset: 9, message: "unknown operator '=' — did you mean '=='?", fix: "'=='"),
        ErrorCase(text: "x === 1", offset: 2, message: "unknown operator '===' — did you mean '=='?"),
        ErrorCase(text: "x => 1", offset: 2, message: "unknown operator '=>' — did you mean '>='?"),
        ErrorCase(text: "x <> 1", offset: 2, message: "unknown operator '<>' — did you mean '!='?"),
        ErrorCase(text: "x & y", offset: 2, message: "unknown operator '&' — did you mean '&&' or 'and'?"),
        ErrorCase(text: "x | y", offset: 2, message: "unknown operator '|' — did you mean '||' or 'or'?"),
        ErrorCase(text: "params.x == \"abc", offset: 12, message: "unterminated string", fix: "close the string"),
        ErrorCase(text: "x == 'it", offset: 5, message: "unterminated string"),
        ErrorCase(text: "x == 'a\\q'", offset: 7, message: "unknown escape '\\q'"),
        ErrorCase(text: "x == 1.2.3", offset: 5, message: "malformed number '1.2.3'"),
        ErrorCase(text: "x == 5abc", offset: 5, message: "malformed number '5abc'"),
        ErrorCase(text: "x == 1e400", offset: 5, message: "number '1e400' is out of range"),
        ErrorCase(text: "(a or b", offset: 7, message: "expected ')' to close the '(' at column 1"),
        ErrorCase(text: "(a or b]", offset: 7, message: "expected ')' to close the '(' at column 1, found ']'"),
        ErrorCase(text: "a or b)", offset: 6, message: "unexpected ')' without a matching '('"),
        ErrorCase(text: "a < b < c", offset: 6, message: "comparisons cannot be chained", fix: "and"),
        ErrorCase(text: "(a == b != c)", offset: 8, message: "comparisons cannot be chained"),
        ErrorCase(text: "a == b not in c", offset: 7, message: "comparisons cannot be chained"),
        ErrorCase(text: "a b", offset: 2, message: "expected an operator or the end of the condition, found 'b'"),
        ErrorCase(text: "a not b", offset: 2, message: "expected 'in' after 'not'"),
        ErrorCase(text: "x == True", offset: 5, message: "'True' is not a literal", fix: "did you mean 'true'?"),
        ErrorCase(text: "x != None", offset: 5, message: "'None' is not a literal", fix: "'null'"),
        ErrorCase(text: "x in 3", offset: 2, message: "the right side of 'in' must be a list"),
        ErrorCase(text: "x not in true", offset: 2, message: "the right side of 'not in' must be a list"),
        ErrorCase(text: "x in [1, 2", offset: 10, message: "expected ',' or ']' in the list opened at column 6"),
        ErrorCase(text: "x in [1 2]", offset: 8, message: "expected ',' or ']'"),
        ErrorCase(text: "x in [a == 1]", offset: 8, message: "expected ',' or ']'"),
        ErrorCase(text: "{{ a }} and {{ b }}", offset: 5, message: "unexpected '}}' inside the condition", fix: "{{"),
        ErrorCase(text: "a and {{ b }}", offset: 6, message: "unexpected character '{'"),
        ErrorCase(text: "x == #", offset: 5, message: "unexpected character '#'"),
        ErrorCase(text: "a.b. == 1", offset: 4, message: "expected a name or an index after '.'"),
        ErrorCase(text: "a }", offset: 2, message: "unexpected '}'"),
    ])
    func parseErrors(_ example: ErrorCase) throws {
        let error = try #require(parseError(example.text))
        #expect(error.source == example.text)
        #expect(error.offset == example.offset)
        #expect(error.message.contains(example.message), "\(error.message)")
        #expect(!error.fix.isEmpty)
        if !example.fix.isEmpty { #expect(error.fix.contains(example.fix), "\(error.fix)") }
    }

    @Test func errorDescriptionHasCaret() throws {
        let error = try #require(parseError("params.x = 1"))
        #expect(
            error.description == """
                unknown operator '=' — did you mean '=='? (at column 10)
                    params.x = 1
                             ^
                    fix: use '=='; the operators are ==, !=, <, <=, >, >=, in, not in, and, or, not
                """)
    }
}

@Suite struct ConditionEvaluationTests {
    @Test(
        arguments: [
            ("tasks.validate.output.passed == true", true),
            ("tasks.eval.output.accuracy >= 0.9 and params.force != true", true),
            ("tasks.eval.output.accuracy > 0.93", false),
            ("tasks.eval.output.accuracy >= 0.93", true),
            ("tasks.eval.output.accuracy < 1", true),
            ("tasks.eval.output.accuracy <= 0.5", false),
            ("params.count == 3.0", true),
            ("params.count != 3", false),
            ("not (params.mode == \"rollback\")", false),
            ("params.mode == 'rollback' && !params.force", true),
            ("params.region == \"EU\"", false),
            ("data_interval_start >= '2024-05-01' and data_interval_start < '2024-05-02'", true),
            ("'b' > 'a'", true),
            ("-1 < 0", true),
            ("[1, 2] == [1, 2]", true),
        ] as [(String, Bool)])
    func comparisons(_ text: String, _ expected: Bool) throws {
        #expect(try evaluate(text) == expected)
    }

    @Test(
        arguments: [
            // Strings holding numbers compare as those numbers, since outputs often arrive as text.
            ("'1' == 1", true),
            ("1 == '1.0'", true),
            ("tasks.eval.output.accuracy_text == 0.93", true),
            ("tasks.eval.output.accuracy_text >= params.threshold", true),
            ("tasks.validate.output.rows > 1000", true),
            ("'abc' == 1", false),
            ("'0x10' == 16", false),
            ("'inf' == 1e300", false),
            ("'' == 0", false),
            // Exactly "true"/"false" equal the booleans; nothing else does.
            ("tasks.validate.output.passed_text == true", true),
            ("'True' == true", false),
            ("'1' == true", false),
            ("1 == true", false),
            ("null == false", false),
            ("null == 0", false),
            ("params.nothing == null", true),
            ("params.missing == null", true),
            ("params.missing != null", false),
            ("['1', 2] == [1, '2']", true),
            // Two numeric strings order as numbers; other strings by character.
            ("'10' > '9'", true),
            ("'10a' > '9a'", false),
        ] as [(String, Bool)])
    func mixedTypes(_ text: String, _ expected: Bool) throws {
        #expect(try evaluate(text) == expected)
    }

    @Test func orderingMismatchedKindsNamesBoth() throws {
        let error = try #require(throws: ConditionEvaluationError.self) {
            try evaluate("tasks.eval.output.grade >= 0.9")
        }
        #expect(
            error.message == #"cannot compare tasks.eval.output.grade (string "high") with 0.9 (number) using '>='"#)
        #expect(error.fix.contains("two numbers or two strings"))

        let boolean = try #require(throws: ConditionEvaluationError.self) { try evaluate("params.deploy < 1") }
        #expect(boolean.message.contains("(boolean true)") && boolean.message.contains("1 (number)"))

        let lists = try #require(throws: ConditionEvaluationError.self) { try evaluate("params.regions > []") }
        #expect(lists.message.contains(#"(array ["eu","us"])"#) && lists.message.contains("[] (array)"))
    }

    @Test func orderingAMissingValueIsAnErrorSuggestingAGuard() throws {
        let error = try #require(throws: ConditionEvaluationError.self) {
            try evaluate("tasks.eval.output.f1 > 0.5")
        }
        #expect(error.message == "cannot compare tasks.eval.output.f1 (missing) with 0.5 (number) using '>'")
        #expect(error.fix.contains("'tasks.eval.output.f1 != null and ...'"))
        // The guard works because `and` short-circuits.
        #expect(try evaluate("tasks.eval.output.f1 != null and tasks.eval.output.f1 > 0.5") == false)
    }

    @Test(
        arguments: [
            ("params.region in [\"eu\", \"us\"]", true),
            ("params.region in ['us', 'ap']", false),
            ("params.region not in ['us', 'ap']", true),
            ("params.region in params.regions", true),
            ("'ap' in params.regions", false),
            ("params.region in [params.mode, 'eu']", true),
            ("3 in ['1', '3']", true),
            ("params.region in []", false),
            ("'eu' in 'europe-eu-1'", true),
            ("'us' in 'europe'", false),
            ("'team' in params.labels", true),
            ("'owner' in params.labels", false),
            ("'x' in params.missing", false),
            ("'x' not in params.missing", true),
            ("[1] in [[1], [2]]", true),
        ] as [(String, Bool)])
    func membership(_ text: String, _ expected: Bool) throws {
        #expect(try evaluate(text) == expected)
    }

    @Test func membershipInTheWrongKindIsAnError() throws {
        let number = try #require(throws: ConditionEvaluationError.self) { try evaluate("1 in params.count") }
        #expect(number.message == "cannot look for 1 (number) in params.count (number 3)")
        let substring = try #require(throws: ConditionEvaluationError.self) { try evaluate("1 in 'abc'") }
        #expect(substring.fix.contains("substring"))
        let key = try #require(throws: ConditionEvaluationError.self) { try evaluate("1 in params.labels") }
        #expect(key.fix.contains("key"))
    }

    @Test(
        arguments: [
            (JSONValue.null, false), (false, false), (0, false), (0.0, false), ("", false), ([], false), ([:], false),
            (true, true), (1, true), (-0.5, true), ("x", true), ("false", true), ("0", true), ([0], true),
            (["k": nil], true),
        ] as [(JSONValue, Bool)])
    func truthiness(_ value: JSONValue, _ expected: Bool) throws {
        let values: JSONValue = ["params": ["v": value]]
        #expect(try evaluate("params.v", in: values) == expected)
        #expect(try evaluate("not params.v", in: values) == !expected)
        #expect(value.isTruthy == expected)
    }

    @Test func missingReferenceIsNull() throws {
        #expect(try evaluate("tasks.x.output.flag") == false)
        #expect(try evaluate("not tasks.x.output.flag") == true)
        #expect(try evaluate("params.deploy") == true)
        #expect(try evaluate("{{ params.deploy }}") == true)
    }

    @Test func andOrShortCircuit() throws {
        var seen: [String] = []
        let condition = try Condition.parse("a or b and c")
        let result = try condition.evaluate { reference in
            seen.append(reference.text)
            return .bool(reference.text == "a")
        }
        #expect(result)
        #expect(seen == ["a"])
    }

    @Test func resolverErrorsPropagate() throws {
        struct Boom: Error, Equatable {}
        let condition = try Condition.parse("params.x == 1")
        #expect(throws: Boom()) { try condition.evaluate { _ in throw Boom() } }
    }

    @Test func numericStrings() {
        #expect("42".numericValue == 42)
        #expect(" -0.5\n".numericValue == -0.5)
        #expect("1e3".numericValue == 1000)
        #expect("+.5".numericValue == 0.5)
        #expect("5.".numericValue == 5)
        for text in ["", " ", ".", "-", "1e", "1e+", "0x10", "inf", "nan", "1_000", "1 2", "١٢"] {
            #expect(text.numericValue == nil, "\(text)")
        }
    }
}
