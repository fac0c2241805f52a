import BatonKit
import Foundation

/// Data Engineering's hourly customer load, written in Swift: a command task copies the CRM
/// export into the raw area, Swift steps clean it, check its quality and load it, and a last
/// command announces the result. Data moves between tasks as their outputs (small JSON
/// values); the rows themselves move through files under `var/`.
let customerData = Pipeline(
    "customer_data_pipeline", schedule: .hourly, owner: "data_engineering",
    description: "Hourly CRM load, written with BatonKit: extract, clean, check, load, announce.",
    maxActiveRuns: 1,
    params: [
        Param("source", default: "crm", description: "The export to load, from examples/data", allowed: ["crm"]),
        Param("min_valid_share", default: 0.9, description: "Share of rows that must survive cleaning"),
    ]
) {
    // Any program can be a task; this one is a shell line. The param is a single quoted word
    // by the time the shell sees it, and enum-checked before that.
    Command(
        "extract_crm",
        #"mkdir -p var/raw && cp "../data/$SOURCE.json" "var/raw/crm-$BATON_RUN_ID.json" && printf '{"path": "var/raw/crm-%s.json"}' "$BATON_RUN_ID" > "$BATON_OUTPUT""#
    )
    .env("SOURCE", "{{ params.source }}")
    .workdir("..")
    .retries(2, delay: .seconds(5))
    .timeout(.minutes(2))

    Step("clean_customers", needs: "extract_crm") { context in
        let raw = try context.input("extract_crm", as: RawFile.self)
        let data = try Data(contentsOf: URL(fileURLWithPath: context.workingDirectory + "/" + raw.path))
        let export = try JSONDecoder().decode(CRMExport.self, from: data)
        var seen: Set<String> = []
        var customers: [Customer] = []
        for record in export.records {
            try Task.checkCancellation()
            guard let customer = Customer(record), seen.insert(customer.id).inserted else { continue }
            customers.append(customer)
        }
        let path = "var/clean/customers-\(context.runID).json"
        try write(customers, to: context.workingDirectory + "/" + path)
        context.log("kept \(customers.count) of \(export.records.count) CRM records")
        return CleanFile(path: path, rows: customers.count, dropped: export.records.count - customers.count)
    }
    .workdir("..")

    // A plain Bool is stored as {"value": true} and handed on unwrapped.
    Step("check_quality", needs: "clean_customers") { context in
        let clean = try context.input("clean_customers", as: CleanFile.self)
        let minimum = try context.param("min_valid_share", as: Double.self)
        let share = Double(clean.rows) / Double(max(1, clean.rows + clean.dropped))
        context.log("valid share \(share), minimum \(minimum)")
        return share >= minimum
    }

    Step("load_to_warehouse", needs: "clean_customers", "check_quality") { context in
        let clean = try context.input("clean_customers", as: CleanFile.self)
        let target = context.workingDirectory + "/var/warehouse/clean_customers.json"
        try? FileManager.default.removeItem(atPath: target)
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: context.workingDirectory + "/" + clean.path, toPath: target)
        context.log("loaded \(clean.rows) customers into \(target)")
        // A producing task's output is the dataset update's metadata.
        return LoadResult(record_count: clean.rows, schema_version: "2.3.0")
    }
    .workdir("..")
    .when("tasks.check_quality.output.value == true")
    .produces("clean_customers")
    .retries(2, delay: .seconds(5))

    Command("announce", "echo loaded {{ tasks.load_to_warehouse.output.record_count }} customers for {{ ds }}")
        .needs("load_to_warehouse")
}

struct RawFile: Codable {
    var path: String
}

struct CleanFile: Codable {
    var path: String
    var rows: Int
    var dropped: Int
}

struct LoadResult: Codable {
    var record_count: Int
    var schema_version: String
}

/// The CRM export as the source system writes it.
struct CRMExport: Decodable {
    struct Record: Decodable {
        var Customer_Id__c: String?
        var Email: String?
        var Country: String?
        var Plan__c: String?
        var Status__c: String?
    }

    var records: [Record]
}

/// A customer after cleaning: ids and e-mails present, text normalised.
struct Customer: Codable {
    var id: String
    var email: String
    var country: String
    var plan: String
    var status: String

    init?(_ record: CRMExport.Record) {
        guard let id = record.Customer_Id__c?.trimmingCharacters(in: .whitespaces), !id.isEmpty,
            let email = record.Email?.trimmingCharacters(in: .whitespaces).lowercased(), email.contains("@")
        else { return nil }
        self.id = id
        self.email = email
        country = (record.Country ?? "").uppercased()
        plan = (record.Plan__c ?? "unknown").lowercased()
        status = (record.Status__c ?? "unknown").lowercased()
    }
}

func write(_ customers: [Customer], to path: String) throws {
    try FileManager.default.createDirectory(
        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    try encoder.encode(customers).write(to: URL(fileURLWithPath: path))
}
