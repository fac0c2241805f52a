import BatonStore
import Foundation

// The JSON documents kept in `registry_objects.document`, one type per kind. Fields the store
// indexes (id, parent, name, lifecycle, times, the Baton run) live in the row, not here.

struct ExperimentDocument: Codable, Sendable, Hashable {
    var artifactLocation: String
    var tags: [String: String] = [:]
}

struct RunDocument: Codable, Sendable, Hashable {
    var runName: String
    var userID: String
    var status: String
    var startTime: Int64
    var endTime: Int64?
    var artifactURI: String
    /// The Baton task that created the run.
    var origin: OriginDocument?
    /// Logged models linked as this run's outputs.
    var outputModels: [String] = []
    /// Datasets the client logged as inputs (`runs/log-inputs`), as given.
    var inputs: [String] = []
}

struct OriginDocument: Codable, Sendable, Hashable {
    var runID: Int64
    var pipeline: String?
    var task: String
    var attempt: Int

    init(_ origin: TaskOrigin) {
        runID = origin.runID
        pipeline = origin.pipeline
        task = origin.task
        attempt = origin.attempt
    }

    var origin: TaskOrigin { TaskOrigin(runID: runID, pipeline: pipeline, task: task, attempt: attempt) }
}

struct LoggedModelDocument: Codable, Sendable, Hashable {
    var experimentID: String
    var name: String
    var artifactURI: String
    var status: String
    var statusMessage: String?
    var sourceRunID: String?
    var modelType: String?
    var creatorID: String?
    var tags: [String: String] = [:]
    var params: [String: String] = [:]
}

struct RegisteredModelDocument: Codable, Sendable, Hashable {
    var description: String = ""
    var tags: [String: String] = [:]
    /// alias -> version number.
    var aliases: [String: String] = [:]
    /// The number the next version gets; numbers are never reused, even after a delete.
    var nextVersion: Int = 1
    var userID: String?
}

struct ModelVersionDocument: Codable, Sendable, Hashable {
    var version: Int
    var description: String = ""
    var source: String
    var runID: String?
    var runLink: String?
    var modelID: String?
    var status: String = "READY"
    var currentStage: String = "None"
    var tags: [String: String] = [:]
    var userID: String?
    var origin: OriginDocument?
}

enum DocumentCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
    static let decoder = JSONDecoder()

    static func encode<T: Encodable>(_ value: T) -> String {
        // These documents hold only strings, numbers and collections of them: encoding cannot fail.
        (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
    }

    static func decode<T: Decodable>(_ type: T.Type, _ object: RegistryObject) throws -> T {
        do {
            return try decoder.decode(type, from: Data(object.document.utf8))
        } catch {
            throw StoreError.corruptRow(table: "registry_objects", detail: "\(object.kind.rawValue) \(object.id): \(error)")
        }
    }
}
