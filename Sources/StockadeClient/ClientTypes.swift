/// A reservation to make: the `reservationId` is the idempotency key, so a retry with the same
/// id and body is answered with the first answer.
public struct ReservationRequest: Sendable, Hashable, Codable {
    public struct Line: Sendable, Hashable, Codable {
        public var sku: String
        public var quantity: Int64
        public init(sku: String, quantity: Int64) {
            self.sku = sku
            self.quantity = quantity
        }
    }
    public var reservationId: String
    public var orderId: String
    public var region: String
    public var lines: [Line]
    public var ttlSeconds: Int64
    public var allowSplit: Bool

    public init(reservationId: String, orderId: String, region: String, lines: [Line], ttlSeconds: Int64 = 900, allowSplit: Bool = false) {
        self.reservationId = reservationId
        self.orderId = orderId
        self.region = region
        self.lines = lines
        self.ttlSeconds = ttlSeconds
        self.allowSplit = allowSplit
    }
}

/// Units of one SKU taken from one warehouse.
public struct Allocation: Sendable, Hashable, Codable {
    public var sku: String
    public var warehouse: String
    public var quantity: Int64
}

/// A reservation as the service answers it.
public struct Reservation: Sendable, Hashable, Codable {
    public var reservationId: String
    public var orderId: String
    public var region: String
    /// held, confirmed, released or expired.
    public var status: String
    /// The fencing token: it only grows.
    public var token: UInt64
    /// quorum or cache (and, later, local).
    public var path: String
    public var allocations: [Allocation]
    public var lines: [ReservationRequest.Line]
    /// UTC milliseconds.
    public var createdAt: Int64
    public var expiresAt: Int64
    public var finishedAt: Int64?
}

/// One stock row: `available = total − held − sold − allotted`.
public struct StockRow: Sendable, Hashable, Codable {
    public var warehouse: String
    public var total: Int64
    public var held: Int64
    public var sold: Int64
    public var allotted: Int64
    public var available: Int64
}

/// A SKU's rows, and whether the Redis cache sells it.
public struct SKUStock: Sendable, Hashable, Codable {
    public var sku: String
    public var hot: Bool
    public var warehouses: [StockRow]
}

/// One page of holds; pass `nextCursor` to get the next.
public struct HoldsPage: Sendable, Hashable, Codable {
    public var holds: [Reservation]
    public var nextCursor: String?
}

/// Which holds to list.
public struct HoldsQuery: Sendable, Hashable {
    public var sku: String?
    public var status: String?
    public var expiringWithinSeconds: Int64?
    public var limit: Int?
    public var cursor: String?

    public init(sku: String? = nil, status: String? = nil, expiringWithinSeconds: Int64? = nil, limit: Int? = nil, cursor: String? = nil) {
        self.sku = sku
        self.status = status
        self.expiringWithinSeconds = expiringWithinSeconds
        self.limit = limit
        self.cursor = cursor
    }
}

/// A warehouse in the layout.
public struct WarehouseInfo: Sendable, Hashable, Codable {
    public var id: String
    public var regions: [String]
    public var priority: Int64
}

/// A node's view of its cluster.
public struct ClusterStatus: Sendable, Hashable, Codable {
    public struct Peer: Sendable, Hashable, Codable {
        public var nodeId: String
        public var matchIndex: UInt64?
        public var lastContactMs: Int64?
    }
    public struct Cache: Sendable, Hashable, Codable {
        public var breaker: String
        public var degradeSwitches: Int
        public var hitRate: Double
        public var cacheAnswered: Int
        public var quorumAnswered: Int
        public var queuePending: Int
        public var queueOldestAgeMs: Int64
        public var deadLetters: Int
        public var refills: Int
        public var reclaims: Int
    }
    public var nodeId: String
    public var role: String
    public var term: UInt64
    public var leaderId: String?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var peers: [Peer]
    public var cache: Cache?
}

/// How fresh a read must be.
public enum ReadConsistency: String, Sendable {
    /// Everything acknowledged before the read is in it (the leader answers).
    case linearizable
    /// This node's applied state, at once; possibly stale.
    case local
}
