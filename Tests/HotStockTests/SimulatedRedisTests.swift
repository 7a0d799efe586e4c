import Foundation
import Ledger
import StockadeCore
import StockadeTesting
import Testing

@testable import HotStock

/// The simulator's Redis against a real redis-server: the node's own scripts (gate, credit with
/// its fence, stop, acknowledge) and the consumer's commands, in random histories, get the same
/// reply from both, command for command. Stream IDs come from each side's clock, so they are
/// compared by the order in which they first appear.
@Suite(.serialized, .timeLimit(.minutes(10))) struct SimulatedRedisTests {
    /// Replaces every stream ID (`digits-digits`) by its ordinal of first appearance.
    struct IDNames {
        var names: [String: String] = [:]

        mutating func normalize(_ value: RedisValue) -> RedisValue {
            switch value {
            case .bulk(let bytes?):
                let text = String(decoding: bytes, as: UTF8.self)
                let parts = text.split(separator: "-", omittingEmptySubsequences: false)
                guard text != "0-0", parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isNumber) }) else { return value }
                if names[text] == nil { names[text] = "id\(names.count)" }
                return .bulk(Array(names[text]!.utf8))
            case .array(let items?): return .array(items.map { normalize($0) })
            default: return value
            }
        }
    }

    @Test func scriptsAndConsumerCommandsAnswerAsARealRedisDoes() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = RedisClientTests.client(server)
        let skus = ["tee", "cap"]
        let warehouses = GateBatchTests.order
        var compared = 0
        for seed in UInt64(1)...12 {
            try await server.admin("FLUSHALL")
            let simulated = SimulatedRedis()
            simulated.nowMs = 1_800_000_000_000
            var real = IDNames()
            var fake = IDNames()
            var random = SplitMix64(seed: seed)
            var lastIDs: [String] = []

            func both(_ arguments: [String]) async throws -> (RedisValue, RedisValue) {
                (try await client.send(RedisCommand(arguments)), simulated.call(arguments))
            }
            func bothScript(_ script: RedisScript, _ keys: [String], _ arguments: RedisCommand) async throws -> (RedisValue, RedisValue) {
                (try await client.evaluate(script, keys: keys, arguments: arguments), simulated.evaluate(script, keys: keys, arguments: arguments))
            }
            func check(_ pair: (RedisValue, RedisValue), _ what: String) {
                let (left, right) = (real.normalize(pair.0), fake.normalize(pair.1))
                #expect(left == right, "seed \(seed), \(what): real \(left), simulated \(right)")
                compared += 1
            }
            func streamIDs(_ value: RedisValue) -> [String] {
                // The IDs of entries in an XREADGROUP or XAUTOCLAIM reply.
                var found: [String] = []
                func walk(_ value: RedisValue) {
                    guard let items = value.elements else { return }
                    if items.count == 2, let id = items[0].string, id.contains("-"), id != "0-0", items[1].elements != nil || items[1].isNull {
                        found.append(id)
                        return
                    }
                    items.forEach(walk)
                }
                walk(value)
                return found
            }

            check(try await both(["XGROUP", "CREATE", HotKeys.holds, HotKeys.group, "0", "MKSTREAM"]), "group")
            check(try await both(["XGROUP", "CREATE", HotKeys.holds, HotKeys.group, "0", "MKSTREAM"]), "group again")
            for sku in skus {
                check(try await both(["SET", HotKeys.hot(SKU(sku)), "1"]), "hot")
                for warehouse in warehouses {
                    check(try await both(["SET", HotKeys.allot(SKU(sku), warehouse), "\(Int.random(in: 0...8, using: &random))"]), "stock")
                }
            }
            for step in 0..<80 {
                simulated.nowMs += 1
                let sku = SKU(skus.randomElement(using: &random)!)
                let warehouse = warehouses.randomElement(using: &random)!
                switch Int.random(in: 0..<100, using: &random) {
                case 0..<35:
                    var calls: [GateBatcher.Call] = []
                    for _ in 0..<Int.random(in: 1...4, using: &random) {
                        let chosen = skus.shuffled(using: &random).prefix(Int.random(in: 1...2, using: &random))
                        calls.append(
                            GateBatchTests.call(
                                "r\(Int.random(in: 0..<25, using: &random))", chosen.map { ($0, Int64.random(in: 1...3, using: &random)) },
                                split: Bool.random(using: &random), order: "o\(Int.random(in: 0..<2, using: &random))"))
                    }
                    let (keys, arguments) = GateBatcher.scriptCall(calls, answerRetentionMs: 86_400_000, backlogMax: Int.random(in: 3...60, using: &random))
                    check(try await bothScript(Scripts.gate, keys, arguments), "step \(step) gate")
                case 35..<47:
                    var arguments = RedisCommand()
                    arguments.append(Int64.random(in: 1...3, using: &random))
                    arguments.append(Int64.random(in: 1...20, using: &random))
                    arguments.append(Int64.random(in: 1...5, using: &random))
                    let keys = [HotKeys.coordinatorTerm, HotKeys.allot(sku, warehouse), HotKeys.grant(sku, warehouse), HotKeys.hot(sku)]
                    check(try await bothScript(Scripts.credit, keys, arguments), "step \(step) credit")
                case 47..<52:
                    var arguments = RedisCommand()
                    arguments.append(Int64.random(in: 1...3, using: &random))
                    let keys = [HotKeys.coordinatorTerm, HotKeys.hot(sku), HotKeys.holds] + warehouses.map { HotKeys.allot(sku, $0) }
                    check(try await bothScript(Scripts.stop, keys, arguments), "step \(step) stop")
                case 52..<67:
                    let consumer = "n\(Int.random(in: 1...2, using: &random))"
                    let pair = try await both([
                        "XREADGROUP", "GROUP", HotKeys.group, consumer, "COUNT", "\(Int.random(in: 1...4, using: &random))", "STREAMS", HotKeys.holds,
                        Bool.random(using: &random) ? ">" : "0",
                    ])
                    check(pair, "step \(step) read")
                    lastIDs = streamIDs(pair.0)
                    let simulatedIDs = streamIDs(pair.1)
                    #expect(lastIDs.count == simulatedIDs.count)
                    // The acknowledgement below names the same entries on each side.
                    lastIDs = zip(lastIDs, simulatedIDs).map { "\($0)|\($1)" }
                case 67..<80 where !lastIDs.isEmpty:
                    let chosen = lastIDs.filter { _ in Bool.random(using: &random) }
                    guard !chosen.isEmpty else { continue }
                    let realIDs = chosen.map { String($0.split(separator: "|")[0]) }
                    let fakeIDs = chosen.map { String($0.split(separator: "|")[1]) }
                    let realReply = try await client.evaluate(Scripts.acknowledge, keys: [HotKeys.holds], arguments: RedisCommand([HotKeys.group] + realIDs))
                    let fakeReply = simulated.evaluate(Scripts.acknowledge, keys: [HotKeys.holds], arguments: RedisCommand([HotKeys.group] + fakeIDs))
                    check((realReply, fakeReply), "step \(step) acknowledge")
                case 80..<87:
                    let pair = try await both([
                        "XAUTOCLAIM", HotKeys.holds, HotKeys.group, "n\(Int.random(in: 1...2, using: &random))", "0", "0-0", "COUNT", "3",
                    ])
                    check(pair, "step \(step) claim")
                default:
                    check(try await both(["XLEN", HotKeys.holds]), "step \(step) length")
                    check(try await both(["XRANGE", HotKeys.holds, "-", "+", "COUNT", "2"]), "step \(step) range")
                    check(try await both(["MGET", HotKeys.allot(sku, warehouse), HotKeys.grant(sku, warehouse), HotKeys.token]), "step \(step) counters")
                }
            }
        }
        #expect(compared > 500)
        await client.shutdown()
        await server.stop()
    }
}
