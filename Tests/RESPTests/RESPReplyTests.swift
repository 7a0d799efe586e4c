import Ledger
import NIOCore
import RESP
import StockadeCore
import Testing

@testable import API

/// RESP replies say what the HTTP answers say: a reservation written straight into RESP equals
/// its JSON translated, and refusals carry the code first.
@Suite struct RESPReplyTests {
    static func hold(status: HoldStatus, allocations: Int) -> Hold {
        Hold(
            reservationId: ReservationID("r-\"quoted\" ü"), orderId: "o-1", region: "east",
            allocations: (0..<allocations).map {
                Allocation(sku: SKU("sku-\($0)"), warehouse: WarehouseID("w\($0)"), quantity: Int64($0 + 1))
            },
            ttlMs: 60_000, allowSplit: true, path: .quorum, token: FencingToken(UInt64(Int64.max) + 7),
            createdAtMs: 1_800_000_000_000, expiresAtMs: 1_800_000_060_000, status: status,
            finishedAtMs: status.isFinished ? 1_800_000_001_000 : 0)
    }

    @Test(arguments: [(HoldStatus.held, 1), (.confirmed, 3), (.released, 2), (.expired, 1)])
    func aReservationReadsTheSameWrittenDirectlyOrThroughJSON(status: HoldStatus, allocations: Int) {
        let hold = Self.hold(status: status, allocations: allocations)
        let direct = RESPReply.from(Outcome.reservation(hold, created: true))
        var json = JSONWriter()
        ReservationPayload(hold).write(into: &json)
        let translated = RESPReply.from(APIAnswer(status: .created, body: json.buffer))
        #expect(direct == translated)
    }

    @Test(arguments: [(HoldStatus.held, 1), (.confirmed, 3), (.expired, 0)])
    func aReservationWrittenAsBytesEncodesTheSameValue(status: HoldStatus, allocations: Int) {
        let hold = Self.hold(status: status, allocations: allocations)
        let value = RESPReply.from(Outcome.reservation(hold, created: true))
        for version in [RESPVersion.resp2, .resp3] {
            var bytes = ByteBuffer(string: "+before\r\n")
            RESPReply.write(hold, version: version, into: &bytes)
            var expected = ByteBuffer(string: "+before\r\n")
            value.write(to: &expected, version: version)
            #expect(bytes == expected, "\(version)")
        }
    }

    @Test func refusalsStartWithTheCodeInUpperCase() {
        let refusal = Outcome.rejected(
            StockadeError(.insufficientStock, "sku tee: requested 3, available 1"),
            detail: RejectionDetail(sku: SKU("tee"), requested: 3, available: 1))
        let expected = RESPValue.error("INSUFFICIENT_STOCK available=1 requested=3 sku=tee sku tee: requested 3, available 1")
        #expect(RESPReply.from(refusal) == expected)
        let body = ErrorBody.rendered(StockadeError(.insufficientStock, "sku tee: requested 3, available 1"), sku: "tee", requested: 3, available: 1)
        #expect(RESPReply.from(APIAnswer(status: body.status, body: body.body)) == expected, "the HTTP body says the same")
    }

    @Test func jsonBecomesTheMatchingRESPTypes() {
        let answer = APIAnswer(
            status: .ok, body: ByteBuffer(string: #"{"a":[1,-2,3.5,true,false,null],"b":{"c":"x\ny\u00e9\ud83d\ude00"},"d":[]}"#))
        #expect(
            RESPReply.from(answer)
                == .map([
                    RESPPair("a", .array([.integer(1), .integer(-2), .double(3.5), .boolean(true), .boolean(false), .null])),
                    RESPPair("b", .map([RESPPair("c", .bulk("x\nyé😀"))])),
                    RESPPair("d", .array([])),
                ]))
        #expect(RESPReply.from(APIAnswer(status: .ok, body: ByteBuffer(string: "{\"a\":"))).errorCode == "INTERNAL_ERROR")
    }
}
