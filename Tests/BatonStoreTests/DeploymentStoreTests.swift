import Foundation
import Testing

@testable import BatonStore

/// The deployment tables, on every backend.
@Suite struct DeploymentStoreTests {
    static let now = Date(timeIntervalSince1970: 1_794_000_000)

    @Test(arguments: Backend.allCases) func putKeepsTheStateAndReplacesTheSpec(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            let created = try await store.putDeployment(name: "churn", specJSON: #"{"replicas":1}"#, source: "api", now: Self.now)
            #expect(created.revision == 0 && created.stateJSON == "{}" && created.source == "api")
            let moved = try await store.updateDeploymentState(
                name: "churn", stateJSON: #"{"stable":"3"}"#, expectedRevision: 0,
                event: DeploymentEventRecord(deployment: "churn", at: Self.now, actor: "baton", action: "deployed", version: "3"),
                now: Self.now)
            #expect(moved?.revision == 1)
            let replaced = try await store.putDeployment(
                name: "churn", specJSON: #"{"replicas":2}"#, source: "file:pipelines/deploy.yaml", now: Self.now.addingTimeInterval(1))
            #expect(replaced.specJSON == #"{"replicas":2}"# && replaced.stateJSON == #"{"stable":"3"}"# && replaced.revision == 1)
            #expect(try await store.deployments().map(\.name) == ["churn"])
            #expect(try await store.deployment(named: "other") == nil)
        }
    }

    @Test(arguments: Backend.allCases) func aStaleRevisionChangesNothing(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            _ = try await store.putDeployment(name: "churn", specJSON: "{}", source: "api", now: Self.now)
            _ = try await store.updateDeploymentState(name: "churn", stateJSON: #"{"a":1}"#, expectedRevision: 0, event: nil, now: Self.now)
            let stale = try await store.updateDeploymentState(
                name: "churn", stateJSON: #"{"a":2}"#, expectedRevision: 0,
                event: DeploymentEventRecord(deployment: "churn", at: Self.now, actor: "x", action: "lost"), now: Self.now)
            #expect(stale == nil)
            #expect(try await store.deployment(named: "churn")?.stateJSON == #"{"a":1}"#)
            #expect(try await store.deploymentEvents(deployment: "churn", limit: 10, beforeID: nil).isEmpty, "the losing write's event is not kept")
        }
    }

    @Test(arguments: Backend.allCases) func eventsComeNewestFirstWithPaging(_ backend: Backend) async throws {
        try await withStore(backend) { store, _ in
            for index in 0..<5 {
                try await store.recordDeploymentEvent(
                    DeploymentEventRecord(
                        deployment: "churn", at: Self.now.addingTimeInterval(Double(index)), actor: "pipeline:7/deploy",
                        action: "step\(index)", version: "4", reason: "r\(index)", detailJSON: #"{"i":\#(index)}"#))
            }
            try await store.recordDeploymentEvent(DeploymentEventRecord(deployment: "other", at: Self.now, actor: "a", action: "x"))
            let page = try await store.deploymentEvents(deployment: "churn", limit: 2, beforeID: nil)
            #expect(page.map(\.action) == ["step4", "step3"])
            #expect(page.first?.actor == "pipeline:7/deploy" && page.first?.detailJSON == #"{"i":4}"# && page.first?.version == "4")
            let next = try await store.deploymentEvents(deployment: "churn", limit: 10, beforeID: page.last?.id)
            #expect(next.map(\.action) == ["step2", "step1", "step0"])
        }
    }
}
