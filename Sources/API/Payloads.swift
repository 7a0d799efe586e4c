import Ledger
import Node
import StockadeCore

/// Request and response bodies of the HTTP API. Field names are the public contract.
struct SetStockBody: Decodable {
    var warehouse: String
    var total: Int64
}

/// `PUT /v1/skus/{sku}/local-reserve`: exactly one of `units` and `percent`.
struct LocalReserveBody: Decodable {
    var warehouse: String
    var units: Int64?
    var percent: Int64?

    func policy() throws -> LocalReservePolicy {
        switch (units, percent) {
        case (let units?, nil): return .units(units)
        case (nil, let percent?): return .percent(percent)
        default: throw StockadeError(.invalidRequest, "give exactly one of units and percent")
        }
    }
}

/// A SKU's local reserves, one per warehouse that has an owning node and a row of the SKU.
struct LocalReservesPayload: Encodable {
    struct Reserve: Encodable {
        var warehouse: String
        var owner: String
        /// The policy in force (`{"units": N}` or `{"percent": P}`), or null for none.
        var policy: [String: Int64]?
        /// Where it comes from: `sku` (set for this SKU) or `warehouse` (the warehouse's default).
        var source: String?
        /// Units the owner should hold now, and holds.
        var target: Int64
        var reserved: Int64

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(warehouse, forKey: .warehouse)
            try container.encode(owner, forKey: .owner)
            try container.encode(policy, forKey: .policy)
            try container.encode(source, forKey: .source)
            try container.encode(target, forKey: .target)
            try container.encode(reserved, forKey: .reserved)
        }
        enum CodingKeys: String, CodingKey { case warehouse, owner, policy, source, target, reserved }
    }
    var sku: String
    var reserves: [Reserve]
}

struct AdjustStockBody: Decodable {
    var warehouse: String
    var delta: Int64
    var reason: String
}

struct ReserveBody: Decodable, Equatable {
    struct Line: Decodable, Equatable {
        var sku: String
        var quantity: Int64
    }
    var reservationId: String
    var orderId: String
    var region: String
    var lines: [Line]
    var ttlSeconds: Int64?
    var allowSplit: Bool?

    /// The request, its lines checked and merged (`Validation.mergingLines`).
    func request(limits: Limits) throws(StockadeError) -> ReserveRequest {
        let ttlSeconds = ttlSeconds ?? limits.holdTTLSecondsDefault
        // Saturate so that an absurd ttl fails validation instead of overflowing.
        let (ttlMs, overflow) = ttlSeconds.multipliedReportingOverflow(by: 1000)
        return ReserveRequest(
            reservationId: ReservationID(reservationId), orderId: orderId, region: region,
            lines: try Validation.mergingLines(lines.map { ReservationLine(sku: SKU($0.sku), quantity: $0.quantity) }, limits: limits),
            ttlMs: overflow ? Int64.max : ttlMs, allowSplit: allowSplit ?? false)
    }
}

struct ExtendBody: Decodable {
    var ttlSeconds: Int64
}

/// A reservation as the API shows it: the hold, written by `JSONWriter` (see `write(into:)`).
struct ReservationPayload {
    var hold: Hold
    /// In reads of a hold granted from a node's local reserve: `pending` until the ledger takes
    /// it in (read from the node that granted it), `reconciled` once it has. (Answers to writes
    /// leave it out: a granted `path: local` answer is provisional.)
    var reconciliation: String?
    /// In reads: holds granted off the quorum path under this id that the ledger could not merge
    /// into this one (another request, or a contradicting lifecycle); shown, never dropped.
    var conflicts: [ReplayConflict] = []

    init(_ hold: Hold) { self.hold = hold }

    init(_ hold: Hold, provisional: Bool) {
        self.hold = hold
        reconciliation = hold.path == .local ? (provisional ? "pending" : "reconciled") : nil
    }
}

struct StockRowPayload: Encodable {
    var warehouse: String
    var total: Int64
    var held: Int64
    var sold: Int64
    var allotted: Int64
    /// `allotted` by holder: `cache`, or the owning node (`n3`) of a local reserve.
    var allottedTo: [String: Int64] = [:]
    var available: Int64

    init(warehouse: WarehouseID, row: StockRow) {
        self.warehouse = warehouse.rawValue
        total = row.total
        held = row.held
        sold = row.sold
        allotted = row.allotted
        available = row.available
    }
}

struct SKUPayload: Encodable {
    var sku: String
    /// Whether the Redis cache sells this SKU (its `allotted` units per warehouse are the cache's).
    var hot: Bool
    var warehouses: [StockRowPayload]
}

/// The hot path's state in `/v1/cluster`.
struct CachePayload: Encodable {
    var breaker: String
    var degradeSwitches: Int
    var hitRate: Double
    var cacheAnswered: Int
    var quorumAnswered: Int
    var queuePending: Int
    var queueOldestAgeMs: Int64
    var queueDelivered: Int
    var deadLetterStream: Int
    var deadLetters: Int
    var refills: Int
    var reclaims: Int

    init(_ status: CacheStatus) {
        breaker = status.breaker
        degradeSwitches = status.degradeSwitches
        hitRate = status.hitRate
        cacheAnswered = status.cacheAnswered
        quorumAnswered = status.quorumAnswered
        queuePending = status.queuePending
        queueOldestAgeMs = status.queueOldestAgeMs
        queueDelivered = status.queueDelivered
        deadLetterStream = status.deadLetterStream
        deadLetters = status.deadLetters
        refills = status.refills
        reclaims = status.reclaims
    }
}

struct WarehousePayload: Encodable {
    var id: String
    var regions: [String]
    var priority: Int64
    /// The owning node (`n2`), when the warehouse has one.
    var owner: String?
}

struct HoldsPagePayload {
    var holds: [ReservationPayload]
    var nextCursor: String?
}

struct StatusPayload: Encodable {
    var status: String
}

/// `GET /v1/cluster`: this node's view of the cluster.
struct ClusterPayload: Encodable {
    struct Peer: Encodable {
        var nodeId: String
        /// Known on the leader only: the highest log index durable on that peer.
        var matchIndex: UInt64?
        /// Milliseconds since this node last heard from the peer.
        var lastContactMs: Int64?
        /// The peer's wall clock minus this node's, as last measured.
        var clockOffsetMs: Int64?

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(nodeId, forKey: .nodeId)
            try container.encode(matchIndex, forKey: .matchIndex)
            try container.encode(lastContactMs, forKey: .lastContactMs)
            try container.encode(clockOffsetMs, forKey: .clockOffsetMs)
        }
        enum CodingKeys: String, CodingKey { case nodeId, matchIndex, lastContactMs, clockOffsetMs }
    }
    struct Clock: Encodable {
        var agreed: Bool
        var distanceMs: Int64?
        var offClock: [String]

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(agreed, forKey: .agreed)
            try container.encode(distanceMs, forKey: .distanceMs)
            try container.encode(offClock, forKey: .offClock)
        }
        enum CodingKeys: String, CodingKey { case agreed, distanceMs, offClock }
    }
    var nodeId: String
    var role: String
    var term: UInt64
    var leaderId: String?
    var commitIndex: UInt64
    var appliedIndex: UInt64
    var peers: [Peer]
    var clock: Clock?
    var local: Local?
    var cache: CachePayload?

    /// The local-warehouse fallback on this node.
    struct Local: Encodable {
        var epoch: UInt64?
        var provisionalHolds: Int
        var oldestAgeMs: Int64?
        var fallbacks: Int
        var reconciledHolds: Int
        var reconcileErrors: Int

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(epoch, forKey: .epoch)
            try container.encode(provisionalHolds, forKey: .provisionalHolds)
            try container.encode(oldestAgeMs, forKey: .oldestAgeMs)
            try container.encode(fallbacks, forKey: .fallbacks)
            try container.encode(reconciledHolds, forKey: .reconciledHolds)
            try container.encode(reconcileErrors, forKey: .reconcileErrors)
        }
        enum CodingKeys: String, CodingKey { case epoch, provisionalHolds, oldestAgeMs, fallbacks, reconciledHolds, reconcileErrors }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(nodeId, forKey: .nodeId)
        try container.encode(role, forKey: .role)
        try container.encode(term, forKey: .term)
        try container.encode(leaderId, forKey: .leaderId)
        try container.encode(commitIndex, forKey: .commitIndex)
        try container.encode(appliedIndex, forKey: .appliedIndex)
        try container.encode(peers, forKey: .peers)
        try container.encodeIfPresent(clock, forKey: .clock)
        try container.encodeIfPresent(local, forKey: .local)
        try container.encodeIfPresent(cache, forKey: .cache)
    }
    enum CodingKeys: String, CodingKey { case nodeId, role, term, leaderId, commitIndex, appliedIndex, peers, clock, local, cache }
}
