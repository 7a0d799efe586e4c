import Foundation
import StockadeCore
import Testing

@testable import API

/// The fast reserve-body parser agrees with `JSONDecoder` whenever it answers, and answers for the common shape.
@Suite struct ReserveBodyParserTests {
    static func randomBody(_ random: inout SplitMix64) -> String {
        func space() -> String { ["", " ", "\n ", "\t"].randomElement(using: &random)! }
        func string() -> String {
            let options = ["r-1", "o-9", "east", "sku-7", "ü-ñ", "a\\\"b", "x\\u0041", "", "long-\(Int.random(in: 0...999_999, using: &random))"]
            return "\"" + options.randomElement(using: &random)! + "\""
        }
        func number() -> String {
            ["1", "2", "0", "-3", "1.5", "1e2", "01", "9223372036854775807", "9223372036854775808", "null", "\"4\""]
                .randomElement(using: &random)!
        }
        var fields: [String] = []
        fields.append("\"reservationId\":\(space())\(string())")
        fields.append("\"orderId\":\(string())")
        fields.append("\"region\":\(space())\(string())")
        let lineCount = Int.random(in: 0...3, using: &random)
        let lines = (0..<lineCount).map { _ in
            var parts = ["\"sku\":\(string())", "\"quantity\":\(space())\(number())"]
            if Int.random(in: 0..<8, using: &random) == 0 { parts.append("\"extra\":1") }
            if Int.random(in: 0..<10, using: &random) == 0 { parts.removeFirst() }
            return "{" + parts.shuffled(using: &random).joined(separator: ",\(space())") + "}"
        }
        fields.append("\"lines\":[\(lines.joined(separator: ","))]")
        if Bool.random(using: &random) { fields.append("\"ttlSeconds\":\(number())") }
        if Bool.random(using: &random) { fields.append("\"allowSplit\":\(["true", "false", "null", "1"].randomElement(using: &random)!)") }
        if Int.random(in: 0..<8, using: &random) == 0 { fields.append("\"unknown\":{\"a\":[1,2]}") }
        if Int.random(in: 0..<10, using: &random) == 0 { fields.append("\"region\":\"west\"") }
        if Int.random(in: 0..<10, using: &random) == 0 { fields.removeFirst() }
        var body = "{" + space() + fields.shuffled(using: &random).joined(separator: "," + space()) + space() + "}"
        if Int.random(in: 0..<12, using: &random) == 0 { body = String(body.dropLast(Int.random(in: 1...5, using: &random))) }
        if Int.random(in: 0..<20, using: &random) == 0 { body += "x" }
        return body
    }

    @Test func fastParserAgreesWithJSONDecoder() throws {
        var random = SplitMix64(seed: 20261122)
        var fastAnswers = 0
        for _ in 0..<20_000 {
            let body = Self.randomBody(&random)
            let bytes = Array(body.utf8)
            let fast = bytes.withUnsafeBytes { ReserveBodyParser.parse($0) }
            let full = try? JSONDecoder().decode(ReserveBody.self, from: Data(bytes))
            if let fast {
                fastAnswers += 1
                #expect(fast == full, "\(body)")
            }
        }
        #expect(fastAnswers > 1_000)
    }

    @Test func commonShapeTakesTheFastPath() {
        let body = #"{"reservationId":"r1","orderId":"o1","region":"east","lines":[{"sku":"tee","quantity":2}],"ttlSeconds":900,"allowSplit":true}"#
        let parsed = Array(body.utf8).withUnsafeBytes { ReserveBodyParser.parse($0) }
        #expect(parsed == ReserveBody(
            reservationId: "r1", orderId: "o1", region: "east", lines: [.init(sku: "tee", quantity: 2)], ttlSeconds: 900,
            allowSplit: true))
    }
}
