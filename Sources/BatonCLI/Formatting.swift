import BatonCore
import BatonStore
import Foundation

/// Aligned text tables for people.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    func render() -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}

enum Format {
    static func time(_ date: Date?) -> String {
        guard let date else { return "-" }
        return UTCTimestamp.readable(date)
    }

    static func duration(_ start: Date?, _ end: Date?) -> String {
        guard let start else { return "-" }
        return DurationText.format((end ?? Date()).timeIntervalSince(start))
    }
}
