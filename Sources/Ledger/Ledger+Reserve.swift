import StockadeCore

extension Ledger {
    /// Warehouses in local-warehouse priority for `region`: those serving it first, then the rest;
    /// each group by priority (lower first), then id.
    public func warehouseOrder(forRegion region: String) -> [WarehouseID] {
        var order: [WarehouseID] = []
        order.reserveCapacity(warehousesByPriority.count)
        for warehouse in warehousesByPriority where warehouse.serves(region: region) { order.append(warehouse.id) }
        for warehouse in warehousesByPriority where !warehouse.serves(region: region) { order.append(warehouse.id) }
        return order
    }

    /// Plans allocations for every line, or names the first line that cannot be covered.
    /// Reads only; the caller applies the plan.
    public func plan(_ request: ReserveRequest) -> Result<[Allocation], RejectedPlan> {
        let order = warehouseOrder(forRegion: request.region)
        var allocations: [Allocation] = []
        allocations.reserveCapacity(request.lines.count)
        for line in request.lines {
            guard let rows = stock[line.sku] else {
                return .failure(RejectedPlan(error: StockadeError(.unknownSKU, "unknown sku \(line.sku)"), detail: nil))
            }
            if request.allowSplit {
                var remaining = line.quantity
                var total: Int64 = 0
                for warehouse in order {
                    guard let row = rows[warehouse], row.available > 0 else { continue }
                    total += row.available
                    if remaining > 0 {
                        let take = min(remaining, row.available)
                        allocations.append(Allocation(sku: line.sku, warehouse: warehouse, quantity: take))
                        remaining -= take
                    }
                }
                if remaining > 0 {
                    return .failure(Self.insufficient(line, available: total, split: true))
                }
            } else {
                var best: Int64 = 0
                var chosen: WarehouseID?
                for warehouse in order {
                    guard let row = rows[warehouse] else { continue }
                    if row.available >= line.quantity {
                        chosen = warehouse
                        break
                    }
                    best = max(best, row.available)
                }
                guard let chosen else { return .failure(Self.insufficient(line, available: best, split: false)) }
                allocations.append(Allocation(sku: line.sku, warehouse: chosen, quantity: line.quantity))
            }
        }
        return .success(allocations)
    }

    static func insufficient(_ line: ReservationLine, available: Int64, split: Bool) -> RejectedPlan {
        let scope = split ? "across all warehouses" : "in any single warehouse (allowSplit is false)"
        return RejectedPlan(
            error: StockadeError(
                .insufficientStock, "sku \(line.sku): requested \(line.quantity), available \(available) \(scope)"),
            detail: RejectionDetail(sku: line.sku, requested: line.quantity, available: available))
    }

    /// The answer to a reserve that can be given without the log: a replay, an idempotency
    /// conflict, invalid input or a shortfall against the applied state. Nil means the request must be logged.
    ///
    /// A shortfall found here is safe to answer at once: it is linearised at the applied state,
    /// which already contains every acknowledged command.
    public func answerWithoutLog(_ request: ReserveRequest) -> Outcome? {
        if let replay = replayAnswer(request) { return replay }
        if let error = Validation.reserve(request, limits: limits) { return .rejected(error) }
        if case .failure(let rejected) = plan(request) { return .rejected(rejected.error, detail: rejected.detail) }
        return nil
    }

    /// Stores a new held hold and queues its expiry.
    mutating func store(_ hold: Hold, sequence: UInt64) {
        holds.append(hold, sequence: sequence)
        activeHoldCount += 1
        expiryQueue.insert(TimedEntry(timeMs: hold.expiresAtMs, sequence: sequence))
    }

    /// The answer to a reserve whose id already exists: the same hold for the same body, else a conflict.
    func replayAnswer(_ request: ReserveRequest) -> Outcome? {
        guard let existing = holds[request.reservationId] else { return nil }
        return existing.answers(request)
            ? .reservation(existing, created: false)
            : .rejected(StockadeError(.idempotencyConflict, "reservation \(request.reservationId) exists with a different body"))
    }

    mutating func reserve(_ request: ReserveRequest, timeMs: Int64, index: LogIndex) -> Outcome {
        let token = FencingToken(index)
        if let replay = replayAnswer(request) { return replay }
        if let error = Validation.reserve(request, limits: limits) { return .rejected(error) }
        let allocations: [Allocation]
        switch plan(request) {
        case .failure(let rejected): return .rejected(rejected.error, detail: rejected.detail)
        case .success(let planned): allocations = planned
        }
        move(allocations, heldDelta: 1, soldDelta: 0)
        let hold = Hold(
            reservationId: request.reservationId, orderId: request.orderId, region: request.region,
            allocations: allocations, ttlMs: request.ttlMs, allowSplit: request.allowSplit, path: .quorum,
            token: token, createdAtMs: timeMs, expiresAtMs: timeMs + request.ttlMs, status: .held, finishedAtMs: 0)
        store(hold, sequence: Self.sequence(index: index, position: 0))
        return .reservation(hold, created: true)
    }
}

/// Why a plan failed.
public struct RejectedPlan: Error, Sendable {
    public var error: StockadeError
    public var detail: RejectionDetail?
}
