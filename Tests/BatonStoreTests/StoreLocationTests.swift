import Foundation
import Testing

@testable import BatonStore

@Suite struct StoreLocationTests {
    @Test func postgresURLsAreParsedWithDefaults() throws {
        let full = try StoreLocation(parsing: "postgres://baton:s%40cret@db.example:6543/baton_prod?sslmode=disable")
        #expect(
            full == .postgres(PostgresLocation(host: "db.example", port: 6543, user: "baton", password: "s@cret", database: "baton_prod", tls: .disable)))
        let short = try StoreLocation(parsing: "postgresql://ops@10.0.0.5/baton")
        #expect(short == .postgres(PostgresLocation(host: "10.0.0.5", port: 5432, user: "ops", password: nil, database: "baton", tls: .prefer)))
        let ipv6 = try StoreLocation(parsing: "postgres://ops@[::1]:5433/baton?sslmode=verify-full")
        #expect(ipv6 == .postgres(PostgresLocation(host: "::1", port: 5433, user: "ops", database: "baton", tls: .verifyFull)))
        #expect(ipv6.isPostgres)
    }

    @Test func anythingElseIsASQLiteFile() throws {
        #expect(try StoreLocation(parsing: ".baton/baton.db") == .sqlite(path: ".baton/baton.db"))
        #expect(try StoreLocation(parsing: "/var/lib/baton/baton.db") == .sqlite(path: "/var/lib/baton/baton.db"))
        #expect(try StoreLocation(parsing: "weird:name.db") == .sqlite(path: "weird:name.db"))
        #expect(try StoreLocation(parsing: "a.db").isPostgres == false)
    }

    @Test func passwordsNeverShowInDescriptionsOrErrors() throws {
        let location = try StoreLocation(parsing: "postgres://baton:hunter2@db:5432/baton")
        #expect(location.description == "postgres://baton:***@db:5432/baton")
        #expect(!"\(location)".contains("hunter2"))
        let error = try #require(throws: StoreLocationError.self) {
            try StoreLocation(parsing: "postgres://baton:hunter2@db:5432/")
        }
        #expect(!error.description.contains("hunter2"))
        #expect(error.description.contains("database"))
    }

    @Test func badURLsSayWhatIsMissing() throws {
        let cases: [(String, String)] = [
            ("postgres://db:5432/baton", "no user"),
            ("postgres://baton@db:5432", "names no database"),
            ("postgres://baton@/baton", "no host"),
            ("postgres://baton@db/baton?sslmode=sometimes", "sslmode 'sometimes'"),
            ("postgres://baton@db/baton?connect_timeout=3", "unknown URL parameter 'connect_timeout'"),
            ("mysql://baton@db/baton", "'mysql://' is not supported"),
        ]
        for (text, expected) in cases {
            let error = try #require(throws: StoreLocationError.self, "\(text)") { try StoreLocation(parsing: text) }
            #expect(error.description.contains(expected), "\(text): \(error)")
        }
    }
}
