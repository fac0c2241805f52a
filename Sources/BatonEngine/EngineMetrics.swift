import Foundation
import Metrics

/// The engine's built-in metrics, reported through swift-metrics so any backend (the server
/// installs Prometheus) can export them.
struct EngineMetrics: Sendable {
    let queueDepth = Gauge(label: "baton_queue_depth")
    let busySlots = Gauge(label: "baton_busy_slots")
    let slots = Gauge(label: "baton_worker_slots")
    let schedulingDelay = Metrics.Timer(label: "baton_scheduling_delay_seconds")
    let storeLatency = Metrics.Timer(label: "baton_store_commit_seconds")

    func record(queueDepth depth: Int) { queueDepth.record(depth) }

    func record(busySlots busy: Int) { busySlots.record(busy) }

    func record(slots count: Int) { slots.record(count) }

    func record(schedulingDelay delay: Duration) { schedulingDelay.recordNanoseconds(Self.nanoseconds(delay)) }

    func record(storeCommit elapsed: Duration) { storeLatency.recordNanoseconds(Self.nanoseconds(elapsed)) }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }

    func runStarted(pipeline: String, owner: String?) {
        Counter(label: "baton_runs_started_total", dimensions: [("pipeline", pipeline), ("owner", owner ?? "")])
            .increment()
    }

    func runFinished(pipeline: String, owner: String?, state: String, seconds: Double) {
        let dimensions = [("pipeline", pipeline), ("owner", owner ?? ""), ("state", state)]
        Counter(label: "baton_runs_finished_total", dimensions: dimensions).increment()
        Metrics.Timer(label: "baton_run_duration_seconds", dimensions: dimensions)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    func taskFinished(pipeline: String, owner: String?, state: String, seconds: Double) {
        Metrics.Timer(
            label: "baton_task_duration_seconds",
            dimensions: [("pipeline", pipeline), ("owner", owner ?? ""), ("state", state)]
        ).recordNanoseconds(Int64(seconds * 1e9))
    }
}
