import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The UI's static files (`Resources/ui`), read once and served from memory under `/static/`.
/// Pages link them with a content hash in the query, so browsers may cache them for good and
/// still get a new file after an upgrade.
enum UIAssets {
    struct Asset: Sendable {
        var bytes: ByteBuffer
        var contentType: String
        var hash: String
    }

    static let files: [String: Asset] = {
        guard let directory = Bundle.module.url(forResource: "ui", withExtension: nil),
            let names = try? FileManager.default.contentsOfDirectory(atPath: directory.path)
        else { return [:] }
        var files: [String: Asset] = [:]
        for name in names {
            guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
                continue
            }
            let hash = SHA256.hash(data: data).prefix(6).map { String(format: "%02x", $0) }.joined()
            files[name] = Asset(bytes: ByteBuffer(bytes: data), contentType: contentType(of: name), hash: hash)
        }
        return files
    }()

    static func contentType(of name: String) -> String {
        switch (name as NSString).pathExtension {
        case "css": return "text/css; charset=utf-8"
        case "js": return "text/javascript; charset=utf-8"
        case "svg": return "image/svg+xml"
        case "png": return "image/png"
        default: return "application/octet-stream"
        }
    }

    static func url(_ name: String) -> String {
        "/static/\(name)" + (files[name].map { "?v=\($0.hash)" } ?? "")
    }

    static func response(_ name: String) -> Response? {
        guard let asset = files[name] else { return nil }
        var headers = HTTPFields()
        headers[.contentType] = asset.contentType
        headers[.cacheControl] = "public, max-age=31536000, immutable"
        headers[.eTag] = "\"\(asset.hash)\""
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: asset.bytes))
    }
}
