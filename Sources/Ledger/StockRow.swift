import StockadeCore

/// The counters of one `(sku, warehouse)` row. `available = total − held − sold − allotted`.
public struct StockRow: Hashable, Sendable {
    public var total: Int64
    public var held: Int64
    public var sold: Int64
    /// Units escrowed to a cache or a node's local reserve. Counted against `total` like `held`.
    public var allotted: Int64

    public init(total: Int64 = 0, held: Int64 = 0, sold: Int64 = 0, allotted: Int64 = 0) {
        self.total = total
        self.held = held
        self.sold = sold
        self.allotted = allotted
    }

    /// Units that are spoken for.
    public var committed: Int64 { held + sold + allotted }

    /// Units that can still be held.
    public var available: Int64 { total - committed }

    /// The no-oversell invariant for one row: every counter is ≥ 0 and nothing is promised twice.
    public var isConsistent: Bool {
        total >= 0 && held >= 0 && sold >= 0 && allotted >= 0 && committed <= total
    }
}
