import Consensus
import Foundation
import Ledger
import Replication
import StockadeCore

/// The bounded queues between callers and peers on any thread and a replica's loop thread:
/// proposals, read requests, peer messages, forwarded commands, forward replies and clock pings. Each has its
/// bound in `Limits`; a proposal or read over its bound is refused, a peer message over its bound
/// is dropped (the protocol resends; a dropped forward is answered `outcome_unknown` by its sender
/// at the deadline).
///
/// Threading: every method may be called from any thread; state is guarded by one condition,
/// which also wakes the loop.
final class ReplicaQueues<Caller>: @unchecked Sendable {
    typealias Driver = ReplicaDriver<Caller>

    /// What the loop takes in one turn.
    struct Turn {
        var proposals: [Driver.NewProposal] = []
        var messages: [Envelope] = []
        var forwards: [Driver.IncomingForward] = []
        var replies: [Driver.ForwardReply] = []
        var reads: [Caller] = []
        var pings: [(from: NodeID, ping: ClockPing)] = []
        var stopping = false
    }

    private let limits: Limits
    private let condition = NSCondition()
    private var queued = Turn()
    private var accepting = true

    init(limits: Limits) {
        self.limits = limits
    }

    var isAccepting: Bool {
        condition.lock()
        defer { condition.unlock() }
        return accepting
    }

    /// Queues a proposal, or returns why it was refused.
    func propose(_ proposal: Driver.NewProposal) -> StockadeError? {
        condition.lock()
        defer { condition.unlock() }
        if !accepting { return StockadeError(.unavailable, "the node is shutting down") }
        if queued.proposals.count >= limits.pendingCommandsMax {
            return StockadeError(.overloaded, "too many commands waiting for the log; retry with backoff")
        }
        queued.proposals.append(proposal)
        if queued.proposals.count == 1 { condition.signal() }
        return nil
    }

    /// Queues a read request, or returns why it was refused.
    func read(_ caller: Caller) -> StockadeError? {
        condition.lock()
        defer { condition.unlock() }
        if !accepting { return StockadeError(.unavailable, "the node is shutting down") }
        if queued.reads.count >= limits.consensus.pendingReadsMax { return StockadeError(.overloaded, "too many reads waiting for a read point") }
        queued.reads.append(caller)
        if queued.reads.count == 1 { condition.signal() }
        return nil
    }

    func deliver(_ envelope: Envelope) { append(envelope, to: \.messages) }
    func deliver(_ forward: Driver.IncomingForward) { append(forward, to: \.forwards) }
    func deliver(_ reply: Driver.ForwardReply) { append(reply, to: \.replies) }
    func deliver(_ ping: ClockPing, from peer: NodeID) { append((from: peer, ping: ping), to: \.pings) }

    /// Queues something a peer sent, unless `peerInboxMessagesMax` of its kind already wait.
    private func append<Item>(_ item: Item, to queue: WritableKeyPath<Turn, [Item]>) {
        condition.lock()
        if queued[keyPath: queue].count < limits.peerInboxMessagesMax {
            queued[keyPath: queue].append(item)
            if queued[keyPath: queue].count == 1 { condition.signal() }
        }
        condition.unlock()
    }

    /// Stops taking proposals and reads, and wakes the loop.
    func stop() {
        condition.lock()
        accepting = false
        queued.stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until something arrives or `deadline` passes, then takes it (at most
    /// `commitBatchMax` proposals). When `gather` is set and only a few proposals wait, it waits up
    /// to `commitWaitMicroseconds` more so that one append and one fsync carry more of them.
    func take(until deadline: ContinuousClock.Instant, gather: Bool) -> Turn {
        condition.lock()
        defer { condition.unlock() }
        // After `stop()` the loop learns of it at its next tick at the latest, and while it
        // drains it still waits for its ticks rather than spinning.
        while isEmpty && ContinuousClock.now < deadline {
            _ = condition.wait(until: Date(timeIntervalSinceNow: (deadline - .now).secondsValue + 0.0005))
        }
        if gather && !queued.proposals.isEmpty && queued.proposals.count < limits.commitBatchMax
            && limits.commitWaitMicroseconds > 0 && queued.messages.isEmpty
        {
            _ = condition.wait(until: Date(timeIntervalSinceNow: Double(limits.commitWaitMicroseconds) / 1e6))
        }
        var turn = queued
        let take = min(queued.proposals.count, limits.commitBatchMax)
        turn.proposals = Array(queued.proposals.prefix(take))
        queued.proposals.removeFirst(take)
        queued.messages.removeAll(keepingCapacity: true)
        queued.forwards.removeAll()
        queued.replies.removeAll()
        queued.reads.removeAll()
        queued.pings.removeAll()
        return turn
    }

    /// Everything still queued, at shutdown.
    func drain() -> (proposals: [Driver.NewProposal], reads: [Caller]) {
        condition.lock()
        defer { condition.unlock() }
        defer {
            queued.proposals.removeAll()
            queued.reads.removeAll()
        }
        return (queued.proposals, queued.reads)
    }

    private var isEmpty: Bool {
        queued.proposals.isEmpty && queued.messages.isEmpty && queued.forwards.isEmpty && queued.replies.isEmpty
            && queued.reads.isEmpty && queued.pings.isEmpty
    }
}
