import Ledger
import StockadeCore

/// The hot path's records: the gate call's encoding, the answers and decrement records it reads back.
extension HotPath {

    /// Per line of a reservation, the warehouses the cache holds allotments in, in the region's order.
    public struct GatePlan: Sendable {
        public var lines: [(ReservationLine, [WarehouseID])]
    }

    /// The request's body in canonical form, stored with the cache's answer so that a replay with
    /// another body is told apart. Kept whole rather than hashed: it is short (identifiers are
    /// bounded), comparing it in Lua is cheap, and hashing cost more per request than the rest of
    /// the gate call's preparation.
    static func digest(_ request: ReserveRequest) -> String {
        var text = request.orderId + "\u{1F}" + request.region + "\u{1F}\(request.ttlMs)\u{1F}\(request.allowSplit ? 1 : 0)"
        for line in request.lines { text += "\u{1F}" + line.sku.rawValue + "\u{1E}\(line.quantity)" }
        return text
    }

    /// The reservation's part of a batched gate call (see `Scripts.gate`).
    static func gateCall(_ request: ReserveRequest, plan: GatePlan, createdAtMs: Int64) -> GateBatcher.Call {
        var keys = [HotKeys.answer(request.reservationId)]
        var arguments = RedisCommand([
            request.reservationId.rawValue, digest(request), request.orderId, request.region, "\(request.ttlMs)",
            request.allowSplit ? "1" : "0", "\(createdAtMs)", "\(plan.lines.count)",
        ])
        for (line, warehouses) in plan.lines {
            keys.append(HotKeys.hot(line.sku))
            arguments.append(line.sku.rawValue)
            arguments.append(line.quantity)
            arguments.append(Int64(warehouses.count))
            for warehouse in warehouses {
                keys.append(HotKeys.allot(line.sku, warehouse))
                arguments.append(warehouse.rawValue)
            }
        }
        return GateBatcher.Call(keys: keys, arguments: arguments)
    }

    /// The fields of `text` between one-byte ASCII separators, empty ones included. Works on the
    /// UTF-8 bytes: splitting on a Character walks grapheme clusters, and this runs for every
    /// cache answer and every drained record.
    static func split(_ text: Substring, by separator: UInt8) -> [Substring] {
        var fields: [Substring] = []
        var start = text.startIndex
        var index = text.utf8.startIndex
        while index < text.utf8.endIndex {
            if text.utf8[index] == separator {
                fields.append(text[start..<index])
                start = text.utf8.index(after: index)
            }
            index = text.utf8.index(after: index)
        }
        fields.append(text[start...])
        return fields
    }

    /// `n \x1F createdAtMs \x1F allocations` → the hold it grants.
    static func hold(_ request: ReserveRequest, stored: String) -> Hold? {
        let fields = split(stored[...], by: 0x1F)
        guard fields.count == 3, let n = UInt64(fields[0]), let createdAtMs = Int64(fields[1]),
            let allocations = parseAllocations(fields[2])
        else { return nil }
        return Hold(
            reservationId: request.reservationId, orderId: request.orderId, region: request.region, allocations: allocations,
            ttlMs: request.ttlMs, allowSplit: request.allowSplit, path: .cache, token: FencingToken(CacheHold.tokenBase + n),
            createdAtMs: createdAtMs, expiresAtMs: createdAtMs + request.ttlMs, status: .held, finishedAtMs: 0)
    }

    static func parseAllocations(_ text: Substring) -> [Allocation]? {
        var allocations: [Allocation] = []
        for part in split(text, by: 0x1D) where !part.isEmpty {
            let fields = split(part, by: 0x1E)
            guard fields.count == 3, let quantity = Int64(fields[2]), quantity > 0 else { return nil }
            allocations.append(Allocation(sku: SKU(String(fields[0])), warehouse: WarehouseID(String(fields[1])), quantity: quantity))
        }
        return allocations.isEmpty ? nil : allocations
    }

    /// A decrement record (`id, order, region, ttl, split, n, createdAt, allocations`) → a cache hold.
    static func cacheHold(record: String) -> CacheHold? {
        let fields = split(record[...], by: 0x1F)
        guard fields.count == 8, let ttlMs = Int64(fields[3]), let n = UInt64(fields[5]), let createdAtMs = Int64(fields[6]),
            let allocations = parseAllocations(fields[7])
        else { return nil }
        return CacheHold(
            reservationId: ReservationID(String(fields[0])), orderId: String(fields[1]), region: String(fields[2]),
            allocations: allocations, ttlMs: ttlMs, allowSplit: fields[4] == "1", token: FencingToken(CacheHold.tokenBase + n),
            createdAtMs: createdAtMs)
    }
}
