import BatonCore
import Foundation

/// Entity rows asking for features: any columns (join keys, labels, ...) plus `event_timestamp`.
public struct EntityTable: Sendable {
    public var header: [String]
    public var rows: [[JSONValue]]
    public var times: [Double]

    public init(header: [String], rows: [[JSONValue]], times: [Double]) {
        self.header = header
        self.rows = rows
        self.times = times
    }

    static func bad(_ row: Int, _ column: String, _ value: String, _ expected: String, _ message: String) -> FeatureError {
        .badRow(FeatureRowError(row: row, column: column, value: value, expected: expected, message: message))
    }

    /// From a CSV file with a header; rows are numbered by line.
    public static func csv(_ text: String) throws(FeatureError) -> EntityTable {
        let records = CSV.parse(text)
        guard let header = records.first?.fields, !header.isEmpty else {
            throw FeatureError.invalidRequest(field: "entities", message: "the entity file is empty; it needs a header with the join keys and event_timestamp")
        }
        guard let timeIndex = header.firstIndex(of: FeatureRowParser.timestampColumn) else {
            throw bad(1, FeatureRowParser.timestampColumn, "", "a column", "the entity file lacks the event_timestamp column")
        }
        var rows: [[JSONValue]] = []
        var times: [Double] = []
        rows.reserveCapacity(records.count)
        times.reserveCapacity(records.count)
        for record in records.dropFirst() {
            if record.fields.count == 1 && record.fields[0].isEmpty { continue }
            guard record.fields.count == header.count else {
                throw bad(record.line, "", "\(record.fields.count) fields", "\(header.count) fields", "the row has \(record.fields.count) fields, the header \(header.count)")
            }
            guard let time = FeatureTime.parse(record.fields[timeIndex]) else {
                throw bad(record.line, FeatureRowParser.timestampColumn, record.fields[timeIndex], "an ISO 8601 time or epoch seconds", "not a timestamp")
            }
            rows.append(record.fields.map { .string($0) })
            times.append(time)
        }
        return EntityTable(header: header, rows: rows, times: times)
    }

    /// From JSON objects (all with the same columns as the first).
    public static func json(_ items: [JSONValue]) throws(FeatureError) -> EntityTable {
        var header: [String] = []
        var rows: [[JSONValue]] = []
        var times: [Double] = []
        for (offset, item) in items.enumerated() {
            guard case .object(let members) = item else {
                throw bad(offset + 1, "", String(item.compactJSON.prefix(80)), "a JSON object", "an entity row must be a JSON object")
            }
            if header.isEmpty { header = members.keys.sorted() }
            let time: Double
            switch members[FeatureRowParser.timestampColumn] {
            case .string(let text)?:
                guard let parsed = FeatureTime.parse(text) else {
                    throw bad(offset + 1, FeatureRowParser.timestampColumn, text, "an ISO 8601 time or epoch seconds", "not a timestamp")
                }
                time = parsed
            case .number(let seconds)?: time = seconds
            default:
                throw bad(offset + 1, FeatureRowParser.timestampColumn, "", "an ISO 8601 time or epoch seconds", "every entity row needs an event_timestamp")
            }
            rows.append(header.map { members[$0] ?? .null })
            times.append(time)
        }
        return EntityTable(header: header, rows: rows, times: times)
    }
}

/// A point-in-time correct training set: the entity rows, each with the service's features as
/// they were at the row's time.
public struct TrainingSet: Sendable {
    public var entityHeader: [String]
    public var entityRows: [[JSONValue]]
    public var featureNames: [String]
    /// Row-major: `entityRows.count` rows of `featureNames.count` values.
    public var values: [FeatureValue]

    public var rowCount: Int { entityRows.count }

    public func value(row: Int, feature: Int) -> FeatureValue { values[row * featureNames.count + feature] }

    public func csv() -> String {
        var out = CSV.line(entityHeader + featureNames) + "\n"
        out.reserveCapacity(rowCount * (entityHeader.count + featureNames.count) * 8)
        for row in 0..<rowCount {
            var fields = entityRows[row].map { $0 == .null ? "" : $0.templateText }
            for feature in 0..<featureNames.count { fields.append(value(row: row, feature: feature).csvText) }
            out += CSV.line(fields)
            out += "\n"
        }
        return out
    }

    /// JSON Lines, one object per row.
    public func jsonLines() -> String {
        var out = ""
        for row in 0..<rowCount {
            out += "{"
            var first = true
            for (name, cell) in zip(entityHeader, entityRows[row]) {
                if !first { out += "," }
                first = false
                FeatureValue.appendQuoted(name, to: &out)
                out += ":" + cell.compactJSON
            }
            for (index, name) in featureNames.enumerated() {
                if !first { out += "," }
                first = false
                FeatureValue.appendQuoted(name, to: &out)
                out += ":"
                value(row: row, feature: index).appendJSON(to: &out)
            }
            out += "}\n"
        }
        return out
    }
}

/// The point-in-time join: for every entity row and every feature of the service, the value
/// of the entity's latest row at or before the row's time, and within the view's ttl. A row
/// from after the entity row's time is never used, so training sets cannot leak the future.
public enum PointInTimeJoin {
    public static func join(
        entities: EntityTable, service: FeatureServiceSpec, registry: FeatureRegistry, histories: [String: ViewHistory]
    ) throws(FeatureError) -> TrainingSet {
        let views = service.viewsInOrder
        let featureNames = views.flatMap(\.features)
        var values = [FeatureValue](repeating: .null, count: entities.rows.count * featureNames.count)
        var column = 0
        for (viewName, features) in views {
            let view = try registry.view(viewName)
            let entity = try registry.entity(of: view)
            var keyColumns: [Int] = []
            for key in entity.joinKeys {
                guard let index = entities.header.firstIndex(of: key.name) else {
                    throw FeatureError.invalidRequest(
                        field: key.name,
                        message: "the entity rows lack join key column '\(key.name)' needed by feature view \(view.name) (columns: \(entities.header.joined(separator: ", ")))")
                }
                keyColumns.append(index)
            }
            let history = histories[viewName] ?? ViewHistory()
            let layout = FeatureLayout(features)
            let width = featureNames.count
            var parts = [String](repeating: "", count: keyColumns.count)
            for (rowIndex, row) in entities.rows.enumerated() {
                for (position, (key, columnIndex)) in zip(entity.joinKeys, keyColumns).enumerated() {
                    guard let text = EntityKey.text(of: row[columnIndex], type: key.type) else {
                        throw FeatureError.badRow(
                            FeatureRowError(
                                row: rowIndex + 1, column: key.name, value: row[columnIndex].templateText, expected: key.type.rawValue,
                                message: "not a valid \(key.type.rawValue) join key"))
                    }
                    parts[position] = text
                }
                let key = EntityKey.make(parts)
                guard let found = history.latest(entityKey: key, atOrBefore: entities.times[rowIndex], ttl: view.ttl) else { continue }
                history.withValues(at: found) { FeatureCodec.decode($0, layout: layout, into: &values, at: rowIndex * width + column) }
            }
            column += features.count
        }
        return TrainingSet(entityHeader: entities.header, entityRows: entities.rows, featureNames: featureNames, values: values)
    }
}
