import StockadeCore

/// A fast parser for the common shape of a reserve body: one object with the known keys, plain
/// strings (no escapes), integer numbers and booleans, each key at most once.
///
/// It returns nil for anything else (escapes, unknown keys, nulls, floats, duplicates, malformed
/// input), and the caller falls back to `JSONDecoder`, which gives the exact semantics and the
/// error messages. So this parser only has to be right when it succeeds; a test checks that it
/// then agrees with `JSONDecoder`.
enum ReserveBodyParser {
    static func parse(_ bytes: UnsafeRawBufferPointer) -> ReserveBody? {
        var cursor = JSONCursor(bytes: bytes)
        var reservationId: String?
        var orderId: String?
        var region: String?
        var lines: [ReserveBody.Line]?
        var ttlSeconds: Int64?
        var allowSplit: Bool?
        let read = cursor.object { key, json in
            switch key {
            case "reservationId": JSONCursor.setOnce(&reservationId, json.string())
            case "orderId": JSONCursor.setOnce(&orderId, json.string())
            case "region": JSONCursor.setOnce(&region, json.string())
            case "ttlSeconds": JSONCursor.setOnce(&ttlSeconds, json.integer())
            case "allowSplit": JSONCursor.setOnce(&allowSplit, json.boolean())
            case "lines": JSONCursor.setOnce(&lines, parseLines(&json))
            default: false
            }
        }
        guard read, cursor.atEnd, let reservationId, let orderId, let region, let lines else { return nil }
        return ReserveBody(
            reservationId: reservationId, orderId: orderId, region: region, lines: lines, ttlSeconds: ttlSeconds,
            allowSplit: allowSplit)
    }

    static func parseLines(_ cursor: inout JSONCursor) -> [ReserveBody.Line]? {
        var lines: [ReserveBody.Line] = []
        let read = cursor.array { json in
            var sku: String?
            var quantity: Int64?
            let member = json.object { key, json in
                switch key {
                case "sku": JSONCursor.setOnce(&sku, json.string())
                case "quantity": JSONCursor.setOnce(&quantity, json.integer())
                default: false
                }
            }
            guard member, let sku, let quantity else { return false }
            lines.append(ReserveBody.Line(sku: sku, quantity: quantity))
            return true
        }
        return read ? lines : nil
    }
}
