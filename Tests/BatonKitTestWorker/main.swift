import BatonKit
import Foundation

// The worker the CLI tests run against a real `baton up`. BATONKIT_TEST_PIPELINES=broken
// registers pipelines with mistakes instead, for the validation tests.

struct Extracted: Codable {
    var rows: Int
    var path: String
}

struct Cleaned: Codable {
    var rows: Int
    var who: String
    var attempt: Int
}

enum FixtureError: Error, CustomStringConvertible {
    case badRow(Int)

    var description: String {
        switch self {
        case .badRow(let row): return "bad row \(row)"
        }
    }
}

let flow = Pipeline("swift_flow", owner: "data_engineering", params: [Param("who", default: "world")]) {
    Command("extract", #"printf '{"rows": 41, "path": "raw/customers.csv"}' > "$BATON_OUTPUT""#)
    Step("clean", needs: "extract") { context in
        let raw = try context.input("extract", as: Extracted.self)
        context.log("cleaning \(raw.rows) rows from \(raw.path) in run \(context.runID)")
        return Cleaned(rows: raw.rows + 1, who: try context.param("who", as: String.self), attempt: context.attempt)
    }
    Step("count", needs: "clean") { context in
        let rows = try context.input("clean", as: Cleaned.self).rows
        try await context.publishEvent("swift.counted", payload: ["rows": rows])
        try await context.emitMetric("swift.rows", Double(rows), tags: ["pipeline": context.pipeline])
        return rows
    }
    Command("report", "echo rows={{ tasks.clean.output.rows }} count={{ tasks.count.output.value }} who={{ tasks.clean.output.who }}")
        .needs("count")
}

let failing = Pipeline("swift_failing") {
    Step("explode") { context in
        context.log("attempt \(context.attempt) reads row 12")
        throw FixtureError.badRow(12)
    }
    .retries(1, delay: .seconds(0))
    Step("slow") { context in
        context.log("sleeping")
        try await Task.sleep(for: .seconds(60))
    }
    .timeout(.milliseconds(500))
}

let broken = Pipeline("swift_broken", schedule: "0 25 * * *") {
    Step("first") { _ in }
    Step("second", needs: "frist") { _ in }
}

if ProcessInfo.processInfo.environment["BATONKIT_TEST_PIPELINES"] == "broken" {
    await Worker(broken).main()
} else {
    await Worker(flow, failing).main()
}
