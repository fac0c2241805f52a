import AsyncHTTPClient
import BatonCore
import BatonStore
import Foundation
import NIOCore
import NIOHTTP1
import Logging
import Metrics

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A dataset's freshness as of now.
public struct DatasetStatus: Sendable, Hashable {
    public enum Freshness: String, Sendable, Hashable, Codable { case fresh, stale, unknown }

    public var dataset: DatasetSpec
    public var latest: DatasetUpdateRecord?
    public var freshness: Freshness
    /// Seconds since the latest update.
    public var age: Double?
    /// When the dataset becomes stale without another update.
    public var staleAt: Date?
    /// Share of the last 30 days (or since the first update) during which the dataset was fresh.
    public var measuredAvailability: Double?
}

extension Engine {
    static let availabilityWindow: Double = 30 * 86400
    /// The monitor also wakes on this interval even when no dataset is about to go stale.
    static let slaSafetyInterval: Double = 300

    /// The catalog's datasets with their current freshness.
    public func datasetStatuses() async -> [DatasetStatus] {
        var result: [DatasetStatus] = []
        for name in datasets.keys.sorted() {
            guard let spec = datasets[name] else { continue }
            result.append(await Self.status(of: spec, store: store, now: clock()))
        }
        return result
    }

    /// One dataset's freshness, from its updates in the store (also used by the CLI without an engine).
    public static func status(of spec: DatasetSpec, store: any Store, now: Date) async -> DatasetStatus {
        let latest = try? await store.latestDatasetUpdate(spec.name)
        var status = DatasetStatus(dataset: spec, latest: latest, freshness: .unknown)
        if let latest {
            status.age = now.timeIntervalSince(latest.updatedAt)
            if let limit = spec.freshness {
                let staleAt = latest.updatedAt.addingTimeInterval(limit)
                status.staleAt = staleAt
                status.freshness = now < staleAt ? .fresh : .stale
                let updates = (try? await store.datasetUpdates(spec.name, limit: 10_000)) ?? []
                status.measuredAvailability = availability(updates: updates.map(\.updatedAt), freshness: limit, now: now)
            }
        } else if spec.freshness != nil {
            status.freshness = .stale
        }
        return status
    }

    /// The share of the window covered by `[update, update + freshness)` intervals.
    static func availability(updates: [Date], freshness: Double, now: Date) -> Double? {
        let sorted = updates.sorted()
        guard let first = sorted.first else { return nil }
        let start = max(first, now.addingTimeInterval(-availabilityWindow))
        let window = now.timeIntervalSince(start)
        guard window > 0 else { return 1 }
        var covered = 0.0
        var reach = start
        for update in sorted {
            let begin = max(update, reach)
            let end = min(update.addingTimeInterval(freshness), now)
            if end > begin {
                covered += end.timeIntervalSince(begin)
                reach = end
            }
        }
        return min(1, covered / window)
    }

    /// Compares every dataset with its freshness SLA: a new miss raises an alert (an `sla.missed`
    /// event, a metric, the owner's webhook); a fresh update closes it. Then sleeps until the
    /// next dataset would go stale.
    func checkSLAs(generation: Int) async {
        guard generation == slaGeneration else { return }
        slaGeneration += 1
        // One check at a time: the engine is re-entrant at every store call, and a check that
        // read "never updated" before an update committed could otherwise open its miss after
        // the check triggered by that update had already found the dataset fresh, leaving a
        // stale miss open that hides the real one later. A check asked for meanwhile runs again
        // right after, on what is then committed.
        guard !slaCheckRunning else {
            slaCheckAgain = true
            return
        }
        slaCheckRunning = true
        repeat {
            slaCheckAgain = false
            await checkSLAsOnce()
        } while slaCheckAgain
        slaCheckRunning = false
    }

    private func checkSLAsOnce() async {
        let now = clock()
        var nextCheck = now.addingTimeInterval(Self.slaSafetyInterval)
        for name in datasets.keys.sorted() {
            guard let spec = datasets[name], let freshness = spec.freshness else { continue }
            let latest = try? await store.latestDatasetUpdate(name)
            let reference = latest?.updatedAt ?? datasetFirstSeen[name] ?? {
                datasetFirstSeen[name] = now
                return now
            }()
            let staleAt = reference.addingTimeInterval(freshness)
            if now >= staleAt {
                await raiseMiss(spec, latest: latest, freshness: freshness, now: now)
            } else {
                if (try? await store.resolveSLAMiss(dataset: name, at: now)) == true {
                    logger.info("dataset \(name) is fresh again")
                }
                nextCheck = min(nextCheck, staleAt)
            }
        }
        work.yield(.timer(delay: max(0.001, nextCheck.timeIntervalSince(clock())), .slaCheck(generation: slaGeneration)))
    }

    private func raiseMiss(_ spec: DatasetSpec, latest: DatasetUpdateRecord?, freshness: Double, now: Date) async {
        // An update that arrived during an open miss ended it, even if this check (late on a
        // busy machine, or a short SLA) already finds the new data stale: close the old miss at
        // the update and open a new one, so each stale stretch gets its own alert.
        if let latest, let open = try? await store.slaMisses(dataset: spec.name, limit: 1).first, open.resolvedAt == nil,
            open.lastUpdateAt != latest.updatedAt
        {
            _ = try? await store.resolveSLAMiss(dataset: spec.name, at: latest.updatedAt)
        }
        let miss = SLAMissRecord(dataset: spec.name, detectedAt: now, lastUpdateAt: latest?.updatedAt, freshness: freshness)
        guard let opened = try? await store.openSLAMiss(miss) else { return }
        let age = latest.map { now.timeIntervalSince($0.updatedAt) }
        let description = latest == nil
            ? "dataset \(spec.name) has had no update for its \(DurationText.format(freshness)) freshness SLA"
            : "dataset \(spec.name) is \(DurationText.format(age ?? 0)) old, over its \(DurationText.format(freshness)) freshness SLA"
        logger.warning("SLA missed: \(description) (owner \(spec.owner ?? "none"))")
        Counter(label: "baton_sla_misses_total", dimensions: [("dataset", spec.name), ("owner", spec.owner ?? "")]).increment()
        var payload: [String: JSONValue] = [
            "dataset": .string(spec.name), "owner": spec.owner.map(JSONValue.string) ?? .null,
            "freshness_seconds": .number(freshness), "detected_at": .string(DataInterval.iso(now)),
            "message": .string(description),
        ]
        if let latest {
            payload["last_update_at"] = .string(DataInterval.iso(latest.updatedAt))
            payload["age_seconds"] = .number(age ?? 0)
            if let runID = latest.runID { payload["last_run_id"] = .number(Double(runID)) }
            if let pipeline = latest.pipeline { payload["last_pipeline"] = .string(pipeline) }
        }
        _ = try? await store.publishEvent(
            EventRecord(
                id: "sla:\(spec.name):\(opened.id)", name: "sla.missed", payload: .object(payload), source: "baton",
                createdAt: now))
        await processEvents()
        if let webhook = spec.webhook ?? spec.owner.flatMap({ teams[$0]?.webhook }), let url = URL(string: webhook) {
            // Posted in its own child task; a slow or failing webhook never delays scheduling.
            work.yield(.timer(delay: 0, .webhook(url: url, body: JSONValue.object(payload).compactJSON)))
        }
    }

    /// Posts an alert to a webhook, logging (not retrying) failures.
    /// NIO's HTTP client rather than URLSession, whose Linux implementation stalled requests
    /// behind unrelated HTTP work in the same process.
    nonisolated func postWebhook(_ url: URL, body: String) async {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            if !(200..<300).contains(Int(response.status.code)) {
                logger.warning("SLA webhook \(url.absoluteString) answered \(response.status.code)")
            }
        } catch {
            logger.warning("SLA webhook \(url.absoluteString) failed: \(error)")
        }
    }
}

extension Engine {
    /// The declared datasets.
    public func catalog() -> [DatasetSpec] { datasets.values.sorted { $0.name < $1.name } }
}
