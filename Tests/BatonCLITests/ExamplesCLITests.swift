import Foundation
import Testing

/// The bundled examples are what newcomers run first: on a fresh start every one of them must
/// succeed within about a minute, and the deployment pipeline's rollback branch must work.
@Suite struct ExamplesCLITests {
    /// Copies `examples/` into the sandbox, so the scripts write their `var/` there.
    func copyExamples(into sandbox: Sandbox) throws -> String {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let target = sandbox.root + "/examples"
        try FileManager.default.copyItem(atPath: repository.path + "/examples", toPath: target)
        try? FileManager.default.removeItem(atPath: target + "/var")
        return target
    }

    @Test func everyExamplePipelineSucceedsOnAFreshStart() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        let examples = try copyExamples(into: sandbox)
        let validation = try await sandbox.baton("validate", examples + "/pipelines")
        #expect(validation.exitCode == 0, "\(validation)")
        _ = try await sandbox.startUpAndWait(["--pipelines", examples + "/pipelines", "--slots", "2"])
        let runs = try await sandbox.waitForRuns(count: 4, timeout: .seconds(150))
        #expect(Set(runs.map(\.pipeline)) == [
            "customer_data_pipeline", "feature_pipeline", "model_training_flow", "model_deployment_pipeline",
        ])
        for run in runs { #expect(run.state == "success", "\(run.summary)") }

        let (rollback, result) = try await sandbox.triggerAndWait(
            "model_deployment_pipeline", params: ["force_rollback=true"], timeout: .seconds(90))
        #expect(result.exitCode == 0, "\(result)")
        #expect(rollback.task("rollback")?.state == "success", "\(rollback.summary)")
        #expect(rollback.task("deploy_full")?.state == "skipped", "\(rollback.summary)")
    }
}
