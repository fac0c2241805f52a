import Foundation
import Yams

/// A `NAME.baton-swift.yaml` file in the pipelines folder: it names an executable built with
/// BatonKit whose `describe` command prints the pipelines defined in Swift.
///
/// ```yaml
/// executable: ../.build/debug/customer-worker   # relative to this file's folder
/// timeout: 30s                                  # optional, for `describe`
/// ```
public struct SwiftManifest: Sendable, Hashable {
    /// The suffix that marks a manifest; such files are never read as pipeline YAML.
    public static let suffix = ".baton-swift.yaml"
    public static let defaultTimeout: Double = 30
    static let keys = ["executable", "timeout"]

    /// The executable as written in the file.
    public var executable: String
    /// Seconds `describe` may take before it is stopped.
    public var timeout: Double

    public static func isManifest(_ path: String) -> Bool { path.lowercased().hasSuffix(suffix) }

    /// The executable's absolute path; a relative one is read from the manifest's folder.
    public func executablePath(manifest: String) -> String {
        let folder = (manifest as NSString).deletingLastPathComponent
        let path = executable.hasPrefix("/") ? executable : (folder as NSString).appendingPathComponent(executable)
        return URL(fileURLWithPath: path).standardizedFileURL.path
    }

    /// Reads a manifest; problems are located like those of pipeline files.
    public static func parse(_ text: String, file: String) -> (manifest: SwiftManifest?, issues: [ValidationIssue]) {
        let example = "write `executable: ../.build/debug/my-worker` (the path of the BatonKit executable, relative to this file)"
        let root: Node
        do {
            guard let composed = try Yams.compose(yaml: text) else {
                return (nil, [ValidationIssue(file: file, line: 0, column: 0, message: "the manifest is empty", fix: example)])
            }
            root = composed
        } catch let yamlError as YamlError {
            return (nil, [PipelineParser.issue(for: yamlError, file: file)])
        } catch {
            return (nil, [ValidationIssue(file: file, line: 0, column: 0, message: "cannot read YAML: \(error)")])
        }
        func issue(_ node: Node?, field: String?, _ message: String, value: String? = nil, fix: String?) -> ValidationIssue {
            ValidationIssue(
                file: file, line: node?.mark?.line ?? 0, column: node?.mark?.column ?? 0, field: field, message: message,
                value: value, fix: fix)
        }
        guard let mapping = root.mapping else {
            return (nil, [issue(root, field: nil, "a Swift pipelines manifest must be a mapping", fix: example)])
        }
        var issues: [ValidationIssue] = []
        var fields: [String: Node] = [:]
        for (keyNode, value) in mapping {
            let key = keyNode.scalar?.string ?? ""
            if keys.contains(key) {
                fields[key] = value
            } else {
                issues.append(
                    issue(keyNode, field: nil, "unknown manifest key '\(key)'", value: key, fix: Suggest.hint(for: key, in: keys)))
            }
        }
        var manifest = SwiftManifest(executable: "", timeout: defaultTimeout)
        if let node = fields["executable"] {
            if let text = node.scalar?.string, !text.trimmingCharacters(in: .whitespaces).isEmpty {
                manifest.executable = text
            } else {
                issues.append(issue(node, field: "executable", "`executable` must be a path", fix: example))
            }
        } else {
            issues.append(issue(root, field: "executable", "the manifest names no `executable`", fix: example))
        }
        if let node = fields["timeout"] {
            if let text = node.scalar?.string, let seconds = try? DurationText.seconds(text), seconds > 0 {
                manifest.timeout = seconds
            } else {
                issues.append(
                    issue(node, field: "timeout", "'\(node.scalar?.string ?? "")' is not a duration above zero",
                          value: node.scalar?.string, fix: "write a duration such as 30s or 2m"))
            }
        }
        return (issues.isEmpty ? manifest : nil, issues)
    }
}

/// What a BatonKit executable's `describe` command prints: each pipeline as pipeline-file
/// text (see `SpecText`) with the Swift source location behind every line of it.
public struct SwiftDescribeAnswer: Codable, Sendable, Hashable {
    public static let currentProtocol = 1

    /// A place in the Swift sources.
    public struct Location: Codable, Sendable, Hashable, CustomStringConvertible {
        public var file: String
        public var line: Int

        public init(file: String, line: Int) {
            self.file = file
            self.line = line
        }

        public var description: String { "\(file):\(line)" }
    }

    public struct Pipeline: Codable, Sendable, Hashable {
        public var name: String
        /// Where `Pipeline(...)` is written.
        public var location: Location
        /// The spec as pipeline-file text.
        public var spec: String
        /// For each line of `spec`, the declaration it came from.
        public var lines: [Location]

        public init(name: String, location: Location, spec: String, lines: [Location]) {
            self.name = name
            self.location = location
            self.spec = spec
            self.lines = lines
        }

        /// The declaration behind a line of `spec` (the pipeline's own for line 0).
        public func location(ofLine line: Int) -> Location {
            line > 0 && line <= lines.count ? lines[line - 1] : location
        }
    }

    /// A problem found before any spec could be written (such as a task declared twice).
    public struct Problem: Codable, Sendable, Hashable {
        public var location: Location
        public var pipeline: String?
        public var message: String
        public var fix: String?

        public init(location: Location, pipeline: String?, message: String, fix: String?) {
            self.location = location
            self.pipeline = pipeline
            self.message = message
            self.fix = fix
        }
    }

    public var sdk: String
    public var `protocol`: Int
    public var pipelines: [Pipeline]
    public var problems: [Problem]

    public init(sdk: String, protocol: Int = SwiftDescribeAnswer.currentProtocol, pipelines: [Pipeline], problems: [Problem]) {
        self.sdk = sdk
        self.protocol = `protocol`
        self.pipelines = pipelines
        self.problems = problems
    }
}
