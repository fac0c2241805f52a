import BatonCore
import BatonGateway
import BatonRegistry
import Foundation
import Testing

@testable import BatonDeploy

/// Baselines as `baton.log_baseline` writes them, and PSI of live samples against them.
@Suite struct DriftTests {
    static let baselineJSON = """
        {"format": "baton.baseline/1", "bins": 10, "rows": 4, "created_at": "2026-12-05T07:00:00Z",
         "features": {"x": {"edges": [0.0, 1.0, 2.0], "shares": [0.5, 0.5], "count": 4, "missing": 0},
                      "bad": {"edges": [2.0, 1.0], "shares": [1.0]}},
         "skipped_features": ["id"],
         "predictions": {"edges": [0.0, 0.5, 1.0], "shares": [0.5, 0.5], "count": 4, "missing": 0}}
        """

    @Test func baselineParsesAndSkipsMalformedFeatures() throws {
        let baseline = try #require(Baseline.parse(Data(Self.baselineJSON.utf8)))
        #expect(Array(baseline.features.keys) == ["x"])
        #expect(baseline.predictions?.edges == [0.0, 0.5, 1.0])
    }

    @Test func psiPerFeatureAndPrediction() throws {
        let baseline = try #require(Baseline.parse(Data(Self.baselineJSON.utf8)))
        let same = VersionDrift.compute(
            version: "1", baseline: baseline, sample: DriftSample(fields: ["x": [0.5, 1.5], "other": [3]], predictions: [0.2, 0.7]))
        #expect(same.baselineFound)
        #expect(same.features["x"] == VersionDrift.Entry(psi: 0, liveCount: 2))
        #expect(same.prediction == VersionDrift.Entry(psi: 0, liveCount: 2))
        let shifted = VersionDrift.compute(version: "1", baseline: baseline, sample: DriftSample(fields: ["x": [5, 5, 5]]))
        #expect((shifted.features["x"]?.psi ?? 0) > 0.2)
        #expect(shifted.prediction == VersionDrift.Entry(psi: 0, liveCount: 0))
        let missing = VersionDrift.compute(version: "2", baseline: nil, sample: DriftSample())
        #expect(missing.json == .object(["baseline": .string("missing"), "features": .object([:])]))
    }

    @Test func baselineIsFoundInTheModelFolderThenTheRunRoot() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("baton-drift-\(UUID().uuidString)")
        let model = root.appendingPathComponent("model")
        try FileManager.default.createDirectory(at: model, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        let runRoot = RegistryModelResolver.runArtifactDir(source: "runs:/abc/model", localPath: model.path)
        #expect(runRoot == root.standardizedFileURL.path)
        #expect(RegistryModelResolver.runArtifactDir(source: "runs:/abc/other", localPath: model.path) == nil)
        let placed = PlacedVersion(version: "1", modelURI: "models:/m/1", modelDir: model.path, runArtifactDir: runRoot)
        #expect(Baseline.load(for: placed) == nil)
        try Data(Self.baselineJSON.utf8).write(to: root.appendingPathComponent("baseline.json"))
        #expect(Baseline.load(for: placed)?.features.keys.sorted() == ["x"])
    }
}

/// The resolver finds the run's artifact root of a version registered with its run.
@Suite struct BaselineLocationTests {
    @Test func aVersionOfARunKnowsItsRunsArtifactRoot() async throws {
        let harness = try Harness()
        defer { harness.remove() }
        let run = try await harness.registry.createRun(
            experimentID: nil, userID: "test", runName: "train", startTime: nil, tags: [], origin: nil)
        let runID = try #require(run.at("run.info.run_id")?.scalarText ?? run.at("info.run_id")?.scalarText)
        let artifactURI = try #require(run.at("run.info.artifact_uri")?.scalarText ?? run.at("info.artifact_uri")?.scalarText)
        _ = try await harness.registry.createRegisteredModel(name: "churn", description: nil, tags: [], actor: "test")
        _ = try await harness.registry.createModelVersion(
            name: "churn", source: artifactURI + "/model", runID: runID, runLink: nil, description: nil, modelID: nil, tags: [],
            actor: "test", origin: nil)
        let placed = try await RegistryModelResolver(registry: harness.registry).resolve("models:/churn/1")
        let root = try #require(placed.runArtifactDir)
        #expect(root == harness.registry.artifacts.localPath(ofURI: artifactURI))
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try Data(DriftTests.baselineJSON.utf8).write(to: URL(fileURLWithPath: root + "/baseline.json"))
        #expect(Baseline.load(for: placed) != nil)
    }
}
