import BatonAPI
import BatonCore
import Foundation
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// A throwaway database on the PostgreSQL server the test command started
/// (`BATON_TEST_POSTGRES_URL`, set by scripts/test.sh).
enum PostgresForTests {
    static var adminURL: String? { ProcessInfo.processInfo.environment["BATON_TEST_POSTGRES_URL"] }

    /// The admin URL, or a failure that says how to get one (unless PostgreSQL tests are skipped).
    static func requireAdminURL() throws -> String? {
        if let adminURL { return adminURL }
        if ProcessInfo.processInfo.environment["BATON_TEST_POSTGRES"] == "skip" { return nil }
        throw TestFailure(
            "BATON_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh (it starts PostgreSQL), or scripts/with-postgres.sh swift test …; BATON_TEST_POSTGRES=skip skips them")
    }

    static func psql(_ url: String, _ sql: String) throws {
        let errors = FileManager.default.temporaryDirectory.appendingPathComponent("baton-psql-\(UUID().uuidString).err").path
        defer { try? FileManager.default.removeItem(atPath: errors) }
        let child = try ChildProcess(
            executable: "/usr/bin/psql", arguments: [url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], directory: "/",
            stdoutPath: "/dev/null", stderrPath: errors, environment: ProcessInfo.processInfo.environment)
        guard child.waitBlocking(seconds: 60) else {
            child.signal(SIGKILL)
            throw TestFailure("psql did not finish within 60 s: \(sql)")
        }
        guard child.exitStatus?.code == 0, child.exitStatus?.signalled == false else {
            throw TestFailure("psql failed: \(sql): \(child.stderr)")
        }
    }

    /// Creates a database and returns its URL.
    static func createDatabase(_ admin: String) throws -> String {
        let name = "baton_cluster_\(UUID().uuidString.prefix(8).lowercased())"
        try psql(admin, "CREATE DATABASE \(name)")
        guard let components = URLComponents(string: admin) else { throw TestFailure("bad URL \(admin)") }
        var database = components
        database.path = "/\(name)"
        return database.string ?? admin
    }

    static func dropDatabase(_ admin: String, _ url: String) {
        guard let name = URLComponents(string: url)?.path.dropFirst() else { return }
        try? psql(admin, "DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
    }
}

/// Two `baton server` replicas on one PostgreSQL database and three `baton worker`s, on
/// loopback: the leader and a worker are killed (-9) mid-run, and every run still finishes.
@Suite(.serialized) struct ClusterCLITests {
    struct Node {
        let child: ChildProcess
        let url: String
    }

    static func startServer(_ sandbox: Sandbox, database: String, name: String) async throws -> Node {
        let child = try sandbox.spawn([
            "server", "--db", database, "--data-dir", sandbox.root + "/\(name)", "--pipelines", sandbox.pipelines,
            "--slots", "0", "--lease", "3s", "--port", "0", "--max-catchup", "3",
        ])
        var url: String?
        try await waitUntil("server \(name) listens", timeout: .seconds(40), detail: { child.stderr }) {
            if child.hasExited { throw TestFailure("server \(name) exited:\n\(child.stderr)") }
            url = child.stderr.firstMatch(of: /web UI and API on (http:\/\/\S+)/).map { String($0.1) }
            return url != nil
        }
        return Node(child: child, url: try #require(url))
    }

    static func get<T: Decodable>(_ url: String, as type: T.Type) async throws -> T {
        let (data, response) = try await URLSession.shared.data(from: try #require(URL(string: url)))
        guard (response as? HTTPURLResponse)?.statusCode == 200 else {
            throw TestFailure("GET \(url): \(String(decoding: data, as: UTF8.self))")
        }
        return try APICoding.decoder().decode(type, from: data)
    }

    static func role(_ node: Node) async -> String? {
        guard let url = URL(string: node.url + "/readyz"), let (data, _) = try? await URLSession.shared.data(from: url),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return object["role"] as? String
    }

    static func text(_ url: String) async throws -> String {
        let (data, _) = try await URLSession.shared.data(from: try #require(URL(string: url)))
        return String(decoding: data, as: UTF8.self)
    }

    @Test func twoServersAndThreeWorkersRideOutLosingTheLeaderAndAWorker() async throws {
        guard let admin = try PostgresForTests.requireAdminURL() else { return }
        let database = try PostgresForTests.createDatabase(admin)
        defer { PostgresForTests.dropDatabase(admin, database) }
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        // Long enough that the kill lands while the first wave of tasks runs, even on a machine
        // loaded by the whole suite, where the waits below took over ten seconds.
        let marker = sandbox.uniqueSeconds(20)
        try sandbox.writePipeline(
            "work",
            """
            name: work
            schedule: none
            tasks:
            \((1...4).map { "  a\($0):\n    retries: 1\n    retry_delay: 0s\n    run: |\n      echo start $BATON_TASK attempt $BATON_ATTEMPT\n      sleep \(marker)\n      echo end $BATON_TASK\n" }.joined())
              b:
                needs: [a1, a2, a3, a4]
                retries: 1
                retry_delay: 0s
                run: |
                  echo start b; echo end b
            """)
        try sandbox.writePipeline(
            "ticker",
            """
            name: ticker
            schedule: "*/5 * * * *"
            start_date: "2026-01-01"
            catchup: true
            tasks:
              tick:
                run: echo tick
            """)
        let first = try await Self.startServer(sandbox, database: database, name: "a")
        let second = try await Self.startServer(sandbox, database: database, name: "b")
        var roles: [String?] = []
        try await waitUntil("one server leads, the other follows", timeout: .seconds(30)) {
            roles = [await Self.role(first), await Self.role(second)]
            return Set(roles.compactMap { $0 }) == ["leader", "follower"]
        }
        let (leader, follower) = roles[0] == "leader" ? (first, second) : (second, first)
        var workers: [ChildProcess] = []
        for index in 1...3 {
            workers.append(
                try sandbox.spawn([
                    "worker", "--server", "\(first.url),\(second.url)", "--slots", "2", "--id", "w\(index)",
                    "--work-dir", sandbox.root + "/w\(index)",
                ]))
        }
        // Runs are triggered through the follower, which forwards them to the leader.
        // A 503 means "retry shortly" (the documented contract for forwarded changes); a
        // retried trigger that had gone through would show as a fourth run below.
        var runIDs: [Int64] = []
        var refusals: [String] = []
        while runIDs.count < 3, refusals.count < 3 {
            var request = URLRequest(url: try #require(URL(string: follower.url + "/api/v1/runs")))
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(#"{"pipeline": "work"}"#.utf8)
            let (data, response) = try await URLSession.shared.data(for: request)
            let status = (response as? HTTPURLResponse)?.statusCode
            if status == 503 {
                refusals.append(String(decoding: data, as: UTF8.self))
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            #expect(status == 201, "\(String(decoding: data, as: UTF8.self))")
            runIDs.append(try APICoding.decoder().decode(APIRun.self, from: data).id)
        }
        #expect(refusals.count < 3, "\(refusals)")
        try await waitUntil("six tasks run on the workers", timeout: .seconds(30)) {
            ProcessTable.sleeps(matching: marker).count >= 6
        }
        // Once the running attempts' first log lines reached the servers, lose the leader and a
        // worker at once.
        try await waitUntil("the running attempts' logs reach the servers", timeout: .seconds(30)) {
            var started = 0
            for id in runIDs {
                for task in ["a1", "a2", "a3", "a4"] {
                    let log = try await Self.text(
                        follower.url + "/api/v1/runs/\(id)/tasks/\(task)/logs?attempt=1&format=text")
                    if log.hasPrefix("start \(task)") { started += 1 }
                }
            }
            return started >= 6
        }
        // Kill a worker that holds a running attempt right now: under load the claims need not
        // spread over all three workers, and a worker holding nothing would prove nothing.
        var victim: String?
        for id in runIDs where victim == nil {
            for task in ["a1", "a2", "a3", "a4"] {
                let attempts = try await Self.get(
                    follower.url + "/api/v1/runs/\(id)/tasks/\(task)/attempts", as: APIList<APIAttempt>.self
                ).items
                if let running = attempts.first(where: { $0.state == "running" }), let worker = running.worker {
                    victim = worker
                    break
                }
            }
        }
        let killed = try #require(victim, "no attempt was running on a worker")
        let killedIndex = try #require(Int(killed.dropFirst())) - 1
        workers[killedIndex].signal(SIGKILL)
        leader.child.signal(SIGKILL)
        _ = await leader.child.waitForExit(timeout: .seconds(10))
        _ = await workers[killedIndex].waitForExit(timeout: .seconds(10))

        try await waitUntil("the survivor leads", timeout: .seconds(15)) { await Self.role(follower) == "leader" }
        var runs: [APIRun] = []
        try await waitUntil(
            "every run finishes", timeout: .seconds(150),
            detail: { runs.map { "\($0.id) \($0.state)" }.joined(separator: ", ") + "\n" + follower.child.stderr }
        ) {
            runs = try await Self.get(follower.url + "/api/v1/runs?pipeline=work&limit=50", as: APIList<APIRun>.self).items
            return runs.count == 3 && runs.allSatisfy { ["success", "failed", "cancelled"].contains($0.state) }
        }
        #expect(runs.map(\.state) == ["success", "success", "success"], "\(follower.child.stderr)")
        #expect(Set(runs.map(\.id)) == Set(runIDs), "no duplicate runs")
        let ticks = try await Self.get(follower.url + "/api/v1/runs?pipeline=ticker&limit=50", as: APIList<APIRun>.self).items
        #expect(!ticks.isEmpty)
        #expect(Set(ticks.map(\.logical_date)).count == ticks.count, "no interval got two runs: \(ticks.map(\.logical_date))")

        var lost = 0
        for id in runIDs {
            for task in ["a1", "a2", "a3", "a4", "b"] {
                let attempts = try await Self.get(
                    follower.url + "/api/v1/runs/\(id)/tasks/\(task)/attempts", as: APIList<APIAttempt>.self
                ).items
                let states = attempts.map(\.state)
                // Either it ran once, or it was lost once and retried once.
                #expect(states == ["success"] || states == ["lost", "success"], "run \(id) \(task): \(attempts)")
                lost += states.filter { $0 == "lost" }.count
                let lostWorkers = attempts.filter { $0.state == "lost" }.map(\.worker)
                #expect(lostWorkers.allSatisfy { $0 == killed }, "only the killed worker's attempts are lost: \(attempts)")
                for attempt in attempts {
                    let log = try await Self.text(
                        follower.url + "/api/v1/runs/\(id)/tasks/\(task)/logs?attempt=\(attempt.attempt)&format=text")
                    // A finished attempt's log is whole; a lost one keeps what its worker sent
                    // before it died (the last quarter second may not have left the machine).
                    if attempt.state == "success" {
                        #expect(log.hasPrefix("start \(task)"), "run \(id) \(task) attempt \(attempt.attempt): \(log)")
                        #expect(log.contains("end \(task)\n"), "run \(id) \(task) attempt \(attempt.attempt): \(log)")
                    } else {
                        #expect(log.isEmpty || log.hasPrefix("start \(task)"), "run \(id) \(task) attempt \(attempt.attempt): \(log)")
                    }
                }
            }
        }
        #expect(lost >= 1, "the killed worker held attempts; they were declared lost and retried")
    }
}
