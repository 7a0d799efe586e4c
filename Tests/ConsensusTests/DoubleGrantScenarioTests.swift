import Consensus
import Ledger
import Replication
import StockadeCore
import StockadeTesting
import Testing

/// Scripted partitions of a warehouse owner, on the simulated cluster running the production
/// driver: one reservation id reaching both sides, twice the same id on the cut-off node, a
/// restart while cut off, and a local log that lost its end. Each ends with the simulator's own
/// checks (every answer against the converged ledger) and asserts what the customer sees.
@Suite struct DoubleGrantScenarioTests {
    static let tee = SKU("tee")
    static let yiwu = WarehouseID("yiwu")
    static let owner: NodeID = 3

    /// Three nodes; n3 owns yiwu (east) and keeps a reserve of 5 tee there; 20 tee in stock.
    static func cluster() throws -> ClusterSimulator {
        let layout = [
            Warehouse(id: yiwu, regions: ["east"], priority: 1, owner: owner, localReserve: .units(5)),
            Warehouse(id: WarehouseID("beijing"), regions: ["north"], priority: 2),
        ]
        let simulator = ClusterSimulator(seed: 7, nodeCount: 3, localReserves: true, layout: layout)
        simulator.runSteps(200) { simulator.leader != nil }
        let leader = try #require(simulator.leader)
        let layoutCall = simulator.submit(.configureWarehouses(layout), to: leader)
        let stockCall = simulator.submit(.setStock(sku: tee, warehouse: yiwu, total: 20), to: leader)
        simulator.runSteps(400) {
            simulator.answer(stockCall) != nil && simulator.answer(layoutCall) != nil
                && simulator.driver(of: owner)?.local.epoch != nil
                && (simulator.ledger(of: owner)?.allotments[AllotmentKey(sku: tee, warehouse: yiwu, holder: .node(owner))]?.quantity ?? 0) == 5
        }
        #expect(simulator.driver(of: owner)?.local.epoch != nil, "the owner never learned its local epoch")
        return simulator
    }

    static func request(_ id: String, _ quantity: Int64 = 1, orderId: String? = nil, ttlMs: Int64 = 60_000) -> ReserveRequest {
        ReserveRequest(
            reservationId: ReservationID(id), orderId: orderId ?? "o-\(id)", region: "east",
            lines: [ReservationLine(sku: tee, quantity: quantity)], ttlMs: ttlMs, allowSplit: false)
    }

    /// Cuts the owner off and waits until the other two have a leader of their own.
    static func cutOffOwner(_ simulator: ClusterSimulator) throws -> NodeID {
        simulator.isolate(owner)
        simulator.runSteps(400) { simulator.leader.map { $0 != owner } ?? false }
        return try #require(simulator.leader.flatMap { $0 == owner ? nil : $0 })
    }

    /// Runs until `call` is answered and returns the answer.
    static func answer(_ simulator: ClusterSimulator, _ call: Int) throws -> Outcome {
        simulator.runSteps(400) { simulator.answer(call) != nil }
        return try #require(simulator.answer(call), "call \(call) was never answered")
    }

    /// Hole 1: a reservation granted by the majority, its retry granted again on the cut-off owner
    /// and confirmed there. After healing the sale stands: the ledger's hold is confirmed and its
    /// unit sold on every node.
    @Test func aConfirmOnTheCutOffNodeCarriesOntoTheMajoritysHold() throws {
        let simulator = try Self.cluster()
        let majority = try Self.cutOffOwner(simulator)
        guard case .reservation(let quorumHold, true) = try Self.answer(simulator, simulator.submit(.reserve(Self.request("dup-1")), to: majority))
        else { Issue.record("the majority did not grant"); return }
        #expect(quorumHold.path == .quorum)
        guard case .reservation(let localHold, true) = try Self.answer(simulator, simulator.submit(.reserve(Self.request("dup-1")), to: Self.owner))
        else { Issue.record("the cut-off owner did not grant locally"); return }
        #expect(localHold.path == .local && localHold.token != quorumHold.token)
        guard case .reservation(let confirmed, false) = try Self.answer(simulator, simulator.submit(.confirm(ReservationID("dup-1")), to: Self.owner))
        else { Issue.record("the confirm was refused"); return }
        #expect(confirmed.status == .confirmed && confirmed.finishedAtMs >= confirmed.createdAtMs)
        let violations = simulator.settle()
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        for id: NodeID in [1, 2, 3] {
            let ledger = try #require(simulator.ledger(of: id))
            let hold = try #require(ledger.hold(ReservationID("dup-1")))
            #expect(hold.token == quorumHold.token && hold.status == .confirmed, "n\(id): \(hold.status.name)")
            #expect(ledger.stock[Self.tee]![Self.yiwu]!.sold == 1)
            #expect(ledger.replayConflicts.isEmpty)
        }
    }

    /// The same with a release on the cut-off node: the units come back, the hold is not left to expire.
    @Test func aReleaseOnTheCutOffNodeCarriesOntoTheMajoritysHold() throws {
        let simulator = try Self.cluster()
        let majority = try Self.cutOffOwner(simulator)
        _ = try Self.answer(simulator, simulator.submit(.reserve(Self.request("dup-r")), to: majority))
        _ = try Self.answer(simulator, simulator.submit(.reserve(Self.request("dup-r")), to: Self.owner))
        _ = try Self.answer(simulator, simulator.submit(.release(ReservationID("dup-r")), to: Self.owner))
        #expect(simulator.settle().isEmpty)
        #expect(simulator.ledger(of: 1)?.hold(ReservationID("dup-r"))?.status == .released)
        #expect(simulator.ledger(of: 1)?.stock[Self.tee]![Self.yiwu]!.held == 0)
    }

    /// Another body under the same id on the cut-off node cannot be merged: the ledger's hold
    /// stands, and the conflict is recorded where every node shows it.
    @Test func anotherBodyUnderTheSameIdIsAVisibleConflict() throws {
        let simulator = try Self.cluster()
        let majority = try Self.cutOffOwner(simulator)
        _ = try Self.answer(simulator, simulator.submit(.reserve(Self.request("dup-c", 1)), to: majority))
        guard case .reservation(let local, true) = try Self.answer(simulator, simulator.submit(.reserve(Self.request("dup-c", 2)), to: Self.owner))
        else { Issue.record("no local grant"); return }
        _ = try Self.answer(simulator, simulator.submit(.confirm(ReservationID("dup-c")), to: Self.owner))
        #expect(simulator.settle().isEmpty)
        for id: NodeID in [1, 2, 3] {
            let conflicts = simulator.ledger(of: id)?.conflicts(of: ReservationID("dup-c")) ?? []
            #expect(conflicts.map(\.replayed.token) == [local.token] && conflicts.first?.reason == .otherRequest)
            #expect(simulator.ledger(of: id)?.conflictFindings().count == 1)
        }
    }

    /// Hole 2: two requests for one id waiting together on the cut-off node get one grant; the
    /// other is a replay (same body) or a conflict (another body), never a second hold.
    @Test func twoRequestsForOneIdOnTheCutOffNodeGetOneGrant() throws {
        let simulator = try Self.cluster()
        _ = try Self.cutOffOwner(simulator)
        let first = simulator.submit(.reserve(Self.request("dup-2", 1)), to: Self.owner)
        let second = simulator.submit(.reserve(Self.request("dup-2", 3)), to: Self.owner)
        let same = simulator.submit(.reserve(Self.request("dup-2", 1)), to: Self.owner)
        simulator.runSteps(400) { [first, second, same].allSatisfy { simulator.answer($0) != nil } }
        guard case .reservation(let granted, true) = simulator.answer(first) else {
            Issue.record("first: \(String(describing: simulator.answer(first)))"); return
        }
        guard case .rejected(let conflict, _) = simulator.answer(second) else {
            Issue.record("second: \(String(describing: simulator.answer(second)))"); return
        }
        #expect(conflict.code == .idempotencyConflict)
        guard case .reservation(let replayed, false) = simulator.answer(same) else {
            Issue.record("same body: \(String(describing: simulator.answer(same)))"); return
        }
        #expect(replayed.token == granted.token)
        #expect(simulator.settle().isEmpty)
        #expect(simulator.ledger(of: 1)?.hold(ReservationID("dup-2"))?.token == granted.token)
    }

    /// Hole 3: a node restarted while cut off has seen no agreed time since it started, and its
    /// wall clock alone (here three hours slow) would decide when a hold expires: it grants nothing.
    @Test func aNodeRestartedWhileCutOffGrantsNothingUntilItSeesAgreedTime() throws {
        let simulator = try Self.cluster()
        _ = try Self.cutOffOwner(simulator)
        simulator.jumpClock(of: Self.owner, byMs: -3 * 3_600_000)
        simulator.restart(Self.owner)
        simulator.runSteps(5)
        // Back with everything it had applied: its layout, its reserve and its local epoch.
        #expect(simulator.ledger(of: Self.owner)?.allotments[AllotmentKey(sku: Self.tee, warehouse: Self.yiwu, holder: .node(Self.owner))]?.quantity == 5)
        #expect(simulator.driver(of: Self.owner)?.local.epoch != nil)
        guard case .rejected(let error, _) = try Self.answer(simulator, simulator.submit(.reserve(Self.request("late-1")), to: Self.owner))
        else { Issue.record("granted on a wall clock alone"); return }
        #expect(error.code == .quorumUnavailable)
        simulator.jumpClock(of: Self.owner, byMs: 0)
        #expect(simulator.settle().isEmpty)
    }

    /// Hole 4: a local log that lost its end after the ledger took it in must not reuse the lost
    /// sequences (the ledger would skip the new grants as already seen): the node opens a new
    /// epoch, and a grant made after it reaches the ledger.
    /// Recovery that notices the cut (`damaged`) opens a new epoch at once; one that does not is
    /// told by the ledger's progress.
    @Test(arguments: [true, false]) func aTruncatedLocalLogStartsANewEpochInsteadOfReusingSequences(_ noticed: Bool) throws {
        let simulator = try Self.cluster()
        _ = try Self.cutOffOwner(simulator)
        for id in ["t-1", "t-2"] {
            guard case .reservation(_, true) = try Self.answer(simulator, simulator.submit(.reserve(Self.request(id)), to: Self.owner)) else {
                Issue.record("\(id) not granted locally"); return
            }
        }
        #expect(simulator.settle().isEmpty)
        let epoch = try #require(simulator.ledger(of: 1)?.localProgress[Self.owner])
        #expect(epoch.sequence >= 2)
        // Lose everything after the first grant, and start again connected.
        simulator.truncateLocalLog(of: Self.owner, keeping: 3, damaged: noticed)
        simulator.runSteps(400) {
            (simulator.driver(of: Self.owner)?.local.epoch ?? 0) > epoch.epoch
                && simulator.ledger(of: Self.owner)?.localProgress[Self.owner]?.epoch ?? 0 > epoch.epoch
        }
        #expect(simulator.driver(of: Self.owner)?.local.epoch == epoch.epoch + 1, "no new epoch after the truncated log")
        _ = try Self.cutOffOwner(simulator)
        guard case .reservation(let late, true) = try Self.answer(simulator, simulator.submit(.reserve(Self.request("t-3")), to: Self.owner)) else {
            Issue.record("t-3 not granted locally"); return
        }
        let violations = simulator.settle()
        #expect(violations.isEmpty, "\(violations.prefix(3))")
        #expect(simulator.ledger(of: 1)?.hold(ReservationID("t-3"))?.token == late.token)
    }
}
