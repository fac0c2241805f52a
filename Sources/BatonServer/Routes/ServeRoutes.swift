import BatonCore
import BatonGateway
import BatonStore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `POST /serve/{deployment}/predict`: the prediction gateway's HTTP face. The body is collected
/// whole (up to the gateway's limit) and proxied; the gateway's answers, including its errors,
/// already have Baton's shape, so nothing here throws. `POST /serve/{deployment}/feedback`:
/// business outcomes of answered requests, stored as metric points of the version that answered.
enum ServeRoutes {
    static func register(on router: Router<BatonRequestContext>, context: ServerContext) {
        router.post("/serve/:deployment/predict") { request, requestContext -> Response in
            let deployment = requestContext.parameters.get("deployment") ?? ""
            let gateway = context.gateway
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: gateway.maxBodyBytes)
            } catch {
                return response(GatewayResponse.bodyTooLarge(limit: gateway.maxBodyBytes, deployment: deployment))
            }
            let answer = await gateway.forward(
                deployment: deployment, body: body, contentType: request.headers[.contentType],
                headers: forwardedHeaders(request.headers))
            return response(answer)
        }
        router.post("/serve/:deployment/feedback") { request, requestContext -> Response in
            var request = request
            let deployment = try requestContext.parameters.require("deployment")
            let buffer: ByteBuffer
            do {
                buffer = try await request.collectBody(upTo: Feedback.maxBodyBytes)
            } catch {
                throw APIError(.contentTooLarge, code: "body_too_large", "the feedback body is over the \(Feedback.maxBodyBytes)-byte limit")
                    .with(fix: "send at most \(Feedback.maxItems) reports per request")
            }
            let reports = try Feedback.parse(Data(buffer.readableBytesView))
            return APIResponse.json(try await Feedback.record(reports, deployment: deployment, context: context))
        }
    }

    /// The caller's headers the gateway reads or passes on: `Accept` and `X-` ones (it drops
    /// credentials among them itself).
    static func forwardedHeaders(_ fields: HTTPFields) -> [(String, String)] {
        var headers: [(String, String)] = []
        for field in fields where field.name.canonicalName.hasPrefix("x-") || field.name == .accept {
            headers.append((field.name.canonicalName, field.value))
        }
        return headers
    }

    static func isPredictPath(_ path: String) -> Bool {
        path.hasPrefix("/serve/") && path.hasSuffix("/predict")
    }

    /// Predictions and their feedback: what an application calling a model sends.
    static func isServePath(_ path: String) -> Bool {
        path.hasPrefix("/serve/") && (path.hasSuffix("/predict") || path.hasSuffix("/feedback"))
    }

    static func response(_ answer: GatewayResponse) -> Response {
        var fields = HTTPFields()
        for (name, value) in answer.headers {
            if let name = HTTPField.Name(name) { fields.append(HTTPField(name: name, value: value)) }
        }
        return Response(
            status: HTTPResponse.Status(code: answer.status), headers: fields, body: ResponseBody(byteBuffer: answer.body))
    }
}
