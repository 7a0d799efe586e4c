import Ledger
import StockadeCore

/// Generates random command histories against a ledger: reserves (with repeats and conflicting
/// replays), confirms, releases, extends, expiries, stock sets and adjustments, over random
/// layouts, regions and quantities. Time moves forward in random steps. With `allotments`, also
/// hot status, allotment grants and returns, and batches of cache holds (new, redelivered,
/// colliding with quorum reservations, uncovered or malformed).
public struct HistoryGenerator {
    /// Whether histories include hot-path commands. Off by default, so that the random stream (and
    /// every recorded simulator seed) stays what it was before they existed.
    public var allotments = false
    /// Whether histories include local reserves: owned warehouses, reserve policies and refills,
    /// local epochs and reconcile batches of provisional holds (new, replayed, colliding with
    /// ledger holds, uncovered, malformed, from a stale epoch). Off by default, like `allotments`.
    public var localReserves = false
    private var localHolds: [Hold] = []
    private var localEpochs: [UInt64: UInt64] = [:]
    /// The epoch the ledger numbered for each node's latest nonce, as the generator expects it.
    private var expectedEpochs: [UInt64: UInt64] = [:]
    private var localSequences: [UInt64: UInt64] = [:]
    private var cacheHolds: [CacheHold] = []
    private var nextCacheToken: UInt64 = 0
    public var random: SplitMix64
    public internal(set) var warehouses: [Warehouse]
    public let skus: [SKU]
    public let regions: [String]
    public private(set) var timeMs: Int64 = 1_700_000_000_000
    private var requests: [ReserveRequest] = []
    private var nextReservation = 0

    public init(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        let regionNames = ["east", "south", "north", "west", "central"]
        let count = Int.random(in: 1...4, using: &random)
        var warehouses: [Warehouse] = []
        for index in 0..<count {
            let regions = regionNames.filter { _ in Bool.random(using: &random) }
            warehouses.append(
                Warehouse(id: WarehouseID("w\(index)"), regions: regions, priority: Int64.random(in: 0...3, using: &random)))
        }
        self.warehouses = warehouses
        self.skus = (0..<Int.random(in: 1...5, using: &random)).map { SKU("sku\($0)") }
        self.regions = regionNames
        self.random = random
    }

    /// Gives some warehouses an owning node (of `1...nodeCount`) and a default local reserve, with
    /// draws from `random` (so the generator's own stream stays what it was).
    public mutating func assignOwners(nodeCount: Int, random: inout SplitMix64) {
        for index in warehouses.indices where Int.random(in: 0..<5, using: &random) > 0 {
            warehouses[index].owner = UInt64.random(in: 1...UInt64(nodeCount), using: &random)
            warehouses[index].localReserve =
                Bool.random(using: &random)
                ? .percent(Int64.random(in: 20...70, using: &random)) : .units(Int64.random(in: 2...10, using: &random))
            if warehouses[index].regions.isEmpty { warehouses[index].regions = [regions.randomElement(using: &random)!] }
        }
    }

    /// The commands that set up the layout and some initial stock.
    public mutating func setup() -> [TimedCommand] {
        if localReserves {
            for index in warehouses.indices where Bool.random(using: &random) {
                warehouses[index].owner = UInt64.random(in: 1...3, using: &random)
                if Bool.random(using: &random) { warehouses[index].localReserve = .percent(Int64.random(in: 0...60, using: &random)) }
            }
        }
        var commands = [TimedCommand(.configureWarehouses(warehouses), timeMs: timeMs)]
        for sku in skus {
            for warehouse in warehouses where Bool.random(using: &random) {
                commands.append(
                    TimedCommand(
                        .setStock(sku: sku, warehouse: warehouse.id, total: Int64.random(in: 0...20, using: &random)),
                        timeMs: timeMs))
            }
        }
        return commands
    }

    /// The next random command.
    public mutating func next() -> TimedCommand {
        timeMs += Int64.random(in: 0...4_000, using: &random)
        let roll = Int.random(in: 0..<100, using: &random)
        if allotments && roll < 30 { return TimedCommand(allotmentCommand(), timeMs: timeMs) }
        if localReserves && roll >= 30 && roll < 55 { return TimedCommand(localCommand(), timeMs: timeMs) }
        let command: Command
        switch roll {
        case 0..<40: command = .reserve(reserveRequest())
        case 40..<52: command = .confirm(knownOrUnknownID())
        case 52..<64: command = .release(knownOrUnknownID())
        case 64..<72: command = .extend(knownOrUnknownID(), ttlMs: Int64.random(in: -1_000...60_000, using: &random))
        case 72..<84: command = .expireDue
        case 84..<92:
            command = .adjustStock(
                sku: skus.randomElement(using: &random)!, warehouse: warehouses.randomElement(using: &random)!.id,
                delta: Int64.random(in: -8...10, using: &random), reason: "recount")
        case 92..<97:
            command = .setStock(
                sku: randomSKU(), warehouse: warehouses.randomElement(using: &random)!.id,
                total: Int64.random(in: -1...25, using: &random))
        default:
            // Occasionally reshape the layout (priorities and regions); removals may be refused.
            var layout = warehouses
            for index in layout.indices { layout[index].priority = Int64.random(in: 0...3, using: &random) }
            if Int.random(in: 0..<4, using: &random) == 0, layout.count > 1 { layout.removeLast() }
            command = .configureWarehouses(layout)
        }
        return TimedCommand(command, timeMs: timeMs)
    }

    mutating func allotmentCommand() -> Command {
        let key = AllotmentKey(sku: randomSKU(), warehouse: warehouses.randomElement(using: &random)!.id, holder: .cache)
        switch Int.random(in: 0..<10, using: &random) {
        case 0: return .setHot(randomSKU(), Bool.random(using: &random))
        case 1..<4: return .grantAllotment(key, quantity: Int64.random(in: 0...12, using: &random))
        case 4: return .returnAllotment(key, quantity: Int64.random(in: 0...12, using: &random))
        default:
            var batch: [CacheHold] = []
            for _ in 0..<Int.random(in: 1...4, using: &random) { batch.append(cacheHold()) }
            return .applyAllotmentHolds(batch)
        }
    }

    mutating func localCommand() -> Command {
        let node = UInt64.random(in: 1...3, using: &random)
        let row = RowKey(sku: randomSKU(), warehouse: warehouses.randomElement(using: &random)!.id)
        switch Int.random(in: 0..<10, using: &random) {
        case 0:
            let policy: LocalReservePolicy? =
                switch Int.random(in: 0..<4, using: &random) {
                case 0: nil
                case 1: .units(Int64.random(in: -1...15, using: &random))
                default: .percent(Int64.random(in: 0...101, using: &random))
                }
            return .setLocalReserve(row, policy)
        case 1, 2:
            return .grantAllotment(
                AllotmentKey(sku: row.sku, warehouse: row.warehouse, holder: .node(node)),
                quantity: Int64.random(in: 0...10, using: &random))
        case 3:
            // A new local log (a node that lost its disk), or the same nonce again.
            let nonce = Bool.random(using: &random) ? localEpochs[node] ?? 1 : UInt64.random(in: 1...1_000, using: &random)
            if localEpochs[node] != nonce { expectedEpochs[node, default: 0] += 1 }
            localEpochs[node] = nonce
            return .beginLocalEpoch(node: node, nonce: nonce)
        default:
            var holds: [Hold] = []
            for _ in 0..<Int.random(in: 1...4, using: &random) { holds.append(localHold(node: node)) }
            let sequence = localSequences[node, default: 0]
            // Mostly the epoch the ledger numbered (the generator guesses it), sometimes a stale one.
            let epoch = Int.random(in: 0..<5, using: &random) == 0 ? UInt64.random(in: 1...3, using: &random) : expectedEpochs[node] ?? 1
            let returns =
                Int.random(in: 0..<4, using: &random) == 0
                ? [
                    LocalReturn(
                        sequence: UInt64.random(in: 0...sequence + 1, using: &random),
                        allocation: Allocation(sku: row.sku, warehouse: row.warehouse, quantity: Int64.random(in: 0...4, using: &random)))
                ] : []
            return .reconcileLocal(
                LocalReconcile(
                    node: node, epoch: epoch,
                    throughSequence: Bool.random(using: &random) ? sequence : UInt64.random(in: 0...sequence, using: &random),
                    holds: holds, returns: returns))
        }
    }

    mutating func localHold(node: UInt64) -> Hold {
        let roll = Int.random(in: 0..<10, using: &random)
        if roll == 0, let previous = localHolds.randomElement(using: &random) { return previous }  // replayed
        localSequences[node, default: 0] += 1
        let sequence = localSequences[node]!
        nextReservation += 1
        var id = ReservationID("l\(nextReservation)")
        if roll == 1, let quorum = requests.randomElement(using: &random) { id = quorum.reservationId }  // collision
        let allocations = (0..<Int.random(in: 1...2, using: &random)).map { index in
            Allocation(
                sku: skus[(index + Int.random(in: 0..<skus.count, using: &random)) % skus.count],
                warehouse: warehouses.randomElement(using: &random)!.id,
                quantity: roll == 2 ? 0 : Int64.random(in: 1...3, using: &random))
        }
        let local = LocalGrant(node: node, epoch: expectedEpochs[node] ?? 1, sequence: sequence, term: 1)
        let status = HoldStatus.allCases.randomElement(using: &random)!
        let createdAt = timeMs - Int64.random(in: 0...2_000, using: &random)
        let hold = Hold(
            reservationId: id, orderId: "o\(nextReservation)", region: regions.randomElement(using: &random)!,
            allocations: allocations, ttlMs: Int64.random(in: 1...30, using: &random) * 1000,
            allowSplit: allocations.count > 1 || Bool.random(using: &random), path: .local,
            token: roll == 3 ? FencingToken(sequence) : local.token, createdAtMs: createdAt,
            expiresAtMs: createdAt + 30_000, status: status, finishedAtMs: status == .held ? 0 : createdAt + 10, local: local)
        localHolds.append(hold)
        return hold
    }

    mutating func cacheHold() -> CacheHold {
        let roll = Int.random(in: 0..<10, using: &random)
        if roll == 0, let previous = cacheHolds.randomElement(using: &random) { return previous }  // redelivery
        nextCacheToken += 1
        nextReservation += 1
        var id = ReservationID("c\(nextReservation)")
        if roll == 1, let quorum = requests.randomElement(using: &random) { id = quorum.reservationId }  // collision
        let allocations = (0..<Int.random(in: 1...2, using: &random)).map { _ in
            Allocation(
                sku: skus.randomElement(using: &random)!, warehouse: warehouses.randomElement(using: &random)!.id,
                quantity: roll == 2 ? 0 : Int64.random(in: 1...3, using: &random))
        }
        let hold = CacheHold(
            reservationId: id, orderId: "o\(nextReservation)", region: regions.randomElement(using: &random)!,
            allocations: allocations, ttlMs: Int64.random(in: 1...30, using: &random) * 1000,
            allowSplit: allocations.count > 1 || Bool.random(using: &random),
            token: FencingToken(roll == 3 ? nextCacheToken : CacheHold.tokenBase + nextCacheToken),
            createdAtMs: timeMs - Int64.random(in: 0...2_000, using: &random))
        cacheHolds.append(hold)
        return hold
    }

    mutating func randomSKU() -> SKU {
        Int.random(in: 0..<10, using: &random) == 0 ? SKU("unknown-sku") : skus.randomElement(using: &random)!
    }

    mutating func knownOrUnknownID() -> ReservationID {
        if requests.isEmpty || Int.random(in: 0..<10, using: &random) == 0 { return ReservationID("never-made") }
        return requests.randomElement(using: &random)!.reservationId
    }

    public mutating func reserveRequest() -> ReserveRequest {
        // Replays: the same body again, or the same id with a different body.
        if !requests.isEmpty && Int.random(in: 0..<5, using: &random) == 0 {
            var request = requests.randomElement(using: &random)!
            if Bool.random(using: &random) { request.orderId += "-changed" }
            return request
        }
        nextReservation += 1
        let lineCount = Int.random(in: 1...min(3, skus.count), using: &random)
        let lines = skus.shuffled(using: &random).prefix(lineCount).map { sku in
            ReservationLine(
                sku: Int.random(in: 0..<20, using: &random) == 0 ? SKU("unknown-sku") : sku,
                quantity: Int.random(in: 0..<20, using: &random) == 0 ? 0 : Int64.random(in: 1...6, using: &random))
        }
        let request = ReserveRequest(
            reservationId: ReservationID("r\(nextReservation)"), orderId: "o\(nextReservation)",
            region: regions.randomElement(using: &random)!, lines: Array(lines),
            ttlMs: Int64.random(in: 1...30, using: &random) * 1000, allowSplit: Bool.random(using: &random))
        requests.append(request)
        return request
    }
}
