import Consensus
import Ledger
import StockadeCore

/// The I/O of one node, as the runner needs it. The production shell (`ClusterReplica`) does it
/// with a thread, files and sockets; the simulator with its simulated disk and network. Both run
/// the same turn and the same write order (`ReplicaRunner`), so neither exists twice.
public protocol ReplicaShell: AnyObject {
    associatedtype Caller

    /// Runs `body` on the node's driver (the production shell holds its lock meanwhile; the
    /// runner never holds it across I/O).
    func withDriver<T>(_ body: (inout ReplicaDriver<Caller>) throws -> T) rethrows -> T
    /// Hands protocol messages to the network.
    func send(_ envelopes: [Envelope])
    /// Makes one step of `work` durable; steps come in `Work.writeSteps` order, each after the
    /// one before is durable. Throws when the disk fails; false when the node stopped partway
    /// (a simulated crash), after which the runner touches nothing more.
    func write(_ step: ReplicaDriver<Caller>.WriteStep, of work: ReplicaDriver<Caller>.Work) throws -> Bool
    /// A snapshot the shell finished writing (in the background) since it was last asked.
    func takeFinishedSnapshot() throws -> FinishedSnapshot?
    /// Carries out what the driver handed over: answers, frames, a snapshot to start, events.
    func deliver(_ output: ReplicaDriver<Caller>.Output)
    /// `work` is durable and applied (for metrics and checks).
    func applied(_ work: ReplicaDriver<Caller>.Work)
}

/// How a snapshot the driver asked for ended.
public enum FinishedSnapshot: Sendable {
    case durable(Snapshot)
    case failed
}

/// One node's turn, and the write order, for every shell: begin the turn with what arrived, work
/// off what the protocol made (send the leader's appends, write, send what promises durable
/// state, apply and answer), end the turn (deadlines), work off what that decided (a provisional
/// hold granted at its deadline is made durable before it is answered), and deliver.
public enum ReplicaRunner {
    /// Runs one turn. False if the node stopped partway (a simulated crash).
    @discardableResult
    public static func turn<Shell: ReplicaShell>(_ shell: Shell, _ input: ReplicaDriver<Shell.Caller>.TurnInput) throws -> Bool {
        shell.withDriver { $0.beginTurn(input) }
        guard try workOff(shell) else { return false }
        shell.withDriver { $0.endTurn() }
        guard try workOff(shell) else { return false }
        deliverOutput(shell)
        shell.withDriver { $0.checkTurnBoundary() }
        return true
    }

    /// Works off the driver's `Work` until it has none. False if the node stopped partway.
    public static func workOff<Shell: ReplicaShell>(_ shell: Shell) throws -> Bool {
        switch try shell.takeFinishedSnapshot() {
        case .durable(let snapshot): shell.withDriver { $0.snapshotDurable(snapshot) }
        case .failed: shell.withDriver { $0.snapshotFailed() }
        case nil: break
        }
        while true {
            let work = shell.withDriver { $0.nextWork() }
            if work.isEmpty { return true }
            shell.send(work.messagesBeforePersist)
            for step in work.writeSteps {
                guard try shell.write(step, of: work) else { return false }
            }
            // Only now: votes and acknowledgements promise what was just written.
            shell.send(work.messages)
            shell.withDriver { $0.persisted(work) }
            shell.applied(work)
            deliverOutput(shell)
        }
    }

    /// Hands the driver's output to the shell.
    public static func deliverOutput<Shell: ReplicaShell>(_ shell: Shell) {
        let output = shell.withDriver { $0.takeOutput() }
        shell.deliver(output)
    }

    /// Shutdown: whatever is still waiting gets its honest answer, delivered.
    public static func shutDown<Shell: ReplicaShell>(_ shell: Shell) {
        shell.withDriver { $0.shutDown() }
        deliverOutput(shell)
    }
}

extension ReplicaDriver {
    /// What arrived for one turn, and when it begins.
    public struct TurnInput {
        public var nowMs: Int64
        public var wallMs: Int64
        public var messages: [Envelope] = []
        public var forwards: [IncomingForward] = []
        public var replies: [ForwardReply] = []
        public var proposals: [NewProposal] = []
        public var reads: [Caller] = []
        public var pings: [(from: NodeID, ping: ClockPing)] = []

        public init(
            nowMs: Int64, wallMs: Int64, messages: [Envelope] = [], forwards: [IncomingForward] = [], replies: [ForwardReply] = [],
            proposals: [NewProposal] = [], reads: [Caller] = [], pings: [(from: NodeID, ping: ClockPing)] = []
        ) {
            self.nowMs = nowMs
            self.wallMs = wallMs
            self.messages = messages
            self.forwards = forwards
            self.replies = replies
            self.proposals = proposals
            self.reads = reads
            self.pings = pings
        }

        /// Whether nothing arrived: the turn is due only for time.
        public var isEmpty: Bool {
            messages.isEmpty && forwards.isEmpty && replies.isEmpty && proposals.isEmpty && reads.isEmpty && pings.isEmpty
        }
    }

    /// Starts a turn with what arrived (see `beginTurn(nowMs:wallMs:…)`).
    public mutating func beginTurn(_ input: TurnInput) {
        beginTurn(
            nowMs: input.nowMs, wallMs: input.wallMs, messages: input.messages, forwards: input.forwards, replies: input.replies,
            proposals: input.proposals, reads: input.reads, pings: input.pings)
    }

    /// One durable step of a `Work`, in the order a shell must take them.
    public enum WriteStep {
        /// A leader's snapshot, installed (and the stored log after it kept, or emptied; see `Work`).
        case snapshot(Snapshot, keepsLog: Bool)
        /// Entries appended (replacing stored ones from the first one's index on), fsynced.
        case entries([Entry])
        /// Records appended to the local log of provisional holds, fsynced.
        case localRecords([LocalRecord])
        /// Term, vote and commit index; fsynced when `durable`.
        case hardState(HardState, durable: Bool)
    }
}

extension ReplicaDriver.Work {
    /// The write order, in one place: the snapshot before the entries that follow it; the entries
    /// before the hard state whose commit index may cover them (so a torn write never leaves a
    /// commit index past the entries on disk); the local records with the rest, before any answer
    /// that depends on them.
    public var writeSteps: [ReplicaDriver<Caller>.WriteStep] {
        var steps: [ReplicaDriver<Caller>.WriteStep] = []
        if let snapshot { steps.append(.snapshot(snapshot, keepsLog: snapshotKeepsLog)) }
        if !entries.isEmpty { steps.append(.entries(entries)) }
        if !localRecords.isEmpty { steps.append(.localRecords(localRecords)) }
        if let hardState { steps.append(.hardState(hardState, durable: hardStateDurable)) }
        return steps
    }
}
