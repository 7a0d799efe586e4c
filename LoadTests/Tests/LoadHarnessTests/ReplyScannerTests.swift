import Foundation
import StockadeCore
import Testing

@testable import LoadHarness

/// The harness's reply scanner agrees with `JSONDecoder` whenever it answers, and answers for the
/// shapes the service writes.
@Suite struct ReplyScannerTests {
    static let granted =
        #"{"allocations":[{"quantity":2,"sku":"tee","warehouse":"yiwu"},{"quantity":1,"sku":"tee","warehouse":"beijing"}],"#
        + #""createdAt":1795352536417,"expiresAt":1795356136417,"lines":[{"quantity":3,"sku":"tee"}],"orderId":"o-1","#
        + #""path":"quorum","region":"east","reservationId":"r-1","status":"held","token":12}"#
    static let refused =
        #"{"error":{"available":0,"code":"insufficient_stock","message":"sku tee: 3 requested, 0 available","requested":3,"sku":"tee"}}"#

    static func scanned(_ text: String) -> ReserveReply? {
        Array(text.utf8).withUnsafeBytes { ReplyScanner.reserveReply($0) }
    }

    static func decoded(_ text: String) -> ReserveReply? {
        try? JSONDecoder().decode(ReserveReply.self, from: Data(text.utf8))
    }

    @Test func theServicesShapesTakeTheFastPath() {
        let reply = Self.scanned(Self.granted)
        #expect(reply?.path == "quorum")
        #expect(
            reply?.allocations == [
                GrantedAllocation(sku: "tee", warehouse: "yiwu", quantity: 2),
                GrantedAllocation(sku: "tee", warehouse: "beijing", quantity: 1),
            ])
        #expect(reply == Self.decoded(Self.granted))
        #expect(Self.scanned(Self.refused)?.error == ErrorReply(code: "insufficient_stock", message: "sku tee: 3 requested, 0 available"))
        #expect(Self.scanned(Self.refused) == Self.decoded(Self.refused))
    }

    /// Random variations of both shapes: whitespace, reordered and unknown fields, nulls, floats,
    /// escapes, duplicates, truncation. Whenever the scanner answers, `JSONDecoder` agrees.
    @Test func scannerAgreesWithJSONDecoderWheneverItAnswers() {
        var random = SplitMix64(seed: 11)
        var answered = 0
        for _ in 0..<5_000 {
            func space() -> String { ["", " ", "\n", "\t "].randomElement(using: &random)! }
            func text() -> String { "\"" + ["tee", "yiwu", "a\\\"b", "ü", "", "x\\u0041"].randomElement(using: &random)! + "\"" }
            func number() -> String { ["1", "0", "-2", "1.5", "2e3", "null", "\"3\"", "9223372036854775808"].randomElement(using: &random)! }
            func extra() -> String {
                ["1", "null", "true", "[1,{\"a\":[]}]", "{\"b\":{\"c\":null}}", "\"s\"", "-0.5e+2", "nul", "[1,]"]
                    .randomElement(using: &random)!
            }
            var fields: [String] = []
            if Bool.random(using: &random) {
                let allocations = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                    var parts = ["\"sku\":\(text())", "\"warehouse\":\(text())", "\"quantity\":\(space())\(number())"]
                    if Int.random(in: 0..<6, using: &random) == 0 { parts.append("\"x\":\(extra())") }
                    if Int.random(in: 0..<10, using: &random) == 0 { parts.removeFirst() }
                    return "{" + parts.shuffled(using: &random).joined(separator: ",\(space())") + "}"
                }
                fields.append("\"allocations\":[\(allocations.joined(separator: ","))]")
                fields.append("\"path\":\(text())")
            } else {
                var parts = ["\"code\":\(text())", "\"message\":\(text())"]
                if Bool.random(using: &random) { parts.append("\"available\":\(number())") }
                if Int.random(in: 0..<8, using: &random) == 0 { parts.removeFirst() }
                fields.append("\"error\":{" + parts.shuffled(using: &random).joined(separator: ",") + "}")
            }
            for _ in 0..<Int.random(in: 0...3, using: &random) { fields.append("\"f\(Int.random(in: 0...9, using: &random))\":\(extra())") }
            if Int.random(in: 0..<10, using: &random) == 0 { fields.append("\"path\":\"cache\"") }
            var body = "{" + space() + fields.shuffled(using: &random).joined(separator: "," + space()) + space() + "}"
            if Int.random(in: 0..<12, using: &random) == 0 { body = String(body.dropLast(Int.random(in: 1...4, using: &random))) }
            if let fast = Self.scanned(body) {
                answered += 1
                #expect(fast == Self.decoded(body), "\(body)")
            }
        }
        #expect(answered > 500)
    }
}
