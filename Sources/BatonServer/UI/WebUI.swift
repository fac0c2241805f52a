import Hummingbird

/// The server-rendered web UI.
enum WebUI {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.get("/") { _, _ in
            APIResponse.text("<!doctype html><title>Baton</title><h1>Baton</h1>", contentType: "text/html; charset=utf-8")
        }
    }
}
