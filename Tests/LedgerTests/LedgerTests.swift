@testable import Ledger
import StockadeCore
import Testing
import StockadeTesting

/// Specifications of the ledger's behaviour, one rule per test.
@Suite struct LedgerTests {
    static let layout = [
        Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1),
        Warehouse(id: WarehouseID("guangzhou"), regions: ["south"], priority: 2),
        Warehouse(id: WarehouseID("beijing"), regions: ["north"], priority: 3),
    ]

    struct Harness {
        var ledger = Ledger()
        var index: LogIndex = 0
        var timeMs: Int64 = 1_000_000

        init() {
            apply(.configureWarehouses(LedgerTests.layout))
        }

        @discardableResult
        mutating func apply(_ command: Command) -> Outcome {
            index += 1
            let outcome = ledger.apply(TimedCommand(command, timeMs: timeMs), index: index)
            #expect(ledger.invariantViolations().isEmpty)
            return outcome
        }

        mutating func stock(_ sku: String, _ warehouse: String, _ total: Int64) {
            apply(.setStock(sku: SKU(sku), warehouse: WarehouseID(warehouse), total: total))
        }

        mutating func reserve(
            _ id: String, region: String = "east", _ lines: [(String, Int64)], split: Bool = false, ttlMs: Int64 = 60_000
        ) -> Outcome {
            apply(
                .reserve(
                    ReserveRequest(
                        reservationId: ReservationID(id), orderId: "order-\(id)", region: region,
                        lines: lines.map { ReservationLine(sku: SKU($0.0), quantity: $0.1) }, ttlMs: ttlMs,
                        allowSplit: split)))
        }

        func row(_ sku: String, _ warehouse: String) -> StockRow? {
            ledger.stock[SKU(sku)]?[WarehouseID(warehouse)]
        }
    }

    static func hold(_ outcome: Outcome) -> Hold? {
        if case .reservation(let hold, _) = outcome { return hold }
        return nil
    }

    static func code(_ outcome: Outcome) -> ErrorCode? {
        if case .rejected(let error, _) = outcome { return error.code }
        return nil
    }

    @Test func regionalWarehouseIsPreferredOverPriority() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 10)
        harness.stock("tee", "beijing", 10)
        let hold = Self.hold(harness.reserve("r1", region: "north", [("tee", 3)]))
        #expect(hold?.allocations == [Allocation(sku: SKU("tee"), warehouse: WarehouseID("beijing"), quantity: 3)])
        #expect(harness.row("tee", "beijing")?.held == 3)
    }

    @Test func otherWarehousesFollowByPriority() {
        var harness = Harness()
        harness.stock("tee", "beijing", 10)
        harness.stock("tee", "guangzhou", 10)
        let hold = Self.hold(harness.reserve("r1", region: "west", [("tee", 2)]))
        #expect(hold?.allocations.map(\.warehouse) == [WarehouseID("guangzhou")])
    }

    /// The order is kept precomputed from the layout; it must equal its definition (serving the
    /// region first, then priority, then id) for any layout, also after a snapshot restore.
    @Test func warehouseOrderFollowsItsDefinitionForRandomLayouts() throws {
        var random = SplitMix64(seed: 7)
        let regions = ["east", "south", "north", "west"]
        for _ in 0..<200 {
            let layout = (0..<Int.random(in: 1...6, using: &random)).map { number in
                Warehouse(
                    id: WarehouseID("w\(number)"), regions: regions.filter { _ in Bool.random(using: &random) },
                    priority: Int64.random(in: 0...3, using: &random))
            }
            var ledger = Ledger()
            _ = ledger.apply(TimedCommand(.configureWarehouses(layout), timeMs: 1), index: 1)
            let restored = try Ledger(snapshot: ledger.encodeSnapshot())
            for region in regions + ["nowhere"] {
                let expected = layout.sorted { lhs, rhs in
                    let lhsLocal = lhs.regions.contains(region)
                    let rhsLocal = rhs.regions.contains(region)
                    if lhsLocal != rhsLocal { return lhsLocal }
                    return (lhs.priority, lhs.id) < (rhs.priority, rhs.id)
                }.map(\.id)
                #expect(ledger.warehouseOrder(forRegion: region) == expected)
                #expect(restored.warehouseOrder(forRegion: region) == expected)
            }
        }
    }

    @Test func withoutSplitOneWarehouseMustCoverTheLine() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 3)
        harness.stock("tee", "guangzhou", 3)
        let outcome = harness.reserve("r1", [("tee", 5)])
        #expect(Self.code(outcome) == .insufficientStock)
        if case .rejected(_, let detail) = outcome { #expect(detail?.available == 3) }
        #expect(harness.row("tee", "yiwu")?.held == 0)
        let split = Self.hold(harness.reserve("r2", [("tee", 5)], split: true))
        #expect(split?.allocations.map(\.quantity) == [3, 2])
        #expect(split?.lines == [ReservationLine(sku: SKU("tee"), quantity: 5)])
    }

    @Test func reservationIsAllOrNothingAcrossLines() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        harness.stock("cap", "yiwu", 1)
        #expect(Self.code(harness.reserve("r1", [("tee", 2), ("cap", 2)])) == .insufficientStock)
        #expect(harness.row("tee", "yiwu")?.held == 0)
        #expect(harness.row("cap", "yiwu")?.held == 0)
        #expect(Self.code(harness.reserve("r2", [("tee", 1), ("nope", 1)])) == .unknownSKU)
        #expect(harness.row("tee", "yiwu")?.held == 0)
    }

    @Test func sameIdAndBodyReplaysSameAnswerDifferentBodyConflicts() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        let first = Self.hold(harness.reserve("r1", [("tee", 2)]))
        let again = harness.reserve("r1", [("tee", 2)])
        #expect(Self.hold(again) == first)
        if case .reservation(_, let created) = again { #expect(!created) }
        #expect(harness.row("tee", "yiwu")?.held == 2)
        #expect(Self.code(harness.reserve("r1", [("tee", 3)])) == .idempotencyConflict)
        #expect(harness.ledger.answerWithoutLog(
            ReserveRequest(reservationId: ReservationID("r1"), orderId: "order-r1", region: "east",
                lines: [ReservationLine(sku: SKU("tee"), quantity: 2)], ttlMs: 60_000, allowSplit: false))
            == .reservation(first!, created: false))
    }

    @Test func fencingTokensGrowWithEveryHold() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        let first = Self.hold(harness.reserve("r1", [("tee", 1)]))!
        harness.apply(.release(ReservationID("r1")))
        let second = Self.hold(harness.reserve("r2", [("tee", 1)]))!
        #expect(second.token > first.token)
        #expect(second.token.rawValue == harness.index)
    }

    @Test func lifecycleMovesHeldToOneFinalStatus() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        _ = harness.reserve("r1", [("tee", 2)])
        #expect(Self.hold(harness.apply(.confirm(ReservationID("r1"))))?.status == .confirmed)
        #expect(Self.hold(harness.apply(.confirm(ReservationID("r1"))))?.status == .confirmed)
        #expect(harness.row("tee", "yiwu") == StockRow(total: 5, held: 0, sold: 2))
        #expect(Self.code(harness.apply(.release(ReservationID("r1")))) == .invalidState)
        _ = harness.reserve("r2", [("tee", 1)])
        #expect(Self.hold(harness.apply(.release(ReservationID("r2"))))?.status == .released)
        #expect(Self.hold(harness.apply(.release(ReservationID("r2"))))?.status == .released)
        #expect(Self.code(harness.apply(.confirm(ReservationID("r2")))) == .invalidState)
        #expect(Self.code(harness.apply(.extend(ReservationID("r2"), ttlMs: 5_000))) == .invalidState)
        #expect(Self.code(harness.apply(.confirm(ReservationID("ghost")))) == .notFound)
        #expect(harness.row("tee", "yiwu")?.available == 3)
    }

    @Test func expiryIsACommandThatCarriesTheTime() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        _ = harness.reserve("r1", [("tee", 2)], ttlMs: 10_000)
        _ = harness.reserve("r2", [("tee", 1)], ttlMs: 30_000)
        harness.timeMs += 9_999
        #expect(harness.apply(.expireDue) == .expired(count: 0, purged: 0))
        harness.timeMs += 1
        #expect(harness.apply(.expireDue) == .expired(count: 1, purged: 0))
        #expect(harness.ledger.hold(ReservationID("r1"))?.status == .expired)
        #expect(harness.row("tee", "yiwu")?.held == 1)
        // Extending pushes expiry out; a confirm after expiry is refused even before expire-due runs.
        #expect(Self.hold(harness.apply(.extend(ReservationID("r2"), ttlMs: 60_000)))?.expiresAtMs == harness.timeMs + 60_000)
        harness.timeMs += 60_000
        #expect(Self.code(harness.apply(.confirm(ReservationID("r2")))) == .invalidState)
        #expect(harness.ledger.hold(ReservationID("r2"))?.status == .expired)
        #expect(harness.row("tee", "yiwu")?.held == 0)
    }

    @Test func finishedReservationsArePurgedAfterRetention() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        _ = harness.reserve("r1", [("tee", 1)])
        harness.apply(.release(ReservationID("r1")))
        harness.timeMs += harness.ledger.limits.finishedRetentionMs
        #expect(harness.apply(.expireDue) == .expired(count: 0, purged: 1))
        #expect(harness.ledger.hold(ReservationID("r1")) == nil)
    }

    @Test func stockCannotDropBelowWhatIsCommitted() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 5)
        _ = harness.reserve("r1", [("tee", 4)])
        #expect(Self.code(harness.apply(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 3))) == .stockBelowCommitted)
        #expect(Self.code(harness.apply(.adjustStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), delta: -2, reason: "damaged"))) == .stockBelowCommitted)
        #expect(harness.row("tee", "yiwu")?.total == 5)
        harness.apply(.adjustStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), delta: -1, reason: "damaged"))
        #expect(harness.row("tee", "yiwu") == StockRow(total: 4, held: 4))
        #expect(Self.code(harness.apply(.adjustStock(sku: SKU("nope"), warehouse: WarehouseID("yiwu"), delta: 1, reason: "x"))) == .unknownSKU)
        #expect(Self.code(harness.apply(.setStock(sku: SKU("tee"), warehouse: WarehouseID("mars"), total: 1))) == .unknownWarehouse)
    }

    @Test func warehouseWithStockCannotBeRemoved() {
        var harness = Harness()
        harness.stock("tee", "beijing", 1)
        #expect(Self.code(harness.apply(.configureWarehouses(Array(LedgerTests.layout.prefix(2))))) == .invalidState)
        #expect(harness.ledger.warehouses.count == 3)
    }

    @Test func holdsPageInTokenOrderWithFilters() {
        var harness = Harness()
        harness.stock("tee", "yiwu", 100)
        harness.stock("cap", "yiwu", 100)
        for number in 1...10 { _ = harness.reserve("r\(number)", [(number % 2 == 0 ? "tee" : "cap", 1)]) }
        harness.apply(.confirm(ReservationID("r2")))
        var query = HoldQuery(sku: SKU("tee"), status: .held, nowMs: harness.timeMs, limit: 2)
        var seen: [String] = []
        while true {
            let page = harness.ledger.holds(matching: query)
            seen += page.holds.map(\.reservationId.rawValue)
            guard let next = page.nextAfterSequence else { break }
            query.afterSequence = next
        }
        #expect(seen == ["r4", "r6", "r8", "r10"])
    }

    @Test func commandsSurviveTheirBinaryForm() throws {
        let commands: [Command] = [
            .configureWarehouses(LedgerTests.layout),
            .setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 5),
            .adjustStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), delta: -2, reason: "recount ✓"),
            .reserve(ReserveRequest(reservationId: ReservationID("r"), orderId: "o", region: "east",
                lines: [ReservationLine(sku: SKU("tee"), quantity: 2)], ttlMs: 1000, allowSplit: true)),
            .confirm(ReservationID("r")), .release(ReservationID("r")), .extend(ReservationID("r"), ttlMs: 5), .expireDue,
            .setHot(SKU("tee"), true), .setHot(SKU("tee"), false),
            .grantAllotment(AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .cache), quantity: 7),
            .returnAllotment(AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .cache), quantity: 3),
            .applyAllotmentHolds([AllotmentTests.cacheHold("c1", [("tee", "yiwu", 2)], token: 1),
                AllotmentTests.cacheHold("c2", [("tee", "yiwu", 1), ("mug", "beijing", 4)], token: 2)]),
        ]
        for command in commands {
            let timed = TimedCommand(command, timeMs: 42)
            #expect(try TimedCommand(decoding: timed.encoded()) == timed)
            #expect(throws: ByteReader.Failure.self) { try TimedCommand(decoding: timed.encoded() + [0]) }
            #expect(throws: ByteReader.Failure.self) { try TimedCommand(decoding: Array(timed.encoded().dropLast())) }
        }
    }

    @Test func defaultLimitsAreConsistent() {
        #expect(Limits.default.violations().isEmpty)
        var broken = Limits()
        broken.commitBatchMax = broken.pendingCommandsMax + 1
        #expect(!broken.violations().isEmpty)
    }
}

@Suite struct ValidationTests {
    @Test func controlCharacterCheckMatchesUnicodeCategory() {
        for value in UInt32(0)..<0x800 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let text = "a" + String(Character(scalar)) + "b"
            #expect(
                Validation.containsControlCharacter(text) == (scalar.properties.generalCategory == .control),
                "U+\(String(value, radix: 16))")
        }
    }

    /// Identifiers are bounded in characters (Unicode scalars), as JSON Schema's maxLength counts.
    @Test func identifiersCountCharactersNotBytes() {
        let limits = Limits()
        #expect(Validation.identifier(String(repeating: "货", count: 128), field: "sku", limits: limits) == nil)
        #expect(Validation.identifier(String(repeating: "😀", count: 128), field: "sku", limits: limits) == nil)
        #expect(Validation.identifier(String(repeating: "货", count: 129), field: "sku", limits: limits)?.message == "sku is longer than 128 characters")
        #expect(Validation.identifier(String(repeating: "a", count: 129), field: "sku", limits: limits) != nil)
        #expect(Validation.identifier("", field: "sku", limits: limits)?.message == "sku must not be empty")
    }

    @Test func linesOfOneSKUMergeAfterEachIsChecked() throws {
        let limits = Limits()
        func line(_ sku: String, _ quantity: Int64) -> ReservationLine { ReservationLine(sku: SKU(sku), quantity: quantity) }
        #expect(try Validation.mergingLines([line("a", 1), line("b", 2), line("a", 3)], limits: limits) == [line("a", 4), line("b", 2)])
        // Each line as sent stays within lineQuantityMax; their sum may reach skuQuantityMax.
        let full = Array(repeating: line("a", limits.lineQuantityMax), count: limits.reservationLinesMax)
        let merged = try Validation.mergingLines(full, limits: limits)
        #expect(merged == [line("a", limits.skuQuantityMax)])
        #expect(throws: StockadeError.self) { try Validation.mergingLines([line("a", 1), line("a", 0)], limits: limits) }
        #expect(throws: StockadeError.self) { try Validation.mergingLines([line("a", limits.lineQuantityMax + 1)], limits: limits) }
        #expect(throws: StockadeError.self) { try Validation.mergingLines(full + [line("a", 1)], limits: limits) }
        // The ledger refuses a SKU twice, and takes the merged line.
        let request = ReserveRequest(reservationId: ReservationID("r"), orderId: "o", region: "east", lines: [line("a", 1), line("a", 1)], ttlMs: 60_000, allowSplit: false)
        #expect(Validation.reserve(request, limits: limits) != nil)
        var single = request
        single.lines = merged
        #expect(Validation.reserve(single, limits: limits) == nil)
    }
}

@Suite struct HoldStoreTests {
    static func hold(_ number: Int, ids: Int = 700) -> Hold {
        Hold(
            reservationId: ReservationID("r\(number % ids)"), orderId: "o", region: "east",
            allocations: [Allocation(sku: SKU("s"), warehouse: WarehouseID("w"), quantity: 1)], ttlMs: 1000,
            allowSplit: false, path: .quorum, token: FencingToken(UInt64(number * 3 + 1)), createdAtMs: 0,
            expiresAtMs: 1000, status: .held, finishedAtMs: 0)
    }

    /// A model (a dictionary) and the store agree through appends, updates, removals and
    /// compactions, with few live holds (many compactions) and with many (slots over several chunks).
    @Test(arguments: [700, 9_000])
    func storeAgreesWithADictionaryModelThroughCompaction(ids: Int) {
        var store = HoldStore()
        var model: [ReservationID: Hold] = [:]
        var random = SplitMix64(seed: 7)
        for number in 0..<max(20_000, ids * 6) {
            let candidate = Self.hold(number, ids: ids)
            if model[candidate.reservationId] == nil {
                store.append(candidate, sequence: candidate.token.rawValue)
                model[candidate.reservationId] = candidate
            } else if Bool.random(using: &random) {
                store.remove(candidate.reservationId)
                model[candidate.reservationId] = nil
            } else {
                var updated = model[candidate.reservationId]!
                updated.status = .released
                store.update(updated)
                model[candidate.reservationId] = updated
            }
        }
        #expect(store.count == model.count)
        for (id, hold) in model {
            #expect(store[id] == hold)
            #expect(store.hold(sequence: hold.token.rawValue) == hold)
            #expect(store.sequence(of: id) == hold.token.rawValue)
        }
        let tokens = store.values.map(\.token.rawValue)
        #expect(tokens == tokens.sorted())
        #expect(Set(store.values.map(\.reservationId)) == Set(model.keys))
        #expect(store.hold(sequence: 0) == nil)
        #expect(store.hold(sequence: 2) == nil)
    }
}

/// Allotments: escrow to the cache, cache holds applied from it, returns (docs/hot-path.md).
@Suite struct AllotmentTests {
    static func cacheHold(_ id: String, _ allocations: [(String, String, Int64)], token: UInt64, ttlMs: Int64 = 60_000) -> CacheHold {
        CacheHold(
            reservationId: ReservationID(id), orderId: "order-\(id)", region: "east",
            allocations: allocations.map { Allocation(sku: SKU($0.0), warehouse: WarehouseID($0.1), quantity: $0.2) },
            ttlMs: ttlMs, allowSplit: Set(allocations.map(\.0)).count != allocations.count,
            token: FencingToken(CacheHold.tokenBase + token), createdAtMs: 1_000_000)
    }

    static let yiwuTee = AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .cache)

    static func harness() -> LedgerTests.Harness {
        var harness = LedgerTests.Harness()
        harness.stock("tee", "yiwu", 10)
        harness.stock("tee", "beijing", 5)
        return harness
    }

    @Test func grantTakesAtMostWhatIsAvailableAndCountsAgainstTotal() {
        var harness = Self.harness()
        _ = harness.reserve("q1", [("tee", 4)])
        #expect(harness.apply(.grantAllotment(Self.yiwuTee, quantity: 100))
            == .allotment(Self.yiwuTee, moved: 6, Allotment(quantity: 6, lastGrantIndex: 5, lastGrantQuantity: 6)))
        #expect(harness.row("tee", "yiwu") == StockRow(total: 10, held: 4, sold: 0, allotted: 6))
        // Nothing left to grant: a grant of 0 changes nothing, and the quorum path sees no stock.
        #expect(harness.apply(.grantAllotment(Self.yiwuTee, quantity: 1))
            == .allotment(Self.yiwuTee, moved: 0, Allotment(quantity: 6, lastGrantIndex: 5, lastGrantQuantity: 6)))
        // Beijing's 5 are all that the quorum path can still sell.
        if case .rejected(let error, _) = harness.reserve("q2", [("tee", 6)]) {
            #expect(error.code == .insufficientStock)
        } else {
            Issue.record("reserve from allotted stock")
        }
        // The total cannot drop below what is allotted.
        if case .rejected(let error, _) = harness.apply(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 9)) {
            #expect(error.code == .stockBelowCommitted)
        } else {
            Issue.record("total set below allotted")
        }
        if case .rejected(let error, _) = harness.apply(.grantAllotment(Self.yiwuTee, quantity: 0)) {
            #expect(error.code == .invalidRequest)
        } else {
            Issue.record("grant of 0 accepted")
        }
    }

    @Test func cacheHoldsMoveAllottedToHeldOnceAndNeverBeyondTheAllotment() {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuTee, quantity: 5))
        let first = Self.cacheHold("c1", [("tee", "yiwu", 3)], token: 1)
        let uncovered = Self.cacheHold("c2", [("tee", "yiwu", 3)], token: 2)
        let otherRow = Self.cacheHold("c3", [("tee", "beijing", 1)], token: 3)
        #expect(harness.apply(.applyAllotmentHolds([first, uncovered, otherRow])) == .cacheHoldsApplied([.applied, .refused, .refused]))
        #expect(harness.row("tee", "yiwu") == StockRow(total: 10, held: 3, sold: 0, allotted: 2))
        let hold = harness.ledger.hold(ReservationID("c1"))
        #expect(hold?.path == .cache)
        #expect(hold?.token == first.token)
        #expect(hold?.expiresAtMs == 1_060_000)
        // Redelivery is recognised; nothing moves twice.
        #expect(harness.apply(.applyAllotmentHolds([first])) == .cacheHoldsApplied([.duplicate]))
        #expect(harness.row("tee", "yiwu") == StockRow(total: 10, held: 3, sold: 0, allotted: 2))
        // Applied cache holds are ordinary holds: confirm sells them.
        harness.apply(.confirm(ReservationID("c1")))
        #expect(harness.row("tee", "yiwu") == StockRow(total: 10, held: 0, sold: 3, allotted: 2))
    }

    @Test func aQuorumHoldWithTheSameIdSupersedesTheCacheHold() {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuTee, quantity: 2))
        _ = harness.reserve("r1", [("tee", 1)])
        let late = Self.cacheHold("r1", [("tee", "yiwu", 1)], token: 9)
        #expect(harness.apply(.applyAllotmentHolds([late])) == .cacheHoldsApplied([.superseded]))
        #expect(harness.ledger.hold(ReservationID("r1"))?.path == .quorum)
        // The cache hold's unit stays allotted until it is returned.
        #expect(harness.row("tee", "yiwu") == StockRow(total: 10, held: 1, sold: 0, allotted: 2))
        #expect(harness.apply(.returnAllotment(Self.yiwuTee, quantity: 50))
            == .allotment(Self.yiwuTee, moved: -2, Allotment(quantity: 0, lastGrantIndex: 4, lastGrantQuantity: 2)))
        #expect(harness.row("tee", "yiwu") == StockRow(total: 10, held: 1, sold: 0, allotted: 0))
        #expect(harness.ledger.allotments.isEmpty)
    }

    @Test func malformedCacheHoldsAreRefused() {
        var harness = Self.harness()
        harness.apply(.grantAllotment(Self.yiwuTee, quantity: 5))
        var quorumToken = Self.cacheHold("a", [("tee", "yiwu", 1)], token: 1)
        quorumToken.token = FencingToken(7)
        let zero = Self.cacheHold("b", [("tee", "yiwu", 0)], token: 2)
        let expiredTTL = Self.cacheHold("c", [("tee", "yiwu", 1)], token: 3, ttlMs: 0)
        var splitWithoutLeave = Self.cacheHold("d", [("tee", "yiwu", 1), ("tee", "beijing", 1)], token: 4)
        splitWithoutLeave.allowSplit = false
        #expect(harness.apply(.applyAllotmentHolds([quorumToken, zero, expiredTTL, splitWithoutLeave]))
            == .cacheHoldsApplied([.refused, .refused, .refused, .refused]))
        #expect(harness.row("tee", "yiwu")?.allotted == 5)
    }

    /// The chunked encoding hands on exactly the bytes of the whole one, whatever the chunk size.
    @Test(arguments: [1, 7, 100, 1 << 20])
    func chunkedSnapshotEncodingIsTheWholeEncoding(chunkBytes: Int) throws {
        var harness = Self.harness()
        harness.stock("cap", "beijing", 40)
        for number in 0..<30 { _ = harness.reserve("c\(number)", [(number % 2 == 0 ? "tee" : "cap", 1)]) }
        _ = harness.apply(.release(ReservationID("c3")))
        let whole = harness.ledger.encodeSnapshot()
        var chunks: [[UInt8]] = []
        harness.ledger.encodeSnapshot(chunkBytes: chunkBytes) { chunks.append($0) }
        #expect(Array(chunks.joined()) == whole)
        #expect(chunks.allSatisfy { !$0.isEmpty })
        // Only the last chunk may fall short of the size; none grows far past it (one hold at most).
        #expect(chunks.dropLast().allSatisfy { $0.count >= chunkBytes })
        #expect(try Ledger(snapshot: whole).encodeSnapshot() == whole)
    }

    @Test func hotStatusNeedsAKnownSKUAndSurvivesSnapshots() throws {
        var harness = Self.harness()
        #expect(harness.apply(.setHot(SKU("tee"), true)) == .hotStatus(SKU("tee"), hot: true))
        if case .rejected(let error, _) = harness.apply(.setHot(SKU("nope"), true)) {
            #expect(error.code == .unknownSKU)
        } else {
            Issue.record("unknown sku made hot")
        }
        harness.apply(.grantAllotment(Self.yiwuTee, quantity: 4))
        harness.apply(.applyAllotmentHolds([Self.cacheHold("c1", [("tee", "yiwu", 1)], token: 1)]))
        let bytes = harness.ledger.encodeSnapshot()
        let restored = try Ledger(snapshot: bytes)
        #expect(restored.hotSKUs == [SKU("tee")])
        #expect(restored.allotments == harness.ledger.allotments)
        #expect(restored.hold(ReservationID("c1")) == harness.ledger.hold(ReservationID("c1")))
        #expect(restored.encodeSnapshot() == bytes)
        #expect(restored.invariantViolations().isEmpty)
    }
}

/// The audit's row checks: clean on a sound ledger, and each planted disagreement reported on
/// its row with both numbers.
@Suite struct LedgerAuditTests {
    static func ledger() -> Ledger {
        var ledger = Ledger()
        var index: LogIndex = 0
        func apply(_ command: Command) {
            index += 1
            _ = ledger.apply(TimedCommand(command, timeMs: 1_000), index: index)
        }
        apply(.configureWarehouses([Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1), Warehouse(id: WarehouseID("chengdu"), regions: ["west"], priority: 2)]))
        apply(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 50))
        apply(.setStock(sku: SKU("tee"), warehouse: WarehouseID("chengdu"), total: 20))
        apply(.setStock(sku: SKU("cap"), warehouse: WarehouseID("yiwu"), total: 5))
        apply(.reserve(ReserveRequest(reservationId: ReservationID("r1"), orderId: "o1", region: "east", lines: [ReservationLine(sku: SKU("tee"), quantity: 3)], ttlMs: 60_000, allowSplit: false)))
        apply(.reserve(ReserveRequest(reservationId: ReservationID("r2"), orderId: "o2", region: "west", lines: [ReservationLine(sku: SKU("tee"), quantity: 2)], ttlMs: 60_000, allowSplit: false)))
        apply(.confirm(ReservationID("r2")))
        apply(.grantAllotment(AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .cache), quantity: 10))
        return ledger
    }

    @Test func aSoundLedgerAuditsClean() {
        let ledger = Self.ledger()
        let rows = ledger.auditRows()
        #expect(rows.map { "\($0.sku)@\($0.warehouse)" } == ["cap@yiwu", "tee@chengdu", "tee@yiwu"])
        #expect(rows.flatMap(\.findings).isEmpty)
        let tee = rows.first { $0.sku == SKU("tee") && $0.warehouse == WarehouseID("yiwu") }!
        #expect(tee.heldByHolds == 3 && tee.allotments == [AllotmentHolder.cache: 10])
        #expect(ledger.auditRows(sku: SKU("cap")).count == 1)
    }

    @Test func plantedDisagreementsAreReportedOnTheirRow() {
        var ledger = Self.ledger()
        ledger.stock[SKU("tee")]![WarehouseID("yiwu")]!.held += 4
        ledger.stock[SKU("tee")]![WarehouseID("chengdu")]!.sold -= 1
        ledger.stock[SKU("cap")]![WarehouseID("yiwu")]!.allotted = 2
        let findings = ledger.auditRows().flatMap(\.findings)
        let described = Set(findings.map { "\($0.sku!)@\($0.warehouse!) \($0.check.rawValue) \($0.ledger)/\($0.derived)" })
        #expect(described == ["tee@yiwu held 7/3", "tee@chengdu sold 1/2", "cap@yiwu allotted 2/0"], "\(described)")
        #expect(!ledger.invariantViolations().isEmpty, "the invariant check reports the same")
    }

    @Test func theOverviewListsTheBusiestSKUsAndTheSoonestExpiries() {
        var ledger = Self.ledger()
        _ = ledger.apply(
            TimedCommand(.reserve(ReserveRequest(reservationId: ReservationID("r3"), orderId: "o3", region: "east", lines: [ReservationLine(sku: SKU("cap"), quantity: 1)], ttlMs: 5_000, allowSplit: false)), timeMs: 2_000),
            index: ledger.appliedIndex + 1)
        _ = ledger.apply(TimedCommand(.extend(ReservationID("r1"), ttlMs: 500_000), timeMs: 2_000), index: ledger.appliedIndex + 1)
        let overview = ledger.overview(topSKUs: 1, nextExpiries: 5)
        #expect(overview.skus.map(\.sku.rawValue) == ["tee"])
        #expect(overview.skus.first?.held == 3)
        #expect(overview.nextExpiries.map(\.reservationId.rawValue) == ["r3", "r1"], "soonest first; r1's stale entry from before its extend is skipped")
        #expect(overview.activeHolds == 2)
    }

    @Test func theSoonestExpiriesLookPastManyStaleEntries() {
        var ledger = Self.ledger()
        _ = ledger.apply(TimedCommand(.setStock(sku: SKU("cap"), warehouse: WarehouseID("yiwu"), total: 1_000), timeMs: 1_000), index: ledger.appliedIndex + 1)
        for index in 0..<300 {
            let request = ReserveRequest(
                reservationId: ReservationID("s\(index)"), orderId: "o", region: "east", lines: [ReservationLine(sku: SKU("cap"), quantity: 1)],
                ttlMs: 10_000 + Int64(index), allowSplit: false)
            _ = ledger.apply(TimedCommand(.reserve(request), timeMs: 1_000), index: ledger.appliedIndex + 1)
        }
        // The 290 soonest are confirmed: their queue entries are stale, ahead of every live one.
        for index in 0..<290 {
            _ = ledger.apply(TimedCommand(.confirm(ReservationID("s\(index)")), timeMs: 1_000), index: ledger.appliedIndex + 1)
        }
        let soonest = ledger.soonestHeld(5).map(\.reservationId.rawValue)
        #expect(soonest == ["s290", "s291", "s292", "s293", "s294"])
        #expect(ledger.soonestHeld(50).count == 11, "the ten left and r1")
    }
}
