import BatonCore
import Foundation

/// A published event. `id` is the publisher's de-duplication key: the same id is stored once.
public struct EventRecord: Sendable, Hashable, Codable {
    /// Order of arrival, assigned by the store.
    public var seq: Int64
    public var id: String
    public var name: String
    public var payload: JSONValue
    public var source: String?
    public var createdAt: Date

    public init(seq: Int64 = 0, id: String, name: String, payload: JSONValue, source: String?, createdAt: Date) {
        self.seq = seq
        self.id = id
        self.name = name
        self.payload = payload
        self.source = source
        self.createdAt = createdAt
    }

    /// What tasks see as `BATON_EVENT` and `{{ event.* }}`.
    public var document: JSONValue {
        .object([
            "id": .string(id), "name": .string(name), "payload": payload, "source": source.map(JSONValue.string) ?? .null,
            "created_at": .string(DataInterval.iso(createdAt)),
        ])
    }
}

public struct EventQuery: Sendable, Hashable {
    public var name: String?
    public var from: Date?
    public var to: Date?
    public var limit: Int
    /// Only events with a sequence number below this (cursor pagination, newest first).
    public var beforeSeq: Int64?

    public init(name: String? = nil, from: Date? = nil, to: Date? = nil, limit: Int = 50, beforeSeq: Int64? = nil) {
        self.name = name
        self.from = from
        self.to = to
        self.limit = limit
        self.beforeSeq = beforeSeq
    }
}

/// One update of a dataset, recorded when a producing task succeeds.
public struct DatasetUpdateRecord: Sendable, Hashable, Codable {
    public var id: Int64
    public var dataset: String
    public var runID: Int64?
    public var pipeline: String?
    public var task: String?
    public var schemaVersion: String?
    public var metadata: [String: JSONValue]
    public var updatedAt: Date

    public init(
        id: Int64 = 0, dataset: String, runID: Int64?, pipeline: String?, task: String?, schemaVersion: String?,
        metadata: [String: JSONValue], updatedAt: Date
    ) {
        self.id = id
        self.dataset = dataset
        self.runID = runID
        self.pipeline = pipeline
        self.task = task
        self.schemaVersion = schemaVersion
        self.metadata = metadata
        self.updatedAt = updatedAt
    }
}

/// Which dataset versions a run read and wrote.
public struct RunDatasetRecord: Sendable, Hashable, Codable {
    public enum Direction: String, Sendable, Hashable, Codable { case read, write }
    public var runID: Int64
    public var task: String
    public var dataset: String
    public var direction: Direction
    public var updateID: Int64?

    public init(runID: Int64, task: String, dataset: String, direction: Direction, updateID: Int64?) {
        self.runID = runID
        self.task = task
        self.dataset = dataset
        self.direction = direction
        self.updateID = updateID
    }
}

/// A period during which a dataset broke its freshness SLA.
public struct SLAMissRecord: Sendable, Hashable, Codable {
    public var id: Int64
    public var dataset: String
    public var detectedAt: Date
    public var lastUpdateAt: Date?
    /// The SLA, in seconds.
    public var freshness: Double
    public var resolvedAt: Date?

    public init(id: Int64 = 0, dataset: String, detectedAt: Date, lastUpdateAt: Date?, freshness: Double, resolvedAt: Date? = nil) {
        self.id = id
        self.dataset = dataset
        self.detectedAt = detectedAt
        self.lastUpdateAt = lastUpdateAt
        self.freshness = freshness
        self.resolvedAt = resolvedAt
    }
}

/// Events, dataset updates and lineage; part of every store.
public protocol HandoffStore: Sendable {
    /// Stores the event unless its id exists; returns the stored event and whether it is new.
    func publishEvent(_ event: EventRecord) async throws -> (event: EventRecord, created: Bool)
    func events(_ query: EventQuery) async throws -> [EventRecord]
    func event(id: String) async throws -> EventRecord?
    /// Events after `seq`, oldest first.
    func events(after seq: Int64, limit: Int) async throws -> [EventRecord]
    func meta(_ key: String) async throws -> String?
    func setMeta(_ key: String, _ value: String) async throws

    func recordDatasetUpdate(_ update: DatasetUpdateRecord) async throws -> DatasetUpdateRecord
    func latestDatasetUpdate(_ dataset: String) async throws -> DatasetUpdateRecord?
    func datasetUpdates(_ dataset: String, limit: Int) async throws -> [DatasetUpdateRecord]
    func recordRunDataset(_ record: RunDatasetRecord) async throws
    func runDatasets(runID: Int64) async throws -> [RunDatasetRecord]
    /// Runs that read or wrote a dataset, newest first.
    func datasetRuns(_ dataset: String, limit: Int) async throws -> [RunDatasetRecord]

    /// Opens a miss unless one is open for the dataset; returns it when new.
    func openSLAMiss(_ miss: SLAMissRecord) async throws -> SLAMissRecord?
    /// Closes the dataset's open miss, if any.
    func resolveSLAMiss(dataset: String, at: Date) async throws -> Bool
    func slaMisses(dataset: String?, limit: Int) async throws -> [SLAMissRecord]
}
