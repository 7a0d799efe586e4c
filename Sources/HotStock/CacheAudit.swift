import Ledger
import Node
import StockadeCore

/// The cache's side of an audit, read from Redis in one script (so it is one instant of Redis):
/// each row's counter and grant marker, and every record in the decrement and dead-letter
/// streams.
struct CacheObservation: Sendable {
    var counters: [RowKey: Int64] = [:]
    var grantMarkers: [RowKey: UInt64] = [:]
    /// Records in `stockade:holds`, not yet acknowledged (read or not).
    var queued: [CacheHold] = []
    /// Records in `stockade:holds:dead`.
    var dead: [CacheHold] = []
    /// Records that did not parse, and whether a stream was longer than the audit reads.
    var unreadable = 0
    var truncated = false
}

/// Compares the ledger's cache allotments with Redis. For each row of a hot SKU (or with a cache
/// allotment), the units escrowed to the cache must all be somewhere on the cache's side:
///
///     ledger allotment = Redis counter + units of queued records the ledger has not applied
///                        + units of dead-lettered records + the last grant if not yet credited
///
/// Queued records the ledger already holds (same id and token: applied, not yet acknowledged) are
/// left out, so the equation holds at any instant as long as Redis is read before the ledger.
enum CacheAudit {
    static func findings(_ observed: CacheObservation, ledger: borrowing Ledger, sku only: SKU?) -> [AuditFinding] {
        func unapplied(_ records: [CacheHold]) -> [RowKey: (units: Int64, holds: Int)] {
            var sums: [RowKey: (units: Int64, holds: Int)] = [:]
            for record in records where ledger.holds[record.reservationId]?.token != record.token {
                for allocation in record.allocations {
                    let key = RowKey(sku: allocation.sku, warehouse: allocation.warehouse)
                    sums[key, default: (0, 0)].units += allocation.quantity
                    sums[key, default: (0, 0)].holds += 1
                }
            }
            return sums
        }
        let queued = unapplied(observed.queued)
        let dead = unapplied(observed.dead)
        var found: [AuditFinding] = []
        for key in rows(ledger: ledger, sku: only) {
            let allotment = ledger.allotments[AllotmentKey(sku: key.sku, warehouse: key.warehouse, holder: .cache)]
            let escrowed = allotment?.quantity ?? 0
            // A demoted SKU's counters are zeroed before its allotment is returned: nothing to compare.
            guard ledger.hotSKUs.contains(key.sku) else { continue }
            let counter = observed.counters[key] ?? 0
            let marker = observed.grantMarkers[key] ?? 0
            let uncredited = allotment.map { $0.lastGrantIndex > marker ? $0.lastGrantQuantity : 0 } ?? 0
            let inQueue = queued[key]?.units ?? 0
            let deadUnits = dead[key]?.units ?? 0
            let accounted = counter + inQueue + deadUnits + uncredited
            if accounted != escrowed {
                found.append(
                    AuditFinding(
                        sku: key.sku, warehouse: key.warehouse, check: .cache, ledger: escrowed, derived: accounted,
                        message:
                            "the ledger allots \(escrowed) to the cache, but Redis accounts for \(accounted): counter \(counter)"
                            + " + \(inQueue) in the decrement queue + \(deadUnits) dead-lettered + \(uncredited) granted, not yet credited"
                    ))
            }
            if let stuck = dead[key] {
                found.append(
                    AuditFinding(
                        sku: key.sku, warehouse: key.warehouse, check: .deadLetters, ledger: 0, derived: stuck.units,
                        message: "\(stuck.holds) cache holds (\(stuck.units) units) are in the dead-letter stream, not in the ledger"))
            }
        }
        return found
    }

    /// The rows an audit compares: every row of a hot SKU, and every row with a cache allotment.
    static func rows(ledger: borrowing Ledger, sku only: SKU?) -> [RowKey] {
        var keys: Set<RowKey> = []
        for sku in ledger.hotSKUs where only == nil || sku == only {
            for (warehouse, _) in ledger.stock[sku] ?? [:] { keys.insert(RowKey(sku: sku, warehouse: warehouse)) }
        }
        for key in ledger.allotments.keys where key.holder == .cache && (only == nil || key.sku == only) {
            keys.insert(RowKey(sku: key.sku, warehouse: key.warehouse))
        }
        return keys.sorted()
    }
}

extension HotPath {
    /// Compares the ledger's cache allotments (of `sku`, or of all) with Redis. A disagreement is
    /// reported only if it is seen in each of `attempts` reads, so a refill or a drain that lands
    /// between Redis and the ledger is not mistaken for one.
    public func audit(sku: SKU?, attempts: Int = 3) async throws -> [AuditFinding] {
        var persistent: [AuditFinding]?
        for attempt in 0..<attempts {
            if attempt > 0 { try await Task.sleep(for: .milliseconds(50)) }
            let keys = replica.read { CacheAudit.rows(ledger: $0, sku: sku) }
            let observed = try await observe(keys)
            let found = replica.read { CacheAudit.findings(observed, ledger: $0, sku: sku) }
            var notes: [AuditFinding] = []
            if observed.truncated {
                notes.append(
                    AuditFinding(
                        sku: nil, warehouse: nil, check: .cache, ledger: 0, derived: 0,
                        message: "a stream is longer than \(replica.limits.auditStreamEntriesMax) records; the cache was not compared"))
                return notes
            }
            if observed.unreadable > 0 {
                notes.append(
                    AuditFinding(
                        sku: nil, warehouse: nil, check: .cache, ledger: 0, derived: Int64(observed.unreadable),
                        message: "\(observed.unreadable) stream records do not parse"))
            }
            let current = found + notes
            persistent = persistent.map { earlier in
                current.filter { now in earlier.contains { $0.sku == now.sku && $0.warehouse == now.warehouse && $0.check == now.check } }
            } ?? current
            if persistent!.isEmpty { return [] }
        }
        return persistent ?? []
    }

    private func observe(_ keys: [RowKey]) async throws -> CacheObservation {
        var arguments = RedisCommand()
        arguments.append(Int64(keys.count))
        arguments.append(Int64(replica.limits.auditStreamEntriesMax))
        let scriptKeys =
            [HotKeys.holds, HotKeys.deadLetters] + keys.map { HotKeys.allot($0.sku, $0.warehouse) }
            + keys.map { HotKeys.grant($0.sku, $0.warehouse) }
        let value = try await redis.evaluate(Scripts.audit, keys: scriptKeys, arguments: arguments)
        if case .error(let message) = value { throw RedisError.server(message) }
        guard let parts = value.elements, parts.count == 5, let counters = parts[0].elements, let markers = parts[1].elements,
            counters.count == keys.count, markers.count == keys.count
        else { throw RedisError.server("audit script: unexpected reply") }
        var observed = CacheObservation()
        for (index, key) in keys.enumerated() {
            observed.counters[key] = counters[index].integer ?? counters[index].string.flatMap { Int64($0) } ?? 0
            observed.grantMarkers[key] = (markers[index].integer ?? markers[index].string.flatMap { Int64($0) }).map { UInt64(max(0, $0)) }
        }
        observed.truncated = parts[4].integer == 1
        for (stream, into) in [(parts[2], \CacheObservation.queued), (parts[3], \CacheObservation.dead)] {
            for entry in HotStockService.entries(stream) {
                if let record = entry.record, let hold = HotPath.cacheHold(record: record) {
                    observed[keyPath: into].append(hold)
                } else {
                    observed.unreadable += 1
                }
            }
        }
        return observed
    }
}
