import Foundation
import Testing

@testable import LoadHarness

/// The verdict must pass a consistent run and catch every kind of oversell or loss.
@Suite struct VerdictTests {
    static func allocation(_ sku: String, _ warehouse: String, _ quantity: Int) -> GrantedAllocation {
        GrantedAllocation(sku: sku, warehouse: warehouse, quantity: quantity)
    }

    static func reservation(_ id: String, _ status: String, _ allocations: [GrantedAllocation]) -> FetchedReservation {
        FetchedReservation(reservationId: id, status: status, allocations: allocations)
    }

    static func row(_ warehouse: String, total: Int, held: Int, sold: Int) -> FetchedRow {
        FetchedRow(warehouse: warehouse, total: total, held: held, sold: sold, allotted: 0)
    }

    @Test func consistentRunPasses() {
        let a = [Self.allocation("s", "w1", 2)]
        let b = [Self.allocation("s", "w2", 1)]
        let c = [Self.allocation("s", "w1", 1)]
        let verdict = Verdict.judge(
            rows: ["s": [Self.row("w1", total: 3, held: 2, sold: 0), Self.row("w2", total: 1, held: 0, sold: 1)]],
            granted: ["a": a, "b": b, "c": c],
            fetched: ["a": Self.reservation("a", "held", a), "b": Self.reservation("b", "confirmed", b), "c": Self.reservation("c", "released", c)],
            released: ["c"])
        #expect(verdict.passed, "\(verdict.violations)")
    }

    @Test func moreGrantsThanTheLedgerHoldsFails() {
        // The service answered 201 for a hold it never made.
        let a = [Self.allocation("s", "w1", 1)]
        let verdict = Verdict.judge(
            rows: ["s": [Self.row("w1", total: 1, held: 1, sold: 0)]],
            granted: ["a": a, "ghost": a], fetched: ["a": Self.reservation("a", "held", a), "ghost": nil], released: [])
        #expect(!verdict.passed)
        #expect(verdict.violations.contains { $0.contains("ghost") })
        #expect(verdict.violations.contains { $0.contains("accounts for 2 units") })
    }

    @Test func aRowAboveItsTotalFails() {
        let a = [Self.allocation("s", "w1", 2)]
        let verdict = Verdict.judge(
            rows: ["s": [Self.row("w1", total: 1, held: 2, sold: 0)]], granted: ["a": a],
            fetched: ["a": Self.reservation("a", "held", a)], released: [])
        #expect(verdict.violations.contains { $0.contains("oversold") })
    }

    @Test func aChangedAllocationFails() {
        let verdict = Verdict.judge(
            rows: ["s": [Self.row("w1", total: 5, held: 1, sold: 0), Self.row("w2", total: 5, held: 0, sold: 0)]],
            granted: ["a": [Self.allocation("s", "w2", 1)]],
            fetched: ["a": Self.reservation("a", "held", [Self.allocation("s", "w1", 1)])], released: [])
        #expect(verdict.violations.contains { $0.contains("changed allocations") })
    }

    @Test func unansweredReservesThatExistAreCounted() {
        let a = [Self.allocation("s", "w1", 1)]
        let verdict = Verdict.judge(
            rows: ["s": [Self.row("w1", total: 2, held: 1, sold: 0)]], granted: [:],
            fetched: ["lost-answer": Self.reservation("lost-answer", "held", a)], released: [])
        #expect(verdict.passed, "\(verdict.violations)")
    }
}

@Suite struct TraceTests {
    @Test func traceHasThePromotionShape() {
        var generator = TraceGenerator(shape: TraceShape(), seed: 42)
        let orders = generator.generate()
        // About 8,000/day at the edges and 42,000/day at the peak: a day holds well over 8,000 orders.
        #expect(orders.count > 9_000 && orders.count < 40_000)
        let peakHour = orders.filter { abs(Double($0.atMs) / 3_600_000 - 12) < 0.5 }.count
        let quietHour = orders.filter { Double($0.atMs) / 3_600_000 < 1 }.count
        #expect(peakHour > 3 * quietHour)
        let cancels = Double(orders.filter { $0.outcome == .cancel }.count) / Double(orders.count)
        #expect(abs(cancels - 0.20) < 0.03)
        // Zipfian: the most popular SKU appears far more often than a median one.
        var counts: [String: Int] = [:]
        for order in orders { for line in order.lines { counts[line.sku, default: 0] += 1 } }
        #expect((counts["sku-0"] ?? 0) > 20 * (counts["sku-100"] ?? 1))
        #expect(orders.map(\.atMs) == orders.map(\.atMs).sorted())
    }

    @Test func traceFileRoundTrips() throws {
        var generator = TraceGenerator(shape: TraceShape(), seed: 7)
        let orders = Array(generator.generate().prefix(500))
        let path = NSTemporaryDirectory() + "trace-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try TraceFile.write(orders, to: path)
        #expect(try TraceFile.read(path, ordersMax: 1_000) == orders)
        #expect(throws: LoadError.self) { try TraceFile.read(path, ordersMax: 10) }
    }
}
