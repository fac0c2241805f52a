import Foundation
import Testing

/// Scheduled runs from `baton up`: catch-up after downtime, no duplicates across restarts,
/// `max_active_runs`, and backfills.
@Suite struct SchedulingCLITests {
    /// Each attempt appends `start RUN` and `end RUN` to a shared timeline, so the test can tell
    /// whether two runs ever ran at once (finer than the second-resolution timestamps of the JSON).
    static func hourly(start: Date, catchup: Bool, maxActiveRuns: Int = 1) -> String {
        """
        name: hourly
        schedule: "@hourly"
        timezone: UTC
        start_date: "\(UTC.iso(start))"
        catchup: \(catchup)
        max_active_runs: \(maxActiveRuns)
        tasks:
          work:
            run: |
              echo "start $BATON_RUN_ID" >> ../timeline.txt
              echo "interval $BATON_DATA_INTERVAL_START .. $BATON_DATA_INTERVAL_END"
              sleep 0.3
              echo "end $BATON_RUN_ID" >> ../timeline.txt
        """
    }

    /// Runs that overlapped in the timeline. A restarted attempt closes its run's earlier
    /// (interrupted) start; a `stopped` line, written by the test after `baton up` has exited,
    /// closes everything.
    static func overlaps(in timeline: String) -> [String] {
        var open: Set<String> = []
        var problems: [String] = []
        for line in timeline.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            switch parts.first {
            case "start":
                open.remove(parts[1])
                if !open.isEmpty { problems.append("run \(parts[1]) started while \(open.sorted()) were running") }
                open.insert(parts[1])
            case "end": open.remove(parts[1])
            case "stopped": open.removeAll()
            default: break
            }
        }
        return problems
    }

    /// The most runs that were running at once, by the same rules as `overlaps`.
    static func maxConcurrent(in timeline: String) -> Int {
        var open: Set<String> = []
        var most = 0
        for line in timeline.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            switch parts.first {
            case "start": open.insert(parts[1])
            case "end": open.remove(parts[1])
            case "stopped": open.removeAll()
            default: break
            }
            most = max(most, open.count)
        }
        return most
    }

    /// Waits until a manual run triggered now has finished: since `baton up` schedules before it
    /// starts any task, this proves its first scheduler pass is done.
    static func barrier(_ sandbox: Sandbox) async throws {
        let id = try await sandbox.trigger("hourly")
        let runs = try await sandbox.waitForRuns([id])
        #expect(runs.first?.state == "success", "\(runs.map(\.summary))")
    }

    @Test func catchupCreatesEachMissedHourOnceAndRunsThemOneAtATime() async throws {
        try await UTC.avoidHourBoundary()
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let hour = UTC.hourFloor(Date())
        let start = hour.addingTimeInterval(-5 * 3600)
        try sandbox.writePipeline("hourly", Self.hourly(start: start, catchup: true))
        let expectedDates = (0..<5).map { start.addingTimeInterval(Double($0) * 3600) }

        var server = try sandbox.startUp()
        // Stop in the middle of the catch-up: some runs done, the others not.
        try await waitUntil("two catch-up runs succeed", detail: { server.log }) {
            try await sandbox.runs("hourly").filter { $0.state == "success" }.count >= 2
        }
        #expect(await server.stop(), "baton up did not stop on SIGTERM:\n\(server.log)")
        try sandbox.append("timeline.txt", "stopped\n")
        let afterFirst = try await sandbox.runs("hourly")
        #expect(afterFirst.count == 5, "\(afterFirst.map(\.summary))")

        server = try sandbox.startUp()
        try await Self.barrier(sandbox)
        let all = try await sandbox.waitForRuns(pipeline: "hourly")
        let scheduled = all.filter { $0.trigger == "schedule" }.sorted { $0.logical_date < $1.logical_date }
        #expect(scheduled.count == 5, "a restart must not create intervals twice: \(scheduled.map(\.summary))")
        #expect(scheduled.map(\.logical_date) == expectedDates, "\(scheduled.map(\.logical_date)) vs \(expectedDates)")
        for run in scheduled {
            #expect(run.state == "success", "\(run.summary)")
            #expect(run.data_interval_end.timeIntervalSince(run.data_interval_start) == 3600)
        }
        // Never two runs at once: in the tasks' own timeline, and in the recorded times.
        let timeline = try String(contentsOfFile: sandbox.root + "/timeline.txt", encoding: .utf8)
        #expect(Self.overlaps(in: timeline).isEmpty, "\(Self.overlaps(in: timeline))\n\(timeline)")
        let byStart = all.sorted { ($0.started_at ?? .distantFuture, $0.id) < ($1.started_at ?? .distantFuture, $1.id) }
        for (previous, next) in zip(byStart, byStart.dropFirst()) {
            let previousEnd = try #require(previous.ended_at)
            let nextStart = try #require(next.started_at)
            #expect(nextStart >= previousEnd, "run \(next.id) started before run \(previous.id) ended")
        }
        // The oldest interval runs first.
        let scheduledByStart = byStart.filter { $0.trigger == "schedule" }.map(\.logical_date)
        #expect(scheduledByStart == expectedDates, "catch-up runs start oldest first")
        #expect(!server.log.contains("ERROR"), "\(server.log)")
    }

    @Test func withoutCatchupOnlyTheLatestIntervalRuns() async throws {
        try await UTC.avoidHourBoundary()
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let hour = UTC.hourFloor(Date())
        try sandbox.writePipeline("hourly", Self.hourly(start: hour.addingTimeInterval(-5 * 3600), catchup: false))

        var server = try sandbox.startUp()
        try await Self.barrier(sandbox)
        var scheduled = try await sandbox.runs("hourly").filter { $0.trigger == "schedule" }
        #expect(scheduled.count == 1, "\(scheduled.map(\.summary))")
        #expect(scheduled.first?.logical_date == hour.addingTimeInterval(-3600))
        #expect(await server.stop())

        server = try sandbox.startUp()
        try await Self.barrier(sandbox)
        scheduled = try await sandbox.waitForRuns(pipeline: "hourly").filter { $0.trigger == "schedule" }
        #expect(scheduled.count == 1, "a restart must not schedule the interval again: \(scheduled.map(\.summary))")
        #expect(scheduled.allSatisfy { $0.state == "success" })
    }

    @Test func backfillCreatesOneRunPerHourOnlyOnce() async throws {
        try await UTC.avoidHourBoundary()
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let hour = UTC.hourFloor(Date())
        try sandbox.writePipeline("hourly", Self.hourly(start: hour.addingTimeInterval(-48 * 3600), catchup: false, maxActiveRuns: 2))
        let server = try await sandbox.startUpAndWait()
        try await waitUntil("the latest interval is scheduled", detail: { server.log }) {
            try await sandbox.runs("hourly").contains(where: { $0.trigger == "schedule" })
        }

        let from = UTC.iso(hour.addingTimeInterval(-10 * 3600))
        let to = UTC.iso(hour.addingTimeInterval(-6 * 3600))
        let first = try await sandbox.baton("backfill", "hourly", "--from", from, "--to", to, "--wait")
        #expect(first.exitCode == 0, "\(first)")
        #expect(first.stdout.contains("4 runs created, 0 intervals already had a run"), "\(first)")

        let again = try await sandbox.baton("backfill", "hourly", "--from", from, "--to", to, "--json")
        #expect(again.exitCode == 0, "\(again)")
        let created = try RunInfo.decoder.decode([RunInfo].self, from: Data(again.stdout.utf8))
        #expect(created.isEmpty, "a second identical backfill must create nothing: \(again)")

        // A range that includes the interval `baton up` already scheduled reuses it.
        let overlapping = try await sandbox.baton(
            "backfill", "hourly", "--from", UTC.iso(hour.addingTimeInterval(-2 * 3600)), "--to", UTC.iso(hour))
        #expect(overlapping.exitCode == 0, "\(overlapping)")
        #expect(overlapping.stdout.contains("1 runs created, 1 intervals already had a run"), "\(overlapping)")

        let runs = try await sandbox.waitForRuns(pipeline: "hourly")
        let backfilled = runs.filter { $0.trigger == "backfill" }.sorted { $0.logical_date < $1.logical_date }
        let expected = [10, 9, 8, 7, 2].map { hour.addingTimeInterval(Double(-$0) * 3600) }
        #expect(backfilled.map(\.logical_date) == expected, "\(backfilled.map(\.summary))")
        #expect(runs.allSatisfy { $0.state == "success" }, "\(runs.map(\.summary))")
        #expect(Set(runs.map(\.logical_date)).count == runs.count, "an interval got two runs: \(runs.map(\.summary))")
        // Each run saw its own interval.
        let log = try await sandbox.logs(backfilled[0].id, "work")
        #expect(log.contains("interval \(UTC.iso(expected[0])) .. \(UTC.iso(expected[0].addingTimeInterval(3600)))"), "\(log)")
        _ = server
    }

    @Test func backfillWaitWithoutServerRunsEveryRun() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let hour = UTC.hourFloor(Date())
        try sandbox.writePipeline("hourly", Self.hourly(start: hour.addingTimeInterval(-48 * 3600), catchup: false, maxActiveRuns: 2))
        let from = hour.addingTimeInterval(-24 * 3600)
        let result = try await sandbox.baton(
            "backfill", "hourly", "--from", UTC.iso(from), "--to", UTC.iso(from.addingTimeInterval(3 * 3600)), "--wait")
        #expect(result.exitCode == 0, "\(result)")
        #expect(!result.looksLikeCrash, "\(result)")
        let runs = try await sandbox.runs("hourly")
        #expect(runs.count == 3, "\(runs.map(\.summary))")
        #expect(runs.allSatisfy { $0.state == "success" }, "\(runs.map(\.summary))")
        let timeline = try String(contentsOfFile: sandbox.root + "/timeline.txt", encoding: .utf8)
        #expect(Self.maxConcurrent(in: timeline) <= 2, "max_active_runs is 2:\n\(timeline)")
    }
}
