import BatonCore
import BatonGateway
import BatonStore
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@testable import BatonDeploy
import BatonWorker

/// Deployments with real serving processes (python3 http.server) on loopback.
@Suite(.serialized) struct DeploymentTests {
    func running(_ harness: Harness, _ body: () async throws -> Void) async throws {
        let manager = harness.manager
        let task = Task { try await manager.run() }
        defer { harness.remove() }
        do {
            try await eventually("the manager supervises") { await manager.isSupervising() }
            try await body()
        } catch {
            task.cancel()
            _ = await task.result
            throw error
        }
        task.cancel()
        _ = await task.result
    }

    func actions(_ harness: Harness) async throws -> [DeploymentEventRecord] {
        try await harness.store.deploymentEvents(deployment: "churn", limit: 1000, beforeID: nil)
    }

    @Test func aFirstDeploymentBecomesStableAndServesAndComesBackAfterARestart() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        var pid: Int32 = 0
        try await running(harness) {
            try await harness.manager.put(harness.spec(replicas: 2), source: "api", actor: "alice")
            try await eventually("both replicas are healthy and routed") {
                harness.router.policy("churn")?.stable?.endpoints.count == 2
            }
            let status = await harness.manager.status("churn")
            #expect(status.at("stable.version")?.scalarText == "1")
            #expect(status.at("stable.model_uri")?.scalarText == "models:/churn/1")
            #expect(status.at("stable.replicas.0.state")?.scalarText == "healthy")
            #expect(status.at("canary") == .null)
            pid = Int32(status.at("stable.replicas.0.pid")?.scalarText ?? "") ?? 0
            let answer = await harness.router.predict("churn")
            #expect(answer?.status == 200 && answer?.version == "1")
            try await eventually("the replicas' health is recorded") {
                try await actions(harness).filter { $0.action == "replica.healthy" }.count == 2
            }
            let events = try await actions(harness)
            #expect(events.contains { $0.action == "deployed" && $0.actor == "baton" && $0.version == "1" })
            #expect(events.contains { $0.action == "spec.created" && $0.actor == "alice" })
        }
        #expect(pid > 0 && kill(pid, 0) != 0, "stopping the manager stops its replicas")
        // A restarted Baton reads the store and runs the stable version again.
        let second = Harness.makeManager(store: harness.store, registry: harness.registry, router: harness.router, root: harness.root)
        let task = Task { try await second.run() }
        try await eventually("the stable replicas run again after a restart") {
            harness.router.policy("churn")?.stable?.endpoints.count == 2
        }
        #expect(await second.status("churn").at("stable.version")?.scalarText == "1")
        task.cancel()
        _ = await task.result
    }

    @Test func aCanaryThatAnswersErrorsIsRolledBackWhileStableKeepsServing() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await harness.registerVersion("errors")
        try await running(harness) {
            try await harness.manager.put(
                harness.spec(steps: [RolloutStep(percent: 50, durationSeconds: 60)], minRequests: 5), source: "api", actor: "alice")
            try await eventually("stable serves") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
            try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/2"), actor: "pipeline:7/deploy")
            let started = ContinuousClock.now
            var stableAnswers: [Int] = []
            var canaryAnswers = 0
            try await eventually("the canary is rolled back") {
                if let answer = await harness.router.predict("churn") {
                    if answer.version == "1" { stableAnswers.append(answer.status) } else { canaryAnswers += 1 }
                }
                return await harness.manager.status("churn").at("rollout.state")?.scalarText == "rolled_back"
            }
            let elapsed = ContinuousClock.now - started
            #expect(elapsed < .seconds(15), "rolled back within its analysis window: \(elapsed)")
            #expect(canaryAnswers >= 1)
            #expect(!stableAnswers.isEmpty && stableAnswers.allSatisfy { $0 == 200 }, "stable never failed a request")
            let events = try await actions(harness)
            let rollback = try #require(events.first { $0.action == "rolled_back" })
            #expect(rollback.actor == "baton" && rollback.version == "2")
            #expect(rollback.reason?.contains("error_rate") == true, "\(rollback.reason ?? "")")
            #expect(rollback.detailJSON?.contains("\"threshold\":0.05") == true)
            #expect(events.contains { $0.action == "canary.started" && $0.actor == "pipeline:7/deploy" })
            try await eventually("the canary's replicas are gone") {
                await harness.manager.status("churn").at("canary") == .null
                    && harness.router.policy("churn")?.candidate == nil
            }
            for _ in 0..<10 {
                let answer = await harness.router.predict("churn")
                #expect(answer?.status == 200 && answer?.version == "1")
            }
        }
    }

    @Test func aHealthyCanaryIsPromotedAfterItsSteps() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await harness.registerVersion("ok")
        try await running(harness) {
            try await harness.manager.put(
                harness.spec(
                    steps: [RolloutStep(percent: 30, durationSeconds: 0.4), RolloutStep(percent: 60, durationSeconds: 0.4)],
                    minRequests: 3),
                source: "api", actor: "alice")
            try await eventually("stable serves") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
            try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/2"), actor: "alice")
            await #expect(throws: DeploymentError.self, "a second canary while one runs is a conflict") {
                try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/1", percent: 5), actor: "alice")
            }
            var failures = 0
            try await eventually("the canary is promoted") {
                if let answer = await harness.router.predict("churn"), answer.status != 200 { failures += 1 }
                return await harness.manager.status("churn").at("stable.version")?.scalarText == "2"
            }
            #expect(failures == 0)
            let status = await harness.manager.status("churn")
            #expect(status.at("rollout.state")?.scalarText == "promoted" && status.at("canary") == .null)
            let events = try await actions(harness)
            #expect(events.contains { $0.action == "step.advanced" && $0.actor == "baton" })
            #expect(events.contains { $0.action == "promoted" && $0.actor == "baton" && $0.version == "2" })
            try await eventually("the old stable drained") {
                let stopped = try await actions(harness).contains { $0.action == "replica.stopped" && $0.version == "1" }
                return await harness.manager.status("churn").at("stable.replicas")?.arrayValue?.count == 1 && stopped
            }
        }
    }

    @Test func aKilledReplicaIsRestartedAndRecorded() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await running(harness) {
            try await harness.manager.put(harness.spec(), source: "api", actor: "alice")
            try await eventually("the replica is healthy") { harness.router.policy("churn")?.stable?.endpoints.count == 1 }
            let pid = Int32(await harness.manager.status("churn").at("stable.replicas.0.pid")?.scalarText ?? "") ?? 0
            #expect(pid > 0)
            kill(pid, SIGKILL)
            try await eventually("the replica runs again") {
                let status = await harness.manager.status("churn")
                return status.at("stable.replicas.0.restarts")?.scalarText == "1"
                    && status.at("stable.replicas.0.state")?.scalarText == "healthy"
                    && harness.router.policy("churn")?.stable?.endpoints.count == 1
            }
            let events = try await actions(harness)
            let crash = try #require(events.first { $0.action == "replica.crashed" })
            #expect(crash.reason?.contains("signal 9") == true, "\(crash.reason ?? "")")
            #expect(events.contains { $0.action == "replica.restarted" })
            #expect(await harness.router.predict("churn")?.status == 200)
        }
    }

    @Test func manualActionsRecordTheirActorAndBadRequestsExplainThemselves() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await harness.registerVersion("ok")
        try await running(harness) {
            try await harness.manager.put(harness.spec(), source: "api", actor: "alice")
            do {
                try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/9", percent: 10), actor: "bob")
                Issue.record("an unknown version must not resolve")
            } catch let error as DeploymentError {
                #expect(error.field == "model" && error.description.contains("models:/churn/9"))
            }
            await #expect(throws: DeploymentError.self) {
                try await harness.manager.canary("nope", CanaryRequest(model: "models:/churn/2"), actor: "bob")
            }
            try await eventually("stable runs") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
            try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/2", percent: 20, shadow: true), actor: "bob")
            try await harness.manager.pause("churn", actor: "carol", reason: "looking into it")
            try await harness.manager.resume("churn", actor: "carol", reason: nil)
            try await harness.manager.abort("churn", actor: "dave", reason: "wrong version")
            let events = try await actions(harness)
            #expect(events.contains { $0.action == "paused" && $0.actor == "carol" && $0.reason == "looking into it" })
            #expect(events.contains { $0.action == "aborted" && $0.actor == "dave" && $0.version == "2" })
            #expect(await harness.manager.status("churn").at("rollout.state")?.scalarText == "aborted")
        }
    }

    @Test func aSlowCanaryIsRolledBackOnItsP99() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await harness.registerVersion("slow 300")
        try await running(harness) {
            var spec = harness.spec(steps: [RolloutStep(percent: 50, durationSeconds: 60)], minRequests: 3)
            spec.rollout.analysis.maxP99LatencyMs = 150
            try await harness.manager.put(spec, source: "api", actor: "alice")
            try await eventually("stable serves") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
            try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/2"), actor: "alice")
            var failures = 0
            try await eventually("the slow canary is rolled back") {
                if let answer = await harness.router.predict("churn"), answer.status != 200 { failures += 1 }
                return await harness.manager.status("churn").at("rollout.state")?.scalarText == "rolled_back"
            }
            #expect(failures == 0)
            let rollback = try #require(try await actions(harness).first { $0.action == "rolled_back" })
            #expect(rollback.actor == "baton" && rollback.reason?.contains("p99_latency_ms") == true, "\(rollback.reason ?? "")")
        }
    }

    @Test func aCanaryBelowItsMetricThresholdIsRolledBack() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await harness.registerVersion("ok")
        try await running(harness) {
            var spec = harness.spec(steps: [RolloutStep(percent: 50, durationSeconds: 60)], minRequests: 3)
            spec.rollout.analysis.metrics = [MetricThreshold(name: "churn.accuracy", min: 0.6)]
            try await harness.manager.put(spec, source: "api", actor: "alice")
            try await eventually("stable serves") { harness.router.policy("churn")?.stable?.endpoints.isEmpty == false }
            try await harness.manager.canary("churn", CanaryRequest(model: "models:/churn/2"), actor: "alice")
            try await harness.store.recordMetrics([
                MetricPoint(name: "churn.accuracy", tags: ["deployment": "churn", "version": "2"], value: 0.4, timestamp: Date())
            ])
            try await eventually("the canary is rolled back on its metric") {
                _ = await harness.router.predict("churn")
                return await harness.manager.status("churn").at("rollout.state")?.scalarText == "rolled_back"
            }
            let rollback = try #require(try await actions(harness).first { $0.action == "rolled_back" })
            #expect(rollback.reason?.contains("churn.accuracy (min) 0.4") == true, "\(rollback.reason ?? "")")
        }
    }

    @Test func aReplicaThatStopsAnsweringLeavesRoutingAndComesBack() async throws {
        let harness = try Harness()
        let version = try await harness.registerVersion("ok", alias: "champion")
        try await running(harness) {
            try await harness.manager.put(harness.spec(), source: "api", actor: "alice")
            try await eventually("the replica is routed") { harness.router.policy("churn")?.stable?.endpoints.count == 1 }
            try await harness.setBehaviour("sick", version: version)
            try await eventually("three missed checks take it out of routing") {
                let state = await harness.manager.status("churn").at("stable.replicas.0.state")?.scalarText
                return harness.router.policy("churn")?.stable?.endpoints.isEmpty == true && state == "unhealthy"
            }
            try await harness.setBehaviour("ok", version: version)
            // Routing changes first; the audit entry follows.
            try await eventually("one answer brings it back, and both changes are recorded") {
                let events = try await actions(harness)
                return harness.router.policy("churn")?.stable?.endpoints.count == 1
                    && events.contains { $0.action == "replica.unhealthy" && $0.reason?.contains("3 health checks") == true }
                    && events.contains { $0.action == "replica.healthy" && $0.reason == "answers its health checks again" }
            }
        }
    }

    @Test func aChangedSpecReplacesReplicasOneAtATimeWithoutFailedRequests() async throws {
        let harness = try Harness()
        try await harness.registerVersion("ok", alias: "champion")
        try await running(harness) {
            var spec = harness.spec(replicas: 2)
            try await harness.manager.put(spec, source: "api", actor: "alice")
            try await eventually("both replicas are routed") { harness.router.policy("churn")?.stable?.endpoints.count == 2 }
            let before = Set(await harness.manager.status("churn").at("stable.replicas")?.arrayValue?.compactMap { $0["pid"]?.scalarText } ?? [])
            spec.env["EXTRA"] = "changed"
            try await harness.manager.put(spec, source: "api", actor: "alice")
            var failures = 0
            var unrouted = 0
            try await eventually("both replicas were replaced", timeout: .seconds(30)) {
                if let answer = await harness.router.predict("churn") {
                    if answer.status != 200 { failures += 1 }
                } else {
                    unrouted += 1
                }
                let replicas = await harness.manager.status("churn").at("stable.replicas")?.arrayValue ?? []
                let pids = Set(replicas.compactMap { $0["pid"]?.scalarText })
                return replicas.count == 2 && pids.isDisjoint(with: before)
                    && replicas.allSatisfy { $0["state"]?.scalarText == "healthy" }
            }
            #expect(failures == 0 && unrouted == 0, "\(failures) failed, \(unrouted) found no replica")
            let drained = try await actions(harness).filter { $0.action == "replica.draining" && $0.reason == "the deployment's spec changed" }
            #expect(drained.count == 2)
        }
    }

    @Test func aBrokenFileKeepsItsLastGoodDeployments() async throws {
        let harness = try Harness()
        try await running(harness) {
            var spec = harness.spec()
            spec.sourceFile = "pipelines/deploy.yaml"
            await harness.manager.applyFolder([spec], keptFiles: [])
            #expect(await harness.manager.names() == ["churn"])
            #expect(await harness.manager.status("churn").at("source")?.scalarText == "file:pipelines/deploy.yaml")
            await harness.manager.applyFolder([], keptFiles: ["pipelines/deploy.yaml"])
            #expect(await harness.manager.names() == ["churn"], "a file with errors keeps its last good deployments")
            await harness.manager.applyFolder([], keptFiles: [])
            #expect(await harness.manager.names().isEmpty, "a deployment removed from a valid file stops")
            let events = try await actions(harness)
            #expect(events.contains { $0.action == "model.unresolved" && $0.reason?.contains("models:/churn@champion") == true })
        }
    }

    @Test func replicasLeftByAKilledBatonAreStoppedAtTheNextStart() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        // A replica in a group of its own, as the supervisor starts them, whose Baton died.
        let leftover = Process()
        leftover.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        leftover.arguments = ["sleep", "60"]
        try leftover.run()
        let pid = leftover.processIdentifier
        try await eventually("the leftover runs in its own group") { getpgid(pid) == pid }
        let ticks = try #require(ProcessGroup.startTicks(of: pid))
        let folder = harness.root + "/deployments/churn"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try "\(pid) \(ticks)\n".write(toFile: folder + "/churn-1-0.pid", atomically: true, encoding: .utf8)
        let manager = harness.manager
        let task = Task { try await manager.run() }
        try await eventually("the leftover replica is stopped and forgotten") {
            Self.isGone(pid) && !FileManager.default.fileExists(atPath: folder + "/churn-1-0.pid")
        }
        task.cancel()
        _ = await task.result
    }

    /// A killed child of the test stays a zombie until Foundation reaps it: that counts as gone.
    static func isGone(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        return stat[stat.index(close, offsetBy: 2)...].hasPrefix("Z")
    }
}
