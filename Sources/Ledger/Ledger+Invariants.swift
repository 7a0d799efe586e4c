import StockadeCore

/// The full invariant check: every property derived a second way and compared. O(holds); for tests and recovery.
extension Ledger {
    /// Every broken invariant, described. Empty when the ledger is sound.
    public func invariantViolations() -> [String] {
        var problems: [String] = []
        var active = 0
        let known = Set(warehouses.map(\.id))
        for hold in holds.values {
            let id = hold.reservationId
            if holds[id] != hold { problems.append("hold \(id) is not found by its id") }
            if hold.allocations.isEmpty { problems.append("hold \(id) has no allocations") }
            if hold.status == .held {
                active += 1
                if hold.finishedAtMs != 0 { problems.append("held hold \(id) has a finish time") }
            }
            for allocation in hold.allocations {
                if allocation.quantity <= 0 { problems.append("hold \(id) allocates \(allocation.quantity)") }
                if stock[allocation.sku]?[allocation.warehouse] == nil {
                    problems.append("hold \(id) refers to missing row \(allocation.sku)@\(allocation.warehouse)")
                }
            }
        }
        for (key, allotment) in allotments {
            if allotment.quantity <= 0 { problems.append("allotment \(key) holds \(allotment.quantity)") }
            if stock[key.sku]?[key.warehouse] == nil { problems.append("allotment \(key) has no stock row") }
        }
        for sku in hotSKUs where stock[sku] == nil { problems.append("hot sku \(sku) is unknown") }
        for hold in holds.values {
            let token = hold.token.rawValue
            let fits =
                switch hold.path {
                case .quorum: token < CacheHold.tokenBase && hold.local == nil
                case .cache: token >= CacheHold.tokenBase && token < LocalGrant.tokenBase && hold.local == nil
                case .local: hold.local.map { $0.token == hold.token } ?? false
                }
            if !fits { problems.append("hold \(hold.reservationId) has path \(hold.path.name) but token \(token)") }
        }
        for (node, progress) in localProgress where progress.epoch == 0 || node == 0 {
            problems.append("node \(node) has local progress \(progress)")
        }
        if active != activeHoldCount { problems.append("activeHoldCount \(activeHoldCount) but \(active) holds are held") }
        for (sku, rows) in stock {
            for warehouse in rows.keys where !known.contains(warehouse) {
                problems.append("row \(sku)@\(warehouse) names an unknown warehouse")
            }
        }
        // The row quantities against their parts: the same check `stockadectl audit` reports.
        for audit in auditRows() {
            problems += audit.findings.map { "\($0.sku.map(\.rawValue) ?? "")@\($0.warehouse.map(\.rawValue) ?? ""): \($0.message)" }
        }
        // Every held hold must be reachable by expiry at its current expiry time.
        let queued = Set(expiryQueue.unordered.map { "\($0.sequence)@\($0.timeMs)" })
        for hold in holds.values where hold.status == .held {
            if !queued.contains("\(holds.sequence(of: hold.reservationId) ?? 0)@\(hold.expiresAtMs)") {
                problems.append("held hold \(hold.reservationId) missing from the expiry queue")
            }
        }
        return problems
    }
}
