import BatonEngine
import BatonStore
import Foundation
import Hummingbird

/// `/healthz`: the process answers. `/readyz`: the store answers and the engine is running.
/// Both stay open when auth is on, so orchestrators and load balancers can probe them.
enum HealthRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.get("/healthz") { _, _ in
            APIResponse.json(["status": "ok"])
        }
        router.get("/readyz") { _, _ -> Response in
            var problems: [String] = []
            do {
                try await context.store.ping()
            } catch {
                problems.append("store unreachable: \(error)")
            }
            // A follower is ready when it serves: another replica schedules.
            let follows = context.leadership.map { !$0.isLeader } ?? false
            if !follows, await !context.engine.isRunning() { problems.append("scheduler not running yet") }
            // A follower forwards changes: until it knows the leader, it cannot take them.
            if follows, context.leadership?.leaderURL == nil { problems.append("no leader known yet") }
            if problems.isEmpty {
                return APIResponse.json(["status": "ready", "role": follows ? "follower" : "leader"])
            }
            return APIResponse.json(["status": "not_ready", "problems": problems.joined(separator: "; ")], status: .serviceUnavailable)
        }
    }
}
