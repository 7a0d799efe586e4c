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
    /// For a hold a node granted from its local reserve (`path` local): the node, its local log's
    /// epoch and sequence, and the term it last knew; and, in reads, `pending` until the ledger
    /// has it, then `reconciled`.
    public var localNode: UInt64?
    public var localEpoch: UInt64?
    public var localSequence: UInt64?
    public var localTerm: UInt64?
    public var reconciliation: String?
}

/// One stock row: `available = total − held − sold − allotted`.
public struct StockRow: Sendable, Hashable, Codable {
    public var warehouse: String
    public var total: Int64
    public var held: Int64
    public var sold: Int64
    public var allotted: Int64
    /// `allotted` by holder: `cache`, or a node (`n3`) for its local reserve.
    public var allottedTo: [String: Int64]?
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
    public var orderId: String?
    public var status: String?
    public var expiringWithinSeconds: Int64?
    public var limit: Int?
    public var cursor: String?

    public init(
        sku: String? = nil, orderId: String? = nil, status: String? = nil, expiringWithinSeconds: Int64? = nil, limit: Int? = nil,
        cursor: String? = nil
    ) {
        self.sku = sku
        self.orderId = orderId
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
        public var queueDelivered: Int?
        public var deadLetterStream: Int?
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
    public var local: LocalFallback?

    /// The local-warehouse fallback on this node.
    public struct LocalFallback: Sendable, Hashable, Codable {
        public var epoch: UInt64?
        public var provisionalHolds: Int
        public var oldestAgeMs: Int64?
        public var fallbacks: Int
        public var reconciledHolds: Int
        public var reconcileErrors: Int
    }
}

/// An audit of one node: every disagreement between the ledger's rows and their holds and
/// allotments, between its cache allotments and Redis, and between its provisional holds and its
/// local reserves.
public struct AuditReport: Sendable, Hashable, Codable {
    public struct Checked: Sendable, Hashable, Codable {
        public var rows: Int
        public var cacheRows: Int?
        public var provisionalHolds: Int
    }
    public struct Finding: Sendable, Hashable, Codable {
        public var sku: String?
        public var warehouse: String?
        /// held, sold, allotted, oversold, cache, dead_letters or local.
        public var check: String
        /// The authority's number, and the same quantity derived from its parts.
        public var ledger: Int64
        public var derived: Int64
        public var message: String
    }
    public var nodeId: String
    public var appliedIndex: UInt64
    public var sku: String?
    public var clean: Bool
    public var checked: Checked
    public var findings: [Finding]
}

/// A node's counters since it started and a summary of its ledger.
public struct NodeStats: Sendable, Hashable, Codable {
    public struct Holds: Sendable, Hashable, Codable {
        public var active: Int
        public var stored: Int
    }
    public struct SKUTotals: Sendable, Hashable, Codable {
        public var sku: String
        public var hot: Bool
        public var total: Int64
        public var held: Int64
        public var sold: Int64
        public var allotted: Int64
        public var available: Int64
    }
    public struct Expiry: Sendable, Hashable, Codable {
        public var reservationId: String
        public var orderId: String
        public var expiresAt: Int64
        public var units: Int64
    }
    public var nodeId: String
    public var role: String
    public var term: UInt64
    public var leaderId: String?
    /// The node's clock when it answered (UTC milliseconds).
    public var atMs: Int64
    public var appliedIndex: UInt64
    /// Reservation answers by outcome: granted, replayed, then error codes.
    public var reservations: [String: Int]
    public var holds: Holds
    public var skuCount: Int
    public var hotSKUs: Int
    /// The SKUs with the most units held, and every hot SKU.
    public var skus: [SKUTotals]
    /// The held holds that expire next, soonest first.
    public var nextExpiries: [Expiry]
    public var cache: ClusterStatus.Cache?
    public var local: ClusterStatus.LocalFallback?
}

/// How fresh a read must be.
public enum ReadConsistency: String, Sendable {
    /// Everything acknowledged before the read is in it (the leader answers).
    case linearizable
    /// This node's applied state, at once; possibly stale.
    case local
}
