import StockadeCore

/// A filter for paging through holds.
public struct HoldQuery: Sendable {
    public var sku: SKU?
    /// Only the holds of this order.
    public var orderId: String?
    public var status: HoldStatus?
    /// Only held holds that expire within this many milliseconds of `nowMs`.
    public var expiringWithinMs: Int64?
    public var nowMs: Int64
    public var limit: Int
    /// Start after this hold sequence (a page's `nextCursor`).
    public var afterSequence: UInt64

    public init(
        sku: SKU? = nil, status: HoldStatus? = nil, expiringWithinMs: Int64? = nil, nowMs: Int64, limit: Int,
        afterSequence: UInt64 = 0
    ) {
        self.sku = sku
        self.status = status
        self.expiringWithinMs = expiringWithinMs
        self.nowMs = nowMs
        self.limit = limit
        self.afterSequence = afterSequence
    }

    func matches(_ hold: Hold) -> Bool {
        if let status, hold.status != status { return false }
        if let orderId, hold.orderId != orderId { return false }
        if let sku, !hold.allocations.contains(where: { $0.sku == sku }) { return false }
        if let expiringWithinMs {
            if hold.status != .held || hold.expiresAtMs > nowMs + expiringWithinMs { return false }
        }
        return true
    }
}

/// One page of holds, and the cursor for the next page (nil at the end).
public struct HoldPage: Sendable {
    public var holds: [Hold]
    public var nextAfterSequence: UInt64?
}

extension Ledger {
    /// Holds in store order that match `query`. Examines at most `limits.holdsScanMax` entries, so a
    /// page may hold fewer than `limit` holds and still have a next cursor.
    public func holds(matching query: HoldQuery) -> HoldPage {
        let limit = max(1, min(query.limit, limits.holdsPageMax))
        var page: [Hold] = []
        var scanned = 0
        let (last, more) = holds.forEach(afterSequence: query.afterSequence) { hold, _ in
            scanned += 1
            if query.matches(hold) { page.append(hold) }
            return page.count < limit && scanned < limits.holdsScanMax
        }
        return HoldPage(holds: page, nextAfterSequence: more ? last : nil)
    }
}
