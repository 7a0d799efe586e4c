import Ledger
import StockadeCore
import Testing

/// Outcomes travel from the leader to the node that forwarded the command: they must come back equal.
@Suite struct OutcomeEncodingTests {
    @Test func everyOutcomeRoundTrips() throws {
        let hold = Hold(
            reservationId: ReservationID("r-1"), orderId: "o-1", region: "east",
            allocations: [Allocation(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), quantity: 2), Allocation(sku: SKU("mug"), warehouse: WarehouseID("beijing"), quantity: 1)],
            ttlMs: 900_000, allowSplit: true, path: .quorum, token: FencingToken(42), createdAtMs: 1_700_000_000_000,
            expiresAtMs: 1_700_000_900_000, status: .confirmed, finishedAtMs: 1_700_000_100_000)
        let outcomes: [Outcome] = [
            .reservation(hold, created: true),
            .reservation(hold, created: false),
            .stockRow(SKU("tee"), WarehouseID("yiwu"), StockRow(total: 10, held: 3, sold: 2, allotted: 1)),
            .warehousesConfigured(count: 4),
            .expired(count: 7, purged: 3),
            .rejected(StockadeError(.insufficientStock, "only 2 left"), detail: RejectionDetail(sku: SKU("tee"), requested: 5, available: 2)),
            .rejected(StockadeError(.notLeader, "n2 leads"), detail: nil),
            .hotStatus(SKU("tee"), hot: true),
            .allotment(
                AllotmentKey(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), holder: .cache), moved: -3,
                Allotment(quantity: 9, lastGrantIndex: 77, lastGrantQuantity: 12)),
            .cacheHoldsApplied([.applied, .duplicate, .superseded, .refused]),
        ]
        for outcome in outcomes {
            #expect(try Outcome(decoding: outcome.encoded(), limits: .default) == outcome)
        }
        var truncated = outcomes[0].encoded()
        truncated.removeLast()
        #expect(throws: (any Error).self) { try Outcome(decoding: truncated, limits: .default) }
    }
}
