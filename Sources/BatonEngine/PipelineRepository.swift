import BatonCore
import BatonDeploy
import BatonFeatures
import Foundation

/// A pipeline read from a file, with the problems found in it.
public struct LoadedPipeline: Sendable, Hashable {
    public var spec: PipelineSpec
    public var file: String
    public var warnings: [ValidationIssue]
}

/// The result of reading a pipelines folder: good pipelines and every problem, per file.
public struct PipelineFolder: Sendable {
    public var pipelines: [LoadedPipeline]
    public var issues: [ValidationIssue]
    public var filesRead: Int
    /// Datasets and teams from the folder's catalog files.
    public var catalog: CatalogSpec = CatalogSpec()
    /// Entities, feature views and feature services from the folder's feature definition files.
    public var features: FeatureRegistry = FeatureRegistry()
    /// Model deployments from the folder's deployments files (each valid one, even when another
    /// in its file has errors).
    public var deployments: [DeploymentSpec] = []

    public var errors: [ValidationIssue] { issues.filter { $0.severity == .error } }
}

/// Reads pipeline files from a folder. One broken file never keeps the others from loading.
public enum PipelineRepository {
    public static let extensions: Set<String> = ["yaml", "yml", "py"]
    /// Folders of installed or generated Python code, never pipelines.
    static let skippedFolders: Set<String> = ["__pycache__", "site-packages", "node_modules"]

    /// Lists pipeline files under `directory` (YAML, and Python files, which include helper
    /// modules: a change to one must reload the pipelines importing it), skipping hidden
    /// folders, sorted for stable output.
    public static func files(in directory: String) -> [String] {
        let root = URL(fileURLWithPath: directory)
        guard
            let enumerator = FileManager.default.enumerator(
                at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
        else { return [] }
        var files: [String] = []
        for case let url as URL in enumerator {
            if skippedFolders.contains(url.lastPathComponent) {
                enumerator.skipDescendants()
                continue
            }
            if extensions.contains(url.pathExtension.lowercased()) { files.append(url.path) }
        }
        return files.sorted()
    }

    /// Loads every pipeline file; `displayRoot` shortens paths in messages.
    public static func load(directory: String) -> PipelineFolder {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            return PipelineFolder(
                pipelines: [],
                issues: [
                    ValidationIssue(
                        file: directory, line: 0, column: 0, message: "the pipelines folder does not exist",
                        fix: "create it, or pass another folder with --pipelines DIR")
                ], filesRead: 0)
        }
        var pipelines: [LoadedPipeline] = []
        var issues: [ValidationIssue] = []
        var owners: [String: String] = [:]
        let files = files(in: directory)
        var texts: [(path: String, display: String, text: String)] = []
        var pythonFiles: [(path: String, display: String)] = []
        var swiftManifests: [(path: String, display: String, text: String)] = []
        var filesRead = 0
        for path in files {
            let display = displayPath(path)
            guard let data = FileManager.default.contents(atPath: path) else {
                issues.append(ValidationIssue(file: display, line: 0, column: 0, message: "cannot read the file"))
                continue
            }
            guard let text = String(data: data, encoding: .utf8) else {
                issues.append(
                    ValidationIssue(file: display, line: 0, column: 0, message: "the file is not UTF-8 text",
                                    fix: "save it as UTF-8"))
                continue
            }
            if SwiftManifest.isManifest(path) {
                swiftManifests.append((path, display, text))
                filesRead += 1
                continue
            }
            if path.lowercased().hasSuffix(".py") {
                if PythonPipelines.importsSDK(text) {
                    pythonFiles.append((path, display))
                    filesRead += 1
                }
                continue
            }
            filesRead += 1
            texts.append((path, display, text))
        }
        // Catalog files first, so pipelines can be checked against the datasets they name.
        var catalog = CatalogSpec()
        var datasetFiles: [String: String] = [:]
        var pipelineTexts: [(path: String, display: String, text: String)] = []
        var featureOutcomes: [FeatureParser.Outcome] = []
        var deployments: [DeploymentSpec] = []
        var deploymentFiles: [String: String] = [:]
        for entry in texts {
            if DeploymentParser.isDefinitionFile(entry.text) {
                let folder = URL(fileURLWithPath: entry.path).deletingLastPathComponent().path
                let outcome = DeploymentParser.parse(entry.text, file: entry.display, directory: folder)
                issues += outcome.issues
                for spec in outcome.deployments {
                    if let other = deploymentFiles[spec.name] {
                        issues.append(
                            ValidationIssue(
                                file: entry.display, line: spec.line, column: 3, field: "deployments.\(spec.name)",
                                message: "deployment '\(spec.name)' is already declared in \(other)", fix: "declare it once"))
                        continue
                    }
                    deploymentFiles[spec.name] = entry.display
                    deployments.append(spec)
                }
                continue
            }
            if FeatureParser.isDefinitionFile(entry.text) {
                let folder = URL(fileURLWithPath: entry.path).deletingLastPathComponent().path
                featureOutcomes.append(FeatureParser.parse(entry.text, file: entry.display, directory: folder))
                continue
            }
            guard PipelineParser.isCatalog(entry.text) else {
                pipelineTexts.append(entry)
                continue
            }
            let outcome = PipelineParser.parseCatalog(entry.text, file: entry.display)
            issues += outcome.issues
            for dataset in outcome.catalog.datasets {
                if let other = datasetFiles[dataset.name] {
                    issues.append(
                        ValidationIssue(
                            file: entry.display, line: 0, column: 0, field: "datasets.\(dataset.name)",
                            message: "dataset '\(dataset.name)' is already declared in \(other)", fix: "declare it once"))
                    continue
                }
                datasetFiles[dataset.name] = entry.display
                catalog.datasets.append(dataset)
            }
            catalog.teams += outcome.catalog.teams
        }
        // Each feature view is also a catalog dataset, so contracts, SLAs and lineage cover it.
        let (features, featureIssues) = FeatureRegistry.assemble(featureOutcomes)
        issues += featureIssues
        for view in features.views.values.sorted(by: { $0.name < $1.name }) {
            if let other = datasetFiles[view.name] {
                issues.append(
                    ValidationIssue(
                        file: view.sourceFile ?? "", line: view.line, column: 1, field: "feature_views.\(view.name)",
                        message: "feature view '\(view.name)' has the name of dataset '\(view.name)' declared in \(other)",
                        fix: "a feature view is a dataset already: remove the catalog entry, and give the view its freshness"))
                continue
            }
            datasetFiles[view.name] = view.sourceFile ?? ""
            catalog.datasets.append(view.dataset)
        }
        let datasetNames = Set(catalog.datasets.map(\.name))
        var outcomes: [(path: String, display: String, spec: PipelineSpec?, issues: [ValidationIssue], line: Int)] = []
        for (path, display, text) in pipelineTexts {
            let outcome = PipelineParser.parse(text, file: display, datasets: datasetNames)
            outcomes.append((path, display, outcome.spec, outcome.issues, 1))
        }
        if !pythonFiles.isEmpty {
            let folderStamp = files.filter { $0.hasSuffix(".py") }.map { "\($0)=\(PythonPipelines.fileStamp($0))" }.joined(separator: ",")
            let answers = PythonPipelines.describe(pythonFiles, folderStamp: folderStamp, settings: .current())
            for (file, answer) in zip(pythonFiles, answers) {
                switch answer {
                case .failed(let issue):
                    outcomes.append((file.path, file.display, nil, [issue], 0))
                case .answer(let answer):
                    for described in PythonPipelines.pipelines(from: answer, display: file.display, datasets: datasetNames) {
                        let line = described.spec.flatMap { spec in answer.pipelines.first { $0.name == spec.name }?.line } ?? 1
                        outcomes.append((file.path, file.display, described.spec, described.issues, line))
                    }
                }
            }
        }
        for manifest in swiftManifests {
            switch SwiftPipelines.describe(manifest: manifest.path, display: manifest.display, text: manifest.text) {
            case .failed(let problems):
                outcomes.append((manifest.path, manifest.display, nil, problems, 0))
            case .answer(let answer):
                for described in SwiftPipelines.pipelines(from: answer, display: manifest.display, datasets: datasetNames) {
                    outcomes.append((manifest.path, manifest.display, described.spec, described.issues, 0))
                }
            }
        }
        for (path, display, parsedSpec, parsedIssues, line) in outcomes {
            var fileIssues = parsedIssues
            if var spec = parsedSpec {
                spec.sourceFile = URL(fileURLWithPath: path).standardizedFileURL.path
                if let other = owners[spec.name] {
                    fileIssues.append(
                        ValidationIssue(
                            file: display, line: line, column: 1, field: "name",
                            message: "pipeline name '\(spec.name)' is already used by \(other)",
                            fix: "give one of the pipelines another name"))
                } else {
                    owners[spec.name] = display
                    pipelines.append(LoadedPipeline(spec: spec, file: path, warnings: fileIssues))
                }
            }
            issues += fileIssues
        }
        return PipelineFolder(
            pipelines: pipelines, issues: issues, filesRead: filesRead, catalog: catalog, features: features, deployments: deployments)
    }

    /// A path relative to the working directory when it is inside it.
    public static func displayPath(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if absolute.hasPrefix(cwd + "/") { return String(absolute.dropFirst(cwd.count + 1)) }
        return absolute
    }

    /// A cheap fingerprint of the folder (paths, sizes, modification times) for the safety-net
    /// rescan. A Swift manifest counts with the executable it names, which usually lives
    /// outside the folder: rebuilding it reloads its pipelines.
    public static func fingerprint(directory: String) -> [String: String] {
        var result: [String: String] = [:]
        for path in files(in: directory) {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path)
            let size = (attributes?[.size] as? NSNumber)?.int64Value ?? -1
            let modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            result[path] = "\(size)-\(modified)"
            if SwiftManifest.isManifest(path) {
                result[path, default: ""] += "|" + (SwiftPipelines.executableStamp(manifest: path) ?? "none")
            }
        }
        return result
    }
}
