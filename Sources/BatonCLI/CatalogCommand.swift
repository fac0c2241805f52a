import ArgumentParser
import BatonCore
import BatonEngine
import BatonStore
import Foundation

struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Datasets handed between teams: owner, contract, freshness, producers, consumers, history.",
        discussion: """
            Datasets are declared in catalog files (YAML with `datasets:`) in the pipelines folder.

            Examples:
              baton catalog --pipelines examples/pipelines
              baton catalog clean_customers --pipelines examples/pipelines
            """)

    @Argument(help: "Show one dataset with its update history.") var dataset: String?
    @OptionGroup var store: StoreOptions
    @OptionGroup var folder: PipelinesFolderOption
    @OptionGroup var output: OutputOptions

    struct Row: Encodable {
        var name: String
        var owner: String?
        var schema_version: String?
        var freshness_seconds: Double?
        var availability_target: Double?
        var status: String
        var age_seconds: Double?
        var measured_availability: Double?
        var producers: [String]
        var consumers: [String]
        var updates: [DatasetUpdateRecord]?
    }

    func run() async throws {
        let loaded = PipelineRepository.load(directory: folder.pipelines)
        let database = try await store.openStore()
        var specs = loaded.catalog.datasets
        if let dataset {
            guard let match = specs.first(where: { $0.name == dataset }) else {
                throw CLIError(
                    "no dataset '\(dataset)' in \(folder.pipelines); "
                        + (specs.isEmpty ? "declare datasets in a file with `datasets:`" : Suggest.hint(for: dataset, in: specs.map(\.name))))
            }
            specs = [match]
        }
        var rows: [Row] = []
        for spec in specs {
            let status = await Engine.status(of: spec, store: database, now: Date())
            var producers: [String] = []
            var consumers: [String] = []
            for pipeline in loaded.pipelines {
                for task in pipeline.spec.tasks {
                    if task.produces.contains(spec.name) { producers.append("\(pipeline.spec.name).\(task.name)") }
                    if task.requires.contains(where: { $0.dataset == spec.name }) { consumers.append("\(pipeline.spec.name).\(task.name)") }
                }
            }
            rows.append(
                Row(
                    name: spec.name, owner: spec.owner, schema_version: spec.schemaVersion, freshness_seconds: spec.freshness,
                    availability_target: spec.availability, status: status.freshness.rawValue, age_seconds: status.age,
                    measured_availability: status.measuredAvailability, producers: producers, consumers: consumers,
                    updates: dataset == nil ? nil : try await database.datasetUpdates(spec.name, limit: 20)))
        }
        if output.json {
            printJSON(rows)
            return
        }
        if rows.isEmpty {
            print("no datasets declared in \(folder.pipelines); add a YAML file with `datasets:`")
            return
        }
        var table = Table(headers: ["DATASET", "OWNER", "SCHEMA", "SLA", "STATUS", "AGE", "AVAILABILITY", "PRODUCERS", "CONSUMERS"])
        for row in rows {
            let sla = row.freshness_seconds.map { "fresh < \(DurationText.format($0))" } ?? "-"
            let measured = row.measured_availability.map { String(format: "%.2f%%", $0 * 100) } ?? "-"
            let target = row.availability_target.map { String(format: " / %.1f%%", $0 * 100) } ?? ""
            table.rows.append([
                row.name, row.owner ?? "-", row.schema_version ?? "-", sla, row.status,
                row.age_seconds.map(DurationText.format) ?? "never updated", measured + target,
                row.producers.joined(separator: ", "), row.consumers.joined(separator: ", "),
            ])
        }
        print(table.render())
        for row in rows {
            guard let updates = row.updates, !updates.isEmpty else { continue }
            print("\nupdates of \(row.name):")
            var history = Table(headers: ["UPDATE", "AT (UTC)", "RUN", "PIPELINE.TASK", "SCHEMA", "METADATA"])
            for update in updates {
                history.rows.append([
                    String(update.id), Format.time(update.updatedAt), update.runID.map(String.init) ?? "-",
                    "\(update.pipeline ?? "-").\(update.task ?? "-")", update.schemaVersion ?? "-",
                    String(JSONValue.object(update.metadata).compactJSON.prefix(60)),
                ])
            }
            print(history.render())
        }
    }
}
