import Foundation
import Ledger
import Logging
import Metrics
import StockadeCore
import StockadeTesting
import Testing

@testable import HotStock

/// The batched gate against a real redis-server: a batch decides each reservation in order,
/// all-or-nothing, exactly as the same reservations sent one by one would be decided.
@Suite(.serialized, .timeLimit(.minutes(10))) struct GateBatchTests {
    static let order = [WarehouseID("yiwu"), WarehouseID("guangzhou")]
    static let createdAtMs: Int64 = 1_800_000_000_000

    static func call(_ id: String, _ lines: [(String, Int64)], split: Bool = false, order: String = "o") -> GateBatcher.Call {
        let request = ReserveRequest(
            reservationId: ReservationID(id), orderId: order, region: "east",
            lines: lines.map { ReservationLine(sku: SKU($0.0), quantity: $0.1) }, ttlMs: 60_000, allowSplit: split)
        let plan = HotPath.GatePlan(lines: request.lines.map { ($0, Self.order) })
        return HotPath.gateCall(request, plan: plan, createdAtMs: createdAtMs)
    }

    /// Sets the hot flags and counters: (sku, [units in yiwu, units in guangzhou]).
    static func stock(_ client: RedisClient, _ rows: [(String, [Int64])]) async throws {
        for (sku, units) in rows {
            _ = try await client.call(RedisCommand(["SET", HotKeys.hot(SKU(sku)), "1"]))
            for (warehouse, count) in zip(order, units) {
                _ = try await client.call(RedisCommand(["SET", HotKeys.allot(SKU(sku), warehouse), "\(count)"]))
            }
        }
    }

    static func run(_ client: RedisClient, _ calls: [GateBatcher.Call]) async throws -> [RedisValue] {
        let (keys, arguments) = GateBatcher.scriptCall(calls, answerRetentionMs: 60_000, backlogMax: 1_000_000)
        let reply = try await client.evaluate(Scripts.gate, keys: keys, arguments: arguments)
        let parts = try #require(reply.elements, "gate reply \(reply)")
        #expect(parts.count == calls.count)
        return parts
    }

    static func counters(_ client: RedisClient, _ skus: [String]) async throws -> [Int64] {
        var values: [Int64] = []
        for sku in skus {
            for warehouse in order {
                let value = try await client.call(RedisCommand(["GET", HotKeys.allot(SKU(sku), warehouse)]))
                values.append(Int64(value.string ?? "0") ?? 0)
            }
        }
        return values
    }

    static func streamLength(_ client: RedisClient) async throws -> Int64 {
        try await client.call(RedisCommand(["XLEN", HotKeys.holds])).integer ?? -1
    }

    @Test func aBatchMixingGrantsShortfallsReplaysAndConflicts() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = RedisClientTests.client(server)
        try await Self.stock(client, [("tee", [5, 3]), ("cap", [2, 0])])
        let replies = try await Self.run(client, [
            Self.call("r1", [("tee", 4)]),  // yiwu 5 → 1
            Self.call("r2", [("tee", 3)]),  // guangzhou 3 → 0
            Self.call("r3", [("tee", 2)]),  // no single warehouse has 2: short, best 1
            Self.call("r1", [("tee", 4)]),  // the same body again: the first answer
            Self.call("r1", [("tee", 1)]),  // another body under the same id
            Self.call("r4", [("tee", 1), ("cap", 2)], split: true),  // tee yiwu 1 → 0, cap yiwu 2 → 0
            Self.call("r5", [("cap", 1)]),  // nothing left: short, and r4 stays whole
            Self.call("r6", [("cold", 1)]),  // not hot: the quorum path's
            Self.call("r7", [("tee", 1), ("cap", 1)], split: true),  // tee is gone: nothing taken of either
        ])
        let kinds = replies.map { $0.elements?.first?.string ?? "?" }
        #expect(kinds == ["granted", "granted", "short", "replay", "conflict", "granted", "short", "not_hot", "short"])
        #expect(replies[2].elements?[1].string == "tee" && replies[2].elements?[2].string == "1")
        #expect(replies[3].elements?[1] == replies[0].elements?[1], "a replay in the same batch gets the first answer")
        #expect(replies[8].elements?[1].string == "tee")
        #expect(try await Self.counters(client, ["tee", "cap"]) == [0, 0, 0, 0])
        #expect(try await Self.streamLength(client) == 3, "one decrement record per grant")
        await client.shutdown()
        await server.stop()
    }

    /// Random histories, decided one call per reservation and then again in random batches from
    /// the same start: every reply, every counter and the stream agree.
    @Test func batchingDecidesExactlyAsOneByOne() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = RedisClientTests.client(server)
        let skus = ["tee", "cap", "mug"]
        for seed in UInt64(1)...25 {
            var random = SplitMix64(seed: seed)
            let stock = skus.map { ($0, [Int64.random(in: 0...12, using: &random), Int64.random(in: 0...12, using: &random)]) }
            var calls: [GateBatcher.Call] = []
            for _ in 0..<60 {
                // A small id pool, so that replays and conflicts (same id, other body) happen often.
                let id = "r\(Int.random(in: 0..<40, using: &random))"
                let chosen = skus.shuffled(using: &random).prefix(Int.random(in: 1...2, using: &random))
                let lines = chosen.map { ($0, Int64.random(in: 1...4, using: &random)) }
                calls.append(Self.call(id, lines, split: Bool.random(using: &random), order: "o\(Int.random(in: 0..<2, using: &random))"))
            }
            var outcomes: [([RedisValue], [Int64], Int64)] = []
            for batched in [false, true] {
                try await server.admin("FLUSHALL")
                try await Self.stock(client, stock)
                var replies: [RedisValue] = []
                var start = 0
                while start < calls.count {
                    let size = batched ? Int.random(in: 1...16, using: &random) : 1
                    let end = min(calls.count, start + size)
                    replies += try await Self.run(client, Array(calls[start..<end]))
                    start = end
                }
                let counters = try await Self.counters(client, skus)
                #expect(counters.allSatisfy { $0 >= 0 }, "seed \(seed): a counter went negative")
                outcomes.append((replies, counters, try await Self.streamLength(client)))
            }
            #expect(outcomes[0].0 == outcomes[1].0, "seed \(seed): replies differ between one-by-one and batched")
            #expect(outcomes[0].1 == outcomes[1].1, "seed \(seed): counters differ")
            #expect(outcomes[0].2 == outcomes[1].2, "seed \(seed): stream lengths differ")
            let granted = outcomes[1].0.filter { $0.elements?.first?.string == "granted" }.count
            #expect(outcomes[1].2 == Int64(granted), "seed \(seed): one record per grant")
            let taken = zip(stock.flatMap(\.1), outcomes[1].1).map { $0 - $1 }.reduce(0, +)
            let grantedUnits = outcomes[1].0.compactMap { reply -> Int64? in
                guard reply.elements?.first?.string == "granted", let stored = reply.elements?[1].string else { return nil }
                return HotPath.parseAllocations(HotPath.split(stored[...], by: 0x1F)[2])?.reduce(0) { $0 + $1.quantity }
            }.reduce(0, +)
            #expect(taken == grantedUnits, "seed \(seed): units taken from the counters are the units granted")
        }
        await client.shutdown()
        await server.stop()
    }

    /// Through the batcher itself: many reserves at once share gate calls, and the counter sells
    /// exactly its units.
    @Test func concurrentReservesShareGateCallsAndSellExactlyTheStock() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = RedisClientTests.client(server) { $0.connections = 1 }
        try await Self.stock(client, [("tee", [300, 0])])
        let batcher = GateBatcher(
            redis: client, batchMax: 32, waitMicroseconds: 200, inFlightMax: 1, configuration: HotPathConfiguration(),
            metrics: NOOPMetricsHandler.instance)
        let kinds = try await withThrowingTaskGroup(of: String.self) { group in
            for number in 0..<1_000 {
                group.addTask { try await batcher.decide(Self.call("c\(number)", [("tee", 1)])).elements?.first?.string ?? "?" }
            }
            return try await group.reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        }
        #expect(kinds == ["granted": 300, "short": 700])
        #expect(try await Self.counters(client, ["tee"]) == [0, 0])
        #expect(try await Self.streamLength(client) == 300)
        #expect(client.counts.commands < 1_000, "calls were batched: \(client.counts.commands) script calls for 1,000 reserves")
        await client.shutdown()
        await server.stop()
    }
}
