@testable import HotStock
import Ledger
import StockadeCore
import Testing

/// The gate's stored answers and the decrement records, read back from their Redis text form.
@Suite struct RecordParsingTests {
    static let us = "\u{1F}", rs = "\u{1E}", gs = "\u{1D}"

    @Test func splitKeepsEmptyFieldsAndMultibyteText() {
        #expect(HotPath.split("a\u{1F}\u{1F}ü-ñ\u{1F}", by: 0x1F) == ["a", "", "ü-ñ", ""])
        #expect(HotPath.split("", by: 0x1F) == [""])
        #expect(HotPath.split("é\u{1E}x", by: 0x1F) == ["é\u{1E}x"])
    }

    @Test func aDecrementRecordBecomesItsCacheHold() {
        let allocations = ["tee", "yiwu", "2"].joined(separator: Self.rs) + Self.gs + ["tee", "北京", "1"].joined(separator: Self.rs)
        let record = ["r-1", "o-1", "east", "60000", "1", "7", "1700", allocations].joined(separator: Self.us)
        let hold = HotPath.cacheHold(record: record)
        #expect(hold?.reservationId == ReservationID("r-1"))
        #expect(hold?.orderId == "o-1")
        #expect(hold?.region == "east")
        #expect(hold?.ttlMs == 60_000)
        #expect(hold?.allowSplit == true)
        #expect(hold?.token == FencingToken(CacheHold.tokenBase + 7))
        #expect(hold?.createdAtMs == 1_700)
        #expect(
            hold?.allocations == [
                Allocation(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), quantity: 2),
                Allocation(sku: SKU("tee"), warehouse: WarehouseID("北京"), quantity: 1),
            ])
    }

    @Test func malformedRecordsAndAnswersAreRefused() {
        let good = ["tee", "yiwu", "2"].joined(separator: Self.rs)
        for record in [
            "", ["r", "o", "e", "1", "1", "7", "1700"].joined(separator: Self.us),
            ["r", "o", "e", "x", "1", "7", "1700", good].joined(separator: Self.us),
            ["r", "o", "e", "1", "1", "7", "1700", "tee" + Self.rs + "yiwu"].joined(separator: Self.us),
            ["r", "o", "e", "1", "1", "7", "1700", ["tee", "yiwu", "0"].joined(separator: Self.rs)].joined(separator: Self.us),
            ["r", "o", "e", "1", "1", "7", "1700", ""].joined(separator: Self.us),
        ] {
            #expect(HotPath.cacheHold(record: record) == nil, "\(record.debugDescription)")
        }
        let request = ReserveRequest(
            reservationId: ReservationID("r-1"), orderId: "o-1", region: "east",
            lines: [ReservationLine(sku: SKU("tee"), quantity: 2)], ttlMs: 60_000, allowSplit: false)
        #expect(HotPath.hold(request, stored: ["3", "1700", good].joined(separator: Self.us))?.token == FencingToken(CacheHold.tokenBase + 3))
        #expect(HotPath.hold(request, stored: ["3", "1700"].joined(separator: Self.us)) == nil)
    }
}
