import ArgumentParser
import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation

struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Publish and list events; pipelines with a matching trigger start a run per event.",
        discussion: """
            Examples:
              baton events publish data.customers.updated --data '{"record_count": 1000000}'
              baton events publish data.customers.updated --data '{"record_count": 5}' --id load-2026-11-25
              baton events list --name data.customers.updated
            """,
        subcommands: [PublishEventCommand.self, ListEventsCommand.self])
}

struct PublishEventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish an event (to the local database, or to --server).",
        discussion: """
            Inside a task, BATON_SERVER and BATON_TOKEN are set, so `baton events publish` reaches
            the server that runs the task. The same --id is stored once: publishing it again
            starts nothing.
            """)

    @Argument(help: "Event name, such as data.customers.updated.") var name: String
    @Option(help: "JSON object payload.") var data: String = "{}"
    @Option(help: "De-duplication id (default: a new one).") var id: String?
    @Option(help: "Who publishes (default: the team of the token).") var source: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var remoteOptions: RemoteOptions
    @OptionGroup var output: OutputOptions

    struct Published: Codable, Sendable {
        struct Event: Codable, Sendable { var id: String; var name: String; var seq: Int64 }
        var event: Event
        var duplicate: Bool
        var run_ids: [Int64]
    }

    func run() async throws {
        let payload: JSONValue
        do {
            payload = try JSONValue.parse(data)
        } catch {
            throw CLIError("--data is not valid JSON: \(data.prefix(80))")
        }
        guard case .object = payload else { throw CLIError("--data must be a JSON object, got a \(payload.kindName)") }
        let published: Published
        if let client = try remoteOptions.client() {
            struct Body: Encodable { var name: String; var payload: JSONValue; var id: String?; var source: String? }
            published = try await remote { () async throws(BatonClient.ClientError) in
                try await client.post(
                    "/api/v1/events", body: Body(name: name, payload: payload, id: id, source: source), as: Published.self)
            }
        } else {
            do {
                try Engine.validateEvent(name: name, payload: payload, id: id, source: source)
            } catch {
                throw CLIError("\(error)")
            }
            let database = try await store.openStore()
            let record = EventRecord(
                id: id ?? UUID().uuidString.lowercased(), name: name, payload: payload, source: source ?? "cli",
                createdAt: Date())
            let (stored, created) = try await database.publishEvent(record)
            // A running `baton up` on the same SQLite file acts on it at once (see ChangeBell);
            // on PostgreSQL, within its change-check interval.
            published = Published(event: .init(id: stored.id, name: stored.name, seq: stored.seq), duplicate: !created, run_ids: [])
        }
        if output.json {
            printJSON(published)
        } else if published.duplicate {
            print("event \(published.event.id) was already published; nothing new started")
        } else {
            let runs = published.run_ids.isEmpty ? "" : "; started runs \(published.run_ids.map(String.init).joined(separator: ", "))"
            print("published \(published.event.name) (id \(published.event.id))\(runs)")
        }
    }
}

struct ListEventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List recent events, newest first.")

    @Option(help: "Only events with this name.") var name: String?
    @Option(help: "How many.") var limit: Int = 20
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var seq: Int64
        var id: String
        var name: String
        var payload: JSONValue
        var source: String?
        var created_at: Date
    }

    func run() async throws {
        let events = try await store.openStore().events(EventQuery(name: name, limit: max(1, min(limit, 500))))
        if output.json {
            printJSON(events.map { Row(seq: $0.seq, id: $0.id, name: $0.name, payload: $0.payload, source: $0.source, created_at: $0.createdAt) })
            return
        }
        if events.isEmpty {
            print("no events yet")
            return
        }
        var table = Table(headers: ["SEQ", "NAME", "ID", "SOURCE", "PUBLISHED (UTC)", "PAYLOAD"])
        for event in events {
            table.rows.append([
                String(event.seq), event.name, event.id, event.source ?? "-", Format.time(event.createdAt),
                String(event.payload.compactJSON.prefix(60)),
            ])
        }
        print(table.render())
    }
}
