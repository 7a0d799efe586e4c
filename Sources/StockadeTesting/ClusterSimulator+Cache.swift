import Consensus
import HotStock
import Ledger
import Replication
import StockadeCore

/// The simulator's hot path: the gate, the decrement queue's consumers and the allotment
/// coordinator, in the same seeds as the quorum and local paths, over `SimulatedRedis` (the node's
/// own Lua scripts) with Redis faults: outages (calls refused, so certainly not run), a kill
/// between a script's run and its fsync (its writes lost, its caller told nothing), a reply lost
/// after the script ran, and the breaker that opens on them. The decisions are the node's
/// (`CacheDecisions`, `BreakerState`, `AllotmentChunk`); what is here is the order in which the
/// node's shells make their calls, with each of their awaits a step of simulated time.
struct SimulatedCache {
    struct GateCall {
        var call: ClusterSimulator.Call
        var request: ReserveRequest
        var plan: HotPath.GatePlan
        var createdAtMs: Int64
    }

    struct Consumer {
        var groupReady = false
        var readPending = true
        var lastClaimStep = 0
    }

    let redis = SimulatedRedis()
    var random: SplitMix64
    /// Per mille per step: Redis goes down for a while. Per mille per call: killed after the
    /// command ran but before its fsync; the reply lost after it ran.
    let outagePerMille: Int
    let killPerMille: Int
    let lostReplyPerMille: Int
    /// Per mille per step: an operator promotes or demotes a SKU.
    let promotePerMille: Int
    var downUntilStep = 0
    var breakers: [NodeID: BreakerState] = [:]
    /// Gate calls that arrived at each node this step, sent as one batch.
    var gateQueue: [NodeID: [GateCall]] = [:]
    var consumers: [NodeID: Consumer] = [:]
    /// Ledger batches of drained records proposed and not answered yet, by internal call.
    var draining: [Int: (node: NodeID, entries: [CacheDecisions.StreamEntry])] = [:]
    /// The coordinator's proposals not answered yet (it awaits them before its next turn).
    var coordinating: Set<Int> = []
    var coordinator: NodeID?
    var chunks: [AllotmentKey: AllotmentChunk] = [:]
    var reclaimMarks: [SKU: String] = [:]
    /// Confirms, releases and extends answered `not_found` while a cache hold may still be in the
    /// queue: asked again once the node's ledger has it, or after the settle timeout.
    var settling: [(call: ClusterSimulator.Call, untilStep: Int)] = []
    var settled: Set<Int> = []
    var nextInternal = 0
    /// SKUs the operator already decided on at first sight (most are promoted once the leader's
    /// ledger has stock of them).
    var decided: Set<SKU> = []
    // For reports.
    var outages = 0
    var kills = 0
    var lostReplies = 0
    var drainedBatches = 0
    /// Reserves the cache did not take, by why: the breaker, the plan (not all hot, known id,
    /// invalid), no agreed time.
    var declined: [String: Int] = [:]
    var gateCalls = 0

    init(seed: UInt64) {
        random = SplitMix64(seed: seed)
        outagePerMille = Int.random(in: 0...8, using: &random)
        killPerMille = Int.random(in: 0...8, using: &random)
        lostReplyPerMille = Int.random(in: 0...20, using: &random)
        promotePerMille = Int.random(in: 10...40, using: &random)
    }

    func isUp(at step: Int) -> Bool { step >= downUntilStep }

    var isIdle: Bool { gateQueue.values.allSatisfy(\.isEmpty) && draining.isEmpty && coordinating.isEmpty && settling.isEmpty }
}

extension ClusterSimulator {
    /// Hot-path limits for a seed: small chunks of small stock, so the cache runs dry, refills and
    /// reclaims often.
    static func cacheLimits(_ limits: inout Limits, random: inout SplitMix64) {
        limits.hotPath.chunkPercent = Int64.random(in: 10...60, using: &random)
        limits.hotPath.lowWaterPercent = Int64.random(in: 10...60, using: &random)
        limits.hotPath.consumerBatchMax = Int.random(in: 1...8, using: &random)
        limits.hotPath.breakerCallsMin = Int.random(in: 2...6, using: &random)
        limits.hotPath.breakerWindowCalls = 10
    }

    // MARK: - Redis calls

    /// One call to Redis as the node's client makes it, with the seed's faults: refused while Redis
    /// is down; killed after `body` ran and before its fsync (its writes undone, the caller told
    /// nothing); its reply lost after it ran.
    func redisCall(_ body: (SimulatedRedis) -> RedisValue) -> Result<RedisValue, any Error> {
        guard cache!.isUp(at: step) else { return .failure(RedisError.notSent("connection refused")) }
        let redis = cache!.redis
        redis.nowMs = trueTimeMs
        if !healing && Int.random(in: 0..<1000, using: &cache!.random) < cache!.killPerMille {
            let saved = redis.data
            _ = body(redis)
            redis.data = saved
            cache!.downUntilStep = step + Int.random(in: 1...40, using: &cache!.random)
            cache!.kills += 1
            return .failure(RedisError.outcomeUnknown("connection lost"))
        }
        let value = body(redis)
        if !healing && Int.random(in: 0..<1000, using: &cache!.random) < cache!.lostReplyPerMille {
            cache!.lostReplies += 1
            return .failure(RedisError.outcomeUnknown("no reply in time"))
        }
        return .success(value)
    }

    func redisCommand(_ arguments: [String]) -> Result<RedisValue, any Error> {
        redisCall { $0.call(arguments) }
    }

    func redisScript(_ script: RedisScript, keys: [String], arguments: RedisCommand) -> Result<RedisValue, any Error> {
        redisCall { $0.evaluate(script, keys: keys, arguments: arguments) }
    }

    /// A proposal of the cache's own (a drained batch, a refill, a return), answered to
    /// `cacheAnswered` rather than to a client.
    func internalCall(_ command: Command, on id: NodeID, leaderTerm: Term? = nil) -> Int {
        cache!.nextInternal += 1
        let number = -cache!.nextInternal
        nodes[id]!.proposals.append(
            Driver.NewProposal(command, caller: Call(id: number, command: command, node: id), leaderTerm: leaderTerm))
        return number
    }

    // MARK: - The gate

    /// A reserve arriving at node `id`: queued for the node's next gate batch when the cache takes
    /// it (the breaker allows, and the node's applied state says every line is hot); otherwise
    /// false, and it goes to the quorum path.
    func cacheTakes(_ call: Call, _ request: ReserveRequest, on id: NodeID) -> Bool {
        guard let driver = nodes[id]!.driver else { return false }
        let nowMs = Int64(nodes[id]!.nowMs)
        var breaker = cache!.breakers[id] ?? BreakerState(windowCalls: limits.hotPath.breakerWindowCalls, callsMin: limits.hotPath.breakerCallsMin, cooldownMs: limits.hotPath.breakerCooldownMs)
        defer { cache!.breakers[id] = breaker }
        if !cache!.isUp(at: step) { _ = breaker.trip(nowMs: nowMs) }
        guard let plan = CacheDecisions.plan(request, in: driver.ledger) else {
            cache!.declined["plan", default: 0] += 1
            return false
        }
        guard let createdAtMs = driver.grantTimeMs else {
            cache!.declined["no agreed time", default: 0] += 1
            return false
        }
        // Last, as `HotPath` asks it: in half-open it hands out the one probe.
        guard breaker.allows(nowMs: nowMs) else {
            cache!.declined["breaker", default: 0] += 1
            return false
        }
        cache!.gateCalls += 1
        cache!.gateQueue[id, default: []].append(SimulatedCache.GateCall(call: call, request: request, plan: plan, createdAtMs: createdAtMs))
        return true
    }

    /// Sends each node's waiting gate calls as one script call and answers them from its reply.
    func flushGates() {
        for id in nodeIDs {
            guard let calls = cache!.gateQueue.removeValue(forKey: id), !calls.isEmpty else { continue }
            guard let driver = nodes[id]!.driver else { continue }
            let (keys, arguments) = CacheDecisions.gateScriptCall(
                calls.map { ($0.request, $0.plan, createdAtMs: $0.createdAtMs) }, limits: limits.hotPath)
            let result = redisScript(Scripts.gate, keys: keys, arguments: arguments)
            let nowMs = Int64(nodes[id]!.nowMs)
            for (index, gate) in calls.enumerated() {
                // As `GateBatcher`: each caller gets its part of the reply, or the whole failure.
                let part: Result<RedisValue, any Error> = result.map { reply in
                    if let parts = reply.elements, parts.count == calls.count { return parts[index] }
                    return reply
                }
                let (verdict, healthy) = CacheDecisions.verdict(of: part, for: gate.request)
                if let healthy { _ = cache!.breakers[id]?.record(success: healthy, nowMs: nowMs) }
                let outcome = CacheDecisions.outcome(verdict, for: gate.request) { sku in
                    driver.mayAnswerFromState && CacheDecisions.ledgerAvailable(sku, in: driver.ledger) == 0
                }
                if let outcome {
                    record(gate.call, outcome)
                } else {
                    nodes[id]!.proposals.append(Driver.NewProposal(gate.call.command, caller: gate.call))
                }
            }
        }
    }

    // MARK: - Confirm, release and extend of a hold still in the queue

    /// A lifecycle call answered `not_found` while the cache is on: as the API does, it waits for
    /// the hold to reach this node's ledger if Redis has an answer for the id, then asks again
    /// once. Returns whether the answer was held back.
    func cacheSettles(_ call: Call, _ outcome: Outcome) -> Bool {
        guard case .rejected(let error, _) = outcome, error.code == .notFound, let id = call.command.reservationID,
            call.command.historyOperation != .reserve, cache!.settled.insert(call.id).inserted
        else { return false }
        var wait = 0
        if case .success(let exists) = redisCommand(["EXISTS", HotKeys.answer(id)]), exists.integer == 1 {
            wait = Int(limits.hotPath.settleTimeoutMs / Int64(Self.stepMs))
        }
        cache!.settling.append((call, step + wait))
        return true
    }

    func retrySettled() {
        var waiting: [(call: Call, untilStep: Int)] = []
        for item in cache!.settling {
            guard let driver = nodes[item.call.node]!.driver else { continue }  // the client's node went down
            if step >= item.untilStep || driver.ledger.hold(item.call.command.reservationID!) != nil {
                nodes[item.call.node]!.proposals.append(Driver.NewProposal(item.call.command, caller: item.call))
            } else {
                waiting.append(item)
            }
        }
        cache!.settling = waiting
    }

    // MARK: - The decrement queue

    /// One consumer turn on every live node that is not waiting for a batch (as
    /// `HotStockService.consumeOnce`).
    func drainTurns() {
        for id in nodeIDs where nodes[id]!.driver != nil && !cache!.draining.values.contains(where: { $0.node == id }) {
            var consumer = cache!.consumers[id] ?? SimulatedCache.Consumer()
            defer { cache!.consumers[id] = consumer }
            let name = "n\(id)"
            if !consumer.groupReady {
                guard case .success(let created) = redisCommand(["XGROUP", "CREATE", HotKeys.holds, HotKeys.group, "0", "MKSTREAM"]) else {
                    consumer.readPending = true
                    continue
                }
                if case .error(let message) = created, !message.hasPrefix("BUSYGROUP") { continue }
                consumer.groupReady = true
            }
            let claimSteps = max(2, Int(limits.hotPath.claimIdleMs / Int64(Self.stepMs)) / 2)
            if step - consumer.lastClaimStep > claimSteps {
                consumer.lastClaimStep = step
                let claimed = redisCommand([
                    "XAUTOCLAIM", HotKeys.holds, HotKeys.group, name, "\(limits.hotPath.claimIdleMs)", "0-0", "COUNT",
                    "\(limits.hotPath.consumerBatchMax)",
                ])
                guard case .success(let reply) = claimed else {
                    consumer.groupReady = false
                    consumer.readPending = true
                    continue
                }
                let entries = CacheDecisions.entries(reply.elements?.dropFirst().first ?? .array([]))
                if !entries.isEmpty {
                    applyDrained(entries, on: id)
                    continue
                }
            }
            let read = redisCommand([
                "XREADGROUP", "GROUP", HotKeys.group, name, "COUNT", "\(limits.hotPath.consumerBatchMax)", "STREAMS", HotKeys.holds,
                consumer.readPending ? "0" : ">",
            ])
            guard case .success(let reply) = read, !isError(reply) else {
                consumer.groupReady = false
                consumer.readPending = true
                continue
            }
            let entries = CacheDecisions.entries(reply.elements?.first?.elements?.dropFirst().first ?? .array([]))
            if consumer.readPending && entries.isEmpty { consumer.readPending = false }
            if !entries.isEmpty { applyDrained(entries, on: id) }
        }
    }

    func isError(_ value: RedisValue) -> Bool {
        if case .error = value { return true }
        return false
    }

    func applyDrained(_ entries: [CacheDecisions.StreamEntry], on id: NodeID) {
        let (batches, unreadable) = CacheDecisions.batches(entries, limits: limits)
        for batch in batches {
            let number = internalCall(.applyAllotmentHolds(batch.map(\.1)), on: id)
            cache!.draining[number] = (id, batch.map(\.0))
        }
        for entry in unreadable { deadLetter(entry, reason: "unreadable record") }
    }

    /// A record that cannot become a ledger hold: an acknowledged cache grant the ledger will not
    /// have. Never expected; a violation.
    func deadLetter(_ entry: CacheDecisions.StreamEntry, reason: String) {
        violations.append("decrement record \(entry.id) (\(entry.record ?? "deleted")) dead-lettered: \(reason); step \(step)")
        _ = redisCommand(["XADD", HotKeys.deadLetters, "*", "id", entry.id, "h", entry.record ?? "", "reason", reason])
        acknowledge([entry.id])
    }

    func acknowledge(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        let result = redisScript(Scripts.acknowledge, keys: [HotKeys.holds], arguments: RedisCommand([HotKeys.group] + ids))
        if case .success(let value) = result, !isError(value) { return }
        // As the consumer after a failed call: start over, own pending entries first.
        for id in nodeIDs { cache!.consumers[id]?.readPending = true }
    }

    // MARK: - Answers to the cache's own proposals

    func cacheAnswered(_ call: Call, _ outcome: Outcome) {
        if cache!.coordinating.remove(call.id) != nil { return }
        guard let (node, entries) = cache!.draining.removeValue(forKey: call.id) else { return }
        guard case .cacheHoldsApplied(let results) = outcome, results.count == entries.count else {
            cache!.consumers[node]?.readPending = true
            return
        }
        cache!.drainedBatches += 1
        var done: [String] = []
        for (entry, result) in zip(entries, results) {
            if CacheDecisions.settled(by: result) {
                done.append(entry.id)
            } else {
                deadLetter(entry, reason: "refused by the ledger")
            }
        }
        acknowledge(done)
    }

    // MARK: - The coordinator

    /// One coordinator turn on the caught-up leader, once its previous turn's proposals are
    /// answered (as `HotStockService.coordinateOnce`): credit every hot row's last grant, refill
    /// rows that run low, and give back the allotments of SKUs no longer hot once the queue holds
    /// nothing of them.
    func coordinatorTurn() {
        guard let leader = nodeIDs.first(where: { nodes[$0]!.driver?.mayAnswerFromState == true }) else { return }
        if cache!.coordinator != leader {
            // A new coordinator measures afresh, and the old one's proposals are not its own.
            cache!.coordinator = leader
            cache!.chunks = [:]
            cache!.reclaimMarks = [:]
            cache!.coordinating = []
        }
        guard cache!.coordinating.isEmpty else { return }
        let driver = nodes[leader]!.driver!
        let term = driver.raft.term
        let ledger = driver.ledger
        var seen: [AllotmentKey: AllotmentChunk] = [:]
        defer { cache!.chunks = seen }
        for sku in ledger.hotSKUs.sorted() {
            for (warehouse, row) in ledger.rows(of: sku) ?? [] {
                let key = AllotmentKey(sku: sku, warehouse: warehouse, holder: .cache)
                guard let counter = credit(key, ledger.allotments[key], term: term) else { return }
                let now = Int64(nodes[leader]!.nowMs)
                var sizing = cache!.chunks[key] ?? AllotmentChunk(counter: counter, atMs: now)
                let starved = sizing.observe(counter: counter, atMs: now)
                let chunk = sizing.size(available: row.available, starved: starved, configuration: HotPathConfiguration(limits: limits.hotPath))
                if CacheDecisions.refills(available: row.available, counter: counter, chunk: chunk, limits: limits.hotPath) {
                    cache!.coordinating.insert(internalCall(.grantAllotment(key, quantity: chunk), on: leader, leaderTerm: term))
                }
                sizing.settle(counter: counter, granted: 0)
                seen[key] = sizing
            }
        }
        var cooling: [SKU: [(AllotmentKey, Allotment)]] = [:]
        for key in ledger.allotments.keys.sorted() where key.holder == .cache && !ledger.hotSKUs.contains(key.sku) {
            cooling[key.sku, default: []].append((key, ledger.allotments[key]!))
        }
        cache!.reclaimMarks = cache!.reclaimMarks.filter { cooling[$0.key] != nil }
        for sku in cooling.keys.sorted() {
            guard reclaim(sku, cooling[sku]!, term: term, on: leader) else { return }
        }
    }

    /// Credits the allotment's last grant to Redis (exactly once, by grant index) and returns the
    /// cache counter; nil when Redis did not answer (or fenced this term off).
    func credit(_ key: AllotmentKey, _ allotment: Allotment?, term: Term) -> Int64? {
        guard let allotment, allotment.lastGrantIndex > 0 else {
            guard case .success(let value) = redisCommand(["GET", HotKeys.allot(key.sku, key.warehouse)]) else { return nil }
            return value.integer ?? 0
        }
        var arguments = RedisCommand()
        arguments.append(Int64(term))
        arguments.append(Int64(allotment.lastGrantIndex))
        arguments.append(allotment.lastGrantQuantity)
        let keys = [HotKeys.coordinatorTerm, HotKeys.allot(key.sku, key.warehouse), HotKeys.grant(key.sku, key.warehouse), HotKeys.hot(key.sku)]
        guard case .success(let value) = redisScript(Scripts.credit, keys: keys, arguments: arguments), !isError(value) else { return nil }
        return value.integer ?? 0
    }

    /// Stops the cache selling `sku`; once the queue holds no record it could have written, gives
    /// its allotments back. False when Redis did not answer.
    func reclaim(_ sku: SKU, _ allotments: [(AllotmentKey, Allotment)], term: Term, on leader: NodeID) -> Bool {
        var arguments = RedisCommand()
        arguments.append(Int64(term))
        let keys = [HotKeys.coordinatorTerm, HotKeys.hot(sku), HotKeys.holds] + allotments.map { HotKeys.allot($0.0.sku, $0.0.warehouse) }
        guard case .success(let stopped) = redisScript(Scripts.stop, keys: keys, arguments: arguments), !isError(stopped),
            let mark = cache!.reclaimMarks[sku] ?? stopped.elements?.dropFirst().first?.string
        else { return false }
        cache!.reclaimMarks[sku] = mark
        if !mark.isEmpty {
            guard case .success(let behind) = redisCommand(["XRANGE", HotKeys.holds, "-", mark, "COUNT", "1"]) else { return false }
            guard behind.elements?.isEmpty ?? false else { return true }  // the next turn looks again
        }
        for (key, allotment) in allotments {
            cache!.coordinating.insert(internalCall(.returnAllotment(key, quantity: allotment.quantity), on: leader, leaderTerm: term))
        }
        cache!.reclaimMarks[sku] = nil
        return true
    }

    // MARK: - Every step

    /// The hot path's work of one step, before the nodes' turns.
    func cacheStep() {
        guard cache != nil else { return }
        if healing {
            cache!.downUntilStep = 0
        } else {
            if Int.random(in: 0..<1000, using: &cache!.random) < cache!.outagePerMille {
                cache!.downUntilStep = step + Int.random(in: 1...60, using: &cache!.random)
                cache!.outages += 1
            }
            if let leader = nodeIDs.first(where: { nodes[$0]!.driver?.mayAnswerFromState == true }) {
                for sku in generator.skus where !cache!.decided.contains(sku) && nodes[leader]!.driver!.ledger.rows(of: sku) != nil {
                    cache!.decided.insert(sku)
                    if Int.random(in: 0..<10, using: &cache!.random) < 8 { call(.setHot(sku, true), on: leader) }
                }
            }
            if Int.random(in: 0..<1000, using: &cache!.random) < cache!.promotePerMille,
                let leader = nodeIDs.first(where: { nodes[$0]!.driver?.raft.isLeader == true })
            {
                let sku = generator.skus.randomElement(using: &cache!.random)!
                call(.setHot(sku, Int.random(in: 0..<4, using: &cache!.random) > 0), on: leader)
            }
        }
        flushGates()
        retrySettled()
        drainTurns()
        coordinatorTurn()
    }

    /// Forgets what a crashed node's shell had in memory: its gate calls (never answered), its
    /// consumer's place (it reads its own pending entries first when it is back) and the
    /// proposals it was waiting for.
    func cacheCrashed(_ id: NodeID) {
        guard cache != nil else { return }
        cache!.gateQueue[id] = nil
        cache!.consumers[id] = nil
        cache!.breakers[id] = nil
        cache!.draining = cache!.draining.filter { $0.value.node != id }
        cache!.settling.removeAll { $0.call.node == id }
        if cache!.coordinator == id {
            cache!.coordinator = nil
            cache!.coordinating = []
        }
    }

    /// Whether the hot path is at rest: Redis up, the queue empty, nothing waiting.
    var cacheSettled: Bool {
        guard let cache else { return true }
        guard cache.isUp(at: step), cache.isIdle else { return false }
        cache.redis.nowMs = trueTimeMs
        return cache.redis.call(["XLEN", HotKeys.holds]).integer == 0
    }

    /// Redis outages, kills and lost replies in this seed.
    public var cacheFaults: Int { cache.map { $0.outages + $0.kills + $0.lostReplies } ?? 0 }

    /// For reports: the hot path's faults and work in this seed.
    public var cacheSummary: String? {
        guard let cache else { return nil }
        let hot = nodeIDs.compactMap { nodes[$0]!.driver?.ledger.hotSKUs }.first.map { $0.map(\.rawValue).sorted() } ?? []
        return "hot \(hot); redis outages \(cache.outages) kills \(cache.kills) lost replies \(cache.lostReplies); script calls \(cache.redis.scriptCalls); drained batches \(cache.drainedBatches); gate calls \(cache.gateCalls), declined \(cache.declined.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" })"
    }
}
