@testable import Ledger
import StockadeCore
import Testing

/// Local reserves: a node's escrowed units, refilled by the leader and spent only by the node's
/// own replayed records (docs/local-fallback.md).
@Suite struct LocalReserveTests {
    static let node: UInt64 = 2
    static let yiwuReserve = AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .node(node))

    static func harness() -> LedgerTests.Harness {
        var harness = LedgerTests.Harness()
        var layout = LedgerTests.layout
        layout[0].owner = node
        layout[0].localReserve = .percent(20)
        harness.apply(.configureWarehouses(layout))
        harness.stock("tee", "yiwu", 100)
        harness.stock("tee", "beijing", 5)
        return harness
    }

    static func provisional(
        _ id: String, _ quantity: Int64, sequence: UInt64, epoch: UInt64 = 1, status: HoldStatus = .held
    ) -> Hold {
        let local = LocalGrant(node: node, epoch: epoch, sequence: sequence, term: 3)
        return Hold(
            reservationId: ReservationID(id), orderId: "order-\(id)", region: "east",
            allocations: [Allocation(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), quantity: quantity)], ttlMs: 60_000,
            allowSplit: false, path: .local, token: local.token, createdAtMs: 1_000_000, expiresAtMs: 1_060_000, status: status,
            finishedAtMs: status == .held ? 0 : 1_000_500, local: local)
    }

    @Test func theLeaderRefillsAReserveBelowItsLowWaterMarkToItsTarget() {
        var harness = Self.harness()
        #expect(harness.ledger.localReserveTarget(RowKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu")))! == (2, 20, 0))
        let refills = harness.ledger.localReserveRefills(lowWaterPercent: 50, limit: 10)
        #expect(refills.count == 1 && refills[0].key == Self.yiwuReserve && refills[0].quantity == 20)
        harness.apply(.grantAllotment(Self.yiwuReserve, quantity: 20))
        #expect(harness.ledger.stock[SKU("tee")]![WarehouseID("yiwu")]!.allotted == 20)
        // Above the low-water mark nothing more is asked for; a SKU's own policy overrides the warehouse's.
        #expect(harness.ledger.localReserveRefills(lowWaterPercent: 50, limit: 10).isEmpty)
        harness.apply(.setLocalReserve(RowKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu")), .units(60)))
        #expect(harness.ledger.localReserveRefills(lowWaterPercent: 50, limit: 10).first?.quantity == 40)
    }

    @Test func aReserveNeedsAnOwnedWarehouseAndAValidPolicy() {
        var harness = Self.harness()
        let beijing = RowKey(sku: SKU("tee"), warehouse: WarehouseID("beijing"))
        guard case .rejected(let error, _) = harness.apply(.setLocalReserve(beijing, .units(3))) else {
            Issue.record("a warehouse without an owner took a reserve")
            return
        }
        #expect(error.code == .invalidState)
        let yiwu = RowKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"))
        guard case .rejected(let tooMuch, _) = harness.apply(.setLocalReserve(yiwu, .percent(101))) else {
            Issue.record("101 percent accepted")
            return
        }
        #expect(tooMuch.code == .invalidRequest)
    }

    @Test func onlyTheNodeGivesBackItsReserve() {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuReserve, quantity: 20))
        guard case .rejected(let error, _) = harness.apply(.returnAllotment(Self.yiwuReserve, quantity: 5)) else {
            Issue.record("a reserve was returned by someone else")
            return
        }
        #expect(error.code == .invalidRequest)
        harness.apply(.beginLocalEpoch(node: Self.node, nonce: 77))
        harness.apply(
            .reconcileLocal(
                LocalReconcile(
                    node: Self.node, epoch: 1, throughSequence: 1, holds: [],
                    returns: [LocalReturn(sequence: 1, allocation: Allocation(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), quantity: 5))])))
        #expect(harness.ledger.allotments[Self.yiwuReserve]?.quantity == 15)
        // The same return in a later batch counts once.
        harness.apply(
            .reconcileLocal(
                LocalReconcile(
                    node: Self.node, epoch: 1, throughSequence: 2, holds: [],
                    returns: [LocalReturn(sequence: 1, allocation: Allocation(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), quantity: 5))])))
        #expect(harness.ledger.allotments[Self.yiwuReserve]?.quantity == 15)
    }

    @Test func reconcilingMovesUnitsFromTheReserveOnceAndFencesByEpoch() {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuReserve, quantity: 20))
        guard case .localEpoch(_, let progress) = harness.apply(.beginLocalEpoch(node: Self.node, nonce: 77)) else {
            Issue.record("no epoch")
            return
        }
        #expect(progress.epoch == 1)
        let batch = LocalReconcile(
            node: Self.node, epoch: 1, throughSequence: 3,
            holds: [
                Self.provisional("p1", 4, sequence: 1), Self.provisional("p2", 3, sequence: 2, status: .confirmed),
                Self.provisional("p3", 5, sequence: 3, status: .released),
            ])
        #expect(harness.apply(.reconcileLocal(batch)) == .localReconciled(duplicate: false, [.applied, .applied, .applied]))
        let row = harness.ledger.stock[SKU("tee")]![WarehouseID("yiwu")]!
        #expect(row.held == 4 && row.sold == 3 && row.allotted == 13)
        #expect(harness.ledger.hold(ReservationID("p1"))?.local?.node == Self.node)
        // The same batch again, or one from a stale epoch, changes nothing.
        #expect(harness.apply(.reconcileLocal(batch)) == .localReconciled(duplicate: true, []))
        harness.apply(.beginLocalEpoch(node: Self.node, nonce: 78))
        var stale = batch
        stale.throughSequence = 9
        guard case .rejected(let error, _) = harness.apply(.reconcileLocal(stale)) else {
            Issue.record("a stale epoch was replayed")
            return
        }
        #expect(error.code == .invalidState)
        #expect(harness.ledger.stock[SKU("tee")]![WarehouseID("yiwu")]! == row)
    }

    /// Another request under an id the ledger holds cannot be merged: the ledger's hold stands,
    /// the reserve keeps the provisional units, and the conflict is recorded (and survives a snapshot).
    @Test func anIdGrantedOnBothSidesForAnotherRequestIsARecordedConflict() throws {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuReserve, quantity: 20))
        harness.apply(.beginLocalEpoch(node: Self.node, nonce: 1))
        _ = harness.reserve("both", [("tee", 2)])
        let provisional = Self.provisional("both", 4, sequence: 1)
        let batch = LocalReconcile(node: Self.node, epoch: 1, throughSequence: 1, holds: [provisional])
        #expect(harness.apply(.reconcileLocal(batch)) == .localReconciled(duplicate: false, [.conflict]))
        #expect(harness.ledger.hold(ReservationID("both"))?.path == .quorum)
        #expect(harness.ledger.allotments[Self.yiwuReserve]?.quantity == 20)
        let conflicts = harness.ledger.conflicts(of: ReservationID("both"))
        #expect(conflicts.count == 1 && conflicts[0].reason == .otherRequest && conflicts[0].replayed == provisional)
        #expect(harness.ledger.conflictFindings().map(\.check) == [.conflict])
        let restored = try Ledger(snapshot: harness.ledger.encodeSnapshot(), limits: harness.ledger.limits)
        #expect(restored.replayConflicts == harness.ledger.replayConflicts)
    }

    /// The same request granted on both sides: what the client did to the provisional hold
    /// carries onto the ledger's hold. Confirmed there, it is sold here; released there, it is
    /// released here; a later expiry extends it; a confirm against a hold the ledger already
    /// released is a conflict, never dropped.
    @Test(arguments: [HoldStatus.held, .confirmed, .released, .expired])
    func theSameRequestGrantedOnBothSidesCarriesItsLifecycle(_ status: HoldStatus) {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuReserve, quantity: 20))
        harness.apply(.beginLocalEpoch(node: Self.node, nonce: 1))
        let provisional = Self.provisional("both", 2, sequence: 1, status: status)
        guard case .reservation(let ledgerHold, true) = harness.reserve("both", [("tee", 2)]) else {
            Issue.record("not granted")
            return
        }
        let before = harness.ledger.stock[SKU("tee")]![WarehouseID("yiwu")]!
        let batch = LocalReconcile(node: Self.node, epoch: 1, throughSequence: 1, holds: [provisional])
        #expect(harness.apply(.reconcileLocal(batch)) == .localReconciled(duplicate: false, [.superseded]))
        let hold = harness.ledger.hold(ReservationID("both"))!
        let row = harness.ledger.stock[SKU("tee")]![WarehouseID("yiwu")]!
        #expect(hold.token == ledgerHold.token && row.allotted == 20 && harness.ledger.replayConflicts.isEmpty)
        switch status {
        case .confirmed: #expect(hold.status == .confirmed && row.sold == before.sold + 2 && row.held == before.held - 2)
        case .released: #expect(hold.status == .released && row.held == before.held - 2)
        case .held, .expired: #expect(hold.status == .held && row == before)
        }
        if status == .held { #expect(hold.expiresAtMs == max(provisional.expiresAtMs, ledgerHold.expiresAtMs)) }
        // A confirm made where the ledger's hold had already been released cannot be honoured: shown.
        if status == .confirmed {
            var other = Self.harness()
            other.apply(.grantAllotment(Self.yiwuReserve, quantity: 20))
            other.apply(.beginLocalEpoch(node: Self.node, nonce: 1))
            _ = other.reserve("both", [("tee", 2)])
            other.apply(.release(ReservationID("both")))
            #expect(other.apply(.reconcileLocal(batch)) == .localReconciled(duplicate: false, [.conflict]))
            #expect(other.ledger.conflicts(of: ReservationID("both")).first?.reason == .confirmedButFinished)
        }
    }

    @Test func aProvisionalHoldTheReserveDoesNotCoverIsRefused() {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuReserve, quantity: 3))
        harness.apply(.beginLocalEpoch(node: Self.node, nonce: 1))
        let batch = LocalReconcile(node: Self.node, epoch: 1, throughSequence: 1, holds: [Self.provisional("big", 4, sequence: 1)])
        #expect(harness.apply(.reconcileLocal(batch)) == .localReconciled(duplicate: false, [.refused]))
        #expect(harness.ledger.hold(ReservationID("big")) == nil)
    }

    @Test func localTokensCollideWithNeitherLogIndicesNorCacheTokens() {
        let token = LocalGrant(node: 0x7FFF, epoch: 300, sequence: LocalGrant.sequenceMax, term: 1).token.rawValue
        #expect(token >= LocalGrant.tokenBase && LocalGrant.tokenBase > CacheHold.tokenBase)
        #expect(LocalGrant(node: 1, epoch: 1, sequence: 1, term: 1).token != LocalGrant(node: 2, epoch: 1, sequence: 1, term: 1).token)
    }
}
