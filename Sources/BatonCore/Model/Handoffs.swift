import Foundation

/// Starts a run of the pipeline for each matching event.
public struct EventTriggerSpec: Sendable, Hashable, Codable {
    /// The event name, such as `data.customers.updated`.
    public var event: String
    /// Payload paths (dotted) and the values they must equal; a list means any of its values.
    public var filter: [String: JSONValue]

    public init(event: String, filter: [String: JSONValue] = [:]) {
        self.event = event
        self.filter = filter
    }

    /// Whether `name` can be published: 1-200 ASCII letters, digits, '.', '_', '-' or ':'. The
    /// engine refuses any other name, so a trigger on one could never fire.
    public static func isValidEventName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 200
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_.-:".unicodeScalars.contains($0)) }
    }

    /// Whether an event with this name and payload starts a run.
    public func matches(name: String, payload: JSONValue) -> Bool {
        guard name == event else { return false }
        for (path, expected) in filter {
            let actual = payload.value(at: path.split(separator: ".").map(String.init)) ?? .null
            if case .array(let choices) = expected {
                if !choices.contains(where: { $0.looselyEquals(actual) }) { return false }
            } else if !expected.looselyEquals(actual) {
                return false
            }
        }
        return true
    }
}

/// What a task does when a dataset it requires breaks its contract.
public enum ViolationPolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// Fail the task with a DataSLAViolation (no retries: the data, not the task, is at fault).
    case fail
    /// Skip the task (and, under all_success, what depends on it).
    case skip
    /// Wait for a fresh update of the dataset, up to `wait_timeout`, then fail.
    case wait
}

/// A task's contract with a dataset it reads.
public struct DatasetRequirement: Sendable, Hashable, Codable {
    public var dataset: String
    /// Seconds; defaults to the dataset's own freshness SLA.
    public var maxStaleness: Double?
    /// A version range such as `>=2.0 <3`.
    public var schema: String?
    public var onViolation: ViolationPolicy
    /// Seconds to wait under `on_violation: wait`.
    public var waitTimeout: Double

    public static let defaultWaitTimeout: Double = 3600

    public init(
        dataset: String, maxStaleness: Double? = nil, schema: String? = nil, onViolation: ViolationPolicy = .fail,
        waitTimeout: Double = DatasetRequirement.defaultWaitTimeout
    ) {
        self.dataset = dataset
        self.maxStaleness = maxStaleness
        self.schema = schema
        self.onViolation = onViolation
        self.waitTimeout = waitTimeout
    }
}

/// A dataset a team promises to others: the hand-off point between pipelines.
public struct DatasetSpec: Sendable, Hashable, Codable {
    /// An availability target as written in YAML (`99.9%` or `0.999`) as a share, or nil when
    /// it is not one.
    public static func availabilityShare(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let percent = trimmed.hasSuffix("%")
        guard let number = Double(percent ? String(trimmed.dropLast()) : trimmed),
            percent ? (0...100).contains(number) : (0...1).contains(number)
        else { return nil }
        // Rounded so 99.9% reads back as 0.999, not 0.9990000000000001.
        return ((percent ? number / 100 : number) * 1e9).rounded() / 1e9
    }

    public var name: String
    public var owner: String?
    public var description: String?
    public var schemaVersion: String?
    /// Seconds after an update within which the data counts as fresh.
    public var freshness: Double?
    /// Target share of time the dataset is fresh, 0...1 (`99.9%` is 0.999).
    public var availability: Double?
    /// Where SLA misses are posted; defaults to the owner team's webhook.
    public var webhook: String?
    public var sourceFile: String?

    public init(
        name: String, owner: String? = nil, description: String? = nil, schemaVersion: String? = nil,
        freshness: Double? = nil, availability: Double? = nil, webhook: String? = nil, sourceFile: String? = nil
    ) {
        self.name = name
        self.owner = owner
        self.description = description
        self.schemaVersion = schemaVersion
        self.freshness = freshness
        self.availability = availability
        self.webhook = webhook
        self.sourceFile = sourceFile
    }
}

/// A team, for notifications.
public struct TeamSpec: Sendable, Hashable, Codable {
    public var name: String
    public var webhook: String?

    public init(name: String, webhook: String? = nil) {
        self.name = name
        self.webhook = webhook
    }
}

/// A version such as `2.3.0`: up to three numeric parts, missing parts are zero.
public struct SchemaVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var parts: [Int]

    public init?(_ text: String) {
        let pieces = text.trimmingCharacters(in: .whitespaces).split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(pieces.count) else { return nil }
        var parts: [Int] = []
        for piece in pieces {
            guard let value = Int(piece), value >= 0 else { return nil }
            parts.append(value)
        }
        while parts.count < 3 { parts.append(0) }
        self.parts = parts
    }

    public static func < (lhs: SchemaVersion, rhs: SchemaVersion) -> Bool { lhs.parts.lexicographicallyPrecedes(rhs.parts) }
    public var description: String { parts.map(String.init).joined(separator: ".") }
}

/// A set of accepted versions: comparators joined by spaces (`>=2.0 <3`), or `^2.3`, `~2.3`,
/// `2.x`, `=2.3.0`, or a bare version meaning exactly it.
public struct VersionRange: Sendable, Hashable, CustomStringConvertible {
    enum Operator: String { case ge = ">=", gt = ">", le = "<=", lt = "<", eq = "=" }
    struct Comparator: Hashable { var op: Operator; var version: SchemaVersion }

    let comparators: [Comparator]
    public let description: String

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var text: String
        public var problem: String
        public var description: String {
            "'\(text)' is not a version range (\(problem)); write e.g. \">=2.0 <3\", \"^2.3\" or \"2.x\""
        }
    }

    public init(_ text: String) throws(ParseError) {
        description = text
        var result: [Comparator] = []
        let tokens = text.split(separator: " ").map(String.init).filter { !$0.isEmpty }
        guard !tokens.isEmpty else { throw ParseError(text: text, problem: "it is empty") }
        for token in tokens {
            if token.hasPrefix("^") || token.hasPrefix("~") {
                guard let base = SchemaVersion(String(token.dropFirst())) else {
                    throw ParseError(text: text, problem: "'\(token.dropFirst())' is not a version")
                }
                var upper = base.parts
                if token.hasPrefix("^") {
                    upper = [base.parts[0] + 1, 0, 0]
                } else {
                    upper = [base.parts[0], base.parts[1] + 1, 0]
                }
                result.append(Comparator(op: .ge, version: base))
                result.append(Comparator(op: .lt, version: SchemaVersion(upper.map(String.init).joined(separator: "."))!))
                continue
            }
            if token.hasSuffix(".x") || token.hasSuffix(".*") {
                let prefix = String(token.dropLast(2))
                guard let base = SchemaVersion(prefix) else {
                    throw ParseError(text: text, problem: "'\(prefix)' is not a version")
                }
                let depth = prefix.split(separator: ".").count
                var upper = base.parts
                upper[depth - 1] += 1
                for index in depth..<3 { upper[index] = 0 }
                result.append(Comparator(op: .ge, version: base))
                result.append(Comparator(op: .lt, version: SchemaVersion(upper.map(String.init).joined(separator: "."))!))
                continue
            }
            var op = Operator.eq
            var rest = Substring(token)
            for candidate in [Operator.ge, .le, .gt, .lt, .eq] where rest.hasPrefix(candidate.rawValue) {
                op = candidate
                rest = rest.dropFirst(candidate.rawValue.count)
                break
            }
            guard let version = SchemaVersion(String(rest)) else {
                throw ParseError(text: text, problem: "'\(rest)' is not a version")
            }
            result.append(Comparator(op: op, version: version))
        }
        comparators = result
    }

    public func contains(_ version: SchemaVersion) -> Bool {
        comparators.allSatisfy { comparator in
            switch comparator.op {
            case .ge: return version >= comparator.version
            case .gt: return version > comparator.version
            case .le: return version <= comparator.version
            case .lt: return version < comparator.version
            case .eq: return version == comparator.version
            }
        }
    }
}

extension DatasetSpec {
    /// The event a producing task's success publishes: `dataset.clean_customers.updated`.
    public static func updateEventName(for dataset: String) -> String { "dataset.\(dataset).updated" }

    /// `clean_customers` for `dataset.clean_customers.updated`; nil for any other event name.
    public static func dataset(ofUpdateEvent name: String) -> String? {
        guard name.hasPrefix("dataset."), name.hasSuffix(".updated"), name.count > "dataset..updated".count else {
            return nil
        }
        return String(name.dropFirst("dataset.".count).dropLast(".updated".count))
    }
}
