import BatonCore
import Foundation

/// The type of a feature or join key.
public enum FeatureValueType: String, Sendable, Hashable, Codable, CaseIterable {
    case int, float, string, bool
}

/// One column of an entity's key.
public struct JoinKeySpec: Sendable, Hashable, Codable {
    public var name: String
    public var type: FeatureValueType

    public init(name: String, type: FeatureValueType) {
        self.name = name
        self.type = type
    }
}

/// What features describe (a customer, a product): named by its join keys.
public struct EntitySpec: Sendable, Hashable, Codable {
    public var name: String
    public var joinKeys: [JoinKeySpec]
    public var description: String?
    public var sourceFile: String?
    public var line: Int

    public init(name: String, joinKeys: [JoinKeySpec], description: String? = nil, sourceFile: String? = nil, line: Int = 0) {
        self.name = name
        self.joinKeys = joinKeys
        self.description = description
        self.sourceFile = sourceFile
        self.line = line
    }
}

/// One feature of a view.
public struct FeatureSpec: Sendable, Hashable, Codable {
    public var name: String
    public var type: FeatureValueType
    public var description: String?

    public init(name: String, type: FeatureValueType, description: String? = nil) {
        self.name = name
        self.type = type
        self.description = description
    }
}

/// A SQL table a view can be materialized from.
public struct FeatureSourceSpec: Sendable, Hashable, Codable {
    public enum Database: Sendable, Hashable, Codable {
        /// A SQLite file (absolute, resolved against the definition file's folder).
        case sqlite(path: String)
        /// A `postgres://` URL.
        case postgres(url: String)
    }

    public var database: Database
    public var table: String
    /// The column with each row's event time (epoch seconds or ISO 8601 text).
    public var timestampColumn: String
    /// Join key name to source column, when they differ.
    public var columns: [String: String]

    public init(database: Database, table: String, timestampColumn: String, columns: [String: String] = [:]) {
        self.database = database
        self.table = table
        self.timestampColumn = timestampColumn
        self.columns = columns
    }

    /// The source column holding a join key or feature.
    public func column(for name: String) -> String { columns[name] ?? name }
}

/// A table of features about one entity, each row valid from its event time.
public struct FeatureViewSpec: Sendable, Hashable, Codable {
    public var name: String
    public var entity: String
    public var features: [FeatureSpec]
    /// How long a value stays valid after its event time; nil keeps it valid forever.
    public var ttl: Double?
    public var owner: String?
    public var description: String?
    public var source: FeatureSourceSpec?
    /// The view's freshness SLA as a catalog dataset (seconds since the last write).
    public var freshness: Double?
    /// The share of time the view should be fresh (its catalog dataset's availability target).
    public var availability: Double?
    public var schemaVersion: String?
    public var sourceFile: String?
    public var line: Int

    public init(
        name: String, entity: String, features: [FeatureSpec], ttl: Double? = nil, owner: String? = nil,
        description: String? = nil, source: FeatureSourceSpec? = nil, freshness: Double? = nil, schemaVersion: String? = nil,
        sourceFile: String? = nil, line: Int = 0
    ) {
        self.name = name
        self.entity = entity
        self.features = features
        self.ttl = ttl
        self.owner = owner
        self.description = description
        self.source = source
        self.freshness = freshness
        self.schemaVersion = schemaVersion
        self.sourceFile = sourceFile
        self.line = line
    }

    public var featureNames: [String] { features.map(\.name) }

    /// The view as a catalog dataset, so contracts, SLA alerts and lineage cover it.
    public var dataset: DatasetSpec {
        DatasetSpec(
            name: name, owner: owner, description: description ?? "Feature view of \(entity)",
            schemaVersion: schemaVersion, freshness: freshness, availability: availability, sourceFile: sourceFile)
    }
}

/// A feature of a view, as a service names it.
public struct FeatureReference: Sendable, Hashable, Codable, CustomStringConvertible {
    public var view: String
    public var feature: String

    public init(view: String, feature: String) {
        self.view = view
        self.feature = feature
    }

    public var description: String { "\(view):\(feature)" }
}

/// The named group of features a model reads, for training sets and online lookups.
public struct FeatureServiceSpec: Sendable, Hashable, Codable {
    public var name: String
    public var features: [FeatureReference]
    public var description: String?
    public var owner: String?
    /// Models (or pipelines) that read this service, for lineage.
    public var models: [String]
    public var sourceFile: String?
    public var line: Int

    public init(
        name: String, features: [FeatureReference], description: String? = nil, owner: String? = nil,
        models: [String] = [], sourceFile: String? = nil, line: Int = 0
    ) {
        self.name = name
        self.features = features
        self.description = description
        self.owner = owner
        self.models = models
        self.sourceFile = sourceFile
        self.line = line
    }

    /// The views the service reads, in first-mention order, each with its features.
    public var viewsInOrder: [(view: String, features: [String])] {
        var order: [String] = []
        var byView: [String: [String]] = [:]
        for reference in features {
            if byView[reference.view] == nil { order.append(reference.view) }
            byView[reference.view, default: []].append(reference.feature)
        }
        return order.map { ($0, byView[$0] ?? []) }
    }
}

/// Every definition from a pipelines folder, checked for consistency.
public struct FeatureRegistry: Sendable, Hashable {
    public var entities: [String: EntitySpec]
    public var views: [String: FeatureViewSpec]
    public var services: [String: FeatureServiceSpec]
    /// Names declared but left out for their errors: a running server keeps their last good
    /// definitions, as it keeps a broken pipeline file's last good version.
    public var rejected: Set<String> = []

    public init(entities: [String: EntitySpec] = [:], views: [String: FeatureViewSpec] = [:], services: [String: FeatureServiceSpec] = [:]) {
        self.entities = entities
        self.views = views
        self.services = services
    }

    /// This registry, with the last good definitions (from `previous`) of everything it left
    /// out for errors. A kept view keeps its entity.
    public func keepingLastGood(of previous: FeatureRegistry) -> FeatureRegistry {
        var merged = self
        for name in rejected {
            if merged.views[name] == nil, let view = previous.views[name] {
                merged.views[name] = view
                if merged.entities[view.entity] == nil { merged.entities[view.entity] = previous.entities[view.entity] }
            }
            if merged.services[name] == nil, let service = previous.services[name] { merged.services[name] = service }
            if merged.entities[name] == nil, let entity = previous.entities[name] { merged.entities[name] = entity }
        }
        return merged
    }

    public var isEmpty: Bool { entities.isEmpty && views.isEmpty && services.isEmpty }

    /// The view, or an error naming the closest known one.
    public func view(_ name: String) throws(FeatureError) -> FeatureViewSpec {
        guard let view = views[name] else {
            throw FeatureError.unknown(kind: "feature view", name: name, known: views.keys.sorted())
        }
        return view
    }

    public func service(_ name: String) throws(FeatureError) -> FeatureServiceSpec {
        guard let service = services[name] else {
            throw FeatureError.unknown(kind: "feature service", name: name, known: services.keys.sorted())
        }
        return service
    }

    public func entity(of view: FeatureViewSpec) throws(FeatureError) -> EntitySpec {
        guard let entity = entities[view.entity] else {
            throw FeatureError.unknown(kind: "entity", name: view.entity, known: entities.keys.sorted())
        }
        return entity
    }

    /// The join keys a service's lookups need: the union over its views' entities, in order.
    public func joinKeys(of service: FeatureServiceSpec) throws(FeatureError) -> [JoinKeySpec] {
        var keys: [JoinKeySpec] = []
        for (viewName, _) in service.viewsInOrder {
            for key in try entity(of: try view(viewName)).joinKeys where !keys.contains(where: { $0.name == key.name }) {
                keys.append(key)
            }
        }
        return keys
    }
}

/// Why a feature store operation was refused; each case says what to fix.
public enum FeatureError: Error, Sendable, Hashable, CustomStringConvertible {
    case unknown(kind: String, name: String, known: [String])
    /// A row broke the view's schema: the batch is rejected whole.
    case badRow(FeatureRowError)
    case batchTooLarge(rows: Int, limit: Int)
    case invalidRequest(field: String, message: String)
    case source(view: String, message: String)

    public var description: String {
        switch self {
        case .unknown(let kind, let name, let known):
            var text = "no \(kind) named '\(name)'"
            if let close = Suggest.closest(to: name, in: known) {
                text += "; did you mean '\(close)'?"
            } else if !known.isEmpty {
                text += " (known: \(known.prefix(20).joined(separator: ", ")))"
            } else {
                text += "; declare it in a YAML file with `entities:`, `feature_views:` or `feature_services:`"
            }
            return text
        case .badRow(let error): return error.description
        case .batchTooLarge(let rows, let limit):
            return "the batch has \(rows) rows, over the limit of \(limit); split it into batches of at most \(limit) rows"
        case .invalidRequest(_, let message): return message
        case .source(let view, let message): return "cannot materialize \(view): \(message)"
        }
    }

    /// The field the error is about, for API error bodies.
    public var field: String? {
        switch self {
        case .unknown(let kind, _, _): return kind.replacingOccurrences(of: " ", with: "_")
        case .badRow(let error): return error.column
        case .batchTooLarge: return "rows"
        case .invalidRequest(let field, _): return field
        case .source: return "source"
        }
    }
}

/// A row that does not fit its view: which row (1-based, as in the file or batch), which column,
/// the value as given and the type expected.
public struct FeatureRowError: Error, Sendable, Hashable, CustomStringConvertible {
    public var row: Int
    public var column: String
    public var value: String
    public var expected: String
    public var message: String

    public init(row: Int, column: String, value: String, expected: String, message: String) {
        self.row = row
        self.column = column
        self.value = value
        self.expected = expected
        self.message = message
    }

    public var description: String {
        "row \(row), column \(column): \(message) (value: \(value.isEmpty ? "empty" : value), expected: \(expected)); the batch was rejected and nothing was stored"
    }
}
