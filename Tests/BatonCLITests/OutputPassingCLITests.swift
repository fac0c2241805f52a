import BatonCore
import Foundation
import Testing

/// Task outputs flow downstream through templates and `$BATON_INPUTS`; params are data, never code.
@Suite struct OutputPassingCLITests {
    @Test func outputReachesDownstreamTemplatesAndInputs() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "passing",
            #"""
            name: passing
            tasks:
              a:
                run: |
                  echo producing
                  printf '%s' '{"n": 42, "name": "x y"}' > "$BATON_OUTPUT"
              b:
                needs: [a]
                run: |
                  echo n={{ tasks.a.output.n }} name={{ tasks.a.output.name }}
                  echo "inputs=$BATON_INPUTS"
                  test {{ tasks.a.output.n }} = 42 || { echo "wrong n"; exit 3; }
                  test {{ tasks.a.output.name }} = "x y" || { echo "wrong name"; exit 4; }
                  test "$BATON_INPUTS" = '{"a":{"n":42,"name":"x y"}}' || { echo "wrong inputs"; exit 5; }
            """#)

        let (run, result) = try await sandbox.triggerAndWait("passing")
        #expect(result.exitCode == 0, "\(result)")
        #expect(run.state == "success", "\(run.summary)")
        #expect(run.task("b")?.state == "success", "\(run.summary)")

        let log = try await sandbox.logs(run.id, "b")
        #expect(log.contains("n=42 name=x y"), "\(log)")
        #expect(log.contains(#"inputs={"a":{"n":42,"name":"x y"}}"#), "\(log)")

        let shown = try await sandbox.run(run.id)
        #expect(shown.task("a")?.output == ["n": 42, "name": "x y"], "\(String(describing: shown.task("a")?.output))")
        #expect(shown.task("b")?.output == nil)
    }

    @Test func paramWithShellSyntaxIsPassedVerbatim() async throws {
        let sandbox = try Sandbox()
        defer { sandbox.shutdown() }
        try sandbox.writePipeline(
            "echoing",
            """
            name: echoing
            params:
              msg: {default: hello, type: string}
            tasks:
              say:
                run: echo msg={{ params.msg }}
            """)
        let evil = "x; touch INJECTED"
        let (run, result) = try await sandbox.triggerAndWait("echoing", params: ["msg=\(evil)"])
        #expect(result.exitCode == 0, "\(result)")
        #expect(run.state == "success", "\(run.summary)")
        #expect(run.params["msg"] == .string(evil))
        let log = try await sandbox.logs(run.id, "say")
        #expect(log.contains("msg=\(evil)\n"), "the value must be echoed verbatim: \(log)")
        // The task runs in the pipelines folder; nothing may have been created there or above.
        #expect(!sandbox.exists("pipelines/INJECTED"), "the param value was executed as shell code")
        #expect(!sandbox.exists("INJECTED"), "the param value was executed as shell code")

        // Other shell metacharacters stay data too.
        let nastier = "$(touch INJECTED2) `touch INJECTED3` it's \"quoted\" | & > out.txt"
        let (second, secondResult) = try await sandbox.triggerAndWait("echoing", params: ["msg=\(nastier)"])
        #expect(second.state == "success", "\(secondResult)")
        let secondLog = try await sandbox.logs(second.id, "say")
        #expect(secondLog.contains("msg=\(nastier)\n"), "\(secondLog)")
        for name in ["INJECTED2", "INJECTED3", "out.txt"] {
            #expect(!sandbox.exists("pipelines/\(name)") && !sandbox.exists(name), "\(name) was created")
        }
    }
}
