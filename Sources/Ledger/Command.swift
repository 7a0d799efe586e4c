import StockadeCore

/// A reservation request as it enters the log: validated, with its time-to-live resolved.
public struct ReserveRequest: Hashable, Sendable {
    public var reservationId: ReservationID
    public var orderId: String
    public var region: String
    public var lines: [ReservationLine]
    public var ttlMs: Int64
    public var allowSplit: Bool

    public init(
        reservationId: ReservationID, orderId: String, region: String, lines: [ReservationLine], ttlMs: Int64,
        allowSplit: Bool
    ) {
        self.reservationId = reservationId
        self.orderId = orderId
        self.region = region
        self.lines = lines
        self.ttlMs = ttlMs
        self.allowSplit = allowSplit
    }
}

/// A state change of the ledger. Commands are the only way the ledger changes.
public enum Command: Hashable, Sendable {
    /// Replace the warehouse layout. A warehouse that has stock rows cannot be removed.
    case configureWarehouses([Warehouse])
    /// Set a row's total. A SKU becomes known when its stock is first set.
    case setStock(sku: SKU, warehouse: WarehouseID, total: Int64)
    /// Change a row's total by `delta`, with an audit reason.
    case adjustStock(sku: SKU, warehouse: WarehouseID, delta: Int64, reason: String)
    /// Hold stock for a reservation, all lines or none.
    case reserve(ReserveRequest)
    case confirm(ReservationID)
    case release(ReservationID)
    /// Push a hold's expiry to at least `time + ttlMs`.
    case extend(ReservationID, ttlMs: Int64)
    /// Expire every hold due at the command's time, and forget finished reservations past retention.
    case expireDue
    /// Mark a SKU hot (the cache may sell it) or not.
    case setHot(SKU, Bool)
    /// Escrow up to `quantity` available units of a row to a holder.
    case grantAllotment(AllotmentKey, quantity: Int64)
    /// Give back up to `quantity` allotted units.
    case returnAllotment(AllotmentKey, quantity: Int64)
    /// Turn holds the cache granted into ledger holds; idempotent by reservation id and token.
    case applyAllotmentHolds([CacheHold])
    /// Set (or, with nil, clear) a row's local reserve policy.
    case setLocalReserve(RowKey, LocalReservePolicy?)
    /// A node starts a new local log; the ledger numbers its epoch. Idempotent by nonce.
    case beginLocalEpoch(node: UInt64, nonce: UInt64)
    /// Replay a node's provisional holds; idempotent by its epoch and sequence.
    case reconcileLocal(LocalReconcile)

    /// A short stable name, for logs and metrics.
    public var name: String {
        switch self {
        case .configureWarehouses: "configure_warehouses"
        case .setStock: "set_stock"
        case .adjustStock: "adjust_stock"
        case .reserve: "reserve"
        case .confirm: "confirm"
        case .release: "release"
        case .extend: "extend"
        case .expireDue: "expire_due"
        case .setHot: "set_hot"
        case .grantAllotment: "grant_allotment"
        case .returnAllotment: "return_allotment"
        case .applyAllotmentHolds: "apply_allotment_holds"
        case .setLocalReserve: "set_local_reserve"
        case .beginLocalEpoch: "begin_local_epoch"
        case .reconcileLocal: "reconcile_local"
        }
    }
}

/// A command with the time at which its proposer stamped it. Time enters the ledger only here.
public struct TimedCommand: Hashable, Sendable {
    public var command: Command
    public var timeMs: Int64

    public init(_ command: Command, timeMs: Int64) {
        self.command = command
        self.timeMs = timeMs
    }
}

/// What applying a command produced.
public enum Outcome: Hashable, Sendable {
    /// A reserve, confirm, release or extend that succeeded. `created` is false for a replay.
    case reservation(Hold, created: Bool)
    case stockRow(SKU, WarehouseID, StockRow)
    case warehousesConfigured(count: Int)
    case expired(count: Int, purged: Int)
    case hotStatus(SKU, hot: Bool)
    /// An allotment after a grant (`moved` > 0), a return (`moved` < 0) or neither (0).
    case allotment(AllotmentKey, moved: Int64, Allotment)
    /// One result per cache hold, in order.
    case cacheHoldsApplied([CacheHoldResult])
    /// A row's local reserve policy in force after a change.
    case localReserve(RowKey, LocalReservePolicy?)
    /// A node's local epoch, begun or already begun with the same nonce.
    case localEpoch(node: UInt64, LocalProgress)
    /// One result per replayed hold, in order; `duplicate` when the whole batch was already taken in.
    case localReconciled(duplicate: Bool, [HoldReplayResult])
    case rejected(StockadeError, detail: RejectionDetail? = nil)
}

/// Structured detail of a rejection, for clients that want more than the message.
public struct RejectionDetail: Hashable, Sendable {
    public var sku: SKU
    public var requested: Int64
    public var available: Int64

    public init(sku: SKU, requested: Int64, available: Int64) {
        self.sku = sku
        self.requested = requested
        self.available = available
    }
}

extension StockadeError: Hashable {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
