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

    public init(
        reservationId: ReservationID, orderId: String, region: String, allocations: [Allocation], ttlMs: Int64,
        allowSplit: Bool, path: GrantPath, token: FencingToken, createdAtMs: Int64, expiresAtMs: Int64,
        status: HoldStatus, finishedAtMs: Int64
    ) {
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
