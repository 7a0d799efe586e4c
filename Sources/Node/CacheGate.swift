import Ledger
import StockadeCore

/// The hot-SKU cache as the API sees it (implemented by `HotStock.HotPath`).
public protocol CacheGate: Sendable {
    /// Answers a reservation from the cache, or nil when it must take the quorum path (a line is
    /// not hot, the cache is short, the breaker is open, the decrement queue is full).
    func reserve(_ request: ReserveRequest) async -> Outcome?
    /// `reserve(_:)` for callers outside Swift concurrency (the event loops): `completion` gets
    /// the answer, or nil for the quorum path, on some thread, and must not block.
    func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome?) -> Void)
    /// Before a confirm, release or extend of an id the ledger does not know: if the cache granted
    /// it, returns once the decrement queue has brought it into the ledger (or a deadline passed).
    func settle(_ id: ReservationID) async
    /// Counters and state for `/v1/cluster`.
    func status() -> CacheStatus
    /// The ledger's cache allotments (of `sku`, or all) compared with Redis: every disagreement.
    func audit(sku: SKU?, attempts: Int) async throws -> [AuditFinding]
}

public struct CacheStatus: Sendable, Equatable {
    public var breaker: String
    public var degradeSwitches: Int
    public var cacheAnswered: Int
    public var quorumAnswered: Int
    public var queuePending: Int
    public var queueOldestAgeMs: Int64
    /// Records delivered to a consumer and not yet acknowledged (`XPENDING`).
    public var queueDelivered: Int = 0
    /// Records in the dead-letter stream (every node's), and how many this node moved there.
    public var deadLetterStream: Int = 0
    public var deadLetters: Int
    public var refills: Int
    public var reclaims: Int

    public init(
        breaker: String, degradeSwitches: Int, cacheAnswered: Int, quorumAnswered: Int, queuePending: Int,
        queueOldestAgeMs: Int64, deadLetters: Int, refills: Int, reclaims: Int
    ) {
        self.breaker = breaker
        self.degradeSwitches = degradeSwitches
        self.cacheAnswered = cacheAnswered
        self.quorumAnswered = quorumAnswered
        self.queuePending = queuePending
        self.queueOldestAgeMs = queueOldestAgeMs
        self.deadLetters = deadLetters
        self.refills = refills
        self.reclaims = reclaims
    }

    /// The share of reservations the cache answered.
    public var hitRate: Double {
        let total = cacheAnswered + quorumAnswered
        return total == 0 ? 0 : Double(cacheAnswered) / Double(total)
    }
}
