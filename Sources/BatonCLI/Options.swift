import ArgumentParser
import BatonAPI
import BatonCore
import BatonEngine
import BatonStore
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Where Baton keeps its state; shared by every command.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "SQLite database file, or a PostgreSQL URL postgres://user[:password]@host[:port]/database (or BATON_DB).",
            valueName: "path|url"))
    var db: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Folder for logs and scratch files (default: next to the SQLite file; .baton with PostgreSQL).", valueName: "dir"))
    var dataDir: String?

    /// `--db`, else `BATON_DB`, else the default SQLite file, as given.
    var databasePath: String {
        if let db, !db.isEmpty { return db }
        if let environment = ProcessInfo.processInfo.environment["BATON_DB"], !environment.isEmpty { return environment }
        return ".baton/baton.db"
    }

    /// The parsed location; `validate()` has reported a bad one already.
    var location: StoreLocation { (try? StoreLocation(parsing: databasePath)) ?? .sqlite(path: databasePath) }

    var isPostgres: Bool { location.isPostgres }

    /// The database as messages show it: a PostgreSQL URL without its password.
    var shownDatabase: String { location.description }

    var dataDirectory: String {
        let path = dataDir ?? (isPostgres ? ".baton" : (databasePath as NSString).deletingLastPathComponent)
        return URL(fileURLWithPath: path.isEmpty ? "." : path).standardizedFileURL.path
    }

    func validate() throws {
        do {
            _ = try StoreLocation(parsing: databasePath)
        } catch {
            throw ValidationError(error.description + (db == nil ? " (from BATON_DB)" : ""))
        }
    }

    /// Opens the database: a SQLite file (created when missing) or PostgreSQL, whose connection
    /// is checked once so that a wrong password or host fails here with the fix.
    func openStore() async throws -> any Store {
        do {
            // A `baton up` on the same SQLite file acts on this command's writes at once.
            return try await BatonStore.openStore(location, logger: Self.storeLogger, announcesWrites: true)
        } catch {
            throw CLIError("\(error)")
        }
    }

    /// Commands print results, not the store's progress: only its warnings. (`baton up` opens
    /// the store with its own logger, which reports migrations.)
    static let storeLogger: Logger = {
        var logger = Logger(label: "baton")
        logger.logLevel = .warning
        return logger
    }()
}

struct PipelinesFolderOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Folder of pipeline files.", valueName: "dir"))
    var pipelines: String = ProcessInfo.processInfo.environment["BATON_PIPELINES"] ?? "pipelines"
}

/// Talk to a running server over the REST API instead of opening the database.
struct RemoteOptions: ParsableArguments {
    @Option(help: ArgumentHelp("A Baton server to talk to instead of the local database (or BATON_SERVER).", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("API token for --server (or BATON_TOKEN).", valueName: "token"))
    var token: String?

    /// The client when a server was given.
    func client() throws -> BatonClient? {
        let environment = ProcessInfo.processInfo.environment
        guard let server = server ?? environment["BATON_SERVER"], !server.isEmpty else { return nil }
        do {
            return try BatonClient(server: server, token: token ?? environment["BATON_TOKEN"])
        } catch {
            throw CLIError(error.description)
        }
    }
}

/// Runs a client call, turning its failure into a CLI error.
func remote<T>(_ call: () async throws(BatonClient.ClientError) -> T) async throws -> T {
    do {
        return try await call()
    } catch {
        throw CLIError(error.description)
    }
}

func percentEncoded(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+?/"))) ?? text
}

struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON for scripts instead of tables.")
    var json = false
}

/// Lets tasks call the `baton` CLI that runs them: `BATON_CLI` names this binary (read from
/// /proc, so a `baton` found through PATH or a relative path resolves correctly) and its folder
/// leads `PATH`.
func cliEnvironment(databasePath: String? = nil) -> [String: String] {
    var variables: [String: String] = [:]
    let binary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    if FileManager.default.isExecutableFile(atPath: binary) {
        variables["BATON_CLI"] = binary
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        variables["PATH"] = (binary as NSString).deletingLastPathComponent + ":" + path
    }
    // Without a server, the CLI in a task must reach the same database as the engine running it.
    if let databasePath {
        let isURL = (try? StoreLocation(parsing: databasePath))?.isPostgres ?? false
        variables["BATON_DB"] = isURL ? databasePath : URL(fileURLWithPath: databasePath).standardizedFileURL.path
    }
    return variables
}

/// A failure explained to the user; printed without a stack of types.
struct CLIError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { message }
}

/// The one engine per database: `baton up` holds this lock, released by the kernel if it dies,
/// so two engines never recover each other's attempts as lost.
final class EngineLock {
    let fd: Int32
    let path: String

    init?(databasePath: String) {
        path = databasePath + ".engine.lock"
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty { try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        ftruncate(fd, 0)
        let pid = "\(getpid())\n"
        _ = pid.withCString { write(fd, $0, strlen($0)) }
    }

    /// The pid written by the current holder, if any.
    static func holder(databasePath: String) -> Int32? {
        guard let text = try? String(contentsOfFile: databasePath + ".engine.lock", encoding: .utf8) else { return nil }
        return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }
}

/// Finds a pipeline by name: the version a running engine loaded, else the files.
func resolvePipeline(_ name: String, store: some Store, folder: String) async throws -> PipelineSpec {
    if let record = try await store.pipeline(named: name) { return record.spec }
    let loaded = PipelineRepository.load(directory: folder)
    if let match = loaded.pipelines.first(where: { $0.spec.name == name }) { return match.spec }
    if let problem = loaded.errors.first(where: {
        (($0.file as NSString).lastPathComponent as NSString).deletingPathExtension == name
    }) {
        throw CLIError("pipeline '\(name)' cannot be loaded because its file has errors:\n\(problem)\nrun `baton validate \(folder)` for all problems")
    }
    var known = Set(loaded.pipelines.map(\.spec.name))
    for record in try await store.pipelines() { known.insert(record.name) }
    var message = "unknown pipeline '\(name)'"
    if let suggestion = Suggest.closest(to: name, in: known) {
        message += "; did you mean '\(suggestion)'?"
    } else if known.isEmpty {
        message += "; no pipelines found in \(folder) (use --pipelines DIR)"
    } else {
        message += "; known pipelines: \(known.sorted().joined(separator: ", "))"
    }
    throw CLIError(message)
}

func parseParams(_ items: [String], spec: PipelineSpec) throws -> [String: JSONValue] {
    var result: [String: JSONValue] = [:]
    for item in items {
        guard let equals = item.firstIndex(of: "=") else {
            throw CLIError("--param '\(item)' must be written key=value")
        }
        let key = String(item[..<equals])
        let text = String(item[item.index(after: equals)...])
        guard let param = spec.param(named: key) else {
            let known = spec.params.map(\.name)
            throw CLIError(
                "pipeline '\(spec.name)' has no param '\(key)'; "
                    + (known.isEmpty ? "it declares none" : Suggest.hint(for: key, in: known)))
        }
        do {
            result[key] = try ParamValidation.coerce(text, for: param)
        } catch {
            throw CLIError(error.description)
        }
    }
    return result
}

func parseRunID(_ text: String) throws -> Int64 {
    guard let id = Int64(text), id > 0 else { throw CLIError("'\(text)' is not a run id; run ids are numbers shown by `baton runs`") }
    return id
}

func parseDateArgument(_ text: String, name: String) throws -> Date {
    guard let date = PipelineParser.parseDate(text, timezone: .gmt) else {
        throw CLIError("\(name) '\(text)' is not a date; write 2026-01-31 or 2026-01-31T06:00:00Z")
    }
    return date
}

/// Prints JSON in the REST API's encoding (ISO 8601 dates with milliseconds, sorted keys).
func printJSON<T: Encodable>(_ value: T) {
    let encoder = APICoding.encoder(pretty: true)
    if let data = try? encoder.encode(value) { FileHandle.standardOutput.write(data + Data("\n".utf8)) }
}
