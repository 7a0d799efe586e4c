import StockadeCore

/// Who owns an allotment: the only party that may sell its units.
public enum AllotmentHolder: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The Redis hot-SKU cache.
    case cache
    /// A node's local reserve, sold from only while that node cannot reach the quorum (see
    /// docs/local-fallback.md). The leader only adds to it; only the node takes from it.
    case node(UInt64)

    public var name: String {
        switch self {
        case .cache: "cache"
        case .node(let id): "node:\(id)"
        }
    }

    public var description: String { name }

    /// The node that owns the units, for a local reserve.
    public var node: UInt64? {
        if case .node(let id) = self { return id }
        return nil
    }

    /// The encoding's kind byte: 1 cache, 2 node (followed by the node id).
    var kind: UInt8 {
        switch self {
        case .cache: 1
        case .node: 2
        }
    }

    public static func < (lhs: AllotmentHolder, rhs: AllotmentHolder) -> Bool {
        (lhs.kind, lhs.node ?? 0) < (rhs.kind, rhs.node ?? 0)
    }
}

/// One row's allotment to one holder.
public struct AllotmentKey: Hashable, Comparable, Sendable {
    public var sku: SKU
    public var warehouse: WarehouseID
    public var holder: AllotmentHolder

    public init(sku: SKU, warehouse: WarehouseID, holder: AllotmentHolder) {
        self.sku = sku
        self.warehouse = warehouse
        self.holder = holder
    }

    public static func < (lhs: AllotmentKey, rhs: AllotmentKey) -> Bool {
        (lhs.sku, lhs.warehouse, lhs.holder) < (rhs.sku, rhs.warehouse, rhs.holder)
    }
}

/// Units escrowed to a holder, and the last grant that added to them. The grant's log index lets
/// the holder's side (Redis) credit each grant exactly once.
public struct Allotment: Hashable, Sendable {
    public var quantity: Int64
    public var lastGrantIndex: LogIndex
    public var lastGrantQuantity: Int64

    public init(quantity: Int64 = 0, lastGrantIndex: LogIndex = 0, lastGrantQuantity: Int64 = 0) {
        self.quantity = quantity
        self.lastGrantIndex = lastGrantIndex
        self.lastGrantQuantity = lastGrantQuantity
    }
}

/// A hold the cache granted from its allotments, as its decrement record carries it to the ledger.
public struct CacheHold: Hashable, Sendable {
    /// Cache tokens are `tokenBase + n`: above every log index, so never equal to a quorum token.
    public static let tokenBase: UInt64 = 1 << 62

    public var reservationId: ReservationID
    public var orderId: String
    public var region: String
    public var allocations: [Allocation]
    public var ttlMs: Int64
    public var allowSplit: Bool
    public var token: FencingToken
    public var createdAtMs: Int64

    public init(
        reservationId: ReservationID, orderId: String, region: String, allocations: [Allocation], ttlMs: Int64,
        allowSplit: Bool, token: FencingToken, createdAtMs: Int64
    ) {
        self.reservationId = reservationId
        self.orderId = orderId
        self.region = region
        self.allocations = allocations
        self.ttlMs = ttlMs
        self.allowSplit = allowSplit
        self.token = token
        self.createdAtMs = createdAtMs
    }

    public var expiresAtMs: Int64 { createdAtMs + ttlMs }

    /// The request it answered, grouped the way a hold groups its allocations (so a record whose
    /// allocations of one SKU are not adjacent fails validation as a repeated SKU).
    public var request: ReserveRequest {
        ReserveRequest(
            reservationId: reservationId, orderId: orderId, region: region, lines: allocations.lines, ttlMs: ttlMs,
            allowSplit: allowSplit)
    }
}

/// What became of one cache hold in `applyAllotmentHolds`.
public typealias CacheHoldResult = HoldReplayResult

/// What became of one hold granted from an allotment (by the cache, or by a node on its own)
/// when it was replayed into the ledger.
public enum HoldReplayResult: UInt8, Sendable, CaseIterable {
    /// Now a ledger hold.
    case applied = 0
    /// Already in the ledger with the same token (a redelivery).
    case duplicate = 1
    /// The id is in the ledger with another token (granted on the quorum path, e.g. a retry while
    /// Redis was unreachable, or on the other side of a partition), answering the same request.
    /// The ledger's hold stands and carries what was done to the replayed one (a confirm, a
    /// release, a later expiry); the replayed hold's units stay allotted.
    case superseded = 2
    /// Malformed, or its allotment does not cover it. Never applied; belongs in the dead letters.
    case refused = 3
    /// The id is in the ledger with another token, and the two cannot be merged (another request,
    /// or lifecycles that contradict). The ledger's hold stands and the conflict is recorded in
    /// `Ledger.replayConflicts`; the replayed hold's units stay allotted.
    case conflict = 4

    public var name: String {
        switch self {
        case .applied: "applied"
        case .duplicate: "duplicate"
        case .superseded: "superseded"
        case .refused: "refused"
        case .conflict: "conflict"
        }
    }
}
