import BatonCore
import Foundation
import Testing

@testable import BatonFeatures

@Suite struct FeatureRowTests {
    @Test(arguments: ["plain", "", "quote \" and back\\slash", "line\nbreak\ttab\r", "bell\u{07}", "ünïcødé ✓ 🚀"])
    func quotedTextIsValidJSONThatReadsBackTheSame(_ text: String) throws {
        var out = "["
        FeatureValue.appendQuoted(text, to: &out)
        out += "]"
        let parsed = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String]
        #expect(parsed == [text], "\(out)")
    }

    @Test func jsonRowsAreCheckedAndConverted() throws {
        let rows = try Fixture.parser().rows(json: [
            ["customer_id": 42, "event_timestamp": "2026-11-01T06:30:00Z", "total_spend": 12, "n_orders": 3, "segment": "gold", "active": true],
            ["customer_id": "43", "event_timestamp": 1_793_491_200, "segment": nil],
        ])
        #expect(rows[0] == FeatureRow(entityKey: "42", eventTime: Fixture.t0 + 6.5 * 3600, values: [.float(12), .int(3), .string("gold"), .bool(true)]))
        #expect(rows[1] == FeatureRow(entityKey: "43", eventTime: Fixture.t0, values: [.null, .null, .null, .null]))
    }

    @Test func aTypeErrorNamesTheRowColumnValueAndExpectedType() {
        #expect {
            _ = try Fixture.parser().rows(json: [
                ["customer_id": 1, "event_timestamp": "2026-11-01", "n_orders": 1],
                ["customer_id": 2, "event_timestamp": "2026-11-01", "n_orders": 1.5],
            ])
        } throws: { error in
            guard case .badRow(let row) = error as? FeatureError else { return false }
            return row.row == 2 && row.column == "n_orders" && row.value == "1.5" && row.expected == "int"
        }
    }

    @Test func unknownColumnsAndMissingKeysAreRefused() {
        #expect {
            _ = try Fixture.parser().rows(json: [["customer_id": 1, "event_timestamp": "2026-11-01", "totl_spend": 1]])
        } throws: { error in
            (error as? FeatureError)?.description.contains("did you mean 'total_spend'?") == true
        }
        #expect {
            _ = try Fixture.parser().rows(json: [["event_timestamp": "2026-11-01", "total_spend": 1]])
        } throws: { error in
            guard case .badRow(let row) = error as? FeatureError else { return false }
            return row.column == "customer_id" && row.row == 1
        }
        #expect {
            _ = try Fixture.parser().rows(json: [["customer_id": 1, "event_timestamp": "yesterday"]])
        } throws: { error in
            guard case .badRow(let row) = error as? FeatureError else { return false }
            return row.column == "event_timestamp" && row.value == "yesterday"
        }
    }

    @Test func csvRowsAreNumberedByLineAndEmptyCellsAreNull() throws {
        let parser = Fixture.parser()
        let rows = try parser.rows(csv: "customer_id,event_timestamp,total_spend,segment\n7,2026-11-01,1.5,\"a, b\"\n8,2026-11-02,,\n")
        #expect(rows.count == 2)
        #expect(rows[0].values == [.float(1.5), .null, .string("a, b"), .null])
        #expect(rows[1].values[0] == .null)
        #expect {
            _ = try parser.rows(csv: "customer_id,event_timestamp,active\n7,2026-11-01,true\n8,2026-11-02,maybe\n")
        } throws: { error in
            guard case .badRow(let row) = error as? FeatureError else { return false }
            return row.row == 3 && row.column == "active" && row.value == "maybe" && row.expected == "bool"
        }
    }

    @Test func timesParseAsUTCUnlessAnOffsetIsGiven() {
        #expect(FeatureTime.parse("2026-11-01") == Fixture.t0)
        #expect(FeatureTime.parse("2026-11-01T02:00:00+02:00") == Fixture.t0)
        #expect(FeatureTime.parse("2026-11-01 00:00:00.250") == Fixture.t0 + 0.25)
        #expect(FeatureTime.parse("1793491200") == Fixture.t0)
        #expect(FeatureTime.parse("2026-13-01") == nil)
        #expect(FeatureTime.parse("soon") == nil)
    }

    @Test func theCodecRoundTripsAndToleratesAChangedLayout() {
        let values: [FeatureValue] = [.float(-1.25), .int(Int64.max), .string("naïve \"quoted\""), .bool(false)]
        let names = ["total_spend", "n_orders", "segment", "active"]
        let blob = FeatureCodec.encode(names: names, values: values)
        #expect(FeatureCodec.decode(blob, layout: FeatureLayout(names)) == values)
        // A view that dropped a feature, reordered and gained one still reads its old rows.
        #expect(FeatureCodec.decode(blob, layout: FeatureLayout(["segment", "new_one", "total_spend"])) == [.string("naïve \"quoted\""), .null, .float(-1.25)])
    }
}
