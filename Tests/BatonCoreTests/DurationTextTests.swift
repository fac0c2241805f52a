import Testing

@testable import BatonCore

@Suite struct DurationTextTests {
    @Test(arguments: [
        ("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("2d", 172_800), ("1w", 604_800),
        ("90", 90), ("0.5", 0.5), ("0", 0), ("1.5h", 5400), ("1 hour", 3600), ("2 days", 172_800),
        ("1h 30m", 5400), ("  45s ", 45), ("30S", 30), ("1h0m30s", 3630), ("250 milliseconds", 0.25),
        ("3 mins", 180), ("2hrs", 7200),
    ])
    func parses(text: String, seconds: Double) throws {
        #expect(try DurationText.seconds(text) == seconds)
    }

    @Test(arguments: ["", "  ", "soon", "5x", "h", "-5s", "-5", "5m3", "1..5s", "nan", "inf", "5 m 3 x", "1,5s"])
    func rejects(text: String) {
        #expect(throws: DurationText.ParseError(value: text)) { try DurationText.seconds(text) }
    }

    @Test func errorDescriptionQuotesTheTextAndShowsExamples() {
        let error = DurationText.ParseError(value: "soon")
        #expect(error.description.hasPrefix("'soon' is not a duration"))
        #expect(error.description.contains("1h30m"))
    }

    @Test(arguments: [
        (0.25, "250ms"), (0.5, "500ms"), (0, "0ms"), (1, "1s"), (30, "30s"), (1.5, "1.5s"), (60, "1m"), (90, "1m30s"),
        (3600, "1h"), (5400, "1h30m"), (172_800, "2d"), (90061, "1d1h1m1s"), (3630, "1h30s"),
    ])
    func formats(seconds: Double, text: String) {
        #expect(DurationText.format(seconds) == text)
    }

    @Test(arguments: [0.25, 1, 45, 60, 5400, 86400, 90061, 604_800])
    func formatParsesBack(seconds: Double) throws {
        #expect(try DurationText.seconds(DurationText.format(seconds)) == seconds)
    }
}
