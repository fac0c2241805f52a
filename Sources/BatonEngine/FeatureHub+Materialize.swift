import BatonCore
import BatonFeatures
import BatonStore
import Foundation
import GRDB
import Logging
import PostgresNIO

extension FeatureHub {
    /// Copies a view's rows with event times in `[from, to)` from its SQL source into the store,
    /// as one batch: every row is checked first, and a bad one stores nothing.
    public func materialize(view viewName: String, from: Date, to: Date, writer: FeatureWriter) async throws -> FeatureIngestResult {
        let parser = try parser(for: viewName)
        let view = parser.view
        guard let source = view.source else {
            throw FeatureError.source(view: viewName, message: "the view has no `source:`; add `source: {sqlite: PATH, table: NAME, timestamp_column: COLUMN}`")
        }
        guard from < to else {
            throw FeatureError.invalidRequest(field: "from", message: "--from must be before --to")
        }
        let keyColumns = parser.entity.joinKeys.map { source.column(for: $0.name) }
        let featureColumns = view.features.map { source.column(for: $0.name) }
        let columns = (keyColumns + [source.timestampColumn] + featureColumns)
        // Every identifier was checked by the parser (plain names only); quoted all the same.
        let select = "SELECT " + columns.map { "\"\($0)\"" }.joined(separator: ", ") + " FROM "
            + source.table.split(separator: ".").map { "\"\($0)\"" }.joined(separator: ".")
        let raw: [[FeatureValue]]
        switch source.database {
        case .sqlite(let path): raw = try readSQLite(path: path, select: select, time: source.timestampColumn, from: from, to: to, view: viewName)
        case .postgres(let url): raw = try await readPostgres(url: url, select: select, view: viewName)
        }
        let low = from.timeIntervalSince1970
        let high = to.timeIntervalSince1970
        var rows: [FeatureRow] = []
        let keyCount = keyColumns.count
        for (index, cells) in raw.enumerated() {
            let row = try parser.row(
                sqlKeys: Array(cells[0..<keyCount]), time: cells[keyCount], features: Array(cells[(keyCount + 1)...]), row: index + 1)
            if row.eventTime >= low && row.eventTime < high { rows.append(row) }
        }
        guard !rows.isEmpty else {
            return FeatureIngestResult(view: viewName, rows: 0, inserted: 0, overwritten: 0, entities: 0)
        }
        return try await write(view: viewName, rows: rows, writer: writer)
    }

    func readSQLite(path: String, select: String, time: String, from: Date, to: Date, view: String) throws -> [[FeatureValue]] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw FeatureError.source(view: view, message: "the SQLite source \(path) does not exist")
        }
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            return try queue.read { db in
                // Numeric times are filtered here; text times are parsed and filtered after.
                let sql = select + " WHERE typeof(\"\(time)\") = 'text' OR (\"\(time)\" >= ? AND \"\(time)\" < ?)"
                var result: [[FeatureValue]] = []
                let cursor = try Row.fetchCursor(db, sql: sql, arguments: [from.timeIntervalSince1970, to.timeIntervalSince1970])
                while let row = try cursor.next() {
                    var cells: [FeatureValue] = []
                    cells.reserveCapacity(row.count)
                    for index in 0..<row.count {
                        switch row[index] as DatabaseValue {
                        case let value where value.isNull: cells.append(.null)
                        default:
                            let value: DatabaseValue = row[index]
                            switch value.storage {
                            case .int64(let v): cells.append(.int(v))
                            case .double(let v): cells.append(.float(v))
                            case .string(let v): cells.append(.string(v))
                            case .blob: cells.append(.null)
                            case .null: cells.append(.null)
                            }
                        }
                    }
                    result.append(cells)
                }
                return result
            }
        } catch let error as FeatureError {
            throw error
        } catch {
            throw FeatureError.source(view: view, message: "cannot read the SQLite source \(path): \(error)")
        }
    }

    func readPostgres(url: String, select: String, view: String) async throws -> [[FeatureValue]] {
        var text = url
        if text.hasPrefix("$") {
            guard let value = ProcessInfo.processInfo.environment[String(text.dropFirst())] else {
                throw FeatureError.source(view: view, message: "the environment variable \(text.dropFirst()) is not set")
            }
            text = value
        }
        let location: PostgresLocation
        do {
            guard case .postgres(let parsed) = try StoreLocation(parsing: text) else {
                throw FeatureError.source(view: view, message: "the source is not a postgres:// URL")
            }
            location = parsed
        } catch let error as FeatureError {
            throw error
        } catch {
            throw FeatureError.source(view: view, message: "bad PostgreSQL URL: \(error)")
        }
        var queryLogger = logger
        queryLogger.logLevel = .warning
        do {
            // The URL's sslmode applies, as for Baton's own PostgreSQL store (libpq's meanings).
            let configuration = PostgresConnection.Configuration(
                host: location.host, port: location.port, username: location.user, password: location.password,
                database: location.database, tls: try PostgresStore.connectionTLS(location))
            // The store's deadline: an unreachable host fails the request instead of hanging it.
            guard let connection = try await PostgresStore.connect(configuration, within: .seconds(10), logger: queryLogger) else {
                throw FeatureError.source(
                    view: view, message: "no answer from the PostgreSQL source \(location.host):\(location.port) within 10 s")
            }
            defer { Task { try? await connection.close() } }
            var result: [[FeatureValue]] = []
            let rows = try await connection.query(PostgresQuery(unsafeSQL: select), logger: queryLogger)
            for try await row in rows {
                var cells: [FeatureValue] = []
                for cell in row { cells.append(Self.featureValue(cell)) }
                result.append(cells)
            }
            return result
        } catch let error as FeatureError {
            throw error
        } catch {
            throw FeatureError.source(view: view, message: "cannot read the PostgreSQL source \(location.host):\(location.port)/\(location.database): \(String(reflecting: error))")
        }
    }

    static func featureValue(_ cell: PostgresCell) -> FeatureValue {
        guard cell.bytes != nil else { return .null }
        switch cell.dataType {
        case .int2, .int4, .int8: return (try? cell.decode(Int64.self)).map { .int($0) } ?? .null
        case .float4, .float8: return (try? cell.decode(Double.self)).map { .float($0) } ?? .null
        case .numeric: return (try? cell.decode(Decimal.self)).map { .float(NSDecimalNumber(decimal: $0).doubleValue) } ?? .null
        case .bool: return (try? cell.decode(Bool.self)).map { .bool($0) } ?? .null
        case .timestamp, .timestamptz, .date: return (try? cell.decode(Date.self)).map { .float($0.timeIntervalSince1970) } ?? .null
        default: return (try? cell.decode(String.self)).map { .string($0) } ?? .null
        }
    }
}
