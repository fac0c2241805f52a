import BatonCore
import BatonRegistry
import Foundation

/// Turns a model reference into the version to run and its files.
public protocol ModelResolving: Sendable {
    func resolve(_ reference: String) async throws(DeploymentError) -> PlacedVersion
}

/// Resolves through Baton's model registry: an alias to the version it points at, and the
/// version to its artifact folder on this server's disk.
public struct RegistryModelResolver: ModelResolving {
    let registry: Registry

    public init(registry: Registry) { self.registry = registry }

    public func resolve(_ reference: String) async throws(DeploymentError) -> PlacedVersion {
        guard let parsed = ModelReference(parsing: reference) else {
            throw .unresolvedModel(reference: reference, reason: "write models:/NAME@ALIAS or models:/NAME/VERSION")
        }
        let summary: VersionSummary
        do {
            switch parsed {
            case .alias(let model, let alias): summary = try await registry.version(model: model, alias: alias)
            case .version(let model, let version): summary = try await registry.version(model: model, number: version)
            }
        } catch let error as MLflowError {
            throw .unresolvedModel(reference: reference, reason: error.message)
        } catch {
            throw .unresolvedModel(reference: reference, reason: "\(error)")
        }
        var runRoot = Self.runArtifactDir(source: summary.source, localPath: summary.localPath)
        if runRoot == nil, let runID = summary.runID,
            let uri = (try? await registry.run(id: runID))?["info"]?["artifact_uri"]?.scalarText
        {
            runRoot = registry.artifacts.localPath(ofURI: uri)
        }
        return PlacedVersion(
            version: String(summary.version), modelURI: "models:/\(summary.model)/\(summary.version)", modelDir: summary.localPath,
            runArtifactDir: runRoot)
    }

    /// For a version registered from `runs:/ID/PATH` whose files are in `.../PATH`, the folder
    /// above `PATH`: the root of the run's artifacts.
    static func runArtifactDir(source: String, localPath: String?) -> String? {
        guard let localPath, source.hasPrefix("runs:/") else { return nil }
        let pathComponents = source.dropFirst("runs:/".count).split(separator: "/").dropFirst().map(String.init)
        guard !pathComponents.isEmpty else { return localPath }
        var url = URL(fileURLWithPath: localPath).standardizedFileURL
        for component in pathComponents.reversed() {
            guard url.lastPathComponent == component else { return nil }
            url.deleteLastPathComponent()
        }
        return url.path
    }
}
