import Consensus
import DequeModule
import Ledger
import StockadeCore

/// Everything one replica decides, as a deterministic value: the pure `RaftNode`, the applied
/// `Ledger`, and the runtime around them (admission, forwarding to the leader, read points,
/// deadlines, applying, snapshot cadence, command time). The node's shell and the cluster
/// simulator both run this same type; neither decides anything of its own.
///
/// It reads no clock, touches no file or socket, takes no lock and draws randomness only from the
/// generator it was given. Time comes in with each turn (`nowMs`, a monotonic reading, and
/// `wallMs`, the node's wall clock); callers are opaque values of type `Caller` that come back out
/// with their answers.
///
/// One turn, in this order (the shell runs it on one thread; the simulator on its scheduler):
/// 1. `beginTurn(...)` with the time and everything that arrived: peer messages, forwarded
///    commands and replies, proposals, read requests;
/// 2. while `nextWork()` is not empty: send its `messagesBeforePersist`, make its snapshot,
///    entries and hard state durable (in that order), send its `messages`, then `persisted(_:)`;
/// 3. `endTurn()`: answers everything past its deadline;
/// 4. at any point, `takeOutput()` hands over the answers, forward frames and snapshot requests
///    accumulated so far.
///
/// Answers: a proposal is answered only from its own applied entry, so every acknowledged
/// command is on a majority's disks. One that cannot be appended (no leader, no recent majority)
/// is refused at once with `quorum_unavailable`; one appended but not seen committed within the
/// quorum deadline gets `outcome_unknown`, since it may still commit. Its entry being replaced
/// by another at the same index is a definite failure (`quorum_unavailable`).
public struct ReplicaDriver<Caller> {
    public typealias Configuration = ReplicaConfiguration

    /// A command to propose, with who asked.
    public struct NewProposal {
        public var command: Command
        public var caller: Caller
        /// The reserve fast path was already tried for it (by the shell, under its lock).
        public var checked: Bool
        /// Set for a leader's own decision: written only while this node leads in this term,
        /// never forwarded.
        public var leaderTerm: Term?

        public init(_ command: Command, caller: Caller, checked: Bool = false, leaderTerm: Term? = nil) {
            self.command = command
            self.caller = caller
            self.checked = checked
            self.leaderTerm = leaderTerm
        }
    }

    /// Commands a follower forwarded to this node.
    public struct IncomingForward: Sendable {
        public var from: NodeID
        public var requestID: UInt64
        public var commands: [[UInt8]]

        public init(from: NodeID, requestID: UInt64, commands: [[UInt8]]) {
            self.from = from
            self.requestID = requestID
            self.commands = commands
        }
    }

    /// The leader's answer to commands this node forwarded.
    public struct ForwardReply: Sendable {
        public var requestID: UInt64
        public var appliedIndex: LogIndex
        public var outcomes: [[UInt8]]

        public init(requestID: UInt64, appliedIndex: LogIndex, outcomes: [[UInt8]]) {
            self.requestID = requestID
            self.appliedIndex = appliedIndex
            self.outcomes = outcomes
        }
    }

    /// What changed that an operator should hear about.
    public enum Event: Sendable, Equatable {
        case leading(term: Term, lastIndex: LogIndex)
        case stoppedLeading(term: Term)
        case proposingWarehouses(count: Int)
        case installedSnapshot(index: LogIndex, bytes: Int)
        /// This node's wall clock left the range a majority of the cluster's clocks agree on: it
        /// stops leading and does not campaign until it is back.
        case ownClockOff(distanceMs: Int64)
        case ownClockAgreed
    }

    /// Work for the shell, taken from the protocol's `Ready`.
    public struct Work {
        /// Sent before the write: a leader's appends, so followers write in parallel with it.
        public var messagesBeforePersist: [Envelope] = []
        /// A leader's snapshot to install: store it; then, if `snapshotKeepsLog` and the stored log
        /// reaches the snapshot's index, drop the entries it covers and keep the rest (they are
        /// durable and may have been acknowledged), else empty the log and restart it after the
        /// snapshot. `entries` follow as usual.
        public var snapshot: Snapshot?
        public var snapshotKeepsLog = false
        /// Entries to append, replacing any stored entries from the first one's index on.
        public var entries: [Entry] = []
        /// Hard state to write; `hardStateDurable` says whether it must be fsynced (term or vote
        /// changed) or may lag (only the commit index moved).
        public var hardState: HardState?
        public var hardStateDurable = false
        /// Sent after the write: votes and acknowledgements promise durable state.
        public var messages: [Envelope] = []
        /// Records to append to the node's local log and fsync (with the rest of the write).
        public var localRecords: [LocalRecord] = []
        var ready: Ready

        public var isEmpty: Bool { ready.isEmpty && localRecords.isEmpty }
        /// Committed entries this work applies.
        public var committedCount: Int { ready.committedEntries.count }
        /// The committed entries this work applies.
        public var committedEntries: [Entry] { ready.committedEntries }
    }

    /// A copy of the applied state for the shell to encode and write off its loop thread. Report
    /// it with `snapshotDurable(_:)` once it is on disk (or `snapshotFailed()`).
    public struct SnapshotRequest {
        public var index: LogIndex
        public var term: Term
        public var ledger: Ledger
    }

    /// What the driver hands over: answers to run, frames to send, a snapshot to write, events to log.
    public struct Output {
        public var answers: [(Caller, Outcome)] = []
        /// Read barriers: nil when the read may go ahead.
        public var readAnswers: [(Caller, StockadeError?)] = []
        public var frames: [(ForwardFrame, NodeID)] = []
        public var snapshot: SnapshotRequest?
        public var events: [Event] = []

        public var isEmpty: Bool {
            answers.isEmpty && readAnswers.isEmpty && frames.isEmpty && snapshot == nil && events.isEmpty
        }
    }

    enum Origin {
        case local(Caller)
        /// Position `position` of incoming forward batch `batch`.
        case forwarded(batch: UInt64, position: Int)
        /// The fallback's own work (see `ReplicaDriver+Local`).
        case `internal`(LocalTask)

        /// This node's own, rather than forwarded to it.
        var isLocal: Bool {
            if case .forwarded = self { return false }
            return true
        }
    }

    struct Proposal {
        var command: Command
        var origin: Origin
        var deadlineMs: Int64
        var checked: Bool
        var leaderTerm: Term?
    }

    struct Waiter {
        var index: LogIndex
        var term: Term
        var origin: Origin
        var deadlineMs: Int64
        /// The command as proposed, so the proposer applies its own entry without decoding it.
        var command: TimedCommand
    }

    struct ReadWaiter {
        var caller: Caller
        var deadlineMs: Int64
    }

    struct ForwardBatch {
        var from: NodeID
        var requestID: UInt64
        var outcomes: [Outcome?]
        var remaining: Int
    }

    public let configuration: Configuration
    let limits: Limits
    public internal(set) var raft: RaftNode
    /// The applied state.
    public internal(set) var ledger: Ledger

    /// The latest monotonic time, and the node's wall clock, as of the current turn.
    public internal(set) var nowMs: Int64 = 0
    public internal(set) var wallMs: Int64 = 0
    /// When the protocol's next tick is due, in `nowMs` time.
    public internal(set) var nextTickMs: Int64?
    /// The latest command time stamped or applied: stamps never go backwards.
    public internal(set) var lastTimeMs: Int64 = 0
    /// What the cluster's clocks agree on (see `ClusterClock`), and this turn's reading of it.
    var clock: ClusterClock
    public internal(set) var clockReading = ClusterClock.Reading.none

    var waiting = Deque<Waiter>()
    /// A follower's proposals on their way to the leader, and batches forwarded to this one.
    var forwarding: Forwarding
    /// Linearizable reads between their arrival and the applied state they wait for.
    var readPoints = ReadPoints()
    var awaitingLocalApply: [(index: LogIndex, answers: [(Proposal, Outcome)])] = []
    public internal(set) var lastContactMs: [NodeID: Int64] = [:]
    var wasLeader = false
    var termStartIndex: LogIndex = 0
    var configuredInTerm: Term = 0
    var persistedHardState: HardState
    /// The commit index at the end of the last turn (see `checkTurnBoundary`).
    var commitAtLastBoundary: LogIndex = 0
    /// When the next snapshot is due, and whether one is being written.
    var snapshots: SnapshotCadence
    var output = Output()
    /// Proposals refused because too many entries were uncommitted (for the shell's metrics).
    public internal(set) var overloadRefusals = 0

    /// This node's provisional holds and local log (see `ReplicaDriver+Local`).
    public internal(set) var local: LocalHolds
    /// The local fallback's own bookkeeping (see `LocalFallbackState`).
    var fallback = LocalFallbackState()
    /// Reserves granted from this node's reserve.
    public var fallbacksTaken: Int { fallback.fallbacksTaken }

    /// Starts from what was recovered from disk: the applied state of the newest snapshot (or an
    /// empty ledger), the hard state, and every log entry after the snapshot.
    public init(
        configuration: Configuration, ledger: Ledger, hardState: HardState, snapshot: Snapshot?, entries: [Entry],
        random: SplitMix64, local: LocalHolds? = nil
    ) {
        precondition(configuration.voters.contains(configuration.nodeID), "a node must be one of the voters")
        self.configuration = configuration
        limits = configuration.limits
        self.ledger = ledger
        persistedHardState = hardState
        snapshots = SnapshotCadence(index: ledger.appliedIndex, holds: ledger.holds.count)
        clock = ClusterClock(nodeID: configuration.nodeID, voters: configuration.voters, limits: configuration.limits)
        var random = random
        self.local = local ?? LocalHolds(node: configuration.nodeID, nonce: random.next() | 1)
        // Forward request ids start at a random point so that a leader's late reply to a frame
        // this node sent before it restarted cannot match one it sends now.
        forwarding = Forwarding(nextID: random.next() >> 1)
        raft = RaftNode(
            id: configuration.nodeID, voters: configuration.voters, configuration: configuration.limits.consensus,
            random: random, hardState: hardState, snapshot: snapshot, entries: entries)
    }

    /// A leader that has applied up to its term's start: it may answer from its applied state.
    public var isCaughtUpLeader: Bool { raft.isLeader && ledger.appliedIndex >= termStartIndex }

    /// A caught-up leader that has heard from a majority within an election timeout may answer a
    /// reserve from its applied state (a replay, a conflict, a shortfall). One cut off from the
    /// majority may not: another leader may already have changed the rows it would answer from.
    public var mayAnswerFromState: Bool { isCaughtUpLeader && hasRecentMajority() }

    /// Proposals appended and waiting for their entries to commit and apply.
    public var waitingCount: Int { waiting.count }

    /// When the next turn is due: the protocol's next tick, or sooner the earliest deadline of a
    /// proposal still waiting (so a reserve the quorum cannot decide is answered, or granted from
    /// the local reserve, at its deadline rather than up to a tick later). Deadlines are set on
    /// arrival, so each queue's first entry has its earliest.
    public var nextTurnMs: Int64? {
        var next = nextTickMs
        for deadline in [waiting.first?.deadlineMs, forwarding.awaitingLeader.first?.deadlineMs, forwarding.order.first?.deadlineMs] {
            if let deadline { next = min(next ?? deadline, deadline) }
        }
        return next
    }

    public mutating func takeOutput() -> Output {
        defer { output = Output() }
        return output
    }

    static var unknown: StockadeError {
        StockadeError(
            .outcomeUnknown,
            "the write reached the leader's log but its commit was not confirmed in time; it may still take effect. Retry with the same reservation id, or read it back, to learn the outcome"
        )
    }

    // MARK: - A turn

    /// Starts a turn at `nowMs` (monotonic) with the node's wall clock `wallMs`: reads the
    /// cluster's clocks, ticks the protocol as often as the time says, then takes what arrived.
    public mutating func beginTurn(
        nowMs: Int64, wallMs: Int64, messages: [Envelope] = [], forwards: [IncomingForward] = [],
        replies: [ForwardReply] = [], proposals: [NewProposal] = [], reads: [Caller] = [],
        pings: [(from: NodeID, ping: ClockPing)] = []
    ) {
        advanceClock(nowMs: nowMs, wallMs: wallMs, pings: pings)
        for envelope in messages {
            lastContactMs[envelope.from] = nowMs
            raft.step(envelope)
        }
        noteLeadership()
        for reply in replies { takeForwardReply(reply) }
        var batch = forwarding.awaitingLeader
        forwarding.awaitingLeader.removeAll()
        let deadline = nowMs + configuration.quorumDeadlineMs
        for proposal in proposals {
            let proposal = Proposal(
                command: proposal.command, origin: .local(proposal.caller), deadlineMs: deadline, checked: proposal.checked,
                leaderTerm: proposal.leaderTerm)
            if !answeredLocally(proposal) { batch.append(proposal) }
        }
        for forward in forwards { batch += admitForward(forward, deadlineMs: deadline) }
        if !batch.isEmpty { proposeBatch(batch) }
        readPoints.notYetAccepted += reads.map { ReadWaiter(caller: $0, deadlineMs: deadline) }
        submitReads()
        configureWarehousesIfNeeded()
        localTurn()
    }

    mutating func advanceClock(nowMs: Int64, wallMs: Int64, pings: [(from: NodeID, ping: ClockPing)] = []) {
        self.nowMs = max(self.nowMs, nowMs)
        self.wallMs = wallMs
        observeClocks(pings)
        let tick = configuration.tickMs
        guard var next = nextTickMs else {
            nextTickMs = self.nowMs + tick
            return
        }
        guard self.nowMs >= next else { return }
        // After a long stall, tick once rather than in a burst that would fire elections.
        if self.nowMs - next > tick * 4 { next = self.nowMs }
        while self.nowMs >= next {
            raft.tick()
            next += tick
        }
        nextTickMs = next
    }

    /// The protocol's next batch of work, or an empty one when there is none.
    public mutating func nextWork() -> Work {
        let ready = raft.ready()
        var work = Work(ready: ready)
        work.messagesBeforePersist = ready.messagesBeforePersist
        work.messages = ready.messages
        work.entries = ready.entries
        if !local.unsaved.isEmpty { work.localRecords = local.takeUnsaved() }
        if let snapshot = ready.snapshot {
            work.snapshot = snapshot
            // The protocol kept its log after the snapshot when it matched. Rewriting those
            // entries instead would open a window in which a crash loses entries this node has
            // already acknowledged as durable.
            work.snapshotKeepsLog = !raft.entries.isEmpty
        }
        // Term and vote are fsynced before any message that depends on them leaves; the commit
        // index is written along, and on its own only now and then (it may lag safely).
        if let hardState = ready.hardState {
            let durable = hardState.term != persistedHardState.term || hardState.votedFor != persistedHardState.votedFor
            if durable || hardState.commit >= persistedHardState.commit + LogIndex(limits.hardStateCommitLagMax) {
                work.hardState = hardState
                work.hardStateDurable = durable
                persistedHardState = hardState
            }
        }
        return work
    }

    /// Everything in `work` is durable: install its snapshot, apply the committed entries, answer
    /// their callers and the reads they release, and see whether a snapshot is due.
    public mutating func persisted(_ work: Work) {
        if let snapshot = work.snapshot { install(snapshot) }
        apply(work.ready.committedEntries)
        raft.advance(work.ready)
        for state in work.ready.readStates {
            if let read = readPoints.awaitingState.removeValue(forKey: state.requestID) {
                readPoints.awaitingApply.append((index: state.index, waiter: read))
            }
        }
        local.follow(ledger)
        localRecordsPersisted(work.localRecords.count)
        answerReads()
        answerForwarded()
        requestSnapshotIfDue()
        // Nothing is applied before it is committed, and a leader commits nothing it has not
        // itself made durable (it writes what it appends within the same turn, before it reads
        // the acknowledgements that could commit it).
        precondition(
            ledger.appliedIndex <= raft.commitIndex && (!raft.isLeader || raft.commitIndex <= raft.stableIndex),
            "applied \(ledger.appliedIndex) commit \(raft.commitIndex) stable \(raft.stableIndex)")
    }

    /// Ends the turn: answers everything past its deadline. A reserve the quorum could not decide
    /// may be granted from this node's reserve then: run `nextWork()` again to make it durable.
    public mutating func endTurn() {
        expire()
    }

    /// Shutdown: whatever is still waiting gets its honest answer.
    public mutating func shutDown() {
        let closing = StockadeError(.unavailable, "the node is shutting down")
        for proposal in forwarding.awaitingLeader { answer(proposal.origin, .rejected(closing)) }
        forwarding.awaitingLeader.removeAll()
        for proposal in forwarding.out.values.joined() { answer(proposal.origin, .rejected(Self.unknown)) }
        forwarding.out.removeAll()
        forwarding.order.removeAll()
        answerForwarded(force: true)
        while let waiter = waiting.popFirst() { answer(waiter.origin, .rejected(Self.unknown)) }
        for read in readPoints.notYetAccepted + Array(readPoints.awaitingState.values) + readPoints.awaitingApply.map(\.waiter) {
            output.readAnswers.append((read.caller, closing))
        }
        readPoints.notYetAccepted.removeAll()
        readPoints.awaitingState.removeAll()
        readPoints.awaitingApply.removeAll()
    }
}

/// Who a replica is, among whom, and its timing; its bounds (the protocol's included) are in `limits`.
public struct ReplicaConfiguration: Sendable {
    public var nodeID: NodeID
    public var voters: [NodeID]
    public var warehouses: [Warehouse]
    public var limits: Limits
    /// Length of one protocol tick.
    public var tickMs: Int64
    /// How long a write or a read point may wait for a majority before it is answered.
    public var quorumDeadlineMs: Int64

    public init(
        nodeID: NodeID, voters: [NodeID], warehouses: [Warehouse], limits: Limits, tickMs: Int64 = 50, quorumDeadlineMs: Int64 = 2_000
    ) {
        self.nodeID = nodeID
        self.voters = voters
        self.warehouses = warehouses
        self.limits = limits
        self.tickMs = tickMs
        self.quorumDeadlineMs = quorumDeadlineMs
    }
}

/// A frame of the runtime's own between peers: a command batch a follower forwards to the
/// leader, the leader's answer, or a clock reading.
public enum ForwardFrame: Sendable, Equatable {
    case forward(requestID: UInt64, commands: [[UInt8]])
    case reply(requestID: UInt64, appliedIndex: UInt64, outcomes: [[UInt8]])
    /// A clock reading for the peer (see `ClusterClock`).
    case clock(ClockPing)
}
