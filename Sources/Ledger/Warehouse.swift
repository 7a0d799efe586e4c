import StockadeCore

/// A stock location: the regions it serves best, its priority (lower is preferred), and
/// optionally the node that owns it and the local reserve that node keeps by default.
public struct Warehouse: Hashable, Sendable {
    public var id: WarehouseID
    public var regions: [String]
    public var priority: Int64
    /// The node that may sell this warehouse's local reserve while cut off from the quorum, and
    /// so serves the warehouse's regions locally (see docs/local-fallback.md).
    public var owner: UInt64?
    /// The local reserve of every SKU in this warehouse unless a SKU sets its own.
    public var localReserve: LocalReservePolicy?

    public init(
        id: WarehouseID, regions: [String], priority: Int64, owner: UInt64? = nil, localReserve: LocalReservePolicy? = nil
    ) {
        self.id = id
        self.regions = regions
        self.priority = priority
        self.owner = owner
        self.localReserve = localReserve
    }

    public func serves(region: String) -> Bool { regions.contains(region) }
}

/// How many of a row's units its warehouse's owner keeps escrowed as a local reserve.
public enum LocalReservePolicy: Hashable, Sendable {
    /// A fixed number of units (fewer when fewer are left).
    case units(Int64)
    /// A percentage (0–100) of the units neither held, sold nor escrowed to anyone else.
    case percent(Int64)

    /// The reserve to keep when `free` units are neither held, sold nor escrowed to another holder.
    public func target(free: Int64) -> Int64 {
        switch self {
        case .units(let units): max(0, min(units, free))
        case .percent(let percent): max(0, free) * percent / 100
        }
    }

    var kind: UInt8 {
        switch self {
        case .units: 1
        case .percent: 2
        }
    }

    var amount: Int64 {
        switch self {
        case .units(let units): units
        case .percent(let percent): percent
        }
    }

    init?(kind: UInt8, amount: Int64) {
        switch kind {
        case 1: self = .units(amount)
        case 2: self = .percent(amount)
        default: return nil
        }
    }

    /// Why the policy is out of range, if it is.
    public func problem(limits: Limits) -> StockadeError? {
        switch self {
        case .units(let units) where units < 0 || units > limits.stockTotalMax:
            StockadeError(.invalidRequest, "units must be in 0...\(limits.stockTotalMax)")
        case .percent(let percent) where percent < 0 || percent > 100:
            StockadeError(.invalidRequest, "percent must be in 0...100")
        default: nil
        }
    }
}
