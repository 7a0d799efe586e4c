import Ledger
import StockadeCore

/// What the API and the expiry ticker need from a node: ordered, durable commands and reads of
/// the applied state. `Replica` is the single-node implementation; the cluster runtime replicates
/// the same commands through a majority quorum.
public protocol ReplicatedLedger: AnyObject, Sendable {
    var limits: Limits { get }
    /// The wall clock, in UTC milliseconds.
    var clock: @Sendable () -> Int64 { get }
    /// Whether the node still takes commands (false once shutdown has begun).
    var isAccepting: Bool { get }
    /// The term in which this node leads, or nil when it does not lead. A single node leads in
    /// term 0 for good. Work that only the leader may do (the hot path's coordinator) runs under
    /// this term and fences itself with it.
    var leaderTerm: UInt64? { get }
    /// Reads the applied state. Keep `body` short: it holds up the apply of new commands.
    func read<T>(_ body: (borrowing Ledger) throws -> T) rethrows -> T
    /// Queues a command; returns its outcome once it is durable (on a majority) and applied.
    func propose(_ command: Command) async -> Outcome
    /// Proposes only as the leader of `term`: never forwarded, and refused with `not_leader` once
    /// this node no longer leads in that term. A leader that was deposed without noticing can then
    /// not get a decision it took from its own view written by its successor.
    func propose(_ command: Command, asLeaderOf term: UInt64) async -> Outcome
    /// Reserves, answering without the log when the applied state already decides the request.
    func reserve(_ request: ReserveRequest) async -> Outcome
    /// `reserve(_:)` for callers outside Swift concurrency (the HTTP event loop's fast path):
    /// `completion` gets the outcome on some thread and must not block. The caller must not be
    /// made to wait for the ledger lock either.
    func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome) -> Void)
    /// Returns once the applied state includes every command acknowledged before the call
    /// (a linearizable read point), or throws a `StockadeError` if that cannot be established.
    func readBarrier() async throws
    /// A hold this node granted from its local reserve that the ledger has not taken in yet.
    func provisionalHold(_ id: ReservationID) -> Hold?
    /// Whether a refusal decided from this node's applied state (a shortfall) is current: the
    /// single node, or a caught-up leader that heard from a majority lately. A node cut off from
    /// the quorum answers nothing from possibly stale shared state.
    var answersFromAppliedState: Bool { get }
    /// The time a hold granted outside the log (by the cache) is stamped with: a time the cluster's
    /// clocks agree on (cut off, the last one carried forward while this node's clocks agree), or
    /// nil when there is none (the quorum path then decides). A single node's clock is the only
    /// clock there is.
    var grantTimeMs: Int64? { get }
    /// This node's provisional holds checked against its local reserves in its ledger (see
    /// `LocalHolds.audit`), and how many there are.
    func localAudit(sku: SKU?) -> (provisionalHolds: Int, findings: [AuditFinding])
}

extension ReplicatedLedger {
    /// Whether this node may propose on its own (the single node, or the cluster's leader).
    public var mayPropose: Bool { leaderTerm != nil }

    /// A hold this node granted from its local reserve that the ledger has not taken in yet
    /// (a cluster member cut off from the quorum grants these; see docs/local-fallback.md).
    public func provisionalHold(_ id: ReservationID) -> Hold? { nil }

    public var answersFromAppliedState: Bool { true }

    public var grantTimeMs: Int64? { clock() }

    public func localAudit(sku: SKU?) -> (provisionalHolds: Int, findings: [AuditFinding]) { (0, []) }
}
