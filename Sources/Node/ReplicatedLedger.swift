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
    /// Whether this node may propose on its own (the single node, or the cluster's leader).
    var mayPropose: Bool { get }
    /// Reads the applied state. Keep `body` short: it holds up the apply of new commands.
    func read<T>(_ body: (borrowing Ledger) throws -> T) rethrows -> T
    /// Queues a command; returns its outcome once it is durable (on a majority) and applied.
    func propose(_ command: Command) async -> Outcome
    /// Reserves, answering without the log when the applied state already decides the request.
    func reserve(_ request: ReserveRequest) async -> Outcome
    /// Returns once the applied state includes every command acknowledged before the call
    /// (a linearizable read point), or throws a `StockadeError` if that cannot be established.
    func readBarrier() async throws
}
