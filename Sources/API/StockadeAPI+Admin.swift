import Foundation
import Ledger
import Node
import StockadeCore

/// The operator's calls behind `stockadectl`: the audit and the stats. Both answer from this
/// node's applied state (the answer says which index), never relayed to the leader: an audit of
/// a follower checks that follower, and its Redis view is its own.
extension StockadeAPI {
    /// Every disagreement between the ledger's rows and their holds and allotments, between its
    /// cache allotments and Redis, and between this node's provisional holds and its reserves.
    func auditAnswer(sku: String?) async throws -> APIAnswer {
        let only = try sku.map { value -> SKU in
            try Self.check(Validation.identifier(value, field: "sku", limits: limits))
            return SKU(value)
        }
        // Redis first: its comparison reads Redis, then the ledger.
        var cacheFindings: [AuditFinding] = []
        var cacheRows: Int?
        if let cache {
            do {
                cacheFindings = try await cache.audit(sku: only, attempts: 3)
            } catch {
                throw StockadeError(.unavailable, "cannot read Redis for the audit: \(error)")
            }
            cacheRows = replica.read { ledger in
                ledger.allotments.keys.filter { $0.holder == .cache && (only == nil || $0.sku == only) }.count
            }
        }
        // The rows are checked on a copy, off the node's lock, as a snapshot is written: a
        // million holds take a few hundred milliseconds, which must not hold back applying.
        let ledger = replica.read { copy $0 }
        let (applied, rows, known) = (ledger.appliedIndex, ledger.auditRows(sku: only), only.map { ledger.stock[$0] != nil } ?? true)
        guard known else { throw StockadeError(.unknownSKU, "unknown sku \(only!)") }
        let local = replica.localAudit(sku: only)
        let findings = rows.flatMap(\.findings) + cacheFindings + local.findings + ledger.conflictFindings(sku: only)
        let payload = AuditPayload(
            nodeId: nodeID, appliedIndex: applied, sku: sku, clean: findings.isEmpty,
            checked: .init(rows: rows.count, cacheRows: cacheRows, provisionalHolds: local.provisionalHolds),
            findings: findings.map(AuditPayload.Finding.init))
        return APIAnswer(status: .ok, body: JSON.encoded(payload))
    }

    /// Counters since start (reservations by outcome, the cache's, the fallback's) and a summary
    /// of the ledger: the busiest SKUs and the holds that expire next.
    func statsAnswer() -> APIAnswer {
        let overview = replica.read { $0.overview(topSKUs: limits.statsSKUsMax, nextExpiries: limits.statsExpiriesMax) }
        let cluster = clusterPayload()
        let payload = StatsPayload(
            nodeId: cluster.nodeId, role: cluster.role, term: cluster.term, leaderId: cluster.leaderId,
            atMs: replica.clock(), appliedIndex: overview.appliedIndex, reservations: metrics.tally.snapshot,
            holds: .init(active: overview.activeHolds, stored: overview.storedHolds), skuCount: overview.skuCount,
            hotSKUs: overview.hotSKUs,
            skus: overview.skus.map {
                .init(
                    sku: $0.sku.rawValue, hot: $0.hot, total: $0.total, held: $0.held, sold: $0.sold, allotted: $0.allotted,
                    available: $0.available)
            },
            nextExpiries: overview.nextExpiries.map {
                .init(
                    reservationId: $0.reservationId.rawValue, orderId: $0.orderId, expiresAt: $0.expiresAtMs,
                    units: $0.allocations.reduce(0) { $0 + $1.quantity })
            },
            cache: cluster.cache, local: cluster.local)
        return APIAnswer(status: .ok, body: JSON.encoded(payload))
    }

    var nodeID: String { cluster.map { "n\($0.replica.memberStatus.nodeID)" } ?? nodeName }
}

/// `GET /v1/audit`.
struct AuditPayload: Encodable {
    struct Checked: Encodable {
        var rows: Int
        /// Rows with a cache allotment compared with Redis; null when the node has no cache.
        var cacheRows: Int?
        var provisionalHolds: Int

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(rows, forKey: .rows)
            try container.encode(cacheRows, forKey: .cacheRows)
            try container.encode(provisionalHolds, forKey: .provisionalHolds)
        }
        enum CodingKeys: String, CodingKey { case rows, cacheRows, provisionalHolds }
    }
    struct Finding: Encodable {
        var sku: String?
        var warehouse: String?
        var check: String
        var ledger: Int64
        var derived: Int64
        var message: String

        init(_ finding: AuditFinding) {
            sku = finding.sku?.rawValue
            warehouse = finding.warehouse?.rawValue
            check = finding.check.rawValue
            ledger = finding.ledger
            derived = finding.derived
            message = finding.message
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(sku, forKey: .sku)
            try container.encode(warehouse, forKey: .warehouse)
            try container.encode(check, forKey: .check)
            try container.encode(ledger, forKey: .ledger)
            try container.encode(derived, forKey: .derived)
            try container.encode(message, forKey: .message)
        }
        enum CodingKeys: String, CodingKey { case sku, warehouse, check, ledger, derived, message }
    }
    var nodeId: String
    var appliedIndex: UInt64
    var sku: String?
    var clean: Bool
    var checked: Checked
    var findings: [Finding]

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(nodeId, forKey: .nodeId)
        try container.encode(appliedIndex, forKey: .appliedIndex)
        try container.encode(sku, forKey: .sku)
        try container.encode(clean, forKey: .clean)
        try container.encode(checked, forKey: .checked)
        try container.encode(findings, forKey: .findings)
    }
    enum CodingKeys: String, CodingKey { case nodeId, appliedIndex, sku, clean, checked, findings }
}

/// `GET /v1/stats`.
struct StatsPayload: Encodable {
    struct Holds: Encodable {
        var active: Int
        var stored: Int
    }
    struct SKUTotals: Encodable {
        var sku: String
        var hot: Bool
        var total: Int64
        var held: Int64
        var sold: Int64
        var allotted: Int64
        var available: Int64
    }
    struct Expiry: Encodable {
        var reservationId: String
        var orderId: String
        var expiresAt: Int64
        var units: Int64
    }
    var nodeId: String
    var role: String
    var term: UInt64
    var leaderId: String?
    var atMs: Int64
    var appliedIndex: UInt64
    var reservations: [String: Int]
    var holds: Holds
    var skuCount: Int
    var hotSKUs: Int
    var skus: [SKUTotals]
    var nextExpiries: [Expiry]
    var cache: CachePayload?
    var local: ClusterPayload.Local?

    func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(nodeId, forKey: .nodeId)
        try container.encode(role, forKey: .role)
        try container.encode(term, forKey: .term)
        try container.encode(leaderId, forKey: .leaderId)
        try container.encode(atMs, forKey: .atMs)
        try container.encode(appliedIndex, forKey: .appliedIndex)
        try container.encode(reservations, forKey: .reservations)
        try container.encode(holds, forKey: .holds)
        try container.encode(skuCount, forKey: .skuCount)
        try container.encode(hotSKUs, forKey: .hotSKUs)
        try container.encode(skus, forKey: .skus)
        try container.encode(nextExpiries, forKey: .nextExpiries)
        try container.encode(cache, forKey: .cache)
        try container.encode(local, forKey: .local)
    }
    enum CodingKeys: String, CodingKey {
        case nodeId, role, term, leaderId, atMs, appliedIndex, reservations, holds, skuCount, hotSKUs, skus, nextExpiries, cache, local
    }
}
