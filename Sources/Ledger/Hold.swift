import StockadeCore

/// Where a hold's lifecycle stands. `held → confirmed | released | expired`; nothing else.
public enum HoldStatus: UInt8, Sendable, CaseIterable {
    case held = 0
    case confirmed = 1
    case released = 2
    case expired = 3

    public var name: String {
        switch self {
        case .held: "held"
        case .confirmed: "confirmed"
        case .released: "released"
        case .expired: "expired"
        }
    }

    public init?(name: String) {
        guard let status = Self.allCases.first(where: { $0.name == name }) else { return nil }
        self = status
    }

    /// Whether the hold has left `held` for good.
    public var isFinished: Bool { self != .held }
}

/// Which mechanism granted a hold.
public enum GrantPath: UInt8, Sendable, CaseIterable {
    case quorum = 0
    case cache = 1
    case local = 2

    public var name: String {
        switch self {
        case .quorum: "quorum"
        case .cache: "cache"
        case .local: "local"
        }
    }
}

/// Where a provisional hold came from: the node that granted it from its local reserve, the epoch
/// of that node's local log, the record's sequence in it, and the term the node last knew.
public struct LocalGrant: Hashable, Sendable {
    public var node: UInt64
    public var epoch: UInt64
    public var sequence: UInt64
    public var term: UInt64

    public init(node: UInt64, epoch: UInt64, sequence: UInt64, term: UInt64) {
        self.node = node
        self.epoch = epoch
        self.sequence = sequence
        self.term = term
    }

    /// Local tokens are `tokenBase | node << 48 | (epoch mod 256) << 40 | sequence`: above every
    /// log index and every cache token, so they collide with neither.
    public static let tokenBase: UInt64 = 1 << 63

    /// The fencing token of this grant. Node ids below 2^15 and sequences below 2^40 are required.
    public var token: FencingToken {
        FencingToken(Self.tokenBase | (node & 0x7FFF) << 48 | (epoch & 0xFF) << 40 | (sequence & 0xFF_FFFF_FFFF))
    }

    /// The largest sequence a local log may reach in one epoch.
    public static let sequenceMax: UInt64 = 0xFF_FFFF_FFFF
}

/// One line of a reservation request.
public struct ReservationLine: Hashable, Sendable {
    public var sku: SKU
    public var quantity: Int64

    public init(sku: SKU, quantity: Int64) {
        self.sku = sku
        self.quantity = quantity
    }
}

/// Units of one SKU taken from one warehouse.
public struct Allocation: Hashable, Sendable {
    public var sku: SKU
    public var warehouse: WarehouseID
    public var quantity: Int64

    public init(sku: SKU, warehouse: WarehouseID, quantity: Int64) {
        self.sku = sku
        self.warehouse = warehouse
        self.quantity = quantity
    }
}

/// A granted reservation and its lifecycle.
///
/// The request's lines are not stored: they are the allocations grouped by SKU, because a
/// request names each SKU once and allocations keep line order.
public struct Hold: Hashable, Sendable {
    public var reservationId: ReservationID
    public var orderId: String
    public var region: String
    public var allocations: [Allocation]
    public var ttlMs: Int64
    public var allowSplit: Bool
    public var path: GrantPath
    public var token: FencingToken
    public var createdAtMs: Int64
    public var expiresAtMs: Int64
    public var status: HoldStatus
    /// When the hold left `held`; 0 while it is held.
    public var finishedAtMs: Int64
    /// For a hold a node granted on its own (`path` local): which node, in which epoch of its
    /// local log, at which sequence, and the term it last knew.
    public var local: LocalGrant?

    public init(
        reservationId: ReservationID, orderId: String, region: String, allocations: [Allocation], ttlMs: Int64,
        allowSplit: Bool, path: GrantPath, token: FencingToken, createdAtMs: Int64, expiresAtMs: Int64,
        status: HoldStatus, finishedAtMs: Int64, local: LocalGrant? = nil
    ) {
        self.local = local
        self.reservationId = reservationId
        self.orderId = orderId
        self.region = region
        self.allocations = allocations
        self.ttlMs = ttlMs
        self.allowSplit = allowSplit
        self.path = path
        self.token = token
        self.createdAtMs = createdAtMs
        self.expiresAtMs = expiresAtMs
        self.status = status
        self.finishedAtMs = finishedAtMs
    }

    /// The request lines this hold answers, in request order.
    public var lines: [ReservationLine] { allocations.lines }

    /// Whether `request` is the same request that created this hold (the idempotency check).
    public func answers(_ request: ReserveRequest) -> Bool {
        request.reservationId == reservationId && request.orderId == orderId && request.region == region
            && request.ttlMs == ttlMs && request.allowSplit == allowSplit && request.lines == lines
    }
}

extension [Allocation] {
    /// The request lines these allocations answer: consecutive allocations of one SKU form its
    /// line (allocation keeps line order), in order.
    public var lines: [ReservationLine] {
        var result: [ReservationLine] = []
        for allocation in self {
            if let last = result.last, last.sku == allocation.sku {
                result[result.count - 1].quantity += allocation.quantity
            } else {
                result.append(ReservationLine(sku: allocation.sku, quantity: allocation.quantity))
            }
        }
        return result
    }
}
