import BatonCore
import Foundation

/// A row checked against its view: entity key, event time and values in the view's order.
public struct FeatureRow: Sendable, Hashable {
    public var entityKey: String
    public var eventTime: Double
    public var values: [FeatureValue]

    public init(entityKey: String, eventTime: Double, values: [FeatureValue]) {
        self.entityKey = entityKey
        self.eventTime = eventTime
        self.values = values
    }
}

/// The text that identifies an entity in the stores: its join key values, in declared order.
public enum EntityKey {
    /// Separates join key values; a control character no key value may contain.
    static let separator: Character = "\u{1F}"

    public static func make(_ parts: [String]) -> String {
        parts.count == 1 ? parts[0] : parts.joined(separator: String(separator))
    }

    public static func parts(_ key: String) -> [String] {
        key.split(separator: separator, omittingEmptySubsequences: false).map(String.init)
    }

    /// The canonical text of one join key value, or why it does not fit the key's type.
    public static func text(of value: JSONValue, type: FeatureValueType) -> String? {
        switch (type, value) {
        case (.int, .number(let number)):
            guard number == number.rounded(), abs(number) < 9.2e18 else { return nil }
            return String(Int64(number))
        case (.int, .string(let text)):
            return Int64(text.trimmingCharacters(in: .whitespaces)).map { String($0) }
        case (.string, .string(let text)):
            return text.contains(separator) || text.isEmpty ? nil : text
        case (.string, .number(let number)):
            return number == number.rounded() && abs(number) < 9.2e18 ? String(Int64(number)) : "\(number)"
        default:
            return nil
        }
    }
}

/// Checks and converts incoming rows for one view. Every error names the row (1-based), the
/// column, the value and the expected type; the first bad row rejects the whole batch.
public struct FeatureRowParser: Sendable {
    public static let timestampColumn = "event_timestamp"

    public let view: FeatureViewSpec
    public let entity: EntitySpec
    let featureIndex: [String: Int]

    public init(view: FeatureViewSpec, entity: EntitySpec) {
        self.view = view
        self.entity = entity
        featureIndex = Dictionary(uniqueKeysWithValues: view.features.enumerated().map { ($1.name, $0) })
    }

    var expectedColumns: [String] { entity.joinKeys.map(\.name) + [Self.timestampColumn] + view.featureNames }

    func error(_ row: Int, _ column: String, _ value: String, _ expected: String, _ message: String) -> FeatureError {
        .badRow(FeatureRowError(row: row, column: column, value: value, expected: expected, message: message))
    }

    /// Rows as JSON objects (an API batch or a JSON Lines file). `firstRow` numbers them.
    public func rows(json items: [JSONValue], firstRow: Int = 1) throws(FeatureError) -> [FeatureRow] {
        var rows: [FeatureRow] = []
        rows.reserveCapacity(items.count)
        for (offset, item) in items.enumerated() {
            let number = firstRow + offset
            guard case .object(let members) = item else {
                throw error(number, "", String(item.compactJSON.prefix(80)), "a JSON object", "a row must be a JSON object of columns")
            }
            for key in members.keys where key != Self.timestampColumn && featureIndex[key] == nil && !entity.joinKeys.contains(where: { $0.name == key }) {
                throw error(number, key, String((members[key]?.compactJSON ?? "").prefix(80)), "one of \(expectedColumns.joined(separator: ", "))",
                            "unknown column '\(key)' for feature view \(view.name)" + (Suggest.closest(to: key, in: expectedColumns).map { "; did you mean '\($0)'?" } ?? ""))
            }
            var keyParts: [String] = []
            for key in entity.joinKeys {
                guard let value = members[key.name], value != .null else {
                    throw error(number, key.name, "", key.type.rawValue, "the join key is missing")
                }
                guard let text = EntityKey.text(of: value, type: key.type) else {
                    throw error(number, key.name, String(value.templateText.prefix(80)), key.type.rawValue, "not a valid \(key.type.rawValue) join key")
                }
                keyParts.append(text)
            }
            let time: Double
            switch members[Self.timestampColumn] {
            case .string(let text)?:
                guard let parsed = FeatureTime.parse(text) else {
                    throw error(number, Self.timestampColumn, text, "an ISO 8601 time or epoch seconds", "not a timestamp")
                }
                time = parsed
            case .number(let seconds)?: time = seconds
            case let other:
                throw error(number, Self.timestampColumn, other.map { String($0.compactJSON.prefix(80)) } ?? "", "an ISO 8601 time or epoch seconds",
                            other == nil ? "every row needs an event_timestamp" : "not a timestamp")
            }
            var values = [FeatureValue](repeating: .null, count: view.features.count)
            for (index, feature) in view.features.enumerated() {
                guard let value = members[feature.name] else { continue }
                values[index] = try convert(value, feature: feature, row: number)
            }
            rows.append(FeatureRow(entityKey: EntityKey.make(keyParts), eventTime: time, values: values))
        }
        return rows
    }

    func convert(_ value: JSONValue, feature: FeatureSpec, row: Int) throws(FeatureError) -> FeatureValue {
        switch (feature.type, value) {
        case (_, .null): return .null
        case (.int, .number(let number)):
            guard number == number.rounded(), abs(number) < 9.2e18 else {
                throw error(row, feature.name, "\(number)", "int", "not a whole number")
            }
            return .int(Int64(number))
        case (.float, .number(let number)): return .float(number)
        case (.string, .string(let text)): return .string(text)
        case (.bool, .bool(let flag)): return .bool(flag)
        default:
            throw error(row, feature.name, String(value.templateText.prefix(80)), feature.type.rawValue, "a \(value.kindName) where \(feature.type.rawValue) is expected")
        }
    }

    /// Converts one CSV cell (empty is null).
    func convert(cell: String, type: FeatureValueType, column: String, row: Int) throws(FeatureError) -> FeatureValue {
        if cell.isEmpty { return .null }
        switch type {
        case .int:
            guard let value = Int64(cell.trimmingCharacters(in: .whitespaces)) else { throw error(row, column, cell, "int", "not a whole number") }
            return .int(value)
        case .float:
            guard let value = Double(cell.trimmingCharacters(in: .whitespaces)) else { throw error(row, column, cell, "float", "not a number") }
            return .float(value)
        case .string: return .string(cell)
        case .bool:
            switch cell.trimmingCharacters(in: .whitespaces).lowercased() {
            case "true", "1", "yes": return .bool(true)
            case "false", "0", "no": return .bool(false)
            default: throw error(row, column, cell, "bool", "not true or false")
            }
        }
    }

    /// Rows of a CSV file with a header line; rows are numbered by their line in the file.
    public func rows(csv text: String) throws(FeatureError) -> [FeatureRow] {
        let records = CSV.parse(text)
        guard let header = records.first?.fields else {
            throw FeatureError.invalidRequest(field: "file", message: "the CSV file is empty; it needs a header line with \(expectedColumns.joined(separator: ","))")
        }
        var positions: [Int?] = []
        var keyPositions: [Int] = []
        var timePosition: Int?
        for key in entity.joinKeys {
            guard let position = header.firstIndex(of: key.name) else {
                throw error(1, key.name, "", key.type.rawValue, "the header lacks the join key column")
            }
            keyPositions.append(position)
        }
        timePosition = header.firstIndex(of: Self.timestampColumn)
        guard let timePosition else {
            throw error(1, Self.timestampColumn, "", "an ISO 8601 time or epoch seconds", "the header lacks the event_timestamp column")
        }
        for column in header where column != Self.timestampColumn && featureIndex[column] == nil && !entity.joinKeys.contains(where: { $0.name == column }) {
            throw error(1, column, column, "one of \(expectedColumns.joined(separator: ", "))",
                        "unknown column '\(column)' for feature view \(view.name)" + (Suggest.closest(to: column, in: expectedColumns).map { "; did you mean '\($0)'?" } ?? ""))
        }
        positions = view.features.map { header.firstIndex(of: $0.name) }
        var rows: [FeatureRow] = []
        rows.reserveCapacity(records.count - 1)
        for record in records.dropFirst() {
            let fields = record.fields
            let line = record.line
            if fields.count == 1 && fields[0].isEmpty { continue }
            guard fields.count == header.count else {
                throw error(line, "", "\(fields.count) fields", "\(header.count) fields", "the row has \(fields.count) fields, the header \(header.count)")
            }
            var keyParts: [String] = []
            for (key, position) in zip(entity.joinKeys, keyPositions) {
                let cell = fields[position]
                guard !cell.isEmpty else { throw error(line, key.name, "", key.type.rawValue, "the join key is missing") }
                guard let text = EntityKey.text(of: .string(cell), type: key.type) else {
                    throw error(line, key.name, cell, key.type.rawValue, "not a valid \(key.type.rawValue) join key")
                }
                keyParts.append(text)
            }
            guard let time = FeatureTime.parse(fields[timePosition]) else {
                throw error(line, Self.timestampColumn, fields[timePosition], "an ISO 8601 time or epoch seconds", "not a timestamp")
            }
            var values = [FeatureValue](repeating: .null, count: view.features.count)
            for (index, feature) in view.features.enumerated() {
                guard let position = positions[index] else { continue }
                values[index] = try convert(cell: fields[position], type: feature.type, column: feature.name, row: line)
            }
            rows.append(FeatureRow(entityKey: EntityKey.make(keyParts), eventTime: time, values: values))
        }
        return rows
    }

    /// Rows of a JSON Lines file (one object per line), numbered by line.
    public func rows(jsonLines text: String) throws(FeatureError) -> [FeatureRow] {
        var rows: [FeatureRow] = []
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.isEmpty { continue }
            let value: JSONValue
            do {
                value = try JSONValue.parse(trimmed)
            } catch {
                throw self.error(lineNumber, "", String(trimmed.prefix(80)), "a JSON object", "not valid JSON")
            }
            rows += try self.rows(json: [value], firstRow: lineNumber)
        }
        return rows
    }

    /// A value of a SQL source column, converted to the feature's type.
    public func convert(sql value: FeatureValue, type: FeatureValueType, column: String, row: Int) throws(FeatureError) -> FeatureValue {
        switch (type, value) {
        case (_, .null): return .null
        case (.int, .int), (.float, .float), (.string, .string), (.bool, .bool): return value
        case (.float, .int(let v)): return .float(Double(v))
        case (.int, .float(let v)) where v == v.rounded() && abs(v) < 9.2e18: return .int(Int64(v))
        case (.bool, .int(let v)) where v == 0 || v == 1: return .bool(v == 1)
        case (_, .string(let text)): return try convert(cell: text, type: type, column: column, row: row)
        case (.string, .int(let v)): return .string(String(v))
        default:
            throw error(row, column, value.csvText, type.rawValue, "the source column does not hold \(type.rawValue) values")
        }
    }

    /// A source row (join key values, time and feature values as read from SQL) as a row.
    public func row(sqlKeys: [FeatureValue], time: FeatureValue, features: [FeatureValue], row number: Int) throws(FeatureError) -> FeatureRow {
        var keyParts: [String] = []
        for (key, value) in zip(entity.joinKeys, sqlKeys) {
            let json: JSONValue
            switch value {
            case .int(let v): json = .number(Double(v))
            case .string(let v): json = .string(v)
            case .float(let v): json = .number(v)
            default: throw error(number, key.name, value.csvText, key.type.rawValue, "the join key is missing or not \(key.type.rawValue)")
            }
            if case .int(let v) = value, key.type == .int {
                keyParts.append(String(v))
                continue
            }
            guard let text = EntityKey.text(of: json, type: key.type) else {
                throw error(number, key.name, value.csvText, key.type.rawValue, "not a valid \(key.type.rawValue) join key")
            }
            keyParts.append(text)
        }
        let seconds: Double
        switch time {
        case .int(let v): seconds = Double(v)
        case .float(let v): seconds = v
        case .string(let text):
            guard let parsed = FeatureTime.parse(text) else {
                throw error(number, Self.timestampColumn, text, "an ISO 8601 time or epoch seconds", "not a timestamp")
            }
            seconds = parsed
        default: throw error(number, Self.timestampColumn, time.csvText, "an ISO 8601 time or epoch seconds", "the event time is missing")
        }
        var values: [FeatureValue] = []
        for (feature, value) in zip(view.features, features) {
            values.append(try convert(sql: value, type: feature.type, column: feature.name, row: number))
        }
        return FeatureRow(entityKey: EntityKey.make(keyParts), eventTime: seconds, values: values)
    }
}

/// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks.
public enum CSV {
    public struct Record: Sendable {
        public var fields: [String]
        /// The 1-based line the record starts on.
        public var line: Int
    }

    public static func parse(_ text: String) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var inQuotes = false
        var line = 1
        var recordLine = 1
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        func next() -> Unicode.Scalar? {
            if let scalar = pending {
                pending = nil
                return scalar
            }
            return iterator.next()
        }
        var sawAny = false
        while let scalar = next() {
            sawAny = true
            if inQuotes {
                if scalar == "\"" {
                    if let following = next() {
                        if following == "\"" { field.unicodeScalars.append("\"") } else {
                            inQuotes = false
                            pending = following
                        }
                    } else {
                        inQuotes = false
                    }
                } else {
                    if scalar == "\n" { line += 1 }
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"" where field.isEmpty: inQuotes = true
            case ",":
                fields.append(field)
                field = ""
            case "\r": continue
            case "\n":
                fields.append(field)
                records.append(Record(fields: fields, line: recordLine))
                fields = []
                field = ""
                line += 1
                recordLine = line
            default: field.unicodeScalars.append(scalar)
            }
        }
        if sawAny && (!field.isEmpty || !fields.isEmpty) {
            fields.append(field)
            records.append(Record(fields: fields, line: recordLine))
        }
        return records
    }

    /// One CSV line, quoting fields that need it.
    public static func line(_ fields: [String]) -> String {
        fields.map { field in
            field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
        }.joined(separator: ",")
    }
}
