import Foundation

/// Artifact files under one root folder, addressed by the paths of `mlflow-artifacts:` URIs
/// (`<experiment>/<run>/artifacts/<path>`, `<experiment>/models/<model>/artifacts/<path>`).
///
/// Paths come from clients, so each is checked to stay inside the root: no `..`, no absolute
/// paths, no empty segments. Files are written to a temporary name and renamed into place, so a
/// reader never sees half an upload and an interrupted upload leaves nothing behind.
public struct ArtifactStore: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// The absolute path for a relative artifact path, or an error when it would leave the root.
    public func resolve(_ relative: String) throws(MLflowError) -> String {
        let trimmed = relative.hasPrefix("/") ? String(relative.drop(while: { $0 == "/" })) : relative
        let segments = trimmed.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments where segment == ".." || segment == "." || segment.contains("\0") {
            throw .invalidParameter("Invalid artifact path '\(relative)': '..' and '.' segments are not allowed.")
        }
        return segments.isEmpty ? root : root + "/" + segments.joined(separator: "/")
    }

    /// The relative path inside the root of an `mlflow-artifacts:/...` URI, or nil for other schemes.
    public static func relativePath(ofURI uri: String) -> String? {
        guard uri.hasPrefix("mlflow-artifacts:") else { return nil }
        var rest = uri.dropFirst("mlflow-artifacts:".count)
        // mlflow-artifacts://host:port/path carries an authority; the path follows it.
        if rest.hasPrefix("//") {
            rest = rest.dropFirst(2)
            if let slash = rest.firstIndex(of: "/") { rest = rest[slash...] } else { rest = "" }
        }
        return String(rest.drop(while: { $0 == "/" }))
    }

    /// The local path of an artifact URI, for templates and the serving side.
    public func localPath(ofURI uri: String) -> String? {
        guard let relative = Self.relativePath(ofURI: uri) else { return nil }
        return try? resolve(relative)
    }

    public struct Entry: Sendable, Hashable {
        public var path: String
        public var isDirectory: Bool
        public var size: Int64?
    }

    /// The entries directly under a folder, sorted by name; empty when the folder does not exist.
    public func list(_ relative: String) throws(MLflowError) -> [Entry] {
        let directory = try resolve(relative)
        let manager = FileManager.default
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else { return [] }
        let names = ((try? manager.contentsOfDirectory(atPath: directory)) ?? []).filter { !$0.hasPrefix(".upload-") }.sorted()
        let prefix = relative.split(separator: "/").joined(separator: "/")
        return names.map { name in
            let full = directory + "/" + name
            var dir: ObjCBool = false
            _ = manager.fileExists(atPath: full, isDirectory: &dir)
            let size = dir.boolValue ? nil : ((try? manager.attributesOfItem(atPath: full))?[.size] as? NSNumber)?.int64Value
            return Entry(path: prefix.isEmpty ? name : prefix + "/" + name, isDirectory: dir.boolValue, size: size)
        }
    }

    /// Writes an upload from its chunks; the file appears whole or not at all.
    public func write<Chunks: AsyncSequence>(_ relative: String, chunks: Chunks, maxBytes: Int64) async throws -> Int64
    where Chunks.Element == [UInt8] {
        let target = try resolve(relative)
        guard target != root else { throw MLflowError.invalidParameter("An artifact upload needs a file path.") }
        let directory = (target as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = directory + "/.upload-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: temporary, contents: nil), let handle = FileHandle(forWritingAtPath: temporary)
        else {
            throw MLflowError(code: "INTERNAL_ERROR", message: "cannot create \(temporary)", status: 500)
        }
        var written: Int64 = 0
        do {
            for try await chunk in chunks {
                written += Int64(chunk.count)
                guard written <= maxBytes else {
                    throw MLflowError.tooLarge("The artifact '\(relative)' is over the \(maxBytes)-byte limit (--max-artifact-bytes).")
                }
                try handle.write(contentsOf: chunk)
            }
            try handle.synchronize()
            try handle.close()
            if FileManager.default.fileExists(atPath: target) { try FileManager.default.removeItem(atPath: target) }
            try FileManager.default.moveItem(atPath: temporary, toPath: target)
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: temporary)
            throw error
        }
        return written
    }

    /// Deletes a file or a folder; false when nothing was there.
    public func delete(_ relative: String) throws -> Bool {
        let target = try resolve(relative)
        guard target != root, FileManager.default.fileExists(atPath: target) else { return false }
        try FileManager.default.removeItem(atPath: target)
        return true
    }
}
