import Ledger
import Replication
import StockadeCore
import Testing

/// A node's provisional holds, pure: the bounded-counter accounting, the lifecycle under the
/// ledger's rule, handover, reconciliation against a real ledger, and recovery from the records.
@Suite struct LocalHoldsTests {
    static let node: UInt64 = 3

    /// A ledger where node 3 owns yiwu and holds a reserve of `reserve` units of tee there.
    static func ledger(reserve: Int64) -> (Ledger, LogIndex) {
        var ledger = Ledger()
        var index: LogIndex = 0
        func apply(_ command: Command) {
            index += 1
            _ = ledger.apply(TimedCommand(command, timeMs: 1_000_000), index: index)
        }
        apply(.configureWarehouses([Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1, owner: node)]))
        apply(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 100))
        apply(.grantAllotment(AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .node(node)), quantity: reserve))
        apply(.beginLocalEpoch(node: node, nonce: 42))
        return (ledger, index)
    }

    static func request(_ id: String, _ quantity: Int64, region: String = "east") -> ReserveRequest {
        ReserveRequest(
            reservationId: ReservationID(id), orderId: "o-\(id)", region: region, lines: [ReservationLine(sku: SKU("tee"), quantity: quantity)],
            ttlMs: 60_000, allowSplit: false)
    }

    static let row = RowKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"))

    @Test func aNodeSpendsOnlyItsReserveLessWhatItSpentAndOnlyForItsRegions() {
        let (ledger, _) = Self.ledger(reserve: 5)
        var local = LocalHolds(node: Self.node, nonce: 42)
        local.open()
        // No epoch known yet: nothing is granted.
        #expect(local.grant(Self.request("a", 1), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits()) == nil)
        local.follow(ledger)
        #expect(local.epoch == 1)
        guard case .reservation(let hold, true)? = local.grant(Self.request("a", 3), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        else {
            Issue.record("no grant")
            return
        }
        #expect(hold.path == .local && hold.local?.node == Self.node && hold.token.rawValue >= LocalGrant.tokenBase)
        #expect(local.spendable(Self.row, in: ledger) == 2)
        #expect(local.grant(Self.request("b", 3), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits()) == nil)
        #expect(local.grant(Self.request("c", 1, region: "north"), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits()) == nil)
        // Released, its units are spendable again; a replay answers the hold, another body conflicts.
        #expect(local.replay(Self.request("a", 3)) == .reservation(hold, created: false))
        guard case .rejected(let conflict, _)? = local.replay(Self.request("a", 2)) else {
            Issue.record("no conflict")
            return
        }
        #expect(conflict.code == .idempotencyConflict)
        _ = local.step(ReservationID("a"), .release, timeMs: 2_000, expiryTimeMs: 2_000, limits: Limits())
        #expect(local.spendable(Self.row, in: ledger) == 5)
    }

    /// The audit's local check: provisional units within the escrowed reserve are clean; more
    /// than the ledger escrows (here, a ledger whose reserve is smaller) is reported with both numbers.
    @Test func theAuditReportsProvisionalUnitsBeyondTheReserve() {
        let (ledger, _) = Self.ledger(reserve: 5)
        var local = LocalHolds(node: Self.node, nonce: 42)
        local.open()
        local.follow(ledger)
        _ = local.grant(Self.request("a", 3), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        #expect(local.audit(in: ledger).isEmpty)
        let (smaller, _) = Self.ledger(reserve: 2)
        let findings = local.audit(in: smaller)
        #expect(findings.map { "\($0.check.rawValue) \($0.ledger)/\($0.derived)" } == ["local 2/3"])
        #expect(local.audit(in: smaller, sku: SKU("other")).isEmpty)
    }

    @Test func handedOverHoldsAreTheLedgersAndReconcileOnce() throws {
        var (ledger, index) = Self.ledger(reserve: 10)
        var local = LocalHolds(node: Self.node, nonce: 42)
        local.open()
        local.follow(ledger)
        _ = local.grant(Self.request("a", 2), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        _ = local.grant(Self.request("b", 3), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        _ = local.step(ReservationID("b"), .confirm, timeMs: 1_500, expiryTimeMs: 1_500, limits: Limits())
        let next = local.nextBatch(limits: Limits())
        let batch = try #require(next)
        #expect(batch.holds.map(\.reservationId.rawValue) == ["a", "b"] && batch.holds[1].status == .confirmed)
        // Handed over: the node no longer changes them on its own.
        guard case .rejected(let busy, _)? = local.step(ReservationID("a"), .confirm, timeMs: 1_600, expiryTimeMs: 1_600, limits: Limits())
        else {
            Issue.record("a handed-over hold changed locally")
            return
        }
        #expect(busy.code == .unavailable)
        let records = local.takeUnsaved()
        // Replayed twice: applied once.
        index += 1
        #expect(ledger.apply(TimedCommand(.reconcileLocal(batch), timeMs: 2_000), index: index) == .localReconciled(duplicate: false, [.applied, .applied]))
        index += 1
        #expect(ledger.apply(TimedCommand(.reconcileLocal(batch), timeMs: 2_000), index: index) == .localReconciled(duplicate: true, []))
        local.follow(ledger)
        #expect(local.count == 0 && local.pendingUnits.isEmpty)
        let row = ledger.stock[SKU("tee")]![WarehouseID("yiwu")]!
        #expect(row.held == 2 && row.sold == 3 && row.allotted == 5)
        #expect(local.spendable(Self.row, in: ledger) == 5)
        // The log read back gives the same store.
        let decoded = try records.map { try LocalRecord(decoding: $0.encoded(), limits: Limits()) }
        let recovered = try LocalHolds(node: Self.node, recovering: decoded)
        #expect(recovered.count == 2 && recovered.handedOverThrough == batch.throughSequence && recovered.epoch == 1)
        #expect(recovered.pendingUnits[Self.row] == 5)
    }

    @Test func anIdTheMajorityGrantedTooForAnotherBodyIsRecordedAsAConflict() throws {
        var (ledger, index) = Self.ledger(reserve: 10)
        var local = LocalHolds(node: Self.node, nonce: 42)
        local.open()
        local.follow(ledger)
        _ = local.grant(Self.request("both", 2), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        index += 1
        _ = ledger.apply(TimedCommand(.reserve(Self.request("both", 1)), timeMs: 1_000), index: index)
        let next = local.nextBatch(limits: Limits())
        let batch = try #require(next)
        index += 1
        // Another body under the same id: a conflict, recorded in the ledger and by the node.
        guard case .localReconciled(false, let results) = ledger.apply(TimedCommand(.reconcileLocal(batch), timeMs: 2_000), index: index)
        else { Issue.record("not reconciled"); return }
        #expect(results == [.conflict])
        local.noteResults(of: batch, results)
        local.follow(ledger)
        #expect(local.resolutions[ReservationID("both")]?.result == .conflict)
        #expect(local.spendable(Self.row, in: ledger) == 10)
    }

    /// A log the ledger took in beyond what it still holds (its end was lost) numbers nothing
    /// more: it opens a new log under a new nonce, and reading the whole file back gives the new
    /// log, not the old one's entries. A log recovery cut short says so durably and grants nothing.
    @Test func aLogBehindTheLedgerReopensAndReadsBackAsTheNewLog() throws {
        var (ledger, index) = Self.ledger(reserve: 10)
        var local = LocalHolds(node: Self.node, nonce: 42)
        local.open()
        local.follow(ledger)
        _ = local.grant(Self.request("a", 1), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        _ = local.grant(Self.request("b", 1), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits())
        let next = local.nextBatch(limits: Limits())
        let batch = try #require(next)
        index += 1
        _ = ledger.apply(TimedCommand(.reconcileLocal(batch), timeMs: 2_000), index: index)
        // The log loses its last hold record and what followed it.
        let records = local.takeUnsaved()
        let kept = Array(records.prefix { if case .hold(2, _) = $0 { return false } else { return true } })
        var cut = try LocalHolds(node: Self.node, recovering: kept)
        #expect(cut.nextSequence == 2)
        cut.follow(ledger)
        #expect(cut.mustReopen)
        #expect(cut.grant(Self.request("c", 1), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits()) == nil)
        cut.reopen(nonce: 43)
        #expect(cut.epoch == nil && cut.nonce == 43 && cut.nextSequence == 1 && !cut.mustReopen)
        let reread = try LocalHolds(node: Self.node, recovering: kept + cut.takeUnsaved())
        #expect(reread.nonce == 43 && reread.epoch == nil && reread.count == 0 && reread.pendingUnits.isEmpty)
        // Recovery that cut the file marks it (`damaged`, written by the storage): no grant in this epoch.
        var damaged = try LocalHolds(node: Self.node, recovering: kept + [.damaged])
        #expect(damaged.damaged)
        #expect(damaged.grant(Self.request("d", 1), ledger: ledger, term: 2, timeMs: 1_000, limits: Limits()) == nil)
        #expect(try LocalRecord(decoding: LocalRecord.damaged.encoded(), limits: Limits()) == .damaged)
    }
}
