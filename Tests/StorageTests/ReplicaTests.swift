import Foundation
import Ledger
import Logging
import Metrics
import Node
import StockadeCore
import Testing

/// The replica end to end in one process: group commit, restart, snapshots.
@Suite struct ReplicaTests {
    static let layout = [
        Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1),
        Warehouse(id: WarehouseID("guangzhou"), regions: ["south"], priority: 2),
    ]

    static func open(_ directory: String, limits: Limits = .default) throws -> Replica {
        try Replica(
            configuration: .init(dataDirectory: directory, warehouses: layout, limits: limits),
            logger: Logger(label: "test"), metrics: ReplicaMetrics(factory: NOOPMetricsHandler.instance))
    }

    static func request(_ id: String, quantity: Int64 = 1) -> ReserveRequest {
        ReserveRequest(
            reservationId: ReservationID(id), orderId: "o-\(id)", region: "east",
            lines: [ReservationLine(sku: SKU("tee"), quantity: quantity)], ttlMs: 600_000, allowSplit: true)
    }

    /// Reserves `count` holds at once, ids `prefix0`, `prefix1`, …
    static func reserveConcurrently(_ replica: Replica, _ count: Int, prefix: String, quantity: Int64 = 1) async {
        await withTaskGroup(of: Void.self) { group in
            for number in 0..<count {
                group.addTask { _ = await replica.reserve(request("\(prefix)\(number)", quantity: quantity)) }
            }
        }
    }

    static func stopped(_ replica: Replica) async {
        replica.stop()
        await replica.waitForLoop()
    }

    @Test func concurrentReservationsShareFsyncsAndNeverOversell() async throws {
        let directory = NSTemporaryDirectory() + "stockade-replica-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let replica = try Self.open(directory)
        replica.startLoop()
        _ = await replica.propose(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 150))
        _ = await replica.propose(.setStock(sku: SKU("tee"), warehouse: WarehouseID("guangzhou"), total: 50))
        let before = replica.commitStats
        let granted = await withTaskGroup(of: Bool.self) { group in
            for number in 0..<500 {
                group.addTask {
                    if case .reservation = await replica.reserve(Self.request("r\(number)")) { return true }
                    return false
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        let after = replica.commitStats
        #expect(granted == 200)
        #expect(replica.read { $0.rows(of: SKU("tee"))!.map(\.row.held).reduce(0, +) } == 200)
        // Batching: fewer fsyncs than logged commands.
        #expect(after.batches - before.batches < after.entries - before.entries)
        await Self.stopped(replica)
    }

    @Test func restartRestoresExactlyTheAcknowledgedState() async throws {
        let directory = NSTemporaryDirectory() + "stockade-replica-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var limits = Limits()
        limits.snapshotIntervalEntries = limits.commitBatchMax  // several snapshots during the run
        let replica = try Self.open(directory, limits: limits)
        replica.startLoop()
        _ = await replica.propose(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 100_000))
        for round in 0..<6 {
            await Self.reserveConcurrently(replica, 500, prefix: "r\(round)-", quantity: 2)
            _ = await replica.propose(.confirm(ReservationID("r\(round)-1")))
            _ = await replica.propose(.release(ReservationID("r\(round)-2")))
        }
        let state = replica.read { $0.encodeSnapshot() }
        await Self.stopped(replica)
        #expect(replica.commitStats.snapshots >= 1)

        let reopened = try Self.open(directory, limits: limits)
        #expect(reopened.read { $0.encodeSnapshot() } == state)
        #expect(reopened.read { $0.invariantViolations() }.isEmpty)
        #expect(reopened.read { $0.activeHoldCount } == 6 * 498)
    }

    @Test func snapshotsKeepComingWhileEveryEntryAddsAHold() async throws {
        let directory = NSTemporaryDirectory() + "stockade-replica-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var limits = Limits()
        limits.snapshotIntervalEntries = limits.commitBatchMax
        let replica = try Self.open(directory, limits: limits)
        replica.startLoop()
        _ = await replica.propose(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 1_000_000))
        for round in 0..<18 { await Self.reserveConcurrently(replica, 500, prefix: "g\(round)-") }
        await Self.stopped(replica)
        #expect(replica.read { $0.activeHoldCount } == 9_000)
        // Due after about 1,024, 2,048, 4,096 and 8,192 entries (each time as many as the last
        // snapshot held). Compared with the holds at the time, only the first would ever be taken.
        #expect(replica.commitStats.snapshots >= 3)
        let reopened = try Self.open(directory, limits: limits)
        #expect(reopened.read { $0.activeHoldCount } == 9_000)
    }

    @Test func snapshotCadence() {
        #expect(!Ledger.snapshotDue(applied: 1_000, lastIndex: 0, lastHolds: 0, interval: 1_024))
        #expect(Ledger.snapshotDue(applied: 1_024, lastIndex: 0, lastHolds: 0, interval: 1_024))
        #expect(!Ledger.snapshotDue(applied: 5_000, lastIndex: 1_024, lastHolds: 5_000, interval: 1_024))
        #expect(Ledger.snapshotDue(applied: 6_024, lastIndex: 1_024, lastHolds: 5_000, interval: 1_024))
        #expect(!Ledger.snapshotDue(applied: 10, lastIndex: 20, lastHolds: 0, interval: 1))
    }

    @Test func aChangedLayoutIsLoggedAndARemovalWithStockIsRefused() async throws {
        let directory = NSTemporaryDirectory() + "stockade-replica-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let replica = try Self.open(directory)
        replica.startLoop()
        _ = await replica.propose(.setStock(sku: SKU("tee"), warehouse: WarehouseID("guangzhou"), total: 1))
        await Self.stopped(replica)
        #expect(throws: StockadeError.self) {
            try Replica(
                configuration: .init(dataDirectory: directory, warehouses: [Self.layout[0]]),
                logger: Logger(label: "test"), metrics: ReplicaMetrics(factory: NOOPMetricsHandler.instance))
        }
    }

    @Test func aFullQueueRefusesWithOverloaded() async throws {
        let directory = NSTemporaryDirectory() + "stockade-replica-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var limits = Limits()
        limits.pendingCommandsMax = 4
        limits.commitBatchMax = 4
        limits.snapshotIntervalEntries = 4
        let replica = try Self.open(directory, limits: limits)
        // The commit thread is not started, so the queue fills up; the fifth proposal is refused at once.
        let tasks = (0..<5).map { _ in Task { await replica.propose(.expireDue) } }
        let deadline = ContinuousClock.now + .seconds(30)
        while replica.commitStats.refused == 0 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        replica.startLoop()
        var outcomes: [Outcome] = []
        for task in tasks { outcomes.append(await task.value) }
        let overloaded = outcomes.filter { if case .rejected(let error, _) = $0 { error.code == .overloaded } else { false } }
        #expect(overloaded.count == 1)
        #expect(outcomes.count - overloaded.count == 4)
        await Self.stopped(replica)
    }
}
