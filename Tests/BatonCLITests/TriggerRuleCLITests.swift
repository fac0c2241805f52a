import Foundation
import Testing

/// `when` conditions and trigger rules, decided from real task results.
@Suite struct TriggerRuleCLITests {
    @Test func whenConditionPicksTheRollbackBranch() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "deployment",
            """
            name: deployment
            tasks:
              validate:
                run: |
                  echo '{"passed": false}' > "$BATON_OUTPUT"
              deploy:
                needs: [validate]
                when: tasks.validate.output.passed == true
                run: echo deploying
              rollback:
                needs: [validate]
                when: tasks.validate.output.passed == false
                run: echo rolling back
              notify:
                needs: [deploy, rollback]
                trigger_rule: one_success
                run: echo notified
              alert:
                needs: [validate]
                trigger_rule: one_failed
                run: echo alert
            """)
        let (run, result) = try await sandbox.triggerAndWait("deployment")
        #expect(result.exitCode == 0, "\(result)")
        #expect(run.state == "success", "\(run.summary)")
        #expect(run.task("validate")?.state == "success")
        #expect(run.task("deploy")?.state == "skipped", "\(run.summary)")
        #expect(run.task("deploy")?.attempts == 0, "a skipped task never runs")
        #expect(run.task("deploy")?.reason?.contains("when") == true, "\(run.summary)")
        #expect(run.task("rollback")?.state == "success", "\(run.summary)")
        #expect(run.task("notify")?.state == "success", "\(run.summary)")
        #expect(run.task("alert")?.state == "skipped", "one_failed with no failure skips: \(run.summary)")
        #expect(try await sandbox.logs(run.id, "rollback").contains("rolling back"))
    }

    @Test func failureRulesAndUpstreamFailedPropagation() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "failing",
            """
            name: failing
            tasks:
              extract:
                run: echo ok
              transform:
                needs: [extract]
                run: echo broken; exit 7
              load:
                needs: [transform]
                run: echo load
              publish:
                needs: [load]
                run: echo publish
              cleanup:
                needs: [transform]
                trigger_rule: all_done
                run: echo cleaned up
              alert:
                needs: [extract, transform]
                trigger_rule: one_failed
                run: echo alerting
              happy_path_only:
                needs: [extract, transform]
                trigger_rule: none_failed
                run: echo never
            """)
        let (run, result) = try await sandbox.triggerAndWait("failing")
        #expect(result.exitCode == 1, "\(result)")
        #expect(run.state == "failed", "\(run.summary)")
        #expect(run.task("transform")?.state == "failed")
        #expect(run.task("transform")?.reason?.contains("code 7") == true, "\(run.summary)")
        #expect(run.task("load")?.state == "upstream_failed", "\(run.summary)")
        #expect(run.task("publish")?.state == "upstream_failed", "upstream_failed must propagate: \(run.summary)")
        #expect(run.task("load")?.attempts == 0)
        #expect(run.task("cleanup")?.state == "success", "all_done runs after a failure: \(run.summary)")
        #expect(run.task("alert")?.state == "success", "one_failed runs: \(run.summary)")
        #expect(run.task("happy_path_only")?.state == "upstream_failed", "\(run.summary)")
        #expect(try await sandbox.logs(run.id, "cleanup").contains("cleaned up"))
        #expect(try await sandbox.logs(run.id, "alert").contains("alerting"))
    }
}
