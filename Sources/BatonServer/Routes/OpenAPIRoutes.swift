import Foundation
import Hummingbird

/// Serves the OpenAPI 3.1 document kept in the repository (`Resources/openapi.json`).
enum OpenAPIRoutes {
    static let document: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "json"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "{}" }
        return text
    }()

    static func register(on router: Router<BatonRequestContext>) {
        router.get("/api/v1/openapi.json") { _, _ in
            APIResponse.text(document, contentType: "application/json; charset=utf-8")
        }
    }
}
