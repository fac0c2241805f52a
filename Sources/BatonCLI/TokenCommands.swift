import ArgumentParser
import BatonServer
import BatonStore
import Foundation

struct TokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokens",
        abstract: "Manage API tokens (stored hashed; each token is shown once).",
        discussion: """
            Roles: viewer (read), operator (also trigger, cancel, retry, pause), admin (also manage tokens).
            Clients send the token as `Authorization: Bearer <token>`.

            Examples:
              baton tokens create --team data_engineering --role operator --description "CI deploys"
              baton tokens list
              baton tokens revoke 3f9a1c2b7d10
            """,
        subcommands: [CreateTokenCommand.self, ListTokensCommand.self, RevokeTokenCommand.self])
}

struct CreateTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a token and print it once.")

    @Option(help: "The team the token acts for.") var team: String
    @Option(help: "viewer, operator or admin.") var role: String
    @Option(help: "What the token is for.") var description: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard TokenRole(rawValue: role) != nil else {
            throw ValidationError("--role '\(role)' is not one of \(TokenRole.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard !team.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--team must not be empty") }
    }

    func run() async throws {
        let database = try await store.openStore()
        let created = try await TokenService(store: database).create(
            team: team, role: TokenRole(rawValue: role)!, description: description)
        if output.json {
            printJSON(["id": created.record.id, "team": team, "role": role, "token": created.token])
        } else {
            print(created.token)
            FileHandle.standardError.write(
                Data("created token \(created.record.id) for team \(team) with role \(role); it is shown only now\n".utf8))
        }
    }
}

struct ListTokensCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List tokens (never their secrets).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var id: String
        var team: String
        var role: String
        var description: String?
        var created_at: Date
        var last_used_at: Date?
        var revoked_at: Date?
    }

    func run() async throws {
        let tokens = try await store.openStore().tokens()
        if output.json {
            printJSON(tokens.map {
                Row(id: $0.id, team: $0.team, role: $0.role.rawValue, description: $0.description, created_at: $0.createdAt,
                    last_used_at: $0.lastUsedAt, revoked_at: $0.revokedAt)
            })
            return
        }
        if tokens.isEmpty {
            print("no tokens; create one with `baton tokens create --team T --role operator`")
            return
        }
        var table = Table(headers: ["ID", "TEAM", "ROLE", "CREATED (UTC)", "LAST USED", "STATUS", "DESCRIPTION"])
        for token in tokens {
            table.rows.append([
                token.id, token.team, token.role.rawValue, Format.time(token.createdAt), Format.time(token.lastUsedAt),
                token.revokedAt == nil ? "active" : "revoked", token.description ?? "",
            ])
        }
        print(table.render())
    }
}

struct RevokeTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revoke", abstract: "Revoke a token at once.")

    @Argument(help: "Token id, as listed by `baton tokens list`.") var id: String
    @OptionGroup var store: StoreOptions

    func run() async throws {
        guard try await store.openStore().revokeToken(id: id, at: Date()) else {
            throw CLIError("no active token with id '\(id)'; see `baton tokens list`")
        }
        print("revoked token \(id)")
    }
}
