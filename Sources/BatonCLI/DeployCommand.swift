import ArgumentParser
import BatonAPI
import BatonCore
import Foundation

struct DeployCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deploy",
        abstract: "Model deployments: status, canaries, promote, roll back, and the audit trail.",
        discussion: """
            Deployments are declared in YAML files in the pipelines folder (top level `deployments:`)
            and supervised by the running server, so these commands talk to it (--server, or
            BATON_SERVER; http://127.0.0.1:8080 by default). Inside a pipeline task, decisions are
            recorded as pipeline:RUN/TASK.

            Examples:
              baton deploy status                                    every deployment
              baton deploy status churn                              versions, replicas, traffic, rollout, stats
              baton deploy canary churn --model models:/churn@champion --percent 10 --wait
              baton deploy canary churn --model models:/churn/4      the steps declared in rollout.steps
              baton deploy promote churn --reason "metrics look good"
              baton deploy rollback churn --reason "latency"
              baton deploy history churn
              baton deploy ab churn --model models:/churn/4 --percent 50   start an A/B test
              baton deploy ab churn                                  its summary with confidence intervals
            """,
        subcommands: [
            Status.self, Canary.self, Promote.self, Rollback.self, Pause.self, Resume.self, Abort.self, History.self, AB.self,
        ],
        defaultSubcommand: Status.self)

    struct Access: ParsableArguments {
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var output: OutputOptions

        func client() throws -> BatonClient {
            if let client = try remote.client() { return client }
            do {
                return try BatonClient(server: "http://127.0.0.1:8080", token: remote.token)
            } catch {
                throw CLIError(error.description)
            }
        }

        func get(_ path: String) async throws -> JSONValue {
            let client = try client()
            return try await BatonCLI.remote { () async throws(BatonClient.ClientError) -> JSONValue in
                try await client.get(path, as: JSONValue.self)
            }
        }

        func post(_ path: String, _ body: JSONValue) async throws -> JSONValue {
            let client = try client()
            return try await BatonCLI.remote { () async throws(BatonClient.ClientError) -> JSONValue in
                try await client.post(path, body: body, as: JSONValue.self)
            }
        }
    }

    /// Who decides: the pipeline task this runs in, when it does.
    static var actor: String? {
        let environment = ProcessInfo.processInfo.environment
        guard let run = environment["BATON_RUN_ID"], let task = environment["BATON_TASK"] else { return nil }
        return "pipeline:\(run)/\(task)"
    }

    static func path(_ name: String, _ action: String = "") -> String {
        "/api/v1/deployments/\(percentEncoded(name))\(action.isEmpty ? "" : "/" + action)"
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "status", abstract: "Deployments, or one in detail.")
        @Argument(help: "A deployment (default: all).") var name: String?
        @OptionGroup var access: Access

        func run() async throws {
            guard let name else {
                let answer = try await access.get("/api/v1/deployments")
                if access.output.json { return printJSON(answer) }
                let items = answer["items"]?.arrayValue ?? []
                guard !items.isEmpty else {
                    print("no deployments yet; declare one in a YAML file with `deployments:` in the pipelines folder")
                    return
                }
                var table = Table(headers: ["DEPLOYMENT", "STABLE", "CANARY", "TRAFFIC", "ROLLOUT", "REPLICAS"])
                for item in items { table.rows.append(DeployCommand.row(item)) }
                print(table.render())
                return
            }
            let status = try await access.get(DeployCommand.path(name))
            if access.output.json { return printJSON(status) }
            DeployCommand.printStatus(status)
            // Drift is extra: a server that cannot compute it still shows the status.
            if let drift = try? await access.get(DeployCommand.path(name, "drift")) { DeployCommand.printDrift(drift) }
        }
    }

    static func row(_ item: JSONValue) -> [String] {
        let replicas = (["stable", "canary"].flatMap { item[$0]?["replicas"]?.arrayValue ?? [] })
        let healthy = replicas.filter { $0["state"]?.scalarText == "healthy" }.count
        return [
            item["name"]?.scalarText ?? "", item["stable"]?["version"]?.scalarText.map { "v\($0)" } ?? "-",
            item["canary"]?["version"]?.scalarText.map { "v\($0)" } ?? "-", traffic(item),
            item["rollout"]?["state"]?.scalarText ?? "-", "\(healthy)/\(replicas.count) healthy",
        ]
    }

    static func traffic(_ item: JSONValue) -> String {
        let stable = item["traffic"]?["stable_percent"]?.scalarText ?? "0"
        let canary = item["traffic"]?["canary_percent"]?.scalarText ?? "0"
        let mode = item["traffic"]?["mode"]?.scalarText ?? "split"
        return mode == "shadow" ? "\(stable)% + shadow \(canary)%" : "\(stable)/\(canary)"
    }

    static func printStatus(_ status: JSONValue) {
        print("deployment \(status["name"]?.scalarText ?? "") (\(status["model"]?.scalarText ?? ""))")
        if let owner = status["owner"]?.scalarText { print("  owner: \(owner)") }
        print("  traffic: stable \(status["traffic"]?["stable_percent"]?.scalarText ?? "0") %, canary \(status["traffic"]?["canary_percent"]?.scalarText ?? "0") % (\(status["traffic"]?["mode"]?.scalarText ?? "split"))")
        if let rollout = status["rollout"], rollout != .null {
            let steps = rollout["steps"]?.arrayValue ?? []
            let step = Int(rollout["step"]?.scalarText ?? "0") ?? 0
            let state = rollout["state"]?.scalarText ?? ""
            let open = state == "progressing" || state == "paused"
            print("  rollout: \(state)" + (steps.isEmpty || !open ? "" : ", step \(step + 1) of \(steps.count)"))
            if let analysis = rollout["last_analysis"], analysis != .null {
                print("  last analysis: \(analysis["verdict"]?.scalarText ?? "") at \(analysis["at"]?.scalarText ?? "")")
            }
        }
        var table = Table(headers: ["ROLE", "VERSION", "REPLICA", "STATE", "PORT", "PID", "RESTARTS"])
        for role in ["stable", "canary"] {
            guard let placed = status[role], placed != .null else { continue }
            for replica in placed["replicas"]?.arrayValue ?? [] {
                table.rows.append(
                    [role, "v\(placed["version"]?.scalarText ?? "")"] + ["id", "state", "port", "pid", "restarts"].map { replica[$0]?.scalarText ?? "-" })
            }
        }
        if !table.rows.isEmpty {
            print("")
            print(table.render())
        }
        let stats = (status["stats"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
        if !stats.isEmpty {
            print("")
            var figures = Table(headers: ["VERSION", "REQUESTS", "ERRORS", "ERROR RATE", "P50 MS", "P99 MS"])
            for (version, value) in stats {
                figures.rows.append(["v\(version)"] + ["requests", "errors", "error_rate", "p50_ms", "p99_ms"].map { value[$0]?.scalarText ?? "-" })
            }
            print(figures.render())
        }
    }

    /// PSI per feature and of the predictions, per version that has a baseline.
    static func printDrift(_ drift: JSONValue) {
        let versions = (drift["versions"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
        var table = Table(headers: ["VERSION", "FEATURE", "PSI", "LIVE VALUES"])
        var missing: [String] = []
        for (version, entry) in versions {
            guard entry["baseline"]?.scalarText == "found" else {
                missing.append("v\(version)")
                continue
            }
            var named = (entry["features"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
            if let prediction = entry["prediction"], prediction != .null { named.append(("(prediction)", prediction)) }
            for (feature, figures) in named {
                table.rows.append(["v\(version)", feature, format(figures["psi"]), figures["live_count"]?.scalarText ?? "0"])
            }
        }
        guard !table.rows.isEmpty || !missing.isEmpty else { return }
        let limit = drift["max_psi"].map { ", alert above \(format($0))" } ?? ""
        print("")
        print("drift over the last \(drift["window_seconds"]?.scalarText ?? "?") s (PSI; under 0.1 stable, over 0.25 shifted\(limit)):")
        if !table.rows.isEmpty { print(table.render()) }
        if !missing.isEmpty { print("no baseline.json recorded with \(missing.joined(separator: ", "))") }
    }

    struct Canary: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "canary",
            abstract: "Start a canary of a model version (the first deployment becomes stable directly).",
            discussion: """
                Without --percent the deployment's rollout.steps run, with analysis and automatic
                promotion; --percent P holds P % until someone promotes or rolls back (automatic
                rollback still applies). --wait returns once the canary's replicas are healthy and
                take traffic, and exits 1 if they never do or the canary is rolled back.
                """)
        @Argument(help: "The deployment.") var name: String
        @Option(help: ArgumentHelp("The model version: models:/NAME@ALIAS or models:/NAME/VERSION.", valueName: "ref")) var model: String
        @Option(help: "Hold this share of traffic (above 0, at most 100) instead of running the steps.") var percent: Double?
        @Flag(help: "Copy traffic to the canary; only stable's answers are returned.") var shadow = false
        @Flag(help: "Wait until the canary takes traffic.") var wait = false
        @Option(help: ArgumentHelp("How long --wait waits.", valueName: "duration")) var timeout: String = "5m"
        @OptionGroup var access: Access

        func validate() throws {
            if let percent, !(percent > 0 && percent <= 100) {
                throw ValidationError("--percent \(percent) is not a share of traffic; pass a number above 0 and at most 100")
            }
            guard model.hasPrefix("models:/") else {
                throw ValidationError("--model '\(model)' is not a model reference; write models:/NAME@ALIAS or models:/NAME/VERSION")
            }
            do {
                _ = try DurationText.seconds(timeout)
            } catch {
                throw ValidationError("--timeout: \(error.description)")
            }
        }

        func run() async throws {
            var body: [String: JSONValue] = ["model": .string(model), "shadow": .bool(shadow)]
            if let percent { body["percent"] = .number(percent) }
            if let actor = DeployCommand.actor { body["by"] = .string(actor) }
            var status = try await access.post(DeployCommand.path(name, "canary"), .object(body))
            let role = status["canary"] == .null ? "stable" : "canary"
            let version = status[role]?["version"]?.scalarText ?? "?"
            if !access.output.json {
                print(role == "stable"
                      ? "\(name): v\(version) is the first version, so it becomes stable directly"
                      : "\(name): canary v\(version) started (\(DeployCommand.traffic(status)))")
            }
            if wait {
                let deadline = Date().addingTimeInterval((try? DurationText.seconds(timeout)) ?? 300)
                while true {
                    let rollout = status["rollout"]?["state"]?.scalarText
                    if role == "canary", rollout == "rolled_back" || rollout == "aborted" || status["canary"] == .null {
                        let history = try? await access.get(DeployCommand.path(name, "events") + "?limit=20")
                        let reason = history?["items"]?.arrayValue?.first { ["rolled_back", "aborted"].contains($0["action"]?.scalarText ?? "") }?["reason"]?.scalarText
                        throw CLIError("\(name): canary v\(version) was \(rollout == "aborted" ? "aborted" : "rolled back")" + (reason.map { ": \($0)" } ?? ""))
                    }
                    let replicas = status[role]?["replicas"]?.arrayValue ?? []
                    if replicas.contains(where: { $0["state"]?.scalarText == "healthy" }) { break }
                    guard Date() < deadline else {
                        throw CLIError(
                            "\(name): v\(version)'s replicas did not get healthy within \(timeout); see `baton deploy status \(name)` and their logs")
                    }
                    try await Task.sleep(for: .milliseconds(250))
                    status = try await access.get(DeployCommand.path(name))
                }
                if !access.output.json { print("\(name): v\(version) is healthy and takes traffic") }
            }
            if access.output.json { printJSON(status) }
        }
    }

    struct Decision: ParsableArguments {
        @Argument(help: "The deployment.") var name: String
        @Option(help: "Why, for the audit trail.") var reason: String?
        @OptionGroup var access: Access

        func send(_ action: String) async throws {
            var body: [String: JSONValue] = [:]
            if let reason { body["reason"] = .string(reason) }
            if let actor = DeployCommand.actor { body["by"] = .string(actor) }
            let status = try await access.post(DeployCommand.path(name, action), .object(body))
            if access.output.json { return printJSON(status) }
            print("\(name): \(action) done; stable v\(status["stable"]?["version"]?.scalarText ?? "-"), " + "rollout \(status["rollout"]?["state"]?.scalarText ?? "-")")
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "promote", abstract: "Make the canary stable; the old stable drains.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send("promote") }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rollback", abstract: "Send all traffic back to stable; the canary stops.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send("rollback") }
    }

    struct Pause: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "pause", abstract: "Hold the rollout at its step.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send("pause") }
    }

    struct Resume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "resume", abstract: "Continue a paused rollout.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send("resume") }
    }

    struct Abort: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "abort", abstract: "End the rollout; the canary stops.")
        @OptionGroup var decision: Decision
        func run() async throws { try await decision.send("abort") }
    }

    struct AB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ab",
            abstract: "Start an A/B test, or show the summary of the latest one.",
            discussion: """
                With --model, starts the version as the candidate of an A/B test: --percent of the
                traffic goes to it, held until someone promotes or rolls back (automatic rollback on
                errors and latency still applies). Applications report outcomes with
                POST /serve/NAME/feedback {"request_id": "...", "metric": "converted", "value": 1}.
                Without --model, prints per metric each variant's count, mean and 95 % interval and
                the candidate's difference from stable.
                """)
        @Argument(help: "The deployment.") var name: String
        @Option(help: ArgumentHelp("The candidate: models:/NAME/VERSION or models:/NAME@ALIAS.", valueName: "ref")) var model: String?
        @Option(help: "The candidate's share of traffic (above 0, at most 100).") var percent: Double = 50
        @OptionGroup var access: Access

        func validate() throws {
            guard percent > 0, percent <= 100 else {
                throw ValidationError("--percent \(percent) is not a share of traffic; pass a number above 0 and at most 100")
            }
            if let model, !model.hasPrefix("models:/") {
                throw ValidationError("--model '\(model)' is not a model reference; write models:/NAME@ALIAS or models:/NAME/VERSION")
            }
        }

        func run() async throws {
            if let model {
                var body: [String: JSONValue] = ["model": .string(model), "percent": .number(percent), "ab": .bool(true)]
                if let actor = DeployCommand.actor { body["by"] = .string(actor) }
                let status = try await access.post(DeployCommand.path(name, "canary"), .object(body))
                if access.output.json { return printJSON(status) }
                let test = status["ab_test"]
                print(
                    "\(name): A/B test started: v\(test?["candidate"]?.scalarText ?? "?") takes \(DeployCommand.traffic(status)) "
                        + "against v\(test?["stable"]?.scalarText ?? "?"); see `baton deploy ab \(name)`")
                return
            }
            let summary = try await access.get(DeployCommand.path(name, "ab"))
            if access.output.json { return printJSON(summary) }
            DeployCommand.printABSummary(summary)
        }
    }

    static func printABSummary(_ summary: JSONValue) {
        let stable = summary["stable"]?.scalarText ?? "?"
        let candidate = summary["candidate"]?.scalarText ?? "?"
        print(
            "A/B test of \(summary["deployment"]?.scalarText ?? ""): v\(candidate) (\(summary["percent"]?.scalarText ?? "?") %) against v\(stable), "
                + "\(summary["state"]?.scalarText ?? ""), since \(summary["started_at"]?.scalarText ?? "?")"
                + (summary["ended_at"]?.scalarText.map { " until \($0)" } ?? ""))
        let metrics = summary["metrics"]?.arrayValue ?? []
        guard !metrics.isEmpty else {
            print("no outcomes reported yet: POST /serve/NAME/feedback {\"request_id\": ..., \"metric\": ..., \"value\": ...}")
            return
        }
        var table = Table(headers: ["METRIC", "VERSION", "COUNT", "MEAN", "95% INTERVAL"])
        var verdicts: [String] = []
        for metric in metrics {
            let name = metric["name"]?.scalarText ?? ""
            for version in [stable, candidate] {
                let variant = metric["variants"]?[version]
                table.rows.append([
                    name, "v\(version)", variant?["count"]?.scalarText ?? "0", format(variant?["mean"]),
                    "\(format(variant?["low"])) .. \(format(variant?["high"]))",
                ])
            }
            let difference = metric["difference"]
            let verdict = metric["significant"] == .bool(true)
                ? "v\(metric["higher"]?.scalarText ?? "?") is higher" : "no significant difference"
            verdicts.append(
                "\(name): v\(candidate) − v\(stable) = \(format(difference?["value"])) (95 % interval \(format(difference?["low"])) .. \(format(difference?["high"]))): \(verdict)")
        }
        print(table.render())
        for verdict in verdicts { print(verdict) }
    }

    static func format(_ value: JSONValue?) -> String {
        guard case .number(let number)? = value else { return "-" }
        return String(format: "%.4g", number)
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "history", abstract: "The deployment's audit trail, newest first.")
        @Argument(help: "The deployment.") var name: String
        @Option(help: "How many entries.") var limit: Int = 50
        @OptionGroup var access: Access

        func run() async throws {
            let answer = try await access.get(DeployCommand.path(name, "events") + "?limit=\(max(1, min(limit, 1000)))")
            if access.output.json { return printJSON(answer) }
            var table = Table(headers: ["WHEN", "ACTION", "VERSION", "BY", "REASON"])
            for event in answer["items"]?.arrayValue ?? [] {
                table.rows.append(["at", "action", "version", "actor", "reason"].map { event[$0]?.scalarText ?? "-" })
            }
            print(table.rows.isEmpty ? "no events yet" : table.render())
        }
    }
}
