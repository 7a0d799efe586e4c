import NIOHTTP1
import StockadeCore

/// One call, as each transport says it: RESP words, or an HTTP method, path and JSON body.
/// Both spellings of every call live here, side by side.
struct ClientOperation: Sendable {
    var words: [String]
    var method: HTTPMethod
    var path: String
    var body: [UInt8]?

    static func reserve(_ request: ReservationRequest) -> ClientOperation {
        var words = [
            "RESERVE", request.reservationId, request.orderId, request.region, String(request.ttlSeconds),
            request.allowSplit ? "1" : "0",
        ]
        for line in request.lines { words += [line.sku, String(line.quantity)] }
        return ClientOperation(words: words, method: .POST, path: "/v1/reservations", body: json(request))
    }

    static func lifecycle(_ verb: String, _ id: String) -> ClientOperation {
        ClientOperation(words: [verb.uppercased(), id], method: .POST, path: "/v1/reservations/\(escaped(id))/\(verb)", body: nil)
    }

    static func extend(_ id: String, ttlSeconds: Int64) -> ClientOperation {
        ClientOperation(
            words: ["EXTEND", id, String(ttlSeconds)], method: .POST, path: "/v1/reservations/\(escaped(id))/extend",
            body: Array(#"{"ttlSeconds":\#(ttlSeconds)}"#.utf8))
    }

    static func reservation(_ id: String, _ consistency: ReadConsistency) -> ClientOperation {
        read(["RESERVATION", id], "/v1/reservations/\(escaped(id))", consistency)
    }

    static func sku(_ sku: String, _ consistency: ReadConsistency) -> ClientOperation {
        read(["SKU", sku], "/v1/skus/\(escaped(sku))", consistency)
    }

    static func setStock(sku: String, warehouse: String, total: Int64) -> ClientOperation {
        struct Body: Encodable {
            var warehouse: String
            var total: Int64
        }
        return ClientOperation(
            words: ["STOCK.SET", sku, warehouse, String(total)], method: .PUT, path: "/v1/skus/\(escaped(sku))/stock",
            body: json(Body(warehouse: warehouse, total: total)))
    }

    static func adjustStock(sku: String, warehouse: String, delta: Int64, reason: String) -> ClientOperation {
        struct Body: Encodable {
            var warehouse: String
            var delta: Int64
            var reason: String
        }
        return ClientOperation(
            words: ["STOCK.ADJUST", sku, warehouse, String(delta), reason], method: .POST,
            path: "/v1/skus/\(escaped(sku))/stock/adjust", body: json(Body(warehouse: warehouse, delta: delta, reason: reason)))
    }

    static func setHot(_ sku: String, _ hot: Bool) -> ClientOperation {
        ClientOperation(
            words: [hot ? "SKU.HOT" : "SKU.COOL", sku], method: hot ? .POST : .DELETE, path: "/v1/skus/\(escaped(sku))/hot",
            body: nil)
    }

    static func holds(_ query: HoldsQuery, _ consistency: ReadConsistency) -> ClientOperation {
        var words = ["HOLDS", query.sku ?? "*"]
        var parameters: [(String, String)] = []
        if let sku = query.sku { parameters.append(("sku", sku)) }
        if let orderId = query.orderId {
            words += ["ORDER", orderId]
            parameters.append(("orderId", orderId))
        }
        if let status = query.status {
            words += ["STATUS", status]
            parameters.append(("status", status))
        }
        if let within = query.expiringWithinSeconds {
            words += ["EXPIRING", String(within)]
            parameters.append(("expiringWithinSeconds", String(within)))
        }
        if let limit = query.limit {
            words += ["LIMIT", String(limit)]
            parameters.append(("limit", String(limit)))
        }
        if let cursor = query.cursor {
            words += ["CURSOR", cursor]
            parameters.append(("cursor", cursor))
        }
        if consistency == .local {
            words += ["CONSISTENCY", "local"]
            parameters.append(("consistency", "local"))
        }
        let query = parameters.map { "\($0.0)=\(escaped($0.1))" }.joined(separator: "&")
        return ClientOperation(words: words, method: .GET, path: "/v1/holds" + (query.isEmpty ? "" : "?" + query), body: nil)
    }

    static let cluster = ClientOperation(words: ["CLUSTERINFO"], method: .GET, path: "/v1/cluster", body: nil)
    static let stats = ClientOperation(words: ["STATS"], method: .GET, path: "/v1/stats", body: nil)

    static func audit(_ sku: String?) -> ClientOperation {
        ClientOperation(
            words: ["AUDIT"] + (sku.map { [$0] } ?? []), method: .GET, path: "/v1/audit" + (sku.map { "?sku=\(escaped($0))" } ?? ""),
            body: nil)
    }
    static let warehouses = ClientOperation(words: ["WAREHOUSES"], method: .GET, path: "/v1/warehouses", body: nil)

    private static func read(_ words: [String], _ path: String, _ consistency: ReadConsistency) -> ClientOperation {
        consistency == .local
            ? ClientOperation(words: words + ["CONSISTENCY", "local"], method: .GET, path: path + "?consistency=local", body: nil)
            : ClientOperation(words: words, method: .GET, path: path, body: nil)
    }

    private static func json(_ value: some Encodable) -> [UInt8] {
        (try? Array(ClientJSON.encoder.encode(value))) ?? []
    }

    static func escaped(_ text: String) -> String { PercentEncoding.encode(text) }
}
