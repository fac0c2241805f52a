import BatonCore
import BatonStore
import Foundation

/// Errors a caller can fix when asking for a run.
public struct RunRequestError: Error, Sendable, CustomStringConvertible {
    /// What was wrong, for callers that map errors to statuses (the API: 404 or 422).
    public enum Kind: Sendable, Hashable {
        case unknownPipeline
        case invalidParam(String)
        case other
    }

    public var message: String
    public var kind: Kind
    public init(_ message: String, kind: Kind = .other) {
        self.message = message
        self.kind = kind
    }
    public var description: String { message }
}

/// Builds run records for every way a run comes to exist, with the keys that make an interval
/// get one run only.
public enum RunFactory {
    /// The key of a scheduled or backfilled interval; both use it, so a backfill never duplicates a scheduled run.
    public static func intervalKey(_ interval: DataInterval) -> String { DataInterval.iso(interval.start) }

    public static func scheduled(
        _ spec: PipelineSpec, interval: DataInterval, trigger: RunTrigger = .schedule, now: Date
    ) -> RunRecord {
        RunRecord(
            pipeline: spec.name, runKey: intervalKey(interval), logicalDate: interval.start,
            intervalStart: interval.start, intervalEnd: interval.end, trigger: trigger,
            params: spec.resolvedParams(), spec: spec, createdAt: now)
    }

    public static func once(_ spec: PipelineSpec, firstSeen: Date, now: Date) -> RunRecord {
        let date = spec.startDate ?? firstSeen
        return RunRecord(
            pipeline: spec.name, runKey: "once", logicalDate: date, intervalStart: date, intervalEnd: date,
            trigger: .schedule, params: spec.resolvedParams(), spec: spec, createdAt: now)
    }

    /// A manual run: params are checked against the pipeline's declared params. For a cron
    /// pipeline the data interval is the latest completed one; otherwise it is the trigger instant.
    public static func manual(
        _ spec: PipelineSpec, params: [String: JSONValue], now: Date, key: String? = nil
    ) throws -> RunRecord {
        let resolved: [String: JSONValue]
        do {
            resolved = try ParamValidation.validate(params, for: spec)
        } catch {
            throw RunRequestError(error.description, kind: .invalidParam(error.param))
        }
        var interval = DataInterval(start: now, end: now)
        if case .cron(let expression) = spec.schedule, let cron = try? CronSchedule.parse(expression),
            let zone = TimeZone(identifier: spec.timezone),
            let latest = IntervalPlanner.latestCompleted(cron, in: zone, now: now)
        {
            interval = latest
        }
        let stamp = String(format: "%.6f", now.timeIntervalSince1970)
        return RunRecord(
            pipeline: spec.name, runKey: key ?? "manual__\(stamp)__\(UInt32.random(in: 0...UInt32.max))",
            logicalDate: interval.start, intervalStart: interval.start, intervalEnd: interval.end, trigger: .manual,
            params: resolved, spec: spec, createdAt: now)
    }

    /// A run started by an event. Keyed by the event's id, so one event never starts two runs
    /// of a pipeline, however often it is processed.
    public static func triggered(_ spec: PipelineSpec, by event: EventRecord, now: Date) -> RunRecord {
        RunRecord(
            pipeline: spec.name, runKey: "event:\(event.id)", logicalDate: event.createdAt, intervalStart: event.createdAt,
            intervalEnd: event.createdAt, trigger: .event, params: spec.resolvedParams(), spec: spec, createdAt: now,
            event: event.document)
    }

    /// Runs for every interval of the pipeline's schedule starting in `[from, to)`.
    public static func backfill(_ spec: PipelineSpec, from: Date, to: Date, now: Date, limit: Int = 10_000) throws
        -> [RunRecord]
    {
        guard case .cron(let expression) = spec.schedule else {
            throw RunRequestError(
                "pipeline '\(spec.name)' has no cron schedule (schedule: \(spec.schedule)); backfill needs intervals; use `baton trigger` instead")
        }
        guard from < to else { throw RunRequestError("--from must be before --to") }
        let cron = try CronSchedule.parse(expression)
        let zone = TimeZone(identifier: spec.timezone) ?? .gmt
        let intervals = IntervalPlanner.intervals(cron, in: zone, from: from, to: to, limit: limit + 1)
        if intervals.count > limit {
            throw RunRequestError("the range holds more than \(limit) intervals; backfill a shorter range at a time")
        }
        return intervals.filter { $0.end <= now }.map { scheduled(spec, interval: $0, trigger: .backfill, now: now) }
    }
}
