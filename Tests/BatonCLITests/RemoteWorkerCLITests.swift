import BatonAPI
import BatonCore
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `baton worker` processes against a real `baton up --slots 0`: tasks run only on workers,
/// over HTTP, with data between tasks, queues, pools, live logs and lost workers.
@Suite(.serialized) struct RemoteWorkerCLITests {
    static func url(of server: BatonServer) async throws -> String {
        var found: String?
        try await waitUntil("the server listens", timeout: .seconds(30)) {
            found = server.log.firstMatch(of: /web UI and API on (http:\/\/\S+)/).map { String($0.1) }
            return found != nil
        }
        return try #require(found)
    }

    static func attempts(_ base: String, run: Int64, task: String) async throws -> [APIAttempt] {
        let url = try #require(URL(string: "\(base)/api/v1/runs/\(run)/tasks/\(task)/attempts"))
        let (data, _) = try await URLSession.shared.data(from: url)
        return try APICoding.decoder().decode(APIList<APIAttempt>.self, from: data).items
    }

    @Test func tasksRunOnlyOnWorkersWithOutputsQueuesAndPools() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let stamps = sandbox.root + "/stamps"
        try sandbox.writePipeline(
            "remote",
            """
            name: remote
            schedule: none
            tasks:
              extract:
                run: |
                  echo extracting; echo '{"rows": 41}' > "$BATON_OUTPUT"
              load:
                needs: [extract]
                run: |
                  echo loaded {{ tasks.extract.output.rows }} rows
              train:
                queue: gpu
                run: echo training on the gpu worker
              w1:
                pool: warehouse
                run: |
                  echo "start $(date +%s.%N)" >> \(stamps)-w1; sleep 0.4; echo "end $(date +%s.%N)" >> \(stamps)-w1
              w2:
                pool: warehouse
                run: |
                  echo "start $(date +%s.%N)" >> \(stamps)-w2; sleep 0.4; echo "end $(date +%s.%N)" >> \(stamps)-w2
              w3:
                pool: warehouse
                run: |
                  echo "start $(date +%s.%N)" >> \(stamps)-w3; sleep 0.4; echo "end $(date +%s.%N)" >> \(stamps)-w3
            """)
        let server = try await sandbox.startUpAndWait(["--slots", "0", "--pool", "warehouse=1"])
        let base = try await Self.url(of: server)
        _ = try sandbox.spawn(["worker", "--server", base, "--slots", "3", "--id", "cpu-a"])
        _ = try sandbox.spawn(["worker", "--server", base, "--slots", "3", "--id", "cpu-b"])
        _ = try sandbox.spawn(["worker", "--server", base, "--slots", "1", "--queue", "gpu", "--id", "gpu-1"])
        let (run, result) = try await sandbox.triggerAndWait("remote", timeout: .seconds(60))
        #expect(run.state == "success", "\(run.summary)\n\(result)\n\(server.log)")
        #expect(try await sandbox.logs(run.id, "load").contains("loaded 41 rows"), "the output crossed workers")
        let train = try await Self.attempts(base, run: run.id, task: "train")
        #expect(train.map(\.worker) == ["gpu-1"], "only the gpu worker serves the gpu queue")
        #expect(train.first?.queue == "gpu")
        let extract = try await Self.attempts(base, run: run.id, task: "extract")
        #expect(["cpu-a", "cpu-b"].contains(extract.first?.worker ?? ""))
        // Pool warehouse=1: the three tasks never overlapped, although 6 default slots were free.
        var intervals: [(Double, Double)] = []
        for task in ["w1", "w2", "w3"] {
            let lines = try String(contentsOfFile: "\(stamps)-\(task)", encoding: .utf8).split(separator: "\n")
            let values = lines.compactMap { Double($0.split(separator: " ").last ?? "") }
            try #require(values.count == 2, "\(lines)")
            intervals.append((values[0], values[1]))
        }
        intervals.sort { $0.0 < $1.0 }
        for (earlier, later) in zip(intervals, intervals.dropFirst()) {
            #expect(earlier.1 <= later.0, "pool tasks overlapped: \(intervals)")
        }
        #expect(!server.log.contains("ERROR"), "\(server.log)")
    }

    @Test func aLogStreamsToTheServerWhileTheTaskRuns() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        // The task holds until the test has seen its first line (at most 60 s): a fixed sleep
        // of 2 s ended before the line was seen on a loaded CI machine.
        let release = sandbox.root + "/release-talk"
        try sandbox.writePipeline(
            "chatty",
            """
            name: chatty
            schedule: none
            tasks:
              talk:
                run: |
                  echo first line from the worker
                  i=0; while [ ! -e '\(release)' ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
                  echo last line
            """)
        let server = try await sandbox.startUpAndWait(["--slots", "0"])
        let base = try await Self.url(of: server)
        _ = try sandbox.spawn(["worker", "--server", base, "--slots", "1", "--id", "talker"])
        let id = try await sandbox.trigger("chatty")
        try await waitUntil("the first line reaches the server while the task runs", timeout: .seconds(20)) {
            let run = try await sandbox.run(id)
            let log = (try? await sandbox.logs(id, "talk")) ?? ""
            if log.contains("first line from the worker") {
                #expect(run.task("talk")?.state == "running", "the line arrived before the end: \(run.summary)")
                return true
            }
            return false
        }
        #expect(FileManager.default.createFile(atPath: release, contents: nil))
        let finished = try await sandbox.waitForRuns([id], timeout: .seconds(30))
        #expect(finished.first?.state == "success")
        let log = try await sandbox.logs(id, "talk")
        #expect(log.contains("first line from the worker\n") && log.contains("last line\n"), "\(log)")
    }

    @Test func aWorkerKilledMidTaskLosesItsLeaseAndTheTaskRetriesOnAnother() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let marker = sandbox.uniqueSeconds(60)
        try sandbox.writePipeline(
            "fragile",
            """
            name: fragile
            schedule: none
            tasks:
              work:
                retries: 1
                retry_delay: 0s
                run: |
                  if [ "$BATON_ATTEMPT" = 1 ]; then echo first try; sleep \(marker); fi
                  echo second try finished
            """)
        let server = try await sandbox.startUpAndWait(["--slots", "0", "--lease", "2s"])
        let base = try await Self.url(of: server)
        let doomed = try sandbox.spawn(["worker", "--server", base, "--slots", "1", "--id", "doomed"])
        let id = try await sandbox.trigger("fragile")
        try await waitUntil("the first attempt runs on the doomed worker and its log reached the server", timeout: .seconds(20)) {
            (try? await sandbox.logs(id, "work", attempt: 1))?.contains("first try") ?? false
        }
        doomed.signal(SIGKILL)
        _ = await doomed.waitForExit(timeout: .seconds(10))
        for pid in ProcessTable.sleeps(matching: marker) { kill(pid, SIGKILL) }
        _ = try sandbox.spawn(["worker", "--server", base, "--slots", "1", "--id", "rescuer"])
        let finished = try await sandbox.waitForRuns([id], timeout: .seconds(40))
        #expect(finished.first?.state == "success", "\(finished.first?.summary ?? "")\n\(server.log)")
        let attempts = try await Self.attempts(base, run: id, task: "work")
        #expect(attempts.map(\.state) == ["lost", "success"])
        #expect(attempts.map(\.worker) == ["doomed", "rescuer"])
        #expect(attempts.first?.reason?.contains("worker doomed stopped renewing its lease") == true, "\(attempts)")
        #expect(try await sandbox.logs(id, "work", attempt: 1).contains("first try"), "the lost attempt's log was kept")
    }

    @Test func aWorkerExplainsBadArgumentsAndAnUnreachableServerDoesNotStopIt() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let missing = try await sandbox.baton(["worker"], addDefaults: false)
        #expect(missing.exitCode != 0)
        #expect(missing.stderr.contains("--server"), "\(missing)")
        let badQueue = try await sandbox.baton(["worker", "--server", "http://127.0.0.1:1", "--queue", "9 lives"])
        #expect(badQueue.exitCode != 0)
        #expect(badQueue.stderr.contains("'9 lives' is not a queue name"), "\(badQueue)")
        let waiting = try sandbox.spawn(["worker", "--server", "http://127.0.0.1:1", "--slots", "1"])
        try await waitUntil("the worker reports the unreachable server and keeps trying", timeout: .seconds(20)) {
            waiting.stderr.contains("trying again")
        }
        #expect(!waiting.hasExited, "a server that is down must not stop the worker")
    }
}
