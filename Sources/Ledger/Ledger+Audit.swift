import StockadeCore

/// One stock row as the ledger keeps it, beside the same quantities summed from what makes them
/// up: its live holds and its allotments. On a sound ledger each pair agrees.
public struct RowAudit: Hashable, Sendable {
    public var sku: SKU
    public var warehouse: WarehouseID
    public var row: StockRow
    /// Units of the row's holds in `held`.
    public var heldByHolds: Int64 = 0
    /// Units of the row's confirmed holds still stored (purged ones stay sold, so `sold` may be more).
    public var soldByConfirmedHolds: Int64 = 0
    /// The row's allotments by holder.
    public var allotments: [AllotmentHolder: Int64] = [:]

    public var allottedByAllotments: Int64 { allotments.values.reduce(0, +) }

    /// Every disagreement in the row, with its numbers.
    public var findings: [AuditFinding] {
        var found: [AuditFinding] = []
        func add(_ check: AuditFinding.Check, ledger: Int64, derived: Int64, _ message: String) {
            found.append(AuditFinding(sku: sku, warehouse: warehouse, check: check, ledger: ledger, derived: derived, message: message))
        }
        if row.held != heldByHolds {
            add(.held, ledger: row.held, derived: heldByHolds, "the row says held \(row.held) but its held holds sum to \(heldByHolds)")
        }
        if row.sold < soldByConfirmedHolds {
            add(
                .sold, ledger: row.sold, derived: soldByConfirmedHolds,
                "the row says sold \(row.sold) but its confirmed holds alone sum to \(soldByConfirmedHolds)")
        }
        if row.allotted != allottedByAllotments {
            add(
                .allotted, ledger: row.allotted, derived: allottedByAllotments,
                "the row says allotted \(row.allotted) but its allotments sum to \(allottedByAllotments)")
        }
        if !row.isConsistent {
            let committed = row.held + row.sold + row.allotted
            add(.oversold, ledger: row.total, derived: committed, "held + sold + allotted = \(committed) exceeds total \(row.total)")
        }
        return found
    }
}

/// A disagreement an audit found: which row, which check, the number the authority holds and the
/// number derived from its parts.
public struct AuditFinding: Hashable, Sendable {
    public enum Check: String, Sendable, CaseIterable {
        /// A row's `held` against its held holds.
        case held
        /// A row's `sold` against its confirmed holds.
        case sold
        /// A row's `allotted` against its allotments.
        case allotted
        /// held + sold + allotted above total.
        case oversold
        /// The ledger's cache allotment against the Redis counter and what the cache sold.
        case cache
        /// Cache holds Redis gave up on (dead letters): sold by the cache, never in the ledger.
        case deadLetters = "dead_letters"
        /// A node's provisional holds against its local reserve in the ledger.
        case local
        /// A hold granted off the quorum path that the ledger could not merge with its own hold of
        /// the same id (`Ledger.replayConflicts`): a person must look at it.
        case conflict
    }

    public var sku: SKU?
    public var warehouse: WarehouseID?
    public var check: Check
    /// What the authority for this check holds (the ledger's number, for every check but `cache`'s
    /// other side).
    public var ledger: Int64
    /// The same quantity derived from its parts.
    public var derived: Int64
    public var message: String

    public init(sku: SKU?, warehouse: WarehouseID?, check: Check, ledger: Int64, derived: Int64, message: String) {
        self.sku = sku
        self.warehouse = warehouse
        self.check = check
        self.ledger = ledger
        self.derived = derived
        self.message = message
    }
}

extension Ledger {
    /// Every row (of `sku`, or of every SKU), with its quantities derived from its holds and
    /// allotments, sorted by SKU and warehouse. O(holds + allotments).
    public func auditRows(sku only: SKU? = nil) -> [RowAudit] {
        var audits: [RowKey: RowAudit] = [:]
        for (sku, rows) in stock where only == nil || sku == only {
            for (warehouse, row) in rows {
                audits[RowKey(sku: sku, warehouse: warehouse)] = RowAudit(sku: sku, warehouse: warehouse, row: row)
            }
        }
        holds.forEach { hold, _ in
            guard hold.status == .held || hold.status == .confirmed else { return true }
            for allocation in hold.allocations {
                let key = RowKey(sku: allocation.sku, warehouse: allocation.warehouse)
                guard audits[key] != nil else { continue }
                if hold.status == .held {
                    audits[key]!.heldByHolds += allocation.quantity
                } else {
                    audits[key]!.soldByConfirmedHolds += allocation.quantity
                }
            }
            return true
        }
        for (key, allotment) in allotments {
            let row = RowKey(sku: key.sku, warehouse: key.warehouse)
            audits[row]?.allotments[key.holder, default: 0] += allotment.quantity
        }
        return audits.values.sorted { ($0.sku, $0.warehouse) < ($1.sku, $1.warehouse) }
    }

    /// The recorded replay conflicts (of `sku`, or all), as audit findings: `ledger` is the units
    /// of the ledger's hold, `derived` those of the replayed hold.
    public func conflictFindings(sku only: SKU? = nil) -> [AuditFinding] {
        replayConflicts.compactMap { conflict in
            let replayed = conflict.replayed
            guard only == nil || replayed.allocations.contains(where: { $0.sku == only }) else { return nil }
            let first = replayed.allocations.first
            let ledgerUnits = holds[replayed.reservationId].map { $0.token == conflict.ledgerToken ? $0.allocations.reduce(0) { $0 + $1.quantity } : 0 } ?? 0
            return AuditFinding(
                sku: first?.sku, warehouse: first?.warehouse, check: .conflict, ledger: ledgerUnits,
                derived: replayed.allocations.reduce(0) { $0 + $1.quantity },
                message:
                    "reservation \(replayed.reservationId): \(replayed.path.name) hold \(replayed.token.rawValue) (\(replayed.status.name)) vs the ledger's \(conflict.ledgerToken.rawValue): \(conflict.reason.message)")
        }
    }

    /// A summary for a live screen: the SKUs with the most units held (and every hot SKU), and
    /// the held holds that expire next. O(rows + held holds).
    public func overview(topSKUs: Int, nextExpiries: Int) -> LedgerOverview {
        var totals: [SKU: LedgerOverview.SKUTotals] = [:]
        for (sku, rows) in stock {
            var sum = LedgerOverview.SKUTotals(sku: sku, hot: hotSKUs.contains(sku))
            for row in rows.values {
                sum.total += row.total
                sum.held += row.held
                sum.sold += row.sold
                sum.allotted += row.allotted
                sum.available += row.available
            }
            totals[sku] = sum
        }
        let ranked = totals.values.sorted { ($1.held, $0.sku) < ($0.held, $1.sku) }
        let skus = ranked.enumerated().filter { $0.offset < topSKUs || $0.element.hot }.map(\.element)
        let soonest = nextExpiries > 0 ? soonestHeld(nextExpiries) : []
        return LedgerOverview(
            appliedIndex: appliedIndex, activeHolds: activeHoldCount, storedHolds: holds.count, skuCount: stock.count,
            hotSKUs: hotSKUs.count, skus: skus, nextExpiries: soonest)
    }
}

extension Ledger {
    /// The `count` held holds that expire first, soonest first. One pass over the expiry queue
    /// keeps the smallest entries by (time, sequence) alone, with no hold lookups; only those
    /// candidates are checked against their holds (an extend or a finish leaves a stale entry
    /// behind). If too many candidates were stale, it looks again with twice as many. At a
    /// million holds a pass is a few milliseconds; looking every hold up was 400.
    func soonestHeld(_ count: Int) -> [Hold] {
        var candidates = max(64, count * 4)
        while true {
            var smallest: [TimedEntry] = []
            smallest.reserveCapacity(candidates + 1)
            for entry in expiryQueue.unordered {
                if smallest.count == candidates, let last = smallest.last, !(entry < last) { continue }
                let position = smallest.partitioningIndex { entry < $0 }
                smallest.insert(entry, at: position)
                if smallest.count > candidates { smallest.removeLast() }
            }
            var found: [Hold] = []
            for entry in smallest {
                guard let hold = holds.hold(sequence: entry.sequence), hold.status == .held, hold.expiresAtMs == entry.timeMs else { continue }
                found.append(hold)
                if found.count == count { return found }
            }
            // Every candidate was looked at and the queue has no more, or the search is as wide as it may go.
            if smallest.count < candidates || candidates >= 65_536 { return found }
            candidates *= 4
        }
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, for a predicate false then true along the array.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = 0
        var high = count
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}

/// What `Ledger.overview` reports.
public struct LedgerOverview: Sendable {
    public struct SKUTotals: Sendable {
        public var sku: SKU
        public var hot: Bool
        public var total: Int64 = 0
        public var held: Int64 = 0
        public var sold: Int64 = 0
        public var allotted: Int64 = 0
        public var available: Int64 = 0
    }
    public var appliedIndex: LogIndex
    public var activeHolds: Int
    public var storedHolds: Int
    public var skuCount: Int
    public var hotSKUs: Int
    public var skus: [SKUTotals]
    public var nextExpiries: [Hold]
}
