import Consensus
import Ledger
import Replication
import StockadeCore

/// The simulator's local-warehouse fallback: shoppers calling warehouse owners, each node's local
/// log on its simulated disk, and the bounded-counter check (docs/local-fallback.md).
extension ClusterSimulator {
    /// A shopper in a warehouse owner's region calls that node (cut off or not): a reserve for its
    /// region, or a confirm, release or extend of one it was granted there.
    func localClientStep() {
        let owners = generator.warehouses.filter { $0.owner.map { nodes[$0]?.driver != nil } ?? false }
        guard let warehouse = owners.randomElement(using: &random), let owner = warehouse.owner else { return }
        // Sorted: a dictionary's order differs between processes, and the seed must replay exactly.
        let mine = acknowledged.filter { $0.value.token.rawValue >= LocalGrant.tokenBase && ($0.value.token.rawValue >> 48) & 0x7FFF == owner }
            .keys.sorted()
        if let id = mine.randomElement(using: &random), Bool.random(using: &random) {
            let commands: [Command] = [.confirm(id), .release(id), .extend(id, ttlMs: Int64.random(in: 1...30, using: &random) * 1000)]
            call(commands.randomElement(using: &random)!, on: owner)
            return
        }
        var request = generator.reserveRequest()
        request.region = warehouse.regions.randomElement(using: &random) ?? request.region
        call(.reserve(request), on: owner)
    }

    /// A damaged record in a stopped node's local log: recovery truncates the log there (as
    /// `RecordFile.recover` does at the first bad record). Only records the committed ledger has
    /// already taken in are cut, so nothing acknowledged and unreconciled is lost with them; what
    /// the node must not do is number new grants with the sequences it lost.
    func damageLocalLog(_ id: NodeID) {
        let records = nodes[id]!.disk.local
        guard let progress = reference?.localProgress[id] else { return }
        var cut = records.count
        while cut > 0 {
            switch records[cut - 1] {
            case .hold(let sequence, _), .returned(let sequence, _):
                guard sequence <= progress.sequence else { break }
                cut -= 1
                continue
            case .handover(let through):
                guard through <= progress.sequence else { break }
                cut -= 1
                continue
            case .resolved:
                cut -= 1
                continue
            case .opened, .epoch, .damaged:
                break
            }
            break
        }
        // Only the current epoch's records (after its `.epoch` record) can be reflected by `progress`.
        guard cut < records.count, let store = localHolds(of: id), store.epoch == progress.epoch, store.nonce == progress.nonce
        else { return }
        let keep = Int.random(in: cut..<records.count, using: &damageRandom)
        // Recovery cuts the file and marks it, durably, before the node starts.
        nodes[id]!.disk.local = Array(records.prefix(keep)) + [.damaged]
        damagedLocalLogs += 1
    }

    /// Node `id`'s local log as its disk holds it (nil before it wrote one).
    func localHolds(of id: NodeID) -> LocalHolds? {
        let records = nodes[id]!.disk.local
        guard !records.isEmpty else { return nil }
        do {
            return try LocalHolds(node: id, recovering: records)
        } catch {
            violations.append("node \(id) cannot read its local log: \(error)")
            return nil
        }
    }

    /// The bounded counter: what each node's provisional holds (and returns) consume beyond what
    /// the most advanced ledger has taken in never exceeds that node's reserve in that ledger. With
    /// the ledger's own no-oversell, nothing is promised twice. Also: no provisional hold expires
    /// early by the majority's clocks, however far its node's clock jumped.
    func checkEscrow() {
        for id in nodeIDs {
            guard let ledger = nodes[id]!.driver?.ledger, ledger.appliedIndex > reference?.appliedIndex ?? 0 else { continue }
            reference = ledger
        }
        guard let truth = reference else { return }
        let timeBoundMs = limits.clockSkewMaxMs + limits.clockRoundTripMaxMs + 1_500
        for id in nodeIDs {
            if let driver = nodes[id]!.driver {
                for entry in driver.local.entries.values where entry.hold.status == .expired && driver.local.isLocal(entry)
                    && entry.hold.expiresAtMs > majorityWallMs + timeBoundMs
                {
                    violations.append(
                        "provisional hold \(entry.hold.reservationId) on node \(id) expired \(entry.hold.expiresAtMs - majorityWallMs) ms early by the majority's clocks; step \(step)")
                }
            }
            guard let store = nodes[id]!.driver?.local ?? (step % 10 == 0 ? localHolds(of: id) : nil), let epoch = store.epoch
            else { continue }
            let progress = truth.localProgress[id]
            let reflected = progress?.epoch == epoch ? progress!.sequence : 0
            var consumed: [RowKey: Int64] = [:]
            for entry in store.entries.values
            where entry.grantSequence > reflected && (entry.hold.status == .held || entry.hold.status == .confirmed) {
                for allocation in entry.hold.allocations {
                    consumed[RowKey(sku: allocation.sku, warehouse: allocation.warehouse), default: 0] += allocation.quantity
                }
            }
            for returned in store.returns where returned.sequence > reflected {
                for allocation in returned.allocations {
                    consumed[RowKey(sku: allocation.sku, warehouse: allocation.warehouse), default: 0] += allocation.quantity
                }
            }
            for (row, units) in consumed {
                let reserve = truth.allotments[AllotmentKey(sku: row.sku, warehouse: row.warehouse, holder: .node(id))]?.quantity ?? 0
                if units > reserve {
                    violations.append(
                        "node \(id) spent \(units) of \(row.sku)@\(row.warehouse) on its own but holds \(reserve) in reserve (ledger at \(truth.appliedIndex), its own at \(nodes[id]!.driver?.ledger.appliedIndex ?? 0), reflected \(reflected), holds \(store.entries.values.map { "\($0.hold.reservationId)#\($0.grantSequence) \($0.hold.status.name) \($0.hold.allocations.map { "\($0.sku)@\($0.warehouse)×\($0.quantity)" })" }), returns \(store.returns.map(\.sequence))); step \(step)")
                }
            }
        }
    }

    /// Per node: its local epoch, provisional holds waiting, fallbacks taken, and its reserves in
    /// its own ledger (for `stockade-sim --seed`).
    public func localSummary() -> String {
        let layout = nodeIDs.compactMap { nodes[$0]!.driver?.ledger.warehouses }.first ?? []
        return "owners " + layout.map { "\($0.id)→\($0.owner.map { "n\($0)" } ?? "-") \($0.regions)" }.joined(separator: " ") + "; "
            + nodeIDs.map { id in
            guard let driver = nodes[id]!.driver else { return "n\(id) down" }
            let reserves = driver.ledger.allotments.filter { $0.key.holder == .node(id) }
                .map { "\($0.key.sku)@\($0.key.warehouse)=\($0.value.quantity)" }.sorted()
            return "n\(id) epoch \(driver.local.epoch.map(String.init) ?? "none") waiting \(driver.local.count) fallbacks \(driver.fallbacksTaken) reserves \(reserves)"
        }.joined(separator: "; ")
    }
}
