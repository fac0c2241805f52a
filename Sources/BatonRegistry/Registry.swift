import BatonCore
import BatonStore
import Foundation

/// Experiment tracking and the model registry over the store, with MLflow's rules: ids, unique
/// names, immutable params, latest metric values, version numbers never reused, aliases.
///
/// Every change is committed before it is answered. Objects are updated compare-and-set on
/// their revision, so servers sharing a PostgreSQL database never lose each other's writes.
public final class Registry: Sendable {
    public let store: any Store
    public let artifacts: ArtifactStore
    let writer: RunDataWriter
    let now: @Sendable () -> Date

    /// The id of the experiment runs go to when the client names none (MLflow's "Default").
    public static let defaultExperimentID = "0"

    public init(store: any Store, artifactRoot: String, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.artifacts = ArtifactStore(root: artifactRoot)
        self.writer = RunDataWriter(store: store)
        self.now = now
    }

    var nowMillis: Int64 { Int64((now().timeIntervalSince1970 * 1000).rounded()) }

    static func newHexID() -> String {
        UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    }

    // MARK: - Compare-and-set updates

    /// Reads the object, applies `change` and writes it back, retrying when another writer got
    /// there first. `change` returns false to leave the object as it is.
    @discardableResult
    func modify(
        _ kind: RegistryKind, id: String, missing: @autoclosure () -> MLflowError,
        _ change: (inout RegistryObject) throws -> Bool
    ) async throws -> RegistryObject {
        for _ in 0..<50 {
            guard var object = try await store.registryObject(kind, id: id) else { throw missing() }
            guard try change(&object) else { return object }
            object.updatedAt = max(object.updatedAt, nowMillis)
            switch try await store.updateRegistryObject(object) {
            case .updated(let revision):
                object.revision = revision
                return object
            case .stale: continue
            case .missing: throw missing()
            case .nameTaken: throw MLflowError.alreadyExists("\(kind.label) '\(object.name ?? "")' already exists.")
            }
        }
        throw MLflowError(
            code: "TEMPORARILY_UNAVAILABLE", message: "\(kind.label) \(id) changed under this request 50 times in a row; try again",
            status: 409)
    }

    // MARK: - Experiments

    func ensureDefaultExperiment() async throws {
        guard try await store.registryObject(.experiment, id: Self.defaultExperimentID) == nil else { return }
        let stamp = nowMillis
        let document = ExperimentDocument(artifactLocation: "mlflow-artifacts:/0")
        _ = try await store.insertRegistryObject(
            RegistryObject(
                kind: .experiment, id: Self.defaultExperimentID, name: "Default", createdAt: stamp, updatedAt: stamp,
                document: DocumentCoding.encode(document)))
    }

    public func createExperiment(name: String, artifactLocation: String?, tags: [(key: String, value: String)]) async throws
        -> String
    {
        try Limits.checkName(name, field: "name")
        try await ensureDefaultExperiment()
        if let existing = try await store.registryObject(.experiment, name: name) {
            let state = existing.lifecycle == "deleted" ? " in deleted state" : ""
            throw MLflowError.alreadyExists("Experiment '\(name)' already exists\(state).")
        }
        let id = String(try await store.nextRegistryNumber("experiment"))
        let stamp = nowMillis
        var document = ExperimentDocument(artifactLocation: artifactLocation ?? "mlflow-artifacts:/\(id)")
        for tag in tags { document.tags[tag.key] = tag.value }
        switch try await store.insertRegistryObject(
            RegistryObject(
                kind: .experiment, id: id, name: name, createdAt: stamp, updatedAt: stamp, document: DocumentCoding.encode(document)))
        {
        case .inserted: return id
        case .nameTaken: throw MLflowError.alreadyExists("Experiment '\(name)' already exists.")
        case .idTaken: throw MLflowError.invalidState("experiment id \(id) is taken; the experiment counter is behind")
        }
    }

    func experimentObject(_ id: String) async throws -> RegistryObject {
        if id == Self.defaultExperimentID { try await ensureDefaultExperiment() }
        guard let object = try await store.registryObject(.experiment, id: id) else {
            throw MLflowError.notFound("No Experiment with id=\(id) exists")
        }
        return object
    }

    public func experiment(id: String) async throws -> JSONValue {
        try experimentJSON(try await experimentObject(id))
    }

    public func experiment(name: String) async throws -> JSONValue {
        if name == "Default" { try await ensureDefaultExperiment() }
        guard let object = try await store.registryObject(.experiment, name: name) else {
            throw MLflowError.notFound("Could not find experiment with name '\(name)'")
        }
        return try experimentJSON(object)
    }

    public func searchExperiments(filter: String?, viewType: String?, orderBy: [String], maxResults: Int, pageToken: String?)
        async throws -> (experiments: [JSONValue], next: String?)
    {
        try await ensureDefaultExperiment()
        let parsed = try SearchFilter.parse(filter)
        let orders = try SearchOrder.parse(orderBy)
        let objects = try await store.registryObjects(.experiment, parents: nil).filter { Self.viewMatches($0.lifecycle, viewType) }
        var rows: [(RegistryObject, ExperimentDocument)] = []
        for object in objects {
            let document = try DocumentCoding.decode(ExperimentDocument.self, object)
            let matches = parsed.matches { key in Self.experimentValue(object, document, key) }
            if matches { rows.append((object, document)) }
        }
        let sorted = SearchOrder.sort(rows, by: orders, lookup: { Self.experimentValue($0.0, $0.1, $1) }) { a, b in
            // MLflow's default: newest first.
            a.0.createdAt != b.0.createdAt ? a.0.createdAt > b.0.createdAt : (Int(a.0.id) ?? 0) > (Int(b.0.id) ?? 0)
        }
        let page = try PageToken.page(sorted, token: pageToken, maxResults: maxResults)
        return (try page.items.map { try experimentJSON($0.0) }, page.next)
    }

    static func experimentValue(_ object: RegistryObject, _ document: ExperimentDocument, _ key: SearchKey) -> SearchValue? {
        switch key.entity {
        case .tag: return document.tags[key.key].map(SearchValue.text)
        case .attribute:
            switch key.key {
            case "name": return object.name.map(SearchValue.text)
            case "experiment_id", "id": return .text(object.id)
            case "creation_time": return .number(Double(object.createdAt))
            case "last_update_time": return .number(Double(object.updatedAt))
            case "lifecycle_stage": return .text(object.lifecycle)
            default: return nil
            }
        default: return nil
        }
    }

    static func viewMatches(_ lifecycle: String, _ viewType: String?) -> Bool {
        switch (viewType ?? "ACTIVE_ONLY").uppercased() {
        case "DELETED_ONLY": return lifecycle == "deleted"
        case "ALL": return true
        default: return lifecycle == "active"
        }
    }

    public func setExperimentLifecycle(id: String, deleted: Bool) async throws {
        if id == Self.defaultExperimentID && deleted {
            throw MLflowError.invalidParameter("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
        }
        _ = try await experimentObject(id)
        try await modify(.experiment, id: id, missing: .notFound("No Experiment with id=\(id) exists")) { object in
            guard deleted == (object.lifecycle == "active") else {
                throw MLflowError.invalidParameter(
                    "Cannot \(deleted ? "delete" : "restore") experiment \(id): it is \(object.lifecycle == "active" ? "active" : "deleted") already.")
            }
            object.lifecycle = deleted ? "deleted" : "active"
            return true
        }
        // As in MLflow, deleting an experiment deletes its runs (softly, restorable with it).
        for run in try await store.registryObjects(.run, parents: [id]) {
            try await modify(.run, id: run.id, missing: .notFound("run \(run.id)")) { object in
                let target = deleted ? "deleted" : "active"
                guard object.lifecycle != target else { return false }
                object.lifecycle = target
                return true
            }
        }
    }

    public func renameExperiment(id: String, newName: String) async throws {
        try Limits.checkName(newName, field: "new_name")
        _ = try await experimentObject(id)
        try await modify(.experiment, id: id, missing: .notFound("No Experiment with id=\(id) exists")) { object in
            guard object.lifecycle == "active" else {
                throw MLflowError.invalidParameter("Cannot rename a non-active experiment.")
            }
            object.name = newName
            return true
        }
    }

    public func setExperimentTag(id: String, key: String, value: String?) async throws {
        try Limits.checkName(key, field: "key")
        if let value { try Limits.checkValue(value, field: "value", max: Limits.tagValue) }
        _ = try await experimentObject(id)
        try await modify(.experiment, id: id, missing: .notFound("No Experiment with id=\(id) exists")) { object in
            var document = try DocumentCoding.decode(ExperimentDocument.self, object)
            if let value {
                document.tags[key] = value
            } else {
                guard document.tags.removeValue(forKey: key) != nil else {
                    throw MLflowError.notFound("No tag with name: \(key) in experiment \(id).")
                }
            }
            object.document = DocumentCoding.encode(document)
            return true
        }
    }

    func experimentJSON(_ object: RegistryObject) throws -> JSONValue {
        let document = try DocumentCoding.decode(ExperimentDocument.self, object)
        return .object([
            "experiment_id": .string(object.id),
            "name": .string(object.name ?? ""),
            "artifact_location": .string(document.artifactLocation),
            "lifecycle_stage": .string(object.lifecycle),
            "creation_time": .number(Double(object.createdAt)),
            "last_update_time": .number(Double(object.updatedAt)),
            "tags": Self.tagList(document.tags),
        ])
    }

    static func tagList(_ tags: [String: String]) -> JSONValue {
        .array(tags.keys.sorted().map { .object(["key": .string($0), "value": .string(tags[$0] ?? "")]) })
    }
}

extension RegistryKind {
    var label: String {
        switch self {
        case .experiment: return "Experiment"
        case .run: return "Run"
        case .loggedModel: return "Logged model"
        case .registeredModel: return "Registered Model"
        case .modelVersion: return "Model version"
        }
    }
}

/// MLflow's bounds on names and values, checked before anything is stored.
enum Limits {
    static let name = 250
    static let paramValue = 6000
    static let tagValue = 8000
    static let batchMetrics = 1000
    static let batchParams = 100
    static let batchTags = 100

    static func checkName(_ value: String, field: String) throws(MLflowError) {
        guard !value.isEmpty else { throw .missing(field) }
        guard value.count <= name else {
            throw .invalidParameter("'\(field)' is \(value.count) characters long; the limit is \(name).")
        }
    }

    static func checkValue(_ value: String, field: String, max: Int) throws(MLflowError) {
        guard value.count <= max else {
            throw .invalidParameter("'\(field)' is \(value.count) characters long; the limit is \(max).")
        }
    }
}
