import ArgumentParser
import Foundation

/// BatonCLI owns the `baton` command line: parsing, human and JSON output, and wiring the
/// store and engine together for `baton up`. The executable only calls `BatonCommand.main()`.
public struct BatonCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "baton",
        abstract: "Baton: pipelines, schedules and runs for data and ML teams, in one binary.",
        discussion: """
            Quick start:
              baton up --pipelines examples/pipelines      start the scheduler and workers
              baton validate examples/pipelines            check pipeline files
              baton trigger customer_data_pipeline --wait  run a pipeline now and follow it
              baton runs                                   list recent runs
            """,
        version: "0.1.0",
        subcommands: [
            UpCommand.self, ServerCommand.self, WorkerCommand.self, ValidateCommand.self, PipelinesCommand.self, TriggerCommand.self, RunsCommand.self,
            RunCommand.self, LogsCommand.self, CancelCommand.self, BackfillCommand.self, PauseCommand.self,
            UnpauseCommand.self, TokensCommand.self, EventsCommand.self, CatalogCommand.self, FeaturesCommand.self, MetricsCommand.self, ModelsCommand.self,
            DeployCommand.self,
        ]
    )

    public init() {}
}

/// Entry point for the `baton` executable.
public enum BatonMain {
    public static func run() async {
        await BatonCommand.main()
    }
}
