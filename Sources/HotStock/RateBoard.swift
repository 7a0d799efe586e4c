import StockadeCore

/// The cluster's reservation rate per SKU, for automatic promotion.
///
/// Each node counts the reservations it receives itself; with traffic spread over three nodes,
/// each would see a third of a SKU's rate and promote it late or never. So every node publishes
/// its counts of each finished wall-clock second to Redis, a field per SKU and node in that
/// second's hash (`stockade:rates:{second}`, kept for `retentionMs`), and the leader's
/// coordinator sums the fields. A node publishes at most `publishMax` SKUs per second, its
/// busiest; the rest are too small a share to decide a promotion.
struct RateBoard {
    var node: String
    var publishMax = 256
    var retentionMs: Int64 = 10_000

    /// Publishes `counts` of `second` as this node's; repeating it is harmless (HSET).
    func publish(_ counts: [SKU: Int], second: Int64, redis: RedisClient) async throws {
        guard !counts.isEmpty else { return }
        var arguments = RedisCommand()
        arguments.append(retentionMs)
        for (sku, count) in counts.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }).prefix(publishMax) {
            arguments.append(sku.rawValue + HotKeys.separator + node)
            arguments.append(Int64(count))
        }
        let value = try await redis.evaluate(Scripts.publishRates, keys: [HotKeys.rates(second: second)], arguments: arguments)
        if case .error(let message) = value { throw RedisError.server(message) }
    }

    /// Every node's counts of `second`, summed per SKU.
    func totals(second: Int64, redis: RedisClient) async throws -> [SKU: Int] {
        let value = try await redis.call(RedisCommand(["HGETALL", HotKeys.rates(second: second)]))
        if case .error(let message) = value { throw RedisError.server(message) }
        let items = value.elements ?? []
        var totals: [SKU: Int] = [:]
        var position = 0
        while position + 1 < items.count {
            if let field = items[position].string, let count = items[position + 1].string.flatMap({ Int($0) }) {
                let parts = HotPath.split(field[...], by: 0x1F)
                if parts.count == 2 { totals[SKU(String(parts[0])), default: 0] += count }
            }
            position += 2
        }
        return totals
    }
}
