import Foundation
import Ledger
import Logging
import Metrics
import Node
import StockadeCore
import Synchronization

/// Settings of the hot path: its bounds (in `Limits.HotPath`, read through this value as if they
/// were its own), the consumer's name, and a test-only delay.
@dynamicMemberLookup
public struct HotPathConfiguration: Sendable {
    public var limits: Limits.HotPath
    /// The consumer's name in the group (the node's name).
    public var consumerName: String = "n1"
    /// Tests only: a pause between a batch's commit and its XACK, widening the window in which a
    /// killed consumer leaves applied entries unacknowledged.
    public var debugAckDelayMs = 0

    public init(limits: Limits.HotPath = Limits.HotPath()) {
        self.limits = limits
    }

    public subscript<T>(dynamicMember keyPath: WritableKeyPath<Limits.HotPath, T>) -> T {
        get { limits[keyPath: keyPath] }
        set { limits[keyPath: keyPath] = newValue }
    }
}

/// Counters of the hot path, exported as metrics and in `/v1/cluster`.
final class HotCounters: Sendable {
    let cacheAnswered = Atomic<Int>(0)
    let quorumAnswered = Atomic<Int>(0)
    let degradeSwitches = Atomic<Int>(0)
    let refills = Atomic<Int>(0)
    let reclaims = Atomic<Int>(0)
    let deadLetters = Atomic<Int>(0)
    let queuePending = Atomic<Int>(0)
    let queueOldestAgeMs = Atomic<Int64>(0)
    let queueDelivered = Atomic<Int>(0)
    let deadLetterStream = Atomic<Int>(0)
}

/// The gate in front of Redis: routes a reservation whose lines are all hot to the gate script,
/// and everything else (or everything, while the breaker is open) to the quorum path.
public final class HotPath: CacheGate, @unchecked Sendable {
    let redis: RedisClient
    let replica: any ReplicatedLedger
    let configuration: HotPathConfiguration
    let logger: Logger
    let counters = HotCounters()
    let breaker: Breaker
    /// Sends gate calls that arrive together as one script call.
    let batcher: GateBatcher
    private let lock = NSLock()
    /// SKUs known sold out in the cache and the ledger: answered without Redis until the
    /// coordinator sees stock again.
    private var soldOut: Set<SKU> = []
    /// Reservation attempts per SKU in the current second, for automatic promotion.
    private var rateSecond: Int64 = 0
    private var rateCounts: [SKU: Int] = [:]
    private var lastRates: [SKU: Int] = [:]
    /// Wakes the coordinator early (a line came up short).
    let wake = Wakeup()

    private let routed: (cache: Counter, quorum: Counter, soldOutMemory: Counter, unknown: Counter)
    let degradeCounter: Counter
    let refillCounter: Counter
    let reclaimCounter: Counter
    let deadLetterCounter: Counter
    let pendingGauge: Gauge
    let oldestGauge: Gauge
    let hitRateGauge: Gauge

    public init(
        redis: RedisClient, replica: any ReplicatedLedger, configuration: HotPathConfiguration, logger: Logger,
        metrics: MetricsFactory
    ) {
        self.redis = redis
        self.replica = replica
        self.configuration = configuration
        self.logger = logger
        breaker = Breaker(configuration: configuration)
        let limits = replica.limits
        batcher = GateBatcher(
            redis: redis, batchMax: limits.cacheGateBatchMax, waitMicroseconds: limits.cacheGateWaitMicroseconds,
            inFlightMax: redis.connectionCount, configuration: configuration, metrics: metrics)
        func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Counter {
            Counter(label: label, dimensions: dimensions, factory: metrics)
        }
        routed = (
            counter("stockade_cache_reservations_total", [("path", "cache")]),
            counter("stockade_cache_reservations_total", [("path", "quorum")]),
            counter("stockade_cache_reservations_total", [("path", "sold_out_memory")]),
            counter("stockade_cache_reservations_total", [("path", "outcome_unknown")])
        )
        degradeCounter = counter("stockade_cache_breaker_switches_total")
        refillCounter = counter("stockade_cache_refills_total")
        reclaimCounter = counter("stockade_cache_reclaims_total")
        deadLetterCounter = counter("stockade_cache_dead_letters_total")
        pendingGauge = Gauge(label: "stockade_cache_queue_pending", dimensions: [], factory: metrics)
        oldestGauge = Gauge(label: "stockade_cache_queue_oldest_age_seconds", dimensions: [], factory: metrics)
        hitRateGauge = Gauge(label: "stockade_cache_hit_rate", dimensions: [], factory: metrics)
    }

    // MARK: - CacheGate

    public func reserve(_ request: ReserveRequest) async -> Outcome? {
        await withCheckedContinuation { continuation in
            reserve(request) { continuation.resume(returning: $0) }
        }
    }

    /// Runs on the caller's thread up to the gate call (it reads the applied state under the
    /// ledger lock, held by the commit thread only while it applies); `completion` runs on a
    /// Redis connection's thread, or the caller's when the cache does not take the request.
    public func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome?) -> Void) {
        reserve(request, retriesLeft: Self.inTransitRetries, completion: completion)
    }

    /// Gate calls a reservation may make again while the units it lacks are on their way to the
    /// cache, and the wait before each: half a second at most, a coordinator turn and a commit.
    static let inTransitRetries = 50
    static let inTransitWait = DispatchTimeInterval.milliseconds(10)

    private func reserve(_ request: ReserveRequest, retriesLeft: Int, completion: @escaping @Sendable (Outcome?) -> Void) {
        guard let call = gateCall(for: request, counted: retriesLeft == Self.inTransitRetries, answered: completion) else { return }
        batcher.decide(call) { [self] result in
            // Short with nothing left in the ledger is "sold out", unless a grant the ledger has
            // made is not yet credited in Redis: those units are on their way, and saying
            // insufficient_stock would leave them unsold. Ask the gate again once they land.
            guard retriesLeft > 0, case .success(let reply) = result, reply.elements?.first?.string == "short",
                let sku = reply.elements?[1].string.map(SKU.init), ledgerAvailable(sku) == 0
            else { return completion(outcome(of: result, for: request)) }
            // Redis answered: that is the probe's result too (the retry asks the breaker again).
            breaker.record(success: true, switches: counters, counter: degradeCounter, logger: logger)
            creditInTransit(sku) { [self] inTransit in
                guard inTransit else { return completion(outcome(of: result, for: request)) }
                wake.signal()
                DispatchQueue.global().asyncAfter(deadline: .now() + Self.inTransitWait) {
                    self.reserve(request, retriesLeft: retriesLeft - 1, completion: completion)
                }
            }
        }
    }

    /// Units of `sku` the ledger could still sell outside its allotments.
    func ledgerAvailable(_ sku: SKU) -> Int64 {
        replica.read { ledger in CacheDecisions.ledgerAvailable(sku, in: ledger) }
    }

    /// Whether a cache grant of `sku` is in the ledger but not yet credited in Redis (its
    /// `grant:*` marker is below the ledger's last grant index). Unknown counts as no.
    private func creditInTransit(_ sku: SKU, answer: @escaping @Sendable (Bool) -> Void) {
        let grants: [(key: String, index: UInt64)] = replica.read { ledger in
            ledger.allotments.compactMap { key, allotment in
                key.sku == sku && key.holder == .cache ? (HotKeys.grant(key.sku, key.warehouse), allotment.lastGrantIndex) : nil
            }
        }
        guard !grants.isEmpty else { return answer(false) }
        redis.send(RedisCommand(["MGET"] + grants.map(\.key))) { result in
            guard case .success(let reply) = result, let markers = reply.elements, markers.count == grants.count else {
                return answer(false)
            }
            answer(zip(grants, markers).contains { grant, marker in grant.index > UInt64(marker.string ?? "0") ?? 0 })
        }
    }

    /// The request's gate call, or nil after answering it (or sending it to the quorum path) here.
    /// `counted`: whether this is the request's first call (its rate is counted once).
    private func gateCall(for request: ReserveRequest, counted: Bool, answered: (Outcome?) -> Void) -> GateBatcher.Call? {
        if counted { noteRate(request) }
        if !redis.isConnected { breaker.trip(switches: counters, counter: degradeCounter, logger: logger) }
        // Decide from the applied state: ids the ledger knows, invalid bodies and anything not
        // entirely hot go the usual way.
        guard let plan = replica.read({ ledger in CacheDecisions.plan(request, in: ledger) }) else {
            answered(quorum())
            return nil
        }
        // Sold out is an answer from the applied state: current only while this node may answer
        // from it (a node cut off from the quorum says quorum_unavailable instead).
        if replica.answersFromAppliedState, let sku = request.lines.map(\.sku).first(where: isSoldOut) {
            routed.soldOutMemory.increment()
            counters.cacheAnswered.add(1, ordering: .relaxed)
            let line = request.lines.first { $0.sku == sku }!
            answered(
                .rejected(
                    StockadeError(.insufficientStock, "sku \(sku): sold out"),
                    detail: RejectionDetail(sku: sku, requested: line.quantity, available: 0)))
            return nil
        }
        // Stamped with the cluster's agreed time, never this node's clock alone; without one, the
        // quorum path decides.
        guard let createdAtMs = replica.grantTimeMs else {
            answered(quorum())
            return nil
        }
        // Asked last, right before the call: in half-open it hands out the one probe, whose reply
        // then closes or reopens it. A probe handed to a request that then went elsewhere would
        // leave it half-open for good.
        guard breaker.allows() else {
            answered(quorum())
            return nil
        }
        return Self.gateCall(request, plan: plan, createdAtMs: createdAtMs)
    }

    /// What the gate's reply (or the failure of its call) means for the request
    /// (`CacheDecisions`), with the breaker, the counters and the sold-out memory kept here.
    private func outcome(of result: Result<RedisValue, any Error>, for request: ReserveRequest) -> Outcome? {
        let (verdict, healthy) = CacheDecisions.verdict(of: result, for: request)
        if let healthy { breaker.record(success: healthy, switches: counters, counter: degradeCounter, logger: logger) }
        if case .short = verdict { wake.signal() }
        let outcome = CacheDecisions.outcome(verdict, for: request) { sku in
            replica.answersFromAppliedState && ledgerAvailable(sku) == 0
        }
        switch (verdict, outcome) {
        case (_, nil):
            if case .success(let reply) = result, healthy == false { logger.error("unexpected gate reply", metadata: ["reply": "\(reply)"]) }
            return quorum()
        case (.unknown(let message), _):
            if healthy == true { logger.error("unreadable gate answer", metadata: ["detail": "\(message)"]) }
            routed.unknown.increment()
        case (.short(let sku, _), _):
            markSoldOut(sku)
            fallthrough
        default:
            routed.cache.increment()
            counters.cacheAnswered.add(1, ordering: .relaxed)
        }
        return outcome
    }

    public func settle(_ id: ReservationID) async {
        guard replica.read({ $0.hold(id) }) == nil else { return }
        guard let exists = try? await redis.call(RedisCommand(["EXISTS", HotKeys.answer(id)])), exists.integer == 1 else { return }
        let deadline = ContinuousClock.now + .milliseconds(configuration.settleTimeoutMs)
        while ContinuousClock.now < deadline {
            wake.signal()
            try? await Task.sleep(for: .milliseconds(5))
            if replica.read({ $0.hold(id) }) != nil { return }
        }
    }

    public func status() -> CacheStatus {
        var status = CacheStatus(
            breaker: breaker.stateName, degradeSwitches: counters.degradeSwitches.load(ordering: .relaxed),
            cacheAnswered: counters.cacheAnswered.load(ordering: .relaxed),
            quorumAnswered: counters.quorumAnswered.load(ordering: .relaxed),
            queuePending: counters.queuePending.load(ordering: .relaxed),
            queueOldestAgeMs: counters.queueOldestAgeMs.load(ordering: .relaxed),
            deadLetters: counters.deadLetters.load(ordering: .relaxed), refills: counters.refills.load(ordering: .relaxed),
            reclaims: counters.reclaims.load(ordering: .relaxed))
        status.queueDelivered = counters.queueDelivered.load(ordering: .relaxed)
        status.deadLetterStream = counters.deadLetterStream.load(ordering: .relaxed)
        return status
    }

    private func quorum() -> Outcome? {
        routed.quorum.increment()
        counters.quorumAnswered.add(1, ordering: .relaxed)
        return nil
    }

    // MARK: - Sold out, rates

    func isSoldOut(_ sku: SKU) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        return soldOut.contains(sku)
    }

    private func markSoldOut(_ sku: SKU) {
        lock.lock()
        soldOut.insert(sku)
        lock.unlock()
    }

    /// The coordinator drops SKUs that have stock again.
    func clearSoldOut(where hasStock: (SKU) -> Bool) {
        lock.lock()
        soldOut = soldOut.filter { !hasStock($0) }
        lock.unlock()
    }

    /// Distinct SKUs counted per second; reservations of further SKUs in that second are not
    /// counted (a second with this many distinct SKUs has no single hot one among the rest).
    static let rateSKUsMax = 10_000

    private func noteRate(_ request: ReserveRequest) {
        let second = replica.clock() / 1000
        lock.lock()
        if second != rateSecond {
            lastRates = second == rateSecond + 1 ? rateCounts : [:]
            rateCounts.removeAll(keepingCapacity: true)
            rateSecond = second
        }
        for line in request.lines where rateCounts.count < Self.rateSKUsMax || rateCounts[line.sku] != nil {
            rateCounts[line.sku, default: 0] += 1
        }
        lock.unlock()
    }

    /// Reservation attempts per SKU received here in the last whole second, and which second that is.
    func rates() -> (second: Int64, counts: [SKU: Int]) {
        let second = replica.clock() / 1000
        lock.lock()
        defer { lock.unlock() }
        if second == rateSecond { return (second - 1, lastRates) }
        return (second - 1, second == rateSecond + 1 ? rateCounts : [:])
    }
}

/// Lets the coordinator's and the consumer's idle waits end early when there is work (a line
/// came up short, a confirm waits for a cache hold). Waiting costs nothing while idle.
final class Wakeup: @unchecked Sendable {
    private let lock = NSLock()
    private var flagged = false
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextID: UInt64 = 0
    private var timedOut: Set<UInt64> = []

    func signal() {
        lock.lock()
        let resumed = waiters
        waiters.removeAll()
        flagged = resumed.isEmpty
        lock.unlock()
        for continuation in resumed.values { continuation.resume() }
    }

    /// Returns when signalled (or if a signal came since the last wait), or after `milliseconds`.
    func wait(milliseconds: Int) async {
        let id: UInt64? = lock.withLock {
            if flagged {
                flagged = false
                return nil
            }
            nextID += 1
            return nextID
        }
        guard let id else { return }
        let timer = Task { [self] in
            try? await Task.sleep(for: .milliseconds(milliseconds))
            if !Task.isCancelled { resume(id) }
        }
        await withCheckedContinuation { continuation in
            let resumeNow = lock.withLock {
                if flagged || timedOut.remove(id) != nil {
                    flagged = false
                    return true
                }
                waiters[id] = continuation
                return false
            }
            if resumeNow { continuation.resume() }
        }
        timer.cancel()
    }

    private func resume(_ id: UInt64) {
        let continuation: CheckedContinuation<Void, Never>? = lock.withLock {
            guard let continuation = waiters.removeValue(forKey: id) else {
                timedOut.insert(id)  // fired before the wait registered
                return nil
            }
            return continuation
        }
        continuation?.resume()
    }
}
