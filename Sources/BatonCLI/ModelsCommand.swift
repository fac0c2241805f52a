import ArgumentParser
import BatonAPI
import BatonCore
import BatonRegistry
import BatonStore
import Foundation

struct ModelsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "The model registry: models, versions, and which version is approved for deployment.",
        discussion: """
            Models are registered with the MLflow client (MLFLOW_TRACKING_URI=http://HOST:PORT) or the
            Python SDK's register_model(...). A version is approved by moving the `champion` alias to it;
            every approval is recorded with who and when.

            Examples:
              baton models                                  list models and their approved versions
              baton models show churn                       versions, aliases, lineage and approvals
              baton models approve churn 3 --note "beats v2 on f1"
              baton models revoke churn
            """,
        subcommands: [List.self, Show.self, Versions.self, Approve.self, Revoke.self],
        defaultSubcommand: List.self)

    /// Where the commands read and write: a running server, or the database directly.
    struct Access: ParsableArguments {
        @OptionGroup var store: StoreOptions
        @OptionGroup var remote: RemoteOptions
        @OptionGroup var output: OutputOptions

        @Option(help: ArgumentHelp("The server's artifact folder, to show where versions' files are (default: DATA_DIR/artifacts).", valueName: "dir"))
        var artifactRoot: String?

        func withRegistry<T>(_ body: (Registry) async throws -> T) async throws -> T {
            let database = try await store.openStore()
            let registry = Registry(store: database, artifactRoot: artifactRoot ?? store.dataDirectory + "/artifacts")
            do {
                let value = try await body(registry)
                if let postgres = database as? PostgresStore { await postgres.close() }
                return value
            } catch let error as MLflowError {
                if let postgres = database as? PostgresStore { await postgres.close() }
                throw CLIError(error.message)
            }
        }

        func get(_ path: String, local: (Registry) async throws -> JSONValue) async throws -> JSONValue {
            if let client = try remote.client() {
                return try await BatonCLI.remote { () async throws(BatonClient.ClientError) -> JSONValue in
                    try await client.get(path, as: JSONValue.self)
                }
            }
            return try await withRegistry(local)
        }

        func post(_ path: String, body: JSONValue, local: (Registry) async throws -> JSONValue) async throws -> JSONValue {
            if let client = try remote.client() {
                return try await BatonCLI.remote { () async throws(BatonClient.ClientError) -> JSONValue in
                    try await client.post(path, body: body, as: JSONValue.self)
                }
            }
            return try await withRegistry(local)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Models with their latest and approved versions.")
        @OptionGroup var access: Access

        func run() async throws {
            let answer = try await access.get("/api/v1/models") { registry in
                .object(["items": .array(try await registry.models().map(\.json))])
            }
            if access.output.json { return printJSON(answer) }
            let models = answer["items"]?.arrayValue ?? []
            guard !models.isEmpty else {
                print("no registered models yet; register one with the MLflow client or baton.register_model(...)")
                return
            }
            var table = Table(headers: ["MODEL", "LATEST", "APPROVED", "ALIASES", "UPDATED"])
            for model in models {
                let versions = model["versions"]?.arrayValue ?? []
                let aliases = (model["aliases"]?.objectValue ?? [:]).sorted { $0.key < $1.key }
                    .map { "\($0.key)=v\($0.value.scalarText ?? "")" }.joined(separator: " ")
                table.rows.append([
                    model["name"]?.scalarText ?? "", versions.first.map { "v\($0["version"]?.templateText ?? "")" } ?? "-",
                    model["approved_version"]?.scalarText.map { "v\($0)" } ?? "-", aliases.isEmpty ? "-" : aliases,
                    model["updated_at"]?.scalarText ?? "",
                ])
            }
            print(table.render())
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show", abstract: "A model's versions, aliases, lineage and approval history.")
        @Argument(help: "The registered model's name.") var name: String
        @OptionGroup var access: Access

        func run() async throws {
            let answer = try await access.get("/api/v1/models/\(percentEncoded(name))") { registry in
                guard case .object(var model) = try await registry.model(named: name).json else { return .null }
                model["history"] = .array(try await registry.history(model: name).map(\.json))
                return .object(model)
            }
            if access.output.json { return printJSON(answer) }
            print("model \(answer["name"]?.scalarText ?? name)")
            if let description = answer["description"]?.scalarText, !description.isEmpty { print("  \(description)") }
            print("approved: \(answer["approved_version"]?.scalarText.map { "v\($0)" } ?? "none (baton models approve \(name) VERSION)")")
            print("")
            print(Versions.table(answer["versions"]?.arrayValue ?? []).render())
            let history = answer["history"]?.arrayValue ?? []
            if !history.isEmpty {
                print("")
                var table = Table(headers: ["WHEN", "ACTION", "VERSION", "ALIAS", "BY", "NOTE"])
                for event in history.prefix(20) {
                    table.rows.append(
                        ["at", "action", "version", "alias", "actor", "note"].map { event[$0]?.scalarText ?? "-" })
                }
                print(table.render())
            }
        }
    }

    struct Versions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "versions", abstract: "A model's versions, newest first.")
        @Argument(help: "The registered model's name.") var name: String
        @OptionGroup var access: Access

        func run() async throws {
            let answer = try await access.get("/api/v1/models/\(percentEncoded(name))") { registry in
                try await registry.model(named: name).json
            }
            let versions = answer["versions"]?.arrayValue ?? []
            if access.output.json { return printJSON(JSONValue.array(versions)) }
            print(Self.table(versions).render())
        }

        static func table(_ versions: [JSONValue]) -> Table {
            var table = Table(headers: ["VERSION", "STAGE", "ALIASES", "RUN", "PIPELINE RUN", "CREATED", "FILES"])
            for version in versions {
                let aliases = (version["aliases"]?.arrayValue ?? []).compactMap(\.scalarText).joined(separator: ",")
                let lineage = version["pipeline_run_id"].map { run in
                    "\(version["pipeline"]?.scalarText ?? "")#\(run.templateText).\(version["task"]?.scalarText ?? "")"
                }
                table.rows.append([
                    "v\(version["version"]?.templateText ?? "")", version["stage"]?.scalarText ?? "", aliases.isEmpty ? "-" : aliases,
                    version["run_id"]?.scalarText.map { String($0.prefix(12)) } ?? "-", lineage ?? "-",
                    version["created_at"]?.scalarText ?? "", version["artifact_path"]?.scalarText ?? version["source"]?.scalarText ?? "",
                ])
            }
            return table
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "approve", abstract: "Approve a version for deployment (moves the alias to it; recorded with who and when).")
        @Argument(help: "The registered model's name.") var name: String
        @Argument(help: "The version number to approve.") var version: Int
        @Option(help: "The alias that marks approval.") var alias: String = Registry.approvalAlias
        @Option(help: "Why: kept in the audit trail.") var note: String?
        @Option(help: "Who approves (default: the token's team, or $USER).") var by: String?
        @OptionGroup var access: Access

        func validate() throws {
            guard version > 0 else { throw ValidationError("version must be 1 or more, got \(version)") }
        }

        func run() async throws {
            let actor = by ?? ProcessInfo.processInfo.environment["USER"] ?? "local"
            var body: [String: JSONValue] = ["alias": .string(alias), "by": .string(actor)]
            if let note { body["note"] = .string(note) }
            let answer = try await access.post(
                "/api/v1/models/\(percentEncoded(name))/versions/\(version)/approve", body: .object(body)
            ) { registry in
                try await registry.approve(model: name, version: version, alias: alias, actor: actor, note: note).json
            }
            if access.output.json { return printJSON(answer) }
            print("approved \(name) v\(version) as '\(alias)' (by \(actor))")
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke", abstract: "Withdraw an approval: no version holds the alias any more.")
        @Argument(help: "The registered model's name.") var name: String
        @Option(help: "The alias that marks approval.") var alias: String = Registry.approvalAlias
        @Option(help: "Why: kept in the audit trail.") var note: String?
        @Option(help: "Who revokes (default: $USER).") var by: String?
        @OptionGroup var access: Access

        func run() async throws {
            let actor = by ?? ProcessInfo.processInfo.environment["USER"] ?? "local"
            var body: [String: JSONValue] = ["alias": .string(alias), "by": .string(actor)]
            if let note { body["note"] = .string(note) }
            _ = try await access.post("/api/v1/models/\(percentEncoded(name))/revoke", body: .object(body)) { registry in
                try await registry.revokeApproval(model: name, alias: alias, actor: actor, note: note)
                return .object(["revoked": .bool(true)])
            }
            if !access.output.json { print("revoked '\(alias)' of \(name)") }
        }
    }
}
