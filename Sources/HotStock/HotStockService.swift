import Foundation
import Ledger
import Logging
import Node
import ServiceLifecycle
import StockadeCore

/// The background half of the hot path: the decrement-queue consumer (every node) and the
/// allotment coordinator (the node that may propose: the single node, or the cluster's leader).
public final class HotStockService: Service, @unchecked Sendable {
    let hot: HotPath
    var redis: RedisClient { hot.redis }
    var replica: any ReplicatedLedger { hot.replica }
    var configuration: HotPathConfiguration { hot.configuration }
    var logger: Logger { hot.logger }
    private var groupReady = false
    private var readPending = true
    private var lastClaim = ContinuousClock.now
    private var autoPromoted: Set<SKU> = []
    private var lastBusy: [SKU: Int64] = [:]
    /// Per demoted SKU: the stream's newest entry ID when this coordinator stopped the cache
    /// selling it ("" if the stream was empty). The allotment is returned once no entry up to it is
    /// left. Kept from the first stop, so other SKUs' ongoing traffic cannot push it forward.
    private var reclaimMarks: [SKU: String] = [:]
    /// Per hot row: its recent sales from the cache, which size its refills (leader only).
    private var chunks: [AllotmentKey: AllotmentChunk] = [:]
    /// This node's share of the cluster's reservation rates, and the last second it published.
    private let rateBoard: RateBoard
    private var publishedSecond: Int64 = -1

    public init(hotPath: HotPath) {
        hot = hotPath
        rateBoard = RateBoard(node: hotPath.configuration.consumerName)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.consumeLoop() }
                group.addTask { await self.coordinateLoop() }
            }
        } onGracefulShutdown: {}
        await redis.shutdown()
    }

    // MARK: - Consumer

    func consumeLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var worked = 0
            do {
                worked = try await consumeOnce()
            } catch {
                groupReady = false
                readPending = true
                logger.debug("decrement queue: redis error", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(100))
            }
            if worked == 0 { await hot.wake.wait(milliseconds: 5) }
        }
    }

    /// One turn: own pending entries first (after a restart or a failed apply), then new ones, and
    /// now and then entries left idle by a dead consumer. Returns how many entries it handled.
    func consumeOnce() async throws -> Int {
        if !groupReady {
            let created = try await redis.send(RedisCommand(["XGROUP", "CREATE", HotKeys.holds, HotKeys.group, "0", "MKSTREAM"]))
            if case .error(let message) = created, !message.hasPrefix("BUSYGROUP") { throw RedisError.server(message) }
            groupReady = true
        }
        var entries: [StreamEntry]
        if ContinuousClock.now - lastClaim > .milliseconds(max(100, configuration.claimIdleMs / 2)) {
            lastClaim = .now
            // No dead letter by delivery count: a record is delivered again each time the ledger
            // could not take its batch (no quorum, a partition), and dead-lettering it then would
            // drop an acknowledged hold. Only a record that does not parse, or that the ledger
            // refuses, is a dead letter; the rest stay pending until applied.
            let claimed = try await redis.call(
                RedisCommand([
                    "XAUTOCLAIM", HotKeys.holds, HotKeys.group, configuration.consumerName, "\(configuration.claimIdleMs)", "0-0",
                    "COUNT", "\(configuration.consumerBatchMax)",
                ]))
            entries = Self.entries(claimed.elements?.dropFirst().first ?? .array([]))
            if !entries.isEmpty {
                logger.notice("decrement queue: claimed entries of a stopped consumer", metadata: ["count": "\(entries.count)"])
                try await apply(entries)
                return entries.count
            }
        }
        let reply = try await redis.call(
            RedisCommand([
                "XREADGROUP", "GROUP", HotKeys.group, configuration.consumerName, "COUNT", "\(configuration.consumerBatchMax)",
                "STREAMS", HotKeys.holds, readPending ? "0" : ">",
            ]))
        entries = Self.entries(reply.elements?.first?.elements?.dropFirst().first ?? .array([]))
        if readPending && entries.isEmpty { readPending = false }
        if entries.isEmpty { return 0 }
        try await apply(entries)
        return entries.count
    }

    typealias StreamEntry = CacheDecisions.StreamEntry

    static func entries(_ value: RedisValue) -> [StreamEntry] { CacheDecisions.entries(value) }

    /// Applies entries to the ledger in batches; acknowledges (and deletes) each only once its
    /// batch is committed. A batch the ledger could not take stays pending for the next turn.
    func apply(_ entries: [StreamEntry]) async throws {
        let (batches, unreadable) = CacheDecisions.batches(entries, limits: replica.limits)
        for batch in batches { try await commit(batch) }
        for entry in unreadable { try await deadLetter(entry, reason: "unreadable record") }
    }

    private func commit(_ batch: [(StreamEntry, CacheHold)]) async throws {
        let outcome = await replica.propose(.applyAllotmentHolds(batch.map(\.1)))
        guard case .cacheHoldsApplied(let results) = outcome, results.count == batch.count else {
            readPending = true
            logger.warning("decrement queue: batch not applied, will retry", metadata: ["outcome": "\(outcome)"])
            try? await Task.sleep(for: .milliseconds(50))
            return
        }
        if configuration.debugAckDelayMs > 0 { try? await Task.sleep(for: .milliseconds(configuration.debugAckDelayMs)) }
        var done: [String] = []
        for ((entry, _), result) in zip(batch, results) {
            if CacheDecisions.settled(by: result) {
                done.append(entry.id)
            } else {
                try await deadLetter(entry, reason: "refused by the ledger")
            }
        }
        try await acknowledge(done)
    }

    private func acknowledge(_ ids: [String]) async throws {
        guard !ids.isEmpty else { return }
        let value = try await redis.evaluate(Scripts.acknowledge, keys: [HotKeys.holds], arguments: RedisCommand([HotKeys.group] + ids))
        if case .error(let message) = value { throw RedisError.server(message) }
    }

    private func deadLetter(_ entry: StreamEntry, reason: String) async throws {
        _ = try await redis.call(
            RedisCommand(["XADD", HotKeys.deadLetters, "*", "id", entry.id, "h", entry.record ?? "", "reason", reason]))
        try await acknowledge([entry.id])
        hot.counters.deadLetters.add(1, ordering: .relaxed)
        hot.deadLetterCounter.increment()
        logger.error("decrement record dead-lettered", metadata: ["id": "\(entry.id)", "reason": "\(reason)"])
    }

    // MARK: - Coordinator

    func coordinateLoop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await coordinateOnce()
            } catch RedisError.server(let message) where message.hasPrefix("STALE_TERM") {
                logger.warning(
                    "coordinator fenced: a newer leader has written to Redis (or Redis holds another cluster's state)",
                    metadata: ["error": "\(message)"])
            } catch {
                logger.debug("coordinator: error", metadata: ["error": "\(error)"])
            }
            await hot.wake.wait(milliseconds: configuration.coordinatorIntervalMs)
        }
    }

    struct RowView {
        var key: AllotmentKey
        var available: Int64
        var allotment: Allotment?
    }

    /// One reconcile turn; level-triggered from the ledger's state, so it resumes after any crash.
    func coordinateOnce() async throws {
        try await updateQueueMetrics()
        let status = hot.status()
        if status.cacheAnswered + status.quorumAnswered > 0 { hot.hitRateGauge.record(status.hitRate) }
        try await publishRates()
        // Only the leader coordinates, and only from state that includes everything committed
        // before this turn (a new leader may not have applied its predecessor's last entries yet).
        // Everything it writes is fenced with its term: ledger commands are written in that term
        // or not at all, and the Redis scripts refuse a term older than one they have seen.
        guard let term = replica.leaderTerm else { return }
        try await replica.readBarrier()
        let (hotSKUs, rows, cooling) = replica.read { ledger -> (Set<SKU>, [RowView], [SKU: [AllotmentKey: Allotment]]) in
            var rows: [RowView] = []
            var cooling: [SKU: [AllotmentKey: Allotment]] = [:]
            for sku in ledger.hotSKUs {
                for (warehouse, row) in ledger.rows(of: sku) ?? [] {
                    let key = AllotmentKey(sku: sku, warehouse: warehouse, holder: .cache)
                    rows.append(RowView(key: key, available: row.available, allotment: ledger.allotments[key]))
                }
            }
            for (key, allotment) in ledger.allotments where key.holder == .cache && !ledger.hotSKUs.contains(key.sku) {
                cooling[key.sku, default: [:]][key] = allotment
            }
            return (ledger.hotSKUs, rows, cooling)
        }
        var cacheLeft: [SKU: Int64] = [:]
        var seen: [AllotmentKey: AllotmentChunk] = [:]
        for row in rows {
            var allotment = row.allotment
            var counter = try await credit(row.key, allotment, term: term)
            let now = replica.clock()
            var sizing = chunks[row.key] ?? AllotmentChunk(counter: counter, atMs: now)
            let starved = sizing.observe(counter: counter, atMs: now)
            let chunk = sizing.size(available: row.available, starved: starved, configuration: configuration)
            var granted: Int64 = 0
            if CacheDecisions.refills(available: row.available, counter: counter, chunk: chunk, limits: configuration.limits) {
                let outcome = await replica.propose(.grantAllotment(row.key, quantity: chunk), asLeaderOf: term)
                if case .allotment(_, let moved, let after) = outcome, moved > 0 {
                    allotment = after
                    granted = moved
                    counter = try await credit(row.key, allotment, term: term)
                    hot.counters.refills.add(1, ordering: .relaxed)
                    hot.refillCounter.increment()
                }
            }
            sizing.settle(counter: counter, granted: granted)
            seen[row.key] = sizing
            cacheLeft[row.key.sku, default: 0] += counter
        }
        chunks = seen  // rows no longer hot are forgotten
        // Sold-out memory lasts only while neither the cache nor the ledger has units.
        let ledgerLeft = replica.read { ledger in
            Dictionary(uniqueKeysWithValues: hotSKUs.map { sku in
                (sku, (ledger.rows(of: sku) ?? []).reduce(Int64(0)) { $0 + max(0, $1.row.available) })
            })
        }
        hot.clearSoldOut { sku in (cacheLeft[sku] ?? 0) > 0 || (ledgerLeft[sku] ?? 1) > 0 }
        reclaimMarks = reclaimMarks.filter { cooling[$0.key] != nil }
        for (sku, allotments) in cooling { try await reclaim(sku, allotments, term: term) }
        try await promoteAndDemote(hotSKUs, term: term)
    }

    /// Credits the allotment's last grant to Redis if it is not yet (exactly once, by grant index),
    /// and returns the cache counter.
    private func credit(_ key: AllotmentKey, _ allotment: Allotment?, term: UInt64) async throws -> Int64 {
        guard let allotment, allotment.lastGrantIndex > 0 else {
            return try await redis.call(RedisCommand(["GET", HotKeys.allot(key.sku, key.warehouse)])).integer ?? 0
        }
        var arguments = RedisCommand()
        arguments.append(Int64(term))
        arguments.append(Int64(allotment.lastGrantIndex))
        arguments.append(allotment.lastGrantQuantity)
        let value = try await redis.evaluate(
            Scripts.credit,
            keys: [
                HotKeys.coordinatorTerm, HotKeys.allot(key.sku, key.warehouse), HotKeys.grant(key.sku, key.warehouse),
                HotKeys.hot(key.sku),
            ],
            arguments: arguments)
        if case .error(let message) = value { throw RedisError.server(message) }
        return value.integer ?? 0
    }

    /// Demotion: stop the cache selling the SKU, wait until the queue has delivered into the ledger
    /// every entry it could have written, then return the allotments. Other SKUs' entries behind
    /// that point do not hold it up.
    private func reclaim(_ sku: SKU, _ allotments: [AllotmentKey: Allotment], term: UInt64) async throws {
        let keys =
            [HotKeys.coordinatorTerm, HotKeys.hot(sku), HotKeys.holds]
            + allotments.keys.sorted().map { HotKeys.allot($0.sku, $0.warehouse) }
        var arguments = RedisCommand()
        arguments.append(Int64(term))
        let stopped = try await redis.evaluate(Scripts.stop, keys: keys, arguments: arguments)
        if case .error(let message) = stopped { throw RedisError.server(message) }
        guard let mark = reclaimMarks[sku] ?? stopped.elements?.dropFirst().first?.string else {
            throw RedisError.server("stop script: unexpected reply \(stopped)")
        }
        reclaimMarks[sku] = mark
        if !mark.isEmpty {
            let behind = try await redis.call(RedisCommand(["XRANGE", HotKeys.holds, "-", mark, "COUNT", "1"]))
            guard behind.elements?.isEmpty ?? false else { return }  // next turn looks again
        }
        for (key, allotment) in allotments.sorted(by: { $0.key < $1.key }) {
            let outcome = await replica.propose(.returnAllotment(key, quantity: allotment.quantity), asLeaderOf: term)
            guard case .allotment = outcome else { return }  // not written (e.g. no longer the leader)
        }
        reclaimMarks[sku] = nil
        hot.counters.reclaims.add(1, ordering: .relaxed)
        hot.reclaimCounter.increment()
        logger.info("cache allotments reclaimed", metadata: ["sku": "\(sku)"])
    }

    /// Automatic promotion above the threshold; demotion of automatically promoted SKUs after they
    /// cool. Admin promotions stay until an admin demotes.
    private func promoteAndDemote(_ hotSKUs: Set<SKU>, term: UInt64) async throws {
        guard configuration.hotThresholdPerSecond > 0 else { return }
        let now = replica.clock()
        // The whole cluster's counts of the last second. Early in a second some nodes may not have
        // published yet: the sum is then low, which can only delay a promotion.
        let rates = try await rateBoard.totals(second: hot.rates().second, redis: redis)
        for (sku, rate) in rates {
            if rate * 10 >= configuration.hotThresholdPerSecond { lastBusy[sku] = now }
            if rate >= configuration.hotThresholdPerSecond && !hotSKUs.contains(sku) {
                if case .hotStatus = await replica.propose(.setHot(sku, true), asLeaderOf: term) {
                    autoPromoted.insert(sku)
                    logger.notice("sku promoted to hot", metadata: ["sku": "\(sku)", "ratePerSecond": "\(rate)"])
                }
            }
        }
        for sku in autoPromoted where hotSKUs.contains(sku) {
            if now - (lastBusy[sku] ?? now) > Int64(configuration.coolSeconds) * 1000 {
                guard case .hotStatus = await replica.propose(.setHot(sku, false), asLeaderOf: term) else { continue }
                autoPromoted.remove(sku)
                lastBusy[sku] = nil
                logger.notice("sku cooled and was demoted", metadata: ["sku": "\(sku)"])
            }
        }
    }

    /// Publishes this node's counts of the last whole second, once per second (every node).
    private func publishRates() async throws {
        guard configuration.hotThresholdPerSecond > 0 else { return }
        let (second, counts) = hot.rates()
        guard second != publishedSecond else { return }
        try await rateBoard.publish(counts, second: second, redis: redis)
        publishedSecond = second
    }

    private func updateQueueMetrics() async throws {
        let length = try await redis.call(RedisCommand(["XLEN", HotKeys.holds])).integer ?? 0
        var oldestAge: Int64 = 0
        if length > 0,
            let first = try await redis.call(RedisCommand(["XRANGE", HotKeys.holds, "-", "+", "COUNT", "1"])).elements?.first,
            let id = first.elements?.first?.string, let ms = Int64(id.split(separator: "-").first ?? "")
        {
            oldestAge = max(0, replica.clock() - ms)
        }
        // XPENDING's summary: [count, smallest id, largest id, consumers]; an error before the group exists.
        let delivered = (try? await redis.call(RedisCommand(["XPENDING", HotKeys.holds, HotKeys.group])))?.elements?.first?.integer ?? 0
        let dead = try await redis.call(RedisCommand(["XLEN", HotKeys.deadLetters])).integer ?? 0
        hot.counters.queueDelivered.store(Int(delivered), ordering: .relaxed)
        hot.counters.deadLetterStream.store(Int(dead), ordering: .relaxed)
        hot.counters.queuePending.store(Int(length), ordering: .relaxed)
        hot.counters.queueOldestAgeMs.store(oldestAge, ordering: .relaxed)
        hot.pendingGauge.record(Int(length))
        hot.oldestGauge.record(Double(oldestAge) / 1000)
    }
}
