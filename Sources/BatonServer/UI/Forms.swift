import BatonCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A submitted `application/x-www-form-urlencoded` form. A name may repeat; the last value
/// wins, which is what lets a checkbox follow a hidden "false" of the same name.
struct FormData: Sendable {
    var pairs: [(name: String, value: String)]

    init(pairs: [(name: String, value: String)]) { self.pairs = pairs }

    init(encoded text: String) {
        pairs = text.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return (Self.decode(parts[0]), parts.count > 1 ? Self.decode(parts[1]) : "")
        }
    }

    static func decode(_ text: Substring) -> String {
        let spaced = text.replacingOccurrences(of: "+", with: " ")
        return spaced.removingPercentEncoding ?? spaced
    }

    subscript(name: String) -> String? { pairs.last { $0.name == name }?.value }

    /// Reads the body of a form POST.
    static func read(_ request: Request, limit: Int) async throws -> FormData {
        var request = request
        let buffer = try await request.collectBody(upTo: limit)
        return FormData(encoded: String(buffer: buffer))
    }
}

/// Guards the UI's POST forms against other sites. With auth off (the loopback default) no
/// cookie protects them, so any page the user visits could post a form to 127.0.0.1; browsers
/// mark such requests with `Origin` and `Sec-Fetch-Site`, which we check against our host.
enum CrossSiteCheck {
    static func isAllowed(_ request: Request) -> Bool {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site == "cross-site" || site == "same-site" {
            return false
        }
        guard let origin = request.headers[HTTPField.Name("Origin")!] else { return true }
        guard origin != "null", let host = request.head.authority else { return false }
        let originHost = origin.split(separator: "/", omittingEmptySubsequences: true).dropFirst().first.map(String.init)
        return originHost == host
    }
}

/// Turns the trigger form's fields into run params, with a message per field that is wrong.
enum TriggerForm {
    /// Form field of a param; the prefix keeps params apart from the form's own fields.
    static func field(_ name: String) -> String { "param." + name }

    struct Result {
        var params: [String: JSONValue] = [:]
        var errors: [String: String] = [:]
        /// What the user typed, to fill the form in again after an error.
        var entered: [String: String] = [:]
    }

    static func parse(_ form: FormData, spec: PipelineSpec) -> Result {
        var result = Result()
        for pair in form.pairs where pair.name.hasPrefix("param.") {
            let name = String(pair.name.dropFirst("param.".count))
            if spec.param(named: name) == nil, result.errors[name] == nil {
                let known = spec.params.map(\.name)
                result.errors[name] =
                    "pipeline '\(spec.name)' has no param '\(name)'; "
                    + (known.isEmpty ? "it declares none" : Suggest.hint(for: name, in: known))
            }
        }
        for param in spec.params {
            guard let text = form[field(param.name)] else { continue }
            result.entered[param.name] = text
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            // An emptied field means "use the default": only a string can meaningfully be empty.
            if trimmed.isEmpty && param.type != .string { continue }
            do {
                let value = try ParamValidation.coerce(param.type == .string ? text : trimmed, for: param)
                result.params[param.name] = try ParamValidation.check(value, against: param)
            } catch {
                result.errors[param.name] = error.message
            }
        }
        return result
    }
}
