import StockadeCore

/// Hot status and allotments: escrow of a row's units to one holder (see docs/hot-path.md).
extension Ledger {
    mutating func setHot(_ sku: SKU, _ hot: Bool) -> Outcome {
        guard stock[sku] != nil else { return .rejected(StockadeError(.unknownSKU, "unknown sku \(sku)")) }
        if hot { hotSKUs.insert(sku) } else { hotSKUs.remove(sku) }
        return .hotStatus(sku, hot: hot)
    }

    func validateAllotment(_ key: AllotmentKey, quantity: Int64) -> StockadeError? {
        guard stock[key.sku] != nil else { return StockadeError(.unknownSKU, "unknown sku \(key.sku)") }
        guard knows(warehouse: key.warehouse) else {
            return StockadeError(.unknownWarehouse, "unknown warehouse \(key.warehouse)")
        }
        guard quantity >= 1 && quantity <= limits.stockTotalMax else {
            return StockadeError(.invalidRequest, "allotment quantity must be in 1...\(limits.stockTotalMax)")
        }
        return nil
    }

    /// Grants up to `quantity` of the row's available units, possibly none: availability may have
    /// changed since the grant was proposed.
    mutating func grantAllotment(_ key: AllotmentKey, quantity: Int64, index: LogIndex) -> Outcome {
        if let error = validateAllotment(key, quantity: quantity) { return .rejected(error) }
        var allotment = allotments[key] ?? Allotment()
        guard var row = stock[key.sku]?[key.warehouse] else { return .allotment(key, moved: 0, allotment) }
        let granted = max(0, min(quantity, row.available))
        guard granted > 0 else { return .allotment(key, moved: 0, allotment) }
        row.allotted += granted
        storeRow(row, sku: key.sku, warehouse: key.warehouse)
        allotment.quantity += granted
        allotment.lastGrantIndex = index
        allotment.lastGrantQuantity = granted
        allotments[key] = allotment
        return .allotment(key, moved: granted, allotment)
    }

    /// Gives back up to `quantity` allotted units to the row's available stock.
    mutating func returnAllotment(_ key: AllotmentKey, quantity: Int64) -> Outcome {
        if let error = validateAllotment(key, quantity: quantity) { return .rejected(error) }
        // A node's reserve shrinks only by the node's own replayed records: it may be spending
        // those units right now, cut off from whoever proposed this.
        guard key.holder == .cache else {
            return .rejected(StockadeError(.invalidRequest, "only its node gives back a local reserve (by reconciling)"))
        }
        guard var allotment = allotments[key], allotment.quantity > 0 else {
            return .allotment(key, moved: 0, allotments[key] ?? Allotment())
        }
        let returned = min(quantity, allotment.quantity)
        guard var row = stock[key.sku]?[key.warehouse] else { preconditionFailure("allotment without a row: \(key)") }
        row.allotted -= returned
        storeRow(row, sku: key.sku, warehouse: key.warehouse)
        allotment.quantity -= returned
        allotments[key] = allotment.quantity > 0 ? allotment : nil
        return .allotment(key, moved: -returned, allotment)
    }

    /// Turns cache holds into ledger holds, each from its allotments; see `CacheHoldResult`.
    mutating func applyAllotmentHolds(_ cacheHolds: [CacheHold], index: LogIndex, timeMs: Int64) -> Outcome {
        guard cacheHolds.count <= limits.cacheHoldsBatchMax else {
            return .rejected(StockadeError(.invalidRequest, "at most \(limits.cacheHoldsBatchMax) cache holds per batch"))
        }
        var results: [CacheHoldResult] = []
        results.reserveCapacity(cacheHolds.count)
        var position = 0
        for cacheHold in cacheHolds {
            let result = applyCacheHold(cacheHold, index: index, position: position, timeMs: timeMs)
            if result == .applied { position += 1 }
            results.append(result)
        }
        return .cacheHoldsApplied(results)
    }

    private mutating func applyCacheHold(_ cacheHold: CacheHold, index: LogIndex, position: Int, timeMs: Int64) -> CacheHoldResult {
        if let existing = holds[cacheHold.reservationId] {
            if existing.token == cacheHold.token && existing.path == .cache { return .duplicate }
            guard existing.token != cacheHold.token, cacheHold.createdAtMs >= 0, cacheHold.createdAtMs <= Int64.max - cacheHold.ttlMs
            else { return .refused }
            // Granted on both paths (a retry that reached the quorum while Redis was slow): the
            // ledger's hold stands and takes the cache hold's later expiry, or the conflict is kept.
            return mergeReplayed(cacheHold.asHold, into: existing, index: index, timeMs: timeMs)
        }
        guard cacheHold.token.rawValue >= CacheHold.tokenBase else { return .refused }
        let request = cacheHold.request
        if Validation.reserve(request, limits: limits) != nil { return .refused }
        guard !cacheHold.allocations.isEmpty, cacheHold.allocations.count <= limits.reservationLinesMax * 4,
            cacheHold.createdAtMs >= 0, cacheHold.createdAtMs <= Int64.max - cacheHold.ttlMs
        else { return .refused }
        if !cacheHold.allowSplit && request.lines.count != cacheHold.allocations.count { return .refused }
        // Every allocation must be covered by its allotment before anything changes.
        var needed: [AllotmentKey: Int64] = [:]
        for allocation in cacheHold.allocations {
            guard allocation.quantity > 0 else { return .refused }
            needed[AllotmentKey(sku: allocation.sku, warehouse: allocation.warehouse, holder: .cache), default: 0] +=
                allocation.quantity
        }
        for (key, quantity) in needed where (allotments[key]?.quantity ?? 0) < quantity { return .refused }
        for (key, quantity) in needed.sorted(by: { $0.key < $1.key }) {
            moveFromAllotment(key, quantity: quantity, into: .held)
        }
        store(cacheHold.asHold, sequence: Self.sequence(index: index, position: position))
        return .applied
    }

    /// The allotments of one SKU, by warehouse then holder.
    public func allotments(of sku: SKU) -> [(key: AllotmentKey, allotment: Allotment)] {
        allotments.filter { $0.key.sku == sku }.sorted { $0.key < $1.key }.map { (key: $0.key, allotment: $0.value) }
    }
}

extension CacheHold {
    /// The ledger hold this cache hold becomes.
    var asHold: Hold {
        Hold(
            reservationId: reservationId, orderId: orderId, region: region, allocations: allocations, ttlMs: ttlMs,
            allowSplit: allowSplit, path: .cache, token: token, createdAtMs: createdAtMs, expiresAtMs: expiresAtMs, status: .held,
            finishedAtMs: 0)
    }
}
