import Consensus
import DequeModule
import Ledger
import StockadeCore

/// The parts of a replica's state that are not the protocol's or the ledger's, each a value with
/// the invariants it keeps: the cheap ones checked at every turn boundary in production
/// (`checkTurnBoundary`), the walks over queues by the simulator after every step (`stateViolations`).
extension ReplicaDriver {
    /// A follower's proposals on their way to the leader, and the batches other followers
    /// forwarded to this node.
    struct Forwarding {
        /// Waiting for a known, reachable leader.
        var awaitingLeader: [Proposal] = []
        /// Sent to the leader, by forward request id, until its reply comes or their deadline passes.
        var out: [UInt64: [Proposal]] = [:]
        /// The same ids in the order they were sent, with their latest deadline.
        var order = Deque<(id: UInt64, deadlineMs: Int64)>()
        /// The next request id is the one after this (ids start at a random point per process).
        var nextID: UInt64
        /// Batches forwarded to this node, by local key, collecting their outcomes.
        var incoming: [UInt64: ForwardBatch] = [:]
        var nextIncomingID: UInt64 = 0

        /// Every request in flight is in the send order, under an id already given out; every
        /// incoming batch still waits for something.
        var violations: [String] {
            var found: [String] = []
            if !out.isEmpty {
                let sent = Set(order.map(\.id))
                if !out.keys.allSatisfy(sent.contains) { found.append("a forward in flight is missing from the send order") }
            }
            if !incoming.allSatisfy({ $0.key <= nextIncomingID && $0.value.remaining > 0 }) {
                found.append("an incoming batch with nothing left to answer")
            }
            return found
        }
    }

    /// Linearizable reads (`readBarrier`): accepted as the protocol confirms leadership, then
    /// answered once the applied state reaches the read point.
    struct ReadPoints {
        /// Not yet handed to the protocol (no leader that could confirm them yet).
        var notYetAccepted: [ReadWaiter] = []
        /// Handed to the protocol under a request id, waiting for it to confirm the read point.
        var awaitingState: [UInt64: ReadWaiter] = [:]
        /// Confirmed: waiting for the applied state to reach their index.
        var awaitingApply: [(index: LogIndex, waiter: ReadWaiter)] = []
        var nextID: UInt64 = 0

        var count: Int { notYetAccepted.count + awaitingState.count + awaitingApply.count }

        var violations: [String] {
            awaitingState.keys.allSatisfy({ $0 <= nextID }) ? [] : ["a read waits under an id never given out"]
        }
    }

    /// When the next snapshot is due (`Ledger.snapshotDue`), and whether one is being written.
    struct SnapshotCadence {
        /// The applied index and the number of holds of the newest snapshot (taken, installed or
        /// loaded at start).
        var index: LogIndex
        var holds: Int
        var inProgress = false

        func checkInvariants(appliedIndex: LogIndex) {
            precondition(index <= appliedIndex, "snapshot at \(index) beyond the applied index \(appliedIndex)")
        }
    }

    /// The local fallback's bookkeeping beside the local log itself (`LocalHolds`).
    struct LocalFallbackState {
        /// Answers that wait for local records to be durable: the records made when each was decided.
        var answers: [(Origin, Outcome, Int)] = []
        /// Local records made durable so far in this process.
        var recordsDurable = 0
        /// One of each of the fallback's own proposals at a time.
        var epochInFlight = false
        var reconcileInFlight = false
        var refillInFlight = false
        /// A batch handed over, waiting for its handover record to be durable before it is proposed.
        var readyBatch: (LocalReconcile, Int)?
        var nextCheckMs: Int64 = 0
        /// When the oldest provisional hold was created, as of the last periodic check (for
        /// reports: finding it is O(provisional holds)).
        var oldestProvisionalMs: Int64?
        /// The cluster's agreed time when last there was one, with the monotonic and the wall
        /// time it was read at.
        var lastAgreedTime: (timeMs: Int64, atMs: Int64, wallMs: Int64)?
        /// Reserves granted from this node's reserve, and provisional holds the ledger took in.
        var fallbacksTaken = 0
        var reconciledHolds = 0

        /// Answers wait for records in the order they were made; none waits for a record not yet made.
        func violations(recordsMade: Int) -> [String] {
            var found: [String] = []
            if !zip(answers, answers.dropFirst()).allSatisfy({ $0.2 <= $1.2 }) { found.append("local answers out of record order") }
            if !answers.allSatisfy({ $0.2 <= recordsMade }) { found.append("a local answer waits for a record never made") }
            if !(readyBatch.map { $0.1 <= recordsMade } ?? true) { found.append("a handed-over batch waits for a record never made") }
            return found
        }
    }

    /// What holds between any two turns, whatever happened in them: the commit index never goes
    /// back, nothing is applied beyond it, and no snapshot is ahead of the applied state. O(1):
    /// the runner checks it after every turn, in production too, and stops the node rather than
    /// let it answer from a state that broke them.
    public mutating func checkTurnBoundary() {
        precondition(raft.commitIndex >= commitAtLastBoundary, "commit went back from \(commitAtLastBoundary) to \(raft.commitIndex)")
        precondition(ledger.appliedIndex <= raft.commitIndex, "applied \(ledger.appliedIndex) beyond commit \(raft.commitIndex)")
        snapshots.checkInvariants(appliedIndex: ledger.appliedIndex)
        commitAtLastBoundary = raft.commitIndex
    }

    /// The invariants that take a walk over a queue: proposals wait in log order, and each
    /// part's own. The simulator checks them after every step.
    public var stateViolations: [String] {
        var found: [String] = []
        if !zip(waiting, waiting.dropFirst()).allSatisfy({ $0.index <= $1.index }) { found.append("proposals wait out of log order") }
        found += forwarding.violations
        found += readPoints.violations
        found += fallback.violations(recordsMade: local.recordsMade)
        return found
    }
}
