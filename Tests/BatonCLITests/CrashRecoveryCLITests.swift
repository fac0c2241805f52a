import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `baton up` is SIGKILLed while tasks run; the next `baton up` must kill the orphaned task
/// processes, declare their attempts lost, retry them, and finish every run exactly once.
@Suite struct CrashRecoveryCLITests {
    @Test func killedServerRecoversEveryRunExactlyOnce() async throws {
        try await UTC.avoidHourBoundary()
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        // While the file `hold` exists the middle task sleeps long (so the crash finds it running
        // and its orphan outlives the crash); once removed, it sleeps briefly.
        // Long enough to outlast a busy machine's slow start of all four runs: the restarted
        // server kills these sleeps anyway, so their length costs the test nothing.
        let marker = sandbox.uniqueSeconds(120)
        try sandbox.write("hold", "")
        try sandbox.writePipeline(
            "crashy",
            """
            name: crashy
            schedule: "@hourly"
            catchup: false
            max_active_runs: 4
            tasks:
              first:
                retries: 1
                retry_delay: 100ms
                run: echo "first attempt $BATON_ATTEMPT"
              slow:
                needs: [first]
                retries: 1
                retry_delay: 100ms
                run: |
                  echo "slow attempt $BATON_ATTEMPT started"
                  if [ -e ../hold ]; then sleep \(marker); else sleep 0.5; fi
                  echo "slow attempt $BATON_ATTEMPT finished"
              last:
                needs: [slow]
                retries: 1
                retry_delay: 100ms
                run: echo "last attempt $BATON_ATTEMPT"
            """)

        let first = try await sandbox.startUpAndWait(["--slots", "8"])
        var ids: [Int64] = []
        for _ in 0..<3 { ids.append(try await sandbox.trigger("crashy")) }
        // Wait until every run (3 manual + 1 scheduled) is inside `slow`, its sleep running.
        try await waitUntil("all four runs are in the long sleep", detail: { first.log }) {
            let runs = try await sandbox.runs("crashy")
            return runs.count == 4 && runs.allSatisfy { $0.state == "running" }
                && ProcessTable.sleeps(matching: marker).count == 4
        }
        let beforeCrash = try await sandbox.runs("crashy")
        for run in beforeCrash {
            #expect(try await sandbox.run(run.id).task("slow")?.state == "running")
        }
        // The engine records each task's pid right after spawning it; give that write a moment
        // so the crash lands in the steady "task running" state this test is about.
        try await Task.sleep(for: .milliseconds(500))

        await first.crash()
        let orphans = ProcessTable.sleeps(matching: marker)
        #expect(orphans.count == 4, "the task processes should outlive a SIGKILLed server (they are in their own groups)")
        #expect(try await sandbox.runs("crashy").allSatisfy { $0.state == "running" })
        try FileManager.default.removeItem(atPath: sandbox.root + "/hold")

        let second = try sandbox.startUp(["--slots", "8"])
        try await waitUntil("the restarted server kills the orphaned task processes", timeout: .seconds(15), detail: { second.log }) {
            ProcessTable.pids(matching: marker).isEmpty
        }
        let runs = try await sandbox.waitForRuns(pipeline: "crashy", count: 4)

        #expect(runs.count == 4, "\(runs.map(\.summary))")
        #expect(Set(runs.map(\.id)).count == 4)
        #expect(Set(ids).isSubset(of: Set(runs.map(\.id))))
        let scheduled = runs.filter { $0.trigger == "schedule" }
        #expect(scheduled.count == 1, "the restart must not schedule the interval again: \(runs.map(\.summary))")
        for run in runs {
            let shown = try await sandbox.run(run.id)
            #expect(shown.state == "success", "\(shown.summary)\n\(second.log)")
            #expect(shown.task("first")?.attempts == 1, "a finished task must not run again: \(shown.summary)")
            #expect(shown.task("slow")?.attempts == 2, "lost attempt + one retry: \(shown.summary)")
            #expect(shown.task("last")?.attempts == 1, "\(shown.summary)")
            let lost = try await sandbox.logs(run.id, "slow", attempt: 1)
            #expect(lost.contains("slow attempt 1 started") && !lost.contains("finished"), "\(lost)")
            let retried = try await sandbox.logs(run.id, "slow", attempt: 2)
            #expect(retried.contains("slow attempt 2 finished"), "\(retried)")
            let reported = second.log.split(separator: "\n").contains {
                $0.contains("attempt 1 was lost") && $0.contains("run_id=\(run.id) ") && $0.contains("task=slow")
            }
            #expect(reported, "the restart should report run \(run.id)'s lost attempt:\n\(second.log)")
        }
        #expect(ProcessTable.pids(matching: marker).isEmpty)
        #expect(await second.stop())
    }
}
