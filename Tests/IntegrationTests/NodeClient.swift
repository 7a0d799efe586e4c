import Foundation
import StockadeClient
import StockadeTesting

/// JSON helpers over a raw connection, for tests against a real node.
struct NodeClient {
    let connection: HTTPConnection
    let token: String

    func call(_ method: String, _ path: String, body: String? = nil, token: String? = nil) async throws -> (Int, [String: Any]) {
        let response = try await connection.send(
            method: .init(rawValue: method), path: path, headers: [("Authorization", "Bearer \(token ?? self.token)")],
            body: body.map { Array($0.utf8) }, timeout: .seconds(30))
        let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any] ?? [:]
        return (response.status, json)
    }

    func setStock(_ sku: String, _ warehouse: String, _ total: Int, admin: String) async throws {
        let (status, json) = try await call("PUT", "/v1/skus/\(sku)/stock", body: #"{"warehouse":"\#(warehouse)","total":\#(total)}"#, token: admin)
        guard status == 200 else { throw NodeProcessError("set stock failed: \(status) \(json)") }
    }

    func reserve(
        id: String, sku: String, quantity: Int = 1, region: String = "east", ttlSeconds: Int? = nil
    ) async throws -> (Int, [String: Any]) {
        let ttl = ttlSeconds.map { #","ttlSeconds":\#($0)"# } ?? ""
        return try await call(
            "POST", "/v1/reservations",
            body: #"{"reservationId":"\#(id)","orderId":"order-\#(id)","region":"\#(region)","lines":[{"sku":"\#(sku)","quantity":\#(quantity)}],"allowSplit":true\#(ttl)}"#)
    }

    /// Sum of `field` over a SKU's rows.
    func rows(_ sku: String) async throws -> [String: [String: Int]] {
        let (_, json) = try await call("GET", "/v1/skus/\(sku)")
        var result: [String: [String: Int]] = [:]
        for row in json["warehouses"] as? [[String: Any]] ?? [] {
            result[row["warehouse"] as! String] = row.compactMapValues { $0 as? Int }
        }
        return result
    }
}

typealias AllocationKey = String

func allocationKeys(_ json: [String: Any]) -> [AllocationKey] {
    (json["allocations"] as? [[String: Any]] ?? []).map { "\($0["sku"]!)@\($0["warehouse"]!)x\($0["quantity"]!)" }
}
