@testable import HotStock
import Foundation
import Logging
import StockadeCore
import StockadeTesting
import Testing

@Suite struct SHA1Tests {
    /// FIPS 180 examples, and the empty string.
    @Test func knownDigests() {
        #expect(SHA1.hex(Array("abc".utf8)) == "a9993e364706816aba3e25717850c26c9cd0d89d")
        #expect(SHA1.hex([]) == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(
            SHA1.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "84983e441c3bd26ebaae4aa1f95129e5e54670f1")
    }
}

/// The hiredis client against a real redis-server started with deploy/redis/redis.conf.
@Suite(.serialized, .timeLimit(.minutes(8))) struct RedisClientTests {
    static func client(_ server: RedisServerProcess, password: String? = nil, configure: (inout RedisConfiguration) -> Void = { _ in })
        -> RedisClient
    {
        var configuration = RedisConfiguration(
            host: "127.0.0.1", port: server.port, username: "stockade", password: password ?? server.password)
        configuration.commandTimeout = .milliseconds(500)
        configuration.reconnectBackoffMax = .milliseconds(200)
        configure(&configuration)
        return RedisClient(configuration: configuration, logger: Logger(label: "test"))
    }

    @Test func concurrentCommandsShareRoundTrips() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server)
        #expect(try await client.call(RedisCommand(["SET", "stockade:greeting", "hello"])) == .status("OK"))
        #expect(try await client.call(RedisCommand(["GET", "stockade:greeting"])).string == "hello")
        #expect(try await client.call(RedisCommand(["GET", "stockade:missing"])).isNull)
        let before = client.counts
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<2_000 {
                group.addTask { _ = try await client.call(RedisCommand(["INCR", "stockade:counter"])) }
            }
            try await group.waitForAll()
        }
        #expect(try await client.call(RedisCommand(["GET", "stockade:counter"])).integer == 2_000)
        let after = client.counts
        #expect(after.commands - before.commands >= 2_000)
        // Pipelining: far fewer round trips than commands.
        #expect(after.roundTrips - before.roundTrips < (after.commands - before.commands) / 2)
        await client.shutdown()
        await server.stop()
    }

    @Test func theStockadeUserIsLimitedAndAWrongPasswordGetsNowhere() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server)
        guard case .error(let message) = try await client.send(RedisCommand(["SET", "elsewhere", "1"])) else {
            Issue.record("a key outside stockade:* was written")
            return
        }
        #expect(message.hasPrefix("NOPERM"))
        guard case .error(let flush) = try await client.send(RedisCommand(["FLUSHALL"])) else {
            Issue.record("FLUSHALL allowed")
            return
        }
        #expect(flush.hasPrefix("NOPERM"))
        await client.shutdown()

        let wrong = Self.client(server, password: "not-the-password")
        await #expect(throws: RedisError.self) { _ = try await wrong.send(RedisCommand(["PING"])) }
        #expect(!wrong.isConnected)
        await wrong.shutdown()
        await server.stop()
    }

    @Test func evalshaReloadsTheScriptAfterNoscript() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server)
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        var arguments = RedisCommand()
        arguments.append(5)
        #expect(try await client.evaluate(script, keys: ["stockade:n"], arguments: arguments) == .integer(5))
        #expect(try await server.admin("SCRIPT", "EXISTS", script.sha) == "1")
        try await server.admin("SCRIPT", "FLUSH")
        #expect(try await client.evaluate(script, keys: ["stockade:n"], arguments: arguments) == .integer(10))
        await client.shutdown()
        await server.stop()
    }

    /// The coordinator's scripts refuse a leader term older than one Redis has seen, before
    /// changing anything; a newer term raises the fence.
    @Test func coordinatorScriptsAreFencedByLeaderTerm() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server)
        let sku = SKU("tee")
        let warehouse = WarehouseID("yiwu")
        let counter = HotKeys.allot(sku, warehouse)
        let creditKeys = [HotKeys.coordinatorTerm, counter, HotKeys.grant(sku, warehouse), HotKeys.hot(sku)]
        func credit(term: Int64, grant: Int64, quantity: Int64) async throws -> RedisValue {
            var arguments = RedisCommand()
            arguments.append(term)
            arguments.append(grant)
            arguments.append(quantity)
            return try await client.evaluate(Scripts.credit, keys: creditKeys, arguments: arguments)
        }
        func stop(term: Int64) async throws -> RedisValue {
            var arguments = RedisCommand()
            arguments.append(term)
            return try await client.evaluate(
                Scripts.stop, keys: [HotKeys.coordinatorTerm, HotKeys.hot(sku), HotKeys.holds, counter], arguments: arguments)
        }
        func get(_ key: String) async throws -> String? { try await client.call(RedisCommand(["GET", key])).string }

        #expect(try await credit(term: 2, grant: 5, quantity: 10) == .integer(10))
        #expect(try await get(HotKeys.coordinatorTerm) == "2")
        // A deposed leader (term 1) can neither credit a later grant nor stop the SKU.
        guard case .error(let refusal) = try await credit(term: 1, grant: 6, quantity: 7) else {
            Issue.record("a stale term credited a grant")
            return
        }
        #expect(refusal.hasPrefix("STALE_TERM"))
        guard case .error = try await stop(term: 1) else {
            Issue.record("a stale term stopped the cache")
            return
        }
        #expect(try await get(counter) == "10")
        #expect(try await get(HotKeys.grant(sku, warehouse)) == "5")
        #expect(try await get(HotKeys.hot(sku)) == "1")
        #expect(try await get(HotKeys.coordinatorTerm) == "2")
        // The same term goes on; a newer one raises the fence.
        #expect(try await credit(term: 2, grant: 6, quantity: 7) == .integer(17))
        let stopped = try await stop(term: 3)
        #expect(stopped.elements?.first == .integer(17))
        #expect(try await get(counter) == "0")
        #expect(try await get(HotKeys.hot(sku)) == nil)
        #expect(try await get(HotKeys.coordinatorTerm) == "3")
        await client.shutdown()
        await server.stop()
    }

    /// Automatic promotion sees the cluster's rate: every node's counts of a second, summed;
    /// publishing the same counts again does not count them twice.
    @Test func rateBoardSumsEveryNodesCountsOfASecond() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server)
        let n1 = RateBoard(node: "n1")
        let n2 = RateBoard(node: "n2")
        var n3 = RateBoard(node: "n3")
        n3.publishMax = 1
        try await n1.publish([SKU("tee"): 60, SKU("cap"): 5], second: 100, redis: client)
        try await n2.publish([SKU("tee"): 50], second: 100, redis: client)
        try await n1.publish([SKU("tee"): 60, SKU("cap"): 5], second: 100, redis: client)
        // A node publishes only its busiest SKUs.
        try await n3.publish([SKU("tee"): 30, SKU("sock"): 2], second: 100, redis: client)
        try await n2.publish([SKU("tee"): 999], second: 101, redis: client)
        #expect(try await n1.totals(second: 100, redis: client) == [SKU("tee"): 140, SKU("cap"): 5])
        #expect(try await n1.totals(second: 101, redis: client) == [SKU("tee"): 999])
        #expect(try await n1.totals(second: 102, redis: client) == [:])
        let ttl = try await client.call(RedisCommand(["PTTL", HotKeys.rates(second: 100)])).integer ?? -1
        #expect(ttl > 0 && ttl <= n1.retentionMs)
        await client.shutdown()
        await server.stop()
    }

    /// With appendfsync always, every acknowledged write survives kill -9; the client reports the
    /// writes it cannot vouch for, reconnects by itself, and goes on.
    @Test(arguments: [false, true])
    func acknowledgedWritesSurviveKillNineAndTheClientReconnects(script: Bool) async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server)
        // Two writes: Redis logs the script's effects as MULTI/EXEC, like the gate's.
        let increment = RedisScript("redis.call('INCR', KEYS[2]) return redis.call('INCR', KEYS[1])")
        let tally = Tally()
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        for _ in 0..<400 {
                            do {
                                if script {
                                    let value = try await client.evaluate(increment, keys: ["stockade:acked", "stockade:also"], arguments: RedisCommand())
                                    if case .error(let message) = value { throw RedisError.server(message) }
                                } else {
                                    _ = try await client.call(RedisCommand(["INCR", "stockade:acked"]))
                                }
                                tally.add(acknowledged: 1)
                            } catch let error as RedisError {
                                tally.add(unknown: error.certainlyNotRun ? 0 : 1)
                                try? await Task.sleep(for: .milliseconds(20))
                            } catch {
                                tally.add(unknown: 1)
                            }
                        }
                    }
                }
            }
        }
        while tally.acknowledged < 1_000 { try await Task.sleep(for: .milliseconds(5)) }
        await server.kill()
        try await Task.sleep(for: .milliseconds(300))
        try await server.start()
        await writers.value
        let value = try await client.call(RedisCommand(["GET", "stockade:acked"])).integer ?? -1
        print("script \(script): acknowledged \(tally.acknowledged), unknown \(tally.unknown), value after restart \(value)")
        #expect(value >= Int64(tally.acknowledged))
        #expect(value <= Int64(tally.acknowledged + tally.unknown))
        #expect(client.isConnected)
        await client.shutdown()
        await server.stop()
    }

    @Test func aFrozenServerMeansTimeoutsAndABoundedQueue() async throws {
        let server = RedisServerProcess()
        try await server.start()
        let client = Self.client(server) { configuration in
            configuration.connections = 1
            configuration.queueMax = 8
            configuration.pipelineMax = 4
        }
        _ = try await client.call(RedisCommand(["PING"]))
        server.pause(true)
        let results = await withTaskGroup(of: Result<RedisValue, RedisError>.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    do { return .success(try await client.send(RedisCommand(["INCR", "stockade:frozen"]))) } catch let error as RedisError {
                        return .failure(error)
                    } catch { return .failure(.notSent("\(error)")) }
                }
            }
            var all: [Result<RedisValue, RedisError>] = []
            for await result in group { all.append(result) }
            return all
        }
        server.pause(false)
        let overloaded = results.filter { if case .failure(.overloaded) = $0 { true } else { false } }.count
        let succeeded = results.filter { if case .success = $0 { true } else { false } }.count
        print("frozen: \(overloaded) overloaded, \(succeeded) succeeded, \(results.count - overloaded - succeeded) timed out or unknown")
        #expect(overloaded > 0)
        #expect(succeeded < results.count)
        // Back to normal once the server thaws.
        var answered = false
        for _ in 0..<50 where !answered {
            answered = (try? await client.call(RedisCommand(["PING"]))) == .status("PONG")
            if !answered { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(answered)
        await client.shutdown()
        await server.stop()
    }
}

final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var acknowledgedCount = 0
    private var unknownCount = 0

    func add(acknowledged: Int = 0, unknown: Int = 0) {
        lock.lock()
        acknowledgedCount += acknowledged
        unknownCount += unknown
        lock.unlock()
    }

    var acknowledged: Int {
        lock.lock()
        defer { lock.unlock() }
        return acknowledgedCount
    }

    var unknown: Int {
        lock.lock()
        defer { lock.unlock() }
        return unknownCount
    }
}
