import Foundation
import Testing

@testable import BatonCore

private let context: JSONValue = [
    "params": [
        "region": "eu-west-1",
        "evil": "x; rm -rf ~",
        "quote": "it's",
        "count": 3,
        "ratio": 0.25,
        "flag": true,
        "nothing": nil,
        "config": ["b": 2, "a": "x"],
    ],
    "tasks": [
        "train_xgboost": ["output": ["accuracy": 0.93, "some key": "spaced", "models": ["m1", "m2"]]]
    ],
    "event": ["payload": ["items": [["name": "first"], ["name": "second"]], "record_count": 1200]],
    "data_interval_start": "2024-05-01T00:00:00Z",
]

private func render(_ text: String, quoting: (String) -> String = { $0 }) throws -> String {
    try Template.parse(text).render(in: context, quoting: quoting)
}

private func parseError(_ text: String) -> TemplateError? {
    do {
        _ = try Template.parse(text)
        return nil
    } catch {
        return error
    }
}

@Suite struct TemplateParsingTests {
    @Test func literalTextHasNoReferences() throws {
        let template = try Template.parse("echo hello } }} { done")
        #expect(template.isLiteral)
        #expect(template.references.isEmpty)
        #expect(try template.render(in: [:]) == "echo hello } }} { done")
    }

    @Test func emptyTextIsLiteral() throws {
        let template = try Template.parse("")
        #expect(template.isLiteral)
        #expect(template.segments.isEmpty)
        #expect(try template.render(in: [:]) == "")
    }

    @Test func referencesCarryPathOffsetAndText() throws {
        let template = try Template.parse("run {{ params.region }} --acc={{tasks.train_xgboost.output.accuracy}}")
        #expect(!template.isLiteral)
        #expect(
            template.references == [
                TemplateReference(path: ["params", "region"], offset: 7, text: "params.region"),
                TemplateReference(
                    path: ["tasks", "train_xgboost", "output", "accuracy"], offset: 32,
                    text: "tasks.train_xgboost.output.accuracy"),
            ])
        #expect(template.references.map(\.root) == ["params", "tasks"])
    }

    @Test func offsetsCountCharactersNotBytes() throws {
        let template = try Template.parse("héllo 🚀 {{ params.x }}")
        #expect(template.references.first?.offset == 11)
    }

    @Test func bracketKeysIndexesAndHyphens() throws {
        let template = try Template.parse(
            #"{{ tasks.x.output["some key"] }} {{ event.items.0.name }} {{ a['k'][2] }} {{ tasks.train-v2.output }}"#)
        #expect(
            template.references.map(\.path) == [
                ["tasks", "x", "output", "some key"], ["event", "items", "0", "name"], ["a", "k", "2"],
                ["tasks", "train-v2", "output"],
            ])
        #expect(template.references[0].text == #"tasks.x.output["some key"]"#)
    }

    @Test func whitespaceInsideBlocksIsOptional() throws {
        let compact = try Template.parse("{{params.x|default(\"d\")|upper}}")
        let spaced = try Template.parse("{{\n  params.x\n  | default( \"d\" )\n  | upper\n}}")
        #expect(compact.expressions.map(\.filters) == spaced.expressions.map(\.filters))
        #expect(compact.expressions.first?.filters == [.defaultValue("d"), .upper])
        #expect(compact.expressions.first?.hasDefault == true)
    }

    @Test func filtersParseInOrder() throws {
        let template = try Template.parse(
            "{{ a | tojson | lower }} {{ b | default(3) }} {{ c | default(-1.5) }} {{ d | default(true) }} "
                + "{{ e | default(null) }} {{ f | default('it\\'s') }}")
        #expect(
            template.expressions.map(\.filters) == [
                [.toJSON, .lower], [.defaultValue(3)], [.defaultValue(-1.5)], [.defaultValue(true)],
                [.defaultValue(nil)], [.defaultValue("it's")],
            ])
    }

    @Test func quotedStringBlockWritesLiteralBraces() throws {
        let template = try Template.parse(#"docker ps --format '{{ "{{" }}.Names}}' {{ params.region }}"#)
        #expect(template.references.count == 1)
        #expect(try template.render(in: context) == "docker ps --format '{{.Names}}' eu-west-1")
        #expect(try Template.parse(#"{{ "{{" }}x}}"#).isLiteral)
    }

    struct ErrorCase: Sendable, CustomTestStringConvertible {
        var text: String
        var offset: Int
        var message: String
        var fix: String = ""
        var testDescription: String { text }
    }

    @Test(arguments: [
        ErrorCase(text: "echo {{ params.x", offset: 5, message: "'{{' is not closed", fix: "'}}'"),
        ErrorCase(text: "echo {{ params.x | default(\"a\"", offset: 5, message: "'{{' is not closed"),
        ErrorCase(text: "a {{ }} b", offset: 2, message: "empty template expression", fix: "params.region"),
        ErrorCase(text: "{{}}", offset: 0, message: "empty template expression"),
        ErrorCase(text: "{{ $x }}", offset: 3, message: "unexpected character '$'", fix: "dotted reference"),
        ErrorCase(text: "{{ params.$x }}", offset: 10, message: "expected a name or an index after '.'"),
        ErrorCase(text: "{{ params. }}", offset: 10, message: "expected a name or an index after '.'"),
        ErrorCase(text: "{{ params.0abc }}", offset: 10, message: "'0abc' is not a valid reference component"),
        ErrorCase(text: "{{ params.x[ }}", offset: 13, message: "expected a quoted key or an index"),
        ErrorCase(text: "{{ params[\"a\" }}", offset: 9, message: "'[' is not closed"),
        ErrorCase(text: "{{ params.x } }}", offset: 12, message: "unexpected '}'"),
        ErrorCase(text: "{{ params.x params.y }}", offset: 12, message: "expected '}}' or '|' after 'params.x'"),
        ErrorCase(text: "{{ a {{ b }}", offset: 5, message: "unexpected character '{'"),
        ErrorCase(text: "{{ 42 }}", offset: 3, message: "expected a reference such as params.region, found '42'"),
        ErrorCase(text: "{{ \"x\" | upper }}", offset: 3, message: "a quoted string in '{{ }}' cannot have filters"),
        ErrorCase(text: "{{ True }}", offset: 3, message: "'True' is not a value here"),
        ErrorCase(
            text: "{{ params.x | uper }}", offset: 14, message: "unknown filter 'uper'",
            fix: "did you mean 'upper'? the filters are default, tojson, upper, lower"),
        ErrorCase(
            text: "{{ params.x | slugify }}", offset: 14, message: "unknown filter 'slugify'",
            fix: "the filters are default, tojson, upper, lower"),
        ErrorCase(text: "{{ params.x | }}", offset: 14, message: "expected a filter name after '|', found '}}'"),
        ErrorCase(text: "{{ params.x || y }}", offset: 12, message: "expected '}}' or '|'"),
        ErrorCase(text: "{{ params.x | default }}", offset: 14, message: "filter 'default' needs a value"),
        ErrorCase(text: "{{ params.x | default() }}", offset: 14, message: "filter 'default' needs a value"),
        ErrorCase(text: "{{ params.x | default(\"a\", \"b\") }}", offset: 25, message: "expected ')' after the value"),
        ErrorCase(text: "{{ params.x | default(params.y) }}", offset: 22, message: "must be a literal"),
        ErrorCase(text: "{{ params.x | default(None) }}", offset: 22, message: "must be a literal", fix: "write null"),
        ErrorCase(text: "{{ params.x | tojson(1) }}", offset: 20, message: "filter 'tojson' takes no arguments"),
        ErrorCase(text: "{{ params.x | default(\"a }}", offset: 22, message: "unterminated string"),
        ErrorCase(text: "{{ params.x | default(1.2.3) }}", offset: 22, message: "malformed number '1.2.3'"),
        ErrorCase(text: #"{{ params.x | default("C:\data") }}"#, offset: 25, message: "unknown escape '\\d"),
    ])
    func parseErrors(_ example: ErrorCase) throws {
        let error = try #require(parseError(example.text))
        #expect(error.source == example.text)
        #expect(error.offset == example.offset)
        #expect(error.message.contains(example.message), "\(error.message)")
        #expect(!error.fix.isEmpty)
        if !example.fix.isEmpty { #expect(error.fix.contains(example.fix), "\(error.fix)") }
    }

    @Test func errorDescriptionPointsAtTheOffendingLine() throws {
        let error = try #require(parseError("set -e\n\tpython train.py --x {{ params.x | uper }}\ndone"))
        #expect(error.line == 2)
        #expect(error.column == 36)
        #expect(
            error.description == """
                unknown filter 'uper' (at line 2, column 36)
                    \tpython train.py --x {{ params.x | uper }}
                    \t                                  ^
                    fix: did you mean 'upper'? the filters are default, tojson, upper, lower
                """)
        let single = try #require(parseError("{{ }}"))
        #expect(single.description.hasPrefix("empty template expression '{{ }}' (at column 1)\n    {{ }}\n    ^\n"))
    }
}

@Suite struct TemplateRenderingTests {
    @Test func valuesRenderAsTemplateText() throws {
        #expect(try render("{{ params.region }}") == "eu-west-1")
        #expect(try render("n={{ params.count }} r={{ params.ratio }} f={{ params.flag }}") == "n=3 r=0.25 f=true")
        #expect(try render("[{{ params.nothing }}]") == "[]")
        #expect(try render("{{ params.config }}") == #"{"a":"x","b":2}"#)
        #expect(try render("{{ tasks.train_xgboost.output.models }}") == #"["m1","m2"]"#)
        #expect(try render("{{ data_interval_start }}") == "2024-05-01T00:00:00Z")
        #expect(try render("{{ event.payload.record_count }} rows") == "1200 rows")
    }

    @Test func nestedPathsArrayIndexesAndBracketKeys() throws {
        #expect(try render("{{ event.payload.items.1.name }}") == "second")
        #expect(try render("{{ event.payload.items[0]['name'] }}") == "first")
        #expect(try render(#"{{ tasks.train_xgboost.output["some key"] }}"#) == "spaced")
        #expect(try render("{{ tasks.train_xgboost.output.models.1 }}") == "m2")
    }

    @Test func quotingAppliesToValuesOnly() throws {
        let rendered = try render("echo $(date) {{ params.evil }} && echo '#' {{ params.quote }}", quoting: shellQuote)
        #expect(rendered == #"echo $(date) 'x; rm -rf ~' && echo '#' 'it'\''s'"#)
        let plain = try render("deploy --region {{ params.region }} --count {{ params.count }}", quoting: shellQuote)
        #expect(plain == "deploy --region eu-west-1 --count 3")
    }

    @Test func quotingWrapsEachSubstitution() throws {
        let rendered = try render(
            "x={{ params.evil }}; y={{ params.quote }}; z='{{ params.nothing }}'",
            quoting: { "<\($0)>" })
        #expect(rendered == "x=<x; rm -rf ~>; y=<it's>; z='<>'")
    }

    @Test func shellRoundTripPrintsValuesExactly() throws {
        let nasty = "a \"b\" $(echo pwned) `id` $HOME \\n \\ * ? [x] ~ # ; | & > < \t\nline2 'q' é🚀 -- -n"
        let values: JSONValue = [
            "params": ["evil": "x; rm -rf ~", "quote": "it's", "nasty": .string(nasty), "empty": ""]
        ]
        let template = try Template.parse(
            "echo {{ params.evil }}; printf '%s|' {{ params.quote }} {{ params.nasty }} {{ params.empty }}")
        let command = try template.render(in: values, quoting: shellQuote)
        #expect(command.hasPrefix("echo 'x; rm -rf ~'; printf '%s|' 'it'\\''s' "))

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        let stdout = Pipe()
        process.standardOutput = stdout
        try process.run()
        let data = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(String(decoding: data, as: UTF8.self) == "x; rm -rf ~\nit's|\(nasty)||")
    }

    @Test func missingReferenceThrowsNamingIt() throws {
        let template = try Template.parse("train --acc {{ tasks.train_xgboost.output.f1 }}")
        #expect(throws: UnresolvedReferenceError(reference: "tasks.train_xgboost.output.f1", offset: 15)) {
            try template.render(in: context)
        }
        #expect(throws: UnresolvedReferenceError(reference: "params.nope.deeper", offset: 3)) {
            _ = try Template.parse("{{ params.nope.deeper }}").render(in: context)
        }
        let description = UnresolvedReferenceError(reference: "params.x").description
        #expect(description.contains("'params.x'") && description.contains("default"))
    }

    @Test func indexOutOfRangeAndPathThroughScalarAreMissing() {
        #expect(throws: UnresolvedReferenceError.self) { try render("{{ event.payload.items.5.name }}") }
        #expect(throws: UnresolvedReferenceError.self) { try render("{{ params.region.name }}") }
    }

    @Test func defaultFilterCoversMissingAndNull() throws {
        #expect(try render("{{ params.missing | default(\"none\") }}") == "none")
        #expect(try render("{{ params.nothing | default('fallback') }}") == "fallback")
        #expect(try render("{{ params.region | default(\"none\") }}") == "eu-west-1")
        #expect(try render("{{ params.missing | default(3) }}") == "3")
        #expect(try render("{{ params.missing | default(0.5) }}") == "0.5")
        #expect(try render("{{ params.missing | default(false) }}") == "false")
        #expect(try render("[{{ params.missing | default(null) }}]") == "[]")
        // A default later in the chain still applies: other filters pass a missing value through.
        #expect(try render("{{ params.missing | upper | default(\"n/a\") }}") == "n/a")
        // The fallback is a substituted value too, so it is quoted like one.
        #expect(try render("{{ params.missing | default(\"a b\") }}", quoting: shellQuote) == "'a b'")
    }

    @Test func toJSONFilter() throws {
        #expect(try render("{{ params.region | tojson }}") == #""eu-west-1""#)
        #expect(try render("{{ params.count | tojson }}") == "3")
        #expect(try render("{{ params.ratio | tojson }}") == "0.25")
        #expect(try render("{{ params.nothing | tojson }}") == "null")
        #expect(try render("{{ params.config | tojson }}") == #"{"a":"x","b":2}"#)
        #expect(try render("{{ params.missing | default(\"d\") | tojson }}") == #""d""#)
        #expect(try render("{{ params.config | tojson }}", quoting: shellQuote) == #"'{"a":"x","b":2}'"#)
        #expect(throws: UnresolvedReferenceError.self) { try render("{{ params.missing | tojson }}") }
    }

    @Test func upperAndLowerFilters() throws {
        #expect(try render("{{ params.region | upper }}") == "EU-WEST-1")
        #expect(try render("{{ params.region | upper | lower }}") == "eu-west-1")
        #expect(try render("{{ params.flag | upper }}") == "TRUE")
    }

    @Test func resolverErrorsPropagate() throws {
        struct Boom: Error, Equatable {}
        let template = try Template.parse("{{ params.x }}")
        #expect(throws: Boom()) { try template.render { _ in throw Boom() } }
    }

    @Test func resolverSeesEachReference() throws {
        let template = try Template.parse("{{ a.b }}-{{ c.0 }}-{{ a.b }}")
        var seen: [[String]] = []
        let output = try template.render { reference in
            seen.append(reference.path)
            return .string(reference.text.uppercased())
        }
        #expect(output == "A.B-C.0-A.B")
        #expect(seen == [["a", "b"], ["c", "0"], ["a", "b"]])
    }
}

@Suite struct ShellQuoteTests {
    @Test(arguments: [
        ("eu-west-1", "eu-west-1"),
        ("s3://bucket/key.parquet", "s3://bucket/key.parquet"),
        ("a=b,c+d%e@f:g", "a=b,c+d%e@f:g"),
        ("", "''"),
        ("two words", "'two words'"),
        ("x; rm -rf ~", "'x; rm -rf ~'"),
        ("it's", #"'it'\''s'"#),
        ("'", #"''\'''"#),
        ("$HOME", "'$HOME'"),
        ("~", "'~'"),
        ("*", "'*'"),
        ("é", "'é'"),
        ("a\nb", "'a\nb'"),
    ])
    func quotes(_ input: String, _ expected: String) {
        #expect(shellQuote(input) == expected)
    }

    @Test func quoteWithCombiningMarkIsStillEscaped() {
        // "'" + U+0301 is a single Character that is not "'", but the shell sees the quote.
        #expect(shellQuote("a'\u{301}b") == "'a'\\''\u{301}b'")
    }

    @Test func shellContextsFlagQuotedBlocks() throws {
        let template = try Template.parse(
            #"echo {{ a }} "{{ b }}" '{{ c }}' \{{ d }} "x\"{{ e }}" 'it'{{ f }} # {{ g }}"# + "\n"
                + #"echo x#{{ h }} {{ i }}"#)
        #expect(template.shellContexts.map(\.reference.text) == ["a", "b", "c", "d", "e", "f", "g", "h", "i"])
        #expect(
            template.shellContexts.map(\.context) == [
                .unquoted, .doubleQuoted, .singleQuoted, .escaped, .doubleQuoted, .unquoted, .comment, .unquoted,
                .unquoted,
            ])
    }
}
