import StockadeCore

/// A row of one SKU in one warehouse, as local reserve policies name it.
public struct RowKey: Hashable, Comparable, Sendable {
    public var sku: SKU
    public var warehouse: WarehouseID

    public init(sku: SKU, warehouse: WarehouseID) {
        self.sku = sku
        self.warehouse = warehouse
    }

    public static func < (lhs: RowKey, rhs: RowKey) -> Bool { (lhs.sku, lhs.warehouse) < (rhs.sku, rhs.warehouse) }
}

/// How far the ledger has taken in one node's local log: the epoch of that log (a new log, after
/// its disk was lost, is a new epoch), the nonce the node chose for it, and the highest sequence
/// replayed. Records at or below `sequence` change nothing again; records of another epoch are refused.
public struct LocalProgress: Hashable, Sendable {
    public var epoch: UInt64
    public var nonce: UInt64
    public var sequence: UInt64

    public init(epoch: UInt64, nonce: UInt64, sequence: UInt64) {
        self.epoch = epoch
        self.nonce = nonce
        self.sequence = sequence
    }
}

/// A node's provisional holds replayed into the ledger: every record of its local log up to
/// `throughSequence` is reflected in `holds` (each hold as it stands at replay time) and
/// `returns` (units the node gives back from its local reserve).
public struct LocalReconcile: Hashable, Sendable {
    public var node: UInt64
    public var epoch: UInt64
    public var throughSequence: UInt64
    public var holds: [Hold]
    public var returns: [LocalReturn]

    public init(node: UInt64, epoch: UInt64, throughSequence: UInt64, holds: [Hold], returns: [LocalReturn] = []) {
        self.node = node
        self.epoch = epoch
        self.throughSequence = throughSequence
        self.holds = holds
        self.returns = returns
    }
}

/// The local-warehouse fallback on one node, as it reports it (`GET /v1/cluster`, metrics).
public struct LocalFallbackStatus: Sendable, Equatable {
    /// The epoch the ledger numbered for this node's local log (nil: not yet, or it owns no warehouse).
    public var epoch: UInt64?
    /// Provisional holds not yet taken in by the ledger, and how old the oldest is.
    public var provisionalHolds: Int
    public var oldestAgeMs: Int64?
    /// Reserves granted from the local reserve, holds the ledger took in, and replays it refused.
    public var fallbacks: Int
    public var reconciledHolds: Int
    public var reconcileErrors: Int

    public init(
        epoch: UInt64?, provisionalHolds: Int, oldestAgeMs: Int64?, fallbacks: Int, reconciledHolds: Int, reconcileErrors: Int
    ) {
        self.epoch = epoch
        self.provisionalHolds = provisionalHolds
        self.oldestAgeMs = oldestAgeMs
        self.fallbacks = fallbacks
        self.reconciledHolds = reconciledHolds
        self.reconcileErrors = reconcileErrors
    }
}

/// Units a node gave back from its reserve, by the record that did it.
public struct LocalReturn: Hashable, Sendable {
    public var sequence: UInt64
    public var allocation: Allocation

    public init(sequence: UInt64, allocation: Allocation) {
        self.sequence = sequence
        self.allocation = allocation
    }
}

/// Local reserves, local epochs and reconciliation (see docs/local-fallback.md).
///
/// The rules that make it safe: a node's reserve is an allotment (`AllotmentHolder.node`), so its
/// units count in `allotted` and nobody else sells them. Units enter it only by the leader's grant
/// and leave it only by the node's own replayed records, so a cut-off node can always spend
/// what its applied state says it holds, minus what it has spent since.
extension Ledger {
    /// The reserve policy in force for a row: the SKU's own, else its warehouse's default. Nil
    /// when the warehouse has no owner.
    public func localReservePolicy(_ key: RowKey) -> LocalReservePolicy? {
        guard let warehouse = warehouses.first(where: { $0.id == key.warehouse }), warehouse.owner != nil else { return nil }
        return localReserves[key] ?? warehouse.localReserve
    }

    /// The units the owner of `key`'s warehouse should keep escrowed now, with its current reserve.
    /// Nil when no policy applies or the row does not exist.
    public func localReserveTarget(_ key: RowKey) -> (owner: UInt64, target: Int64, current: Int64)? {
        guard let policy = localReservePolicy(key), let row = stock[key.sku]?[key.warehouse],
            let owner = warehouses.first(where: { $0.id == key.warehouse })?.owner
        else { return nil }
        let current = allotments[AllotmentKey(sku: key.sku, warehouse: key.warehouse, holder: .node(owner))]?.quantity ?? 0
        return (owner, policy.target(free: row.available + current), current)
    }

    /// The grants that would bring every reserve below `lowWaterPercent` of its target back up to
    /// it, in row order, at most `limit`. The leader proposes these; only it adds to a reserve.
    public func localReserveRefills(lowWaterPercent: Int64, limit: Int) -> [(key: AllotmentKey, quantity: Int64)] {
        var refills: [(key: AllotmentKey, quantity: Int64)] = []
        for warehouse in warehousesByPriority where warehouse.owner != nil {
            for (sku, rows) in stock where rows[warehouse.id] != nil {
                guard let (owner, target, current) = localReserveTarget(RowKey(sku: sku, warehouse: warehouse.id)) else { continue }
                let available = rows[warehouse.id]!.available
                guard target > 0, current * 100 < target * lowWaterPercent, available > 0 else { continue }
                refills.append(
                    (AllotmentKey(sku: sku, warehouse: warehouse.id, holder: .node(owner)), min(target - current, available)))
            }
        }
        refills.sort { $0.key < $1.key }
        return Array(refills.prefix(limit))
    }

    mutating func setLocalReserve(_ key: RowKey, _ policy: LocalReservePolicy?) -> Outcome {
        guard stock[key.sku] != nil else { return .rejected(StockadeError(.unknownSKU, "unknown sku \(key.sku)")) }
        guard let warehouse = warehouses.first(where: { $0.id == key.warehouse }) else {
            return .rejected(StockadeError(.unknownWarehouse, "unknown warehouse \(key.warehouse)"))
        }
        guard warehouse.owner != nil else {
            return .rejected(
                StockadeError(.invalidState, "warehouse \(key.warehouse) has no owning node, so it keeps no local reserve"))
        }
        if let problem = policy?.problem(limits: limits) { return .rejected(problem) }
        localReserves[key] = policy
        return .localReserve(key, localReservePolicy(key))
    }

    mutating func beginLocalEpoch(node: UInt64, nonce: UInt64) -> Outcome {
        guard (1...Self.localNodeMax).contains(node) else {
            return .rejected(StockadeError(.invalidRequest, "node ids that keep a local log are 1...\(Self.localNodeMax)"))
        }
        if let progress = localProgress[node], progress.nonce == nonce { return .localEpoch(node: node, progress) }
        let progress = LocalProgress(epoch: (localProgress[node]?.epoch ?? 0) + 1, nonce: nonce, sequence: 0)
        localProgress[node] = progress
        return .localEpoch(node: node, progress)
    }

    /// The largest node id whose local tokens are distinct (15 bits of the token).
    public static let localNodeMax: UInt64 = 0x7FFF

    mutating func reconcileLocal(_ batch: LocalReconcile, index: LogIndex, timeMs: Int64) -> Outcome {
        guard batch.holds.count <= limits.localReconcileHoldsMax, batch.returns.count <= limits.localReconcileHoldsMax else {
            return .rejected(StockadeError(.invalidRequest, "at most \(limits.localReconcileHoldsMax) holds and returns per batch"))
        }
        guard var progress = localProgress[batch.node], progress.epoch == batch.epoch else {
            return .rejected(
                StockadeError(
                    .invalidState,
                    "node \(batch.node) replays epoch \(batch.epoch) but its current epoch is \(localProgress[batch.node]?.epoch ?? 0); not applied"
                ))
        }
        // A replay of a batch already taken in changes nothing.
        guard batch.throughSequence > progress.sequence, batch.throughSequence <= LocalGrant.sequenceMax else {
            return .localReconciled(duplicate: true, [])
        }
        var results: [HoldReplayResult] = []
        results.reserveCapacity(batch.holds.count)
        var position = 0
        for hold in batch.holds {
            // A hold granted at or below what was taken in is in the ledger already, or was, and
            // may have been purged since: it is never created again.
            guard (hold.local?.sequence ?? 0) > progress.sequence else {
                results.append(.duplicate)
                continue
            }
            let result = applyLocalHold(hold, batch: batch, index: index, position: position, timeMs: timeMs)
            if result == .applied { position += 1 }
            results.append(result)
        }
        // Each return counts once: those at or below what was taken in are skipped.
        for returned in batch.returns
        where returned.sequence > progress.sequence && returned.sequence <= batch.throughSequence && returned.allocation.quantity > 0 {
            let allocation = returned.allocation
            let key = AllotmentKey(sku: allocation.sku, warehouse: allocation.warehouse, holder: .node(batch.node))
            guard let allotment = allotments[key], allotment.quantity > 0 else { continue }
            let quantity = min(allocation.quantity, allotment.quantity)
            moveFromAllotment(key, quantity: quantity, into: nil)
        }
        progress.sequence = batch.throughSequence
        localProgress[batch.node] = progress
        return .localReconciled(duplicate: false, results)
    }

    private mutating func applyLocalHold(
        _ hold: Hold, batch: LocalReconcile, index: LogIndex, position: Int, timeMs: Int64
    ) -> HoldReplayResult {
        if let existing = holds[hold.reservationId], existing.token == hold.token {
            // The same grant replayed again.
            return existing.path == .local ? .duplicate : .refused
        }
        guard hold.path == .local, let local = hold.local, local.node == batch.node, local.epoch == batch.epoch,
            local.sequence >= 1, local.sequence <= batch.throughSequence, hold.token == local.token,
            Validation.reserve(hold.request, limits: limits) == nil, !hold.allocations.isEmpty,
            hold.allocations.count <= limits.reservationLinesMax * limits.warehousesMax,
            hold.createdAtMs >= 0, hold.expiresAtMs >= hold.createdAtMs,
            hold.status == .held ? hold.finishedAtMs == 0 : hold.finishedAtMs > 0,
            !(!hold.allowSplit && hold.allocations.count != hold.request.lines.count)
        else { return .refused }
        if let existing = holds[hold.reservationId] {
            // The id was granted on the other side of a partition too: the hold a majority agreed
            // on stands, and what the client did to the provisional hold carries onto it (or the
            // conflict is kept). The provisional hold's units never left the reserve.
            return mergeReplayed(hold, into: existing, index: index, timeMs: timeMs)
        }
        var needed: [AllotmentKey: Int64] = [:]
        for allocation in hold.allocations {
            guard allocation.quantity > 0, stock[allocation.sku]?[allocation.warehouse] != nil else { return .refused }
            needed[AllotmentKey(sku: allocation.sku, warehouse: allocation.warehouse, holder: .node(batch.node)), default: 0] +=
                allocation.quantity
        }
        let sequence = Self.sequence(index: index, position: position)
        switch hold.status {
        case .held, .confirmed:
            // The units come out of the node's reserve, which must cover all of them.
            for (key, quantity) in needed where (allotments[key]?.quantity ?? 0) < quantity { return .refused }
            for (key, quantity) in needed.sorted(by: { $0.key < $1.key }) {
                moveFromAllotment(key, quantity: quantity, into: hold.status)
            }
            if hold.status == .held {
                store(hold, sequence: sequence)
            } else {
                storeFinished(hold, sequence: sequence)
            }
        case .released, .expired:
            // Granted and given back while the node was cut off: its units never left the reserve.
            storeFinished(hold, sequence: sequence)
        }
        return .applied
    }

    /// Moves units out of an allotment: into held or sold for `status`, or back to available for nil.
    mutating func moveFromAllotment(_ key: AllotmentKey, quantity: Int64, into status: HoldStatus?) {
        var allotment = allotments[key]!
        allotment.quantity -= quantity
        allotments[key] = allotment.quantity > 0 ? allotment : nil
        var row = stock[key.sku]![key.warehouse]!
        row.allotted -= quantity
        switch status {
        case .held: row.held += quantity
        case .confirmed: row.sold += quantity
        default: break
        }
        storeRow(row, sku: key.sku, warehouse: key.warehouse)
    }

    /// Stores a hold that is already finished, queued for purging after retention.
    mutating func storeFinished(_ hold: Hold, sequence: UInt64) {
        holds.append(hold, sequence: sequence)
        finishedQueue.insert(TimedEntry(timeMs: hold.finishedAtMs, sequence: sequence))
    }
}

extension Hold {
    /// The request this hold answers.
    public var request: ReserveRequest {
        ReserveRequest(
            reservationId: reservationId, orderId: orderId, region: region, lines: lines, ttlMs: ttlMs, allowSplit: allowSplit)
    }
}
