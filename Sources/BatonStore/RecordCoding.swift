import BatonCore
import Foundation
import Synchronization

/// How records are written to and read from a store's columns: JSON text with sorted keys and
/// times as epoch seconds. Every backend conforms, so a record reads back identically whichever
/// database holds it.
protocol RecordCoding {}

/// Decoded definitions and params, shared by every store of the process.
///
/// Every run stores the definition it runs with, and most runs of a pipeline share one.
/// Decoding it is the dominant cost of listing runs, so decoded definitions are kept by their
/// exact text (bounded; cleared when full). Params repeat across runs too (usually the defaults).
enum RecordCodingCache {
    static let specs = Mutex<[String: PipelineSpec]>([:])
    static let params = Mutex<[String: [String: JSONValue]]>([:])
    static let limit = 256
}

extension RecordCoding {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .secondsSince1970
        return String(decoding: (try? encoder.encode(value)) ?? Data("null".utf8), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, table: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        do {
            return try decoder.decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError.corruptRow(table: table, detail: "\(error)")
        }
    }

    static func date(_ value: Double?) -> Date? { value.map { Date(timeIntervalSince1970: $0) } }

    static func decodeParams(_ text: String) throws -> [String: JSONValue] {
        if text == "{}" { return [:] }
        if let cached = RecordCodingCache.params.withLock({ $0[text] }) { return cached }
        let params = try decode([String: JSONValue].self, text, table: "runs")
        RecordCodingCache.params.withLock { cache in
            if cache.count >= RecordCodingCache.limit { cache.removeAll(keepingCapacity: true) }
            cache[text] = params
        }
        return params
    }

    static func decodeSpec(_ text: String, table: String = "runs") throws -> PipelineSpec {
        if let cached = RecordCodingCache.specs.withLock({ $0[text] }) { return cached }
        let spec = try decode(PipelineSpec.self, text, table: table)
        RecordCodingCache.specs.withLock { cache in
            if cache.count >= RecordCodingCache.limit { cache.removeAll(keepingCapacity: true) }
            cache[text] = spec
        }
        return spec
    }

    /// Tags as one canonical text: JSON with sorted keys, so equal tag sets are equal strings
    /// and a metric series is simply `(name, tags)`.
    static func canonicalTags(_ tags: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(tags)) ?? Data("{}".utf8), as: UTF8.self)
    }
}

/// Decodes each distinct tag text once per query; a series' points all share one.
struct TagCache: RecordCoding {
    var decoded: [String: [String: String]] = [:]

    mutating func tags(_ text: String) throws -> [String: String] {
        if let tags = decoded[text] { return tags }
        let tags = try Self.decode([String: String].self, text, table: "metric_points")
        decoded[text] = tags
        return tags
    }
}
