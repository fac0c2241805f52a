import Foundation
import NIOCore
import Synchronization
import Testing

@testable import BatonGateway

@Suite("Gateway routing and recording against real replicas")
struct GatewayTests {
    @Test("a weighted split sends the candidate its share and spreads a version over its replicas")
    func weightedSplit() async throws {
        let stableA = try await TestReplica.start("s-a", .init(prediction: 0.2))
        let stableB = try await TestReplica.start("s-b", .init(prediction: 0.2))
        let candidate = try await TestReplica.start("c", .init(prediction: 0.8))
        defer { [stableA, stableB, candidate].forEach { $0.stop() } }
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(
            TrafficPolicy(
                stable: GatewayBackend(version: "3", endpoints: [stableA.endpoint(), stableB.endpoint()]),
                candidate: GatewayBackend(version: "4", endpoints: [candidate.endpoint()]), candidatePercent: 20),
            deployment: "churn")
        let total = 1000
        var versions: [String: Int] = [:]
        for index in 0..<total {
            let answer = await gateway.predict("churn", #"{"tenure": \#(index % 50), "charges": 70.5}"#)
            #expect(answer.status == 200)
            #expect(answer.header("X-Baton-Request-Id") != nil)
            versions[answer.header("X-Baton-Version") ?? "none", default: 0] += 1
        }
        let share = Double(versions["4"] ?? 0) / Double(total)
        // 20 % of 1000: the standard deviation is 1.3 points, so ±5 points is nearly 4 sigma.
        #expect(abs(share - 0.2) < 0.05, "candidate share \(share)")
        #expect(candidate.received == versions["4"])
        #expect(stableA.received + stableB.received == versions["3"])
        #expect(abs(stableA.received - stableB.received) <= 1, "round robin: \(stableA.received) and \(stableB.received)")
        let stats = gateway.stats(deployment: "churn")
        #expect(stats["3"]?.requests == versions["3"])
        #expect(stats["4"]?.requests == versions["4"])
        #expect(stats["4"]?.errors == 0)
        #expect(abs((stats["4"]?.prediction.mean ?? 0) - 0.8) < 1e-9)
        #expect(stats["3"]?.prediction.min == 0.2)
        #expect((stats["3"]?.p99Ms ?? 0) > 0)
        let recent = gateway.stats(deployment: "churn", since: .seconds(60))
        #expect(recent["3"]?.requests == versions["3"])
        let drift = gateway.driftWindow(deployment: "churn", version: "3")
        // The reservoir keeps at most its capacity of the stable's 800 or so values.
        let kept = min(VersionRecorder.reservoirCapacity, versions["3"] ?? 0)
        #expect(drift.fields["tenure"]?.count == kept)
        #expect(drift.fields["charges"]?.allSatisfy { $0 == 70.5 } == true)
        #expect(drift.predictions.count == kept)
        await gateway.shutdown()
    }

    @Test("a sticky key always reaches the same version, from the JSON field or the header")
    func stickyKeys() async throws {
        let stable = try await TestReplica.start("s")
        let candidate = try await TestReplica.start("c")
        defer { [stable, candidate].forEach { $0.stop() } }
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(
            TrafficPolicy(
                stable: GatewayBackend(version: "1", endpoints: [stable.endpoint()]),
                candidate: GatewayBackend(version: "2", endpoints: [candidate.endpoint()]), candidatePercent: 50,
                stickyKey: "customer_id"),
            deployment: "churn")
        var seen: Set<String> = []
        for key in 0..<60 {
            var versions: Set<String> = []
            for _ in 0..<4 {
                let answer = await gateway.predict("churn", #"{"customer_id": "cust-\#(key)", "tenure": 3}"#)
                versions.insert(answer.header("X-Baton-Version") ?? "none")
            }
            let byHeader = await gateway.predict("churn", #"{"tenure": 3}"#, headers: [("X-Baton-Key", "cust-\(key)")])
            versions.insert(byHeader.header("X-Baton-Version") ?? "none")
            // The header wins over the body's field.
            let overridden = await gateway.predict(
                "churn", #"{"customer_id": "someone-else", "tenure": 3}"#, headers: [("x-baton-key", "cust-\(key)")])
            versions.insert(overridden.header("X-Baton-Version") ?? "none")
            #expect(versions.count == 1, "key cust-\(key) went to \(versions)")
            seen.formUnion(versions)
        }
        #expect(seen == ["1", "2"], "60 keys at 50 % should reach both versions")
        // Numbers work as keys too.
        let first = await gateway.predict("churn", #"{"customer_id": 1234}"#)
        let again = await gateway.predict("churn", #"{"customer_id": 1234, "x": 1}"#)
        #expect(first.header("X-Baton-Version") == again.header("X-Baton-Version"))
        await gateway.shutdown()
    }

    @Test("shadow mode answers with stable while the candidate receives copies, recorded apart")
    func shadow() async throws {
        let stable = try await TestReplica.start("s", .init(prediction: 0.1))
        let candidate = try await TestReplica.start("c", .init(prediction: 0.9))
        defer { [stable, candidate].forEach { $0.stop() } }
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(
            TrafficPolicy(
                stable: GatewayBackend(version: "1", endpoints: [stable.endpoint()]),
                candidate: GatewayBackend(version: "2", endpoints: [candidate.endpoint()]), candidatePercent: 0, mode: .shadow),
            deployment: "churn")
        for index in 0..<40 {
            let answer = await gateway.predict("churn", #"{"tenure": \#(index)}"#)
            #expect(answer.status == 200)
            #expect(answer.header("X-Baton-Version") == "1")
            #expect(answer.text.contains(#""replica": "s""#))
        }
        try await waitUntil(.seconds(10), "the candidate to receive 40 copies") { candidate.received == 40 }
        try await waitUntil(.seconds(10), "the copies to be recorded") { gateway.stats(deployment: "churn")["2"]?.requests == 40 }
        #expect(stable.received == 40)
        #expect(candidate.bodies.contains(#"{"tenure": 7}"#))
        let stats = gateway.stats(deployment: "churn")
        #expect(stats["1"]?.requests == 40)
        #expect(abs((stats["2"]?.prediction.mean ?? 0) - 0.9) < 1e-9)
        #expect(gateway.driftWindow(deployment: "churn", version: "2").fields["tenure"]?.count == 40)
        await gateway.shutdown()
    }

    @Test("a failing or slow candidate is counted against its version only")
    func errorsPerVersion() async throws {
        let stable = try await TestReplica.start("s")
        let failing = try await TestReplica.start("f", .init(status: 500))
        let slow = try await TestReplica.start("slow", .init(delay: .seconds(60)))
        defer { [stable, failing, slow].forEach { $0.stop() } }
        // Far below the slow replica's delay, far above a loaded machine's stalls: the whole
        // suite on two cores once kept a healthy replica's answer waiting past a 2-s deadline,
        // and another run past a 5-s one.
        let gateway = Gateway(
            requestTimeout: .seconds(20), maxBodyBytes: 1 << 20, logger: quietLogger(), clock: nil)
        gateway.setPolicy(
            TrafficPolicy(
                stable: GatewayBackend(version: "1", endpoints: [stable.endpoint()]),
                candidate: GatewayBackend(version: "2", endpoints: [failing.endpoint()]), candidatePercent: 100),
            deployment: "churn")
        for _ in 0..<5 {
            let answer = await gateway.predict("churn", "{}")
            #expect(answer.status == 500)
            #expect(answer.header("X-Baton-Version") == "2")
        }
        gateway.setPolicy(
            TrafficPolicy(
                stable: GatewayBackend(version: "1", endpoints: [stable.endpoint()]),
                candidate: GatewayBackend(version: "3", endpoints: [slow.endpoint()]), candidatePercent: 100),
            deployment: "churn")
        let timedOut = await gateway.predict("churn", "{}")
        #expect(timedOut.status == 504)
        #expect(timedOut.errorDetail?["code"] == "timeout")
        #expect(timedOut.errorDetail?["message"]?.contains("version 3") == true)
        gateway.setPolicy(
            TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [stable.endpoint()]), candidatePercent: 0),
            deployment: "churn")
        for _ in 0..<3 { #expect(await gateway.predict("churn", "{}").status == 200) }
        let stats = gateway.stats(deployment: "churn")
        #expect(stats["2"]?.requests == 5)
        #expect(stats["2"]?.errors == 5)
        #expect(stats["2"]?.errorRate == 1)
        #expect(stats["3"]?.errors == 1)
        #expect((stats["3"]?.p50Ms ?? 0) >= 250)
        #expect(stats["1"]?.requests == 3)
        #expect(stats["1"]?.errors == 0)
        gateway.resetStats(deployment: "churn", version: "2")
        #expect(gateway.stats(deployment: "churn")["2"]?.requests == 0)
        await gateway.shutdown()
    }

    @Test("a refused connection is retried on another replica; with none left it is a 502")
    func failover() async throws {
        let live = try await TestReplica.start("live")
        defer { live.stop() }
        let gateway = Gateway(logger: quietLogger())
        // Nothing listens on port 1 of the loopback: connecting is refused at once.
        let dead = GatewayEndpoint(host: "127.0.0.1", port: 1, replicaID: "dead")
        gateway.setPolicy(
            TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [dead, live.endpoint()])), deployment: "churn")
        for _ in 0..<10 {
            let answer = await gateway.predict("churn", "{}")
            #expect(answer.status == 200)
        }
        #expect(live.received == 10)
        #expect(gateway.stats(deployment: "churn")["1"]?.errors == 0)
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [dead])), deployment: "churn")
        let failed = await gateway.predict("churn", "{}")
        #expect(failed.status == 502)
        #expect(failed.errorDetail?["code"] == "bad_gateway")
        #expect(failed.errorDetail?["fix"] != nil)
        #expect(failed.header("X-Baton-Version") == "1")
        #expect(gateway.stats(deployment: "churn")["1"]?.errors == 1)
        await gateway.shutdown()
    }

    @Test("unknown deployments, missing replicas and large bodies get Baton's error shape")
    func errorShapes() async throws {
        let gateway = Gateway(
            requestTimeout: .seconds(30), maxBodyBytes: 1000, logger: quietLogger(), clock: nil)
        let unknown = await gateway.predict("nope", "{}")
        #expect(unknown.status == 404)
        #expect(unknown.errorDetail?["code"] == "not_found")
        #expect(unknown.errorDetail?["message"]?.contains("'nope'") == true)

        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "7", endpoints: [])), deployment: "churn")
        let unavailable = await gateway.predict("churn", "{}")
        #expect(unavailable.status == 503)
        #expect(unavailable.errorDetail?["code"] == "unavailable")
        #expect(unavailable.errorDetail?["message"]?.contains("'churn'") == true)
        #expect(unavailable.errorDetail?["message"]?.contains("version 7") == true)
        #expect(unavailable.errorDetail?["fix"]?.isEmpty == false)

        let large = await gateway.predict("churn", String(repeating: " ", count: 1001))
        #expect(large.status == 413)
        #expect(large.errorDetail?["code"] == "body_too_large")

        // A message with quotes and newlines stays valid JSON.
        let odd = await gateway.predict("a\"b\nc", "{}")
        #expect(odd.errorDetail?["message"]?.contains("a\"b\nc") == true)

        gateway.setPolicy(nil, deployment: "churn")
        #expect(await gateway.predict("churn", "{}").status == 404)
        #expect(gateway.policy(deployment: "churn") == nil)
        await gateway.shutdown()
    }

    @Test("only safe Accept and X- headers reach the replica; an unsafe request id or content type is replaced")
    func forwardedHeaders() async throws {
        let replica = try await TestReplica.start("r1")
        defer { replica.stop() }
        // No timeout is tested here: a 5 s one ran out for a healthy replica in a clean-clone run
        // while every suite started at once on two cores.
        let gateway = Gateway(requestTimeout: .seconds(30), maxBodyBytes: 1000, logger: quietLogger(), clock: nil)
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "churn")
        let answer = await gateway.forward(
            deployment: "churn", body: ByteBuffer(string: "{}"), contentType: "text/plain\r\nX-Injected: 1",
            headers: [
                ("X-Trace", "a\r\nX-Evil: 1"), ("X-Ok", "fine"), ("Accept", "application/json"), ("x-baton-request-id", "id\r\nX-Sneaky: 1"),
                ("Authorization", "Bearer secret"), ("X-Api-Key", "secret"), ("X Bad", "name"),
                ("X-Forwarded-AUTHORIZATION", "secret"), ("Xa-Not", "1"), ("ACCEPT-Language", "en"),
            ])
        #expect(answer.status == 200)
        let requestID = try #require(answer.header("X-Baton-Request-Id"))
        #expect(!requestID.contains("\r") && !requestID.hasPrefix("id"), "\(requestID)")
        let received = try #require(replica.headers.first)
        let names = Set(received.map(\.0))
        #expect(received.contains { $0 == ("x-ok", "fine") }, "\(received)")
        #expect(received.contains { $0 == ("accept", "application/json") }, "\(received)")
        #expect(received.contains { $0 == ("content-type", "application/json") }, "\(received)")
        #expect(received.contains { $0 == ("x-baton-request-id", requestID) }, "\(received)")
        for absent in [
            "x-trace", "x-evil", "x-injected", "x-sneaky", "authorization", "x-api-key", "x bad", "x-forwarded-authorization", "xa-not",
            "accept-language",
        ] {
            #expect(!names.contains(absent), "\(absent) reached the replica: \(received)")
        }
        await gateway.shutdown()
    }

    @Test("the first deployment (no stable) sends everything to the candidate")
    func candidateOnly() async throws {
        let candidate = try await TestReplica.start("c")
        defer { candidate.stop() }
        let gateway = Gateway(logger: quietLogger())
        let policy = TrafficPolicy(
            stable: nil, candidate: GatewayBackend(version: "1", endpoints: [candidate.endpoint()]), candidatePercent: 10)
        gateway.setPolicy(policy, deployment: "churn")
        #expect(gateway.policy(deployment: "churn") == policy)
        for _ in 0..<5 { #expect(await gateway.predict("churn", "{}").header("X-Baton-Version") == "1") }
        await gateway.shutdown()
    }

    @Test("a replica's requests in flight are counted, also after it left routing, until they are answered")
    func inFlightCounts() async throws {
        let replica = try await TestReplica.start("slow-0", .init(delay: .milliseconds(600)))
        defer { replica.stop() }
        let gateway = Gateway(logger: quietLogger())
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
        #expect(gateway.inFlight(replicaID: "slow-0") == 0)
        let pending = Task { await gateway.predict("d", #"{"x": 1}"#) }
        try await waitUntil(.seconds(5), "the request reaches the replica") { gateway.inFlight(replicaID: "slow-0") == 1 }
        // The replica leaves routing (a drain) while its request is still being answered.
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [])), deployment: "d")
        #expect(gateway.inFlight(replicaID: "slow-0") == 1)
        let answer = await pending.value
        #expect(answer.status == 200)
        #expect(gateway.inFlight(replicaID: "slow-0") == 0)
        #expect(gateway.inFlight(replicaID: "never-seen") == 0)
        await gateway.shutdown()
    }

    @Test("the sliding window forgets old slots while totals keep them")
    func slidingWindow() async throws {
        let replica = try await TestReplica.start("r")
        defer { replica.stop() }
        let now = ManualClock()
        let gateway = Gateway(
            requestTimeout: .seconds(30), maxBodyBytes: 1 << 20, logger: quietLogger(),
            clock: { now.seconds.load(ordering: .relaxed) })
        gateway.setPolicy(TrafficPolicy(stable: GatewayBackend(version: "1", endpoints: [replica.endpoint()])), deployment: "d")
        for _ in 0..<4 { _ = await gateway.predict("d", #"{"x": 1}"#) }
        now.seconds.store(125, ordering: .relaxed)
        for _ in 0..<2 { _ = await gateway.predict("d", #"{"x": 2}"#) }
        #expect(gateway.stats(deployment: "d", since: .seconds(60))["1"]?.requests == 2)
        #expect(gateway.stats(deployment: "d", since: .seconds(600))["1"]?.requests == 6)
        #expect(gateway.stats(deployment: "d")["1"]?.requests == 6)
        // The chart's view of the same window: 10 s slots from the gateway's start, idle ones as zeros.
        let timeline = try #require(gateway.timeline(deployment: "d")["1"])
        #expect(timeline.map(\.requests) == [4] + Array(repeating: 0, count: 11) + [2])
        #expect(timeline.last?.p99Ms ?? 0 > 0)
        let spacing = try #require(timeline.last?.start).timeIntervalSince(try #require(timeline.first?.start))
        #expect(abs(spacing - 120) < 0.01)
        now.seconds.store(3 * 3600, ordering: .relaxed)
        #expect(gateway.stats(deployment: "d", since: .seconds(600))["1"]?.requests == 0)
        #expect(gateway.driftWindow(deployment: "d", version: "1").requests == 0)
        await gateway.shutdown()
    }
}

final class ManualClock: Sendable {
    let seconds = Atomic<Int>(0)
}
