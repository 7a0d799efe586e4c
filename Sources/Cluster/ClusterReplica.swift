import Consensus
import DequeModule
import Foundation
import Ledger
import Logging
import Node
import ServiceLifecycle
import StockadeCore
import Storage
import Wire

/// One node of a replicated ledger: the pure `RaftNode` driven by a single loop thread that owns
/// the command log, the hard state, the snapshots and the ledger's writes.
///
/// Each turn of the loop takes what arrived (proposals, peer messages, read requests), ticks the
/// protocol on the wall clock, then works off `Ready`: send what may go before the write (the
/// leader's appends, so followers write in parallel with it), write and fsync entries and hard
/// state, send the rest (acknowledgements only after the fsync), apply committed entries and
/// answer the callers whose entries they are. A proposal is answered only from its own applied
/// entry, so every acknowledged command is on a majority's disks.
///
/// Deadlines: a proposal that cannot be appended (no leader, no recent majority) is refused at
/// once with `quorum_unavailable`; one appended but not seen committed within the quorum deadline
/// is answered `outcome_unknown`, since it may still commit. Its entry being replaced by another
/// at the same index is a definite failure (`quorum_unavailable`).
///
/// Threading: public methods may be called from any thread or task. Everything marked "loop" is
/// touched only by the loop thread (and by `init`). The ledger is guarded by `ledgerLock`, the
/// queues by `queueCondition`, the published status by `statusLock`.
///
/// Why this file is long: recovery, admission, forwarding, read barriers, the protocol loop,
/// storage, applying, deadlines and status are all decided inside this one class, interleaved with
/// its I/O. Moving methods into extensions would only hide that; the split that helps is
/// separating the decisions (a pure driver the simulator can run) from the I/O around them.
public final class ClusterReplica: ClusterMember, Service, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var nodeID: NodeID
        public var voters: [NodeID]
        public var dataDirectory: String
        public var warehouses: [Warehouse]
        public var limits: Limits
        public var consensus: ConsensusConfiguration
        /// Wall-clock length of one protocol tick.
        public var tickMs: Int
        /// How long a write may wait for a majority before it is answered.
        public var quorumDeadlineMs: Int

        public init(
            nodeID: NodeID, voters: [NodeID], dataDirectory: String, warehouses: [Warehouse], limits: Limits = .default,
            consensus: ConsensusConfiguration = ConsensusConfiguration(), tickMs: Int = 50, quorumDeadlineMs: Int = 2_000
        ) {
            self.nodeID = nodeID
            self.voters = voters
            self.dataDirectory = dataDirectory
            self.warehouses = warehouses
            self.limits = limits
            self.consensus = consensus
            self.tickMs = tickMs
            self.quorumDeadlineMs = quorumDeadlineMs
        }
    }

    /// What `GET /v1/cluster` reports.
    public struct Status: Sendable {
        public struct Peer: Sendable {
            public var nodeID: NodeID
            public var matchIndex: LogIndex?
            public var lastContactMs: Int64?
        }
        public var nodeID: NodeID
        public var role: Role
        public var term: Term
        public var leaderID: NodeID?
        public var commitIndex: LogIndex
        public var appliedIndex: LogIndex
        public var peers: [Peer]
    }

    /// Called exactly once with a proposal's outcome, on the loop thread (or at once on refusal).
    typealias Completion = @Sendable (Outcome) -> Void

    struct Proposal {
        var command: Command
        var complete: Completion
        var deadline: ContinuousClock.Instant
        /// The reserve fast path was already tried for it.
        var checked = false
        /// Set for a leader's own decision: written only while this node leads in this term,
        /// never forwarded.
        var leaderTerm: Term? = nil
    }

    struct Waiter {
        var index: LogIndex
        var term: Term
        var complete: Completion
        var deadline: ContinuousClock.Instant
    }

    struct ReadWaiter {
        var continuation: CheckedContinuation<StockadeError?, Never>
        var deadline: ContinuousClock.Instant
    }

    public let limits: Limits
    public let clock: @Sendable () -> Int64
    public let configuration: Configuration
    let logger: Logger
    let metrics: ReplicaMetrics
    let quorumDeadline: Duration

    private let ledgerLock = NSLock()
    private var ledger: Ledger

    private let queueCondition = NSCondition()
    private var proposals: [Proposal] = []
    private var inbox: [Envelope] = []
    private var readRequests: [ReadWaiter] = []
    private var forwardReplies: [(requestID: UInt64, appliedIndex: LogIndex, outcomes: [[UInt8]])] = []
    private var accepting = true
    private var stopping = false

    private let statusLock = NSLock()
    private var status: Status
    private var leaderReadyForLocalAnswers = false

    /// Sends envelopes to peers; set by the transport before `run`.
    private let senderLock = NSLock()
    private var sender: (@Sendable ([Envelope]) -> Void)?
    /// Sends a forward frame (or its reply) to a peer; false if it certainly did not go.
    private var frameSender: (@Sendable (ForwardFrame, NodeID) -> Bool)?

    // Loop state.
    private var raft: RaftNode
    private let log: CommandLog
    private let snapshots: SnapshotStore
    private let hardStateFile: HardStateFile
    private var persistedHardState: HardStateFile.Value
    private var waiting = Deque<Waiter>()
    /// A follower's proposals: waiting for a known, reachable leader, and sent to it.
    private var awaitingLeader: [Proposal] = []
    private var forwardedOut: [UInt64: [Proposal]] = [:]
    private var forwardedOrder = Deque<(id: UInt64, deadline: ContinuousClock.Instant)>()
    private var nextForwardID: UInt64 = 0
    private var awaitingLocalApply: [(index: LogIndex, answers: [(Proposal, Outcome)])] = []
    private var readsNotYetAccepted: [ReadWaiter] = []
    private var readsAwaitingState: [UInt64: ReadWaiter] = [:]
    private var readsAwaitingApply: [(index: LogIndex, waiter: ReadWaiter)] = []
    private var nextReadID: UInt64 = 0
    private var lastContact: [NodeID: ContinuousClock.Instant] = [:]
    private var lastTimeMs: Int64 = 0
    private var wasLeader = false
    private var termStartIndex: LogIndex = 0
    /// A leader that has applied up to its term's start: it may answer from its applied state.
    private var isCaughtUpLeader: Bool { raft.isLeader && ledger.appliedIndex >= termStartIndex }
    private var configuredInTerm: Term = 0
    private var snapshotIndex: LogIndex
    /// Holds in the newest snapshot (taken, installed or loaded at start): see `SnapshotWriter.due`.
    private var snapshotHolds = 0
    private var turnFsync = Duration.zero
    private var turnApply = Duration.zero
    private let snapshotWriter: SnapshotWriter
    private let loopThread = WorkerThread(name: "stockade-raft")

    /// Opens the data directory: newest snapshot, hard state, and every log entry after the
    /// snapshot (committed or not; the protocol hands out the committed ones to apply).
    public init(
        configuration: Configuration, logger: Logger, metrics: ReplicaMetrics,
        clock: @escaping @Sendable () -> Int64 = Replica.wallClockMs
    ) throws {
        self.configuration = configuration
        limits = configuration.limits
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
        quorumDeadline = .milliseconds(configuration.quorumDeadlineMs)
        let problems = limits.violations()
        guard problems.isEmpty else { throw StockadeError(.invalidRequest, "bad limits: \(problems)") }
        guard configuration.voters.contains(configuration.nodeID), !configuration.voters.contains(0) else {
            throw StockadeError(.invalidRequest, "node \(configuration.nodeID) must be one of the voters, ids from 1")
        }
        let directory = configuration.dataDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        snapshots = try SnapshotStore(directory: directory + "/snapshots")
        snapshotWriter = SnapshotWriter(store: snapshots, metrics: metrics, logger: logger, label: "stockade-cluster-snapshot", keepsBytes: true)
        log = try CommandLog(
            directory: directory + "/log", payloadBytesMax: limits.logEntryBytesMax, segmentBytes: limits.logSegmentBytes)
        hardStateFile = try HardStateFile(directory: directory)
        persistedHardState = try hardStateFile.load()

        var recovered = Ledger(limits: limits)
        var snapshot: Snapshot?
        if let stored = try snapshots.loadLatest() {
            recovered = try Ledger(snapshot: stored.bytes, limits: limits)
            snapshot = Snapshot(index: stored.index, term: stored.term, data: stored.bytes)
        }
        var entries: [Entry] = []
        try log.recover(after: snapshot?.index ?? 0, snapshotTerm: snapshot?.term ?? 0) { entry in
            entries.append(Entry(index: entry.index, term: entry.term, payload: entry.payload))
        }
        ledger = recovered
        snapshotIndex = recovered.appliedIndex
        snapshotHolds = recovered.holds.count
        var seed = SystemRandomNumberGenerator()
        let hard = HardState(
            term: persistedHardState.term,
            votedFor: persistedHardState.votedFor == 0 ? nil : persistedHardState.votedFor,
            commit: persistedHardState.commit)
        raft = RaftNode(
            id: configuration.nodeID, voters: configuration.voters, configuration: configuration.consensus,
            random: SplitMix64(seed: seed.next()), hardState: hard, snapshot: snapshot, entries: entries)
        status = Status(
            nodeID: configuration.nodeID, role: .follower, term: hard.term, leaderID: nil, commitIndex: 0,
            appliedIndex: recovered.appliedIndex,
            peers: configuration.voters.filter { $0 != configuration.nodeID }.map {
                Status.Peer(nodeID: $0, matchIndex: nil, lastContactMs: nil)
            })
        logger.info(
            "recovered",
            metadata: [
                "snapshotIndex": "\(snapshotIndex)", "logEntries": "\(entries.count)", "term": "\(hard.term)",
                "commit": "\(hard.commit)",
            ])
    }

    /// A command batch a follower forwards to the leader, or the leader's answer.
    public enum ForwardFrame: Sendable {
        case forward(requestID: UInt64, commands: [[UInt8]])
        case reply(requestID: UInt64, appliedIndex: UInt64, outcomes: [[UInt8]])
    }

    /// Connects the outbound side of the transport: protocol messages, and forward frames.
    public func setSender(
        _ send: @escaping @Sendable ([Envelope]) -> Void,
        frames: @escaping @Sendable (ForwardFrame, NodeID) -> Bool = { _, _ in false }
    ) {
        senderLock.lock()
        sender = send
        frameSender = frames
        senderLock.unlock()
    }

    private func sendFrame(_ frame: ForwardFrame, to peer: NodeID) -> Bool {
        senderLock.lock()
        let frameSender = self.frameSender
        senderLock.unlock()
        return frameSender?(frame, peer) ?? false
    }

    // MARK: - ReplicatedLedger

    public var isAccepting: Bool {
        queueCondition.lock()
        defer { queueCondition.unlock() }
        return accepting
    }

    public var leaderTerm: UInt64? {
        let status = currentStatus
        return status.role == .leader ? status.term : nil
    }

    public var currentStatus: Status {
        statusLock.lock()
        defer { statusLock.unlock() }
        return status
    }

    public var memberStatus: MemberStatus {
        let status = currentStatus
        return MemberStatus(
            nodeID: status.nodeID, role: status.role.rawValue, term: status.term, leaderID: status.leaderID,
            commitIndex: status.commitIndex, appliedIndex: status.appliedIndex,
            peers: status.peers.map { MemberStatus.Peer(nodeID: $0.nodeID, matchIndex: $0.matchIndex, lastContactMs: $0.lastContactMs) })
    }

    public func read<T>(_ body: (borrowing Ledger) throws -> T) rethrows -> T {
        ledgerLock.lock()
        defer { ledgerLock.unlock() }
        return try body(ledger)
    }

    /// On the leader, proposes; on a follower, forwards to the leader over the peer link (and
    /// retries with the next leader if it answers `not_leader`), until the quorum deadline.
    public func propose(_ command: Command) async -> Outcome {
        await propose(command, checked: false)
    }

    public func propose(_ command: Command, asLeaderOf term: UInt64) async -> Outcome {
        await propose(command, checked: false, leaderTerm: term)
    }

    func propose(_ command: Command, checked: Bool, leaderTerm: Term? = nil) async -> Outcome {
        await withCheckedContinuation { continuation in
            enqueue([(command, checked)], leaderTerm: leaderTerm) { _, outcome in continuation.resume(returning: outcome) }
        }
    }

    /// Queues commands; `complete(position, outcome)` is called once for each.
    private func enqueue(
        _ commands: [(Command, Bool)], leaderTerm: Term? = nil, complete: @escaping @Sendable (Int, Outcome) -> Void
    ) {
        queueCondition.lock()
        var refused: [(Int, StockadeError)] = []
        let deadline = ContinuousClock.now + quorumDeadline
        for (position, (command, checked)) in commands.enumerated() {
            if !accepting {
                refused.append((position, StockadeError(.unavailable, "the node is shutting down")))
            } else if proposals.count >= limits.pendingCommandsMax {
                refused.append((position, StockadeError(.overloaded, "too many commands waiting for the log; retry with backoff")))
            } else {
                proposals.append(
                    Proposal(
                        command: command, complete: { complete(position, $0) }, deadline: deadline, checked: checked,
                        leaderTerm: leaderTerm))
                if proposals.count == 1 { queueCondition.signal() }
            }
        }
        queueCondition.unlock()
        for (position, refusal) in refused {
            if refusal.code == .overloaded { metrics.refusedOverload.increment() }
            complete(position, .rejected(refusal))
        }
    }

    /// Commands forwarded by a follower (any thread): proposed here, answered in one reply frame.
    public func deliverForward(from peer: NodeID, requestID: UInt64, commands: [[UInt8]]) {
        let collector = ForwardCollector(count: commands.count) { [self] outcomes in
            // Called on the loop thread (or at once on refusal): the applied index covers every outcome.
            let applied = read { $0.appliedIndex }
            _ = sendFrame(.reply(requestID: requestID, appliedIndex: applied, outcomes: outcomes.map { $0.encoded() }), to: peer)
        }
        var positions: [Int] = []
        var toPropose: [(Command, Bool)] = []
        for (position, bytes) in commands.enumerated() {
            if let timed = try? TimedCommand(decoding: bytes, limits: limits) {
                positions.append(position)
                toPropose.append((timed.command, false))
            } else {
                collector.set(position, .rejected(StockadeError(.invalidRequest, "forwarded command does not decode")))
            }
        }
        guard !toPropose.isEmpty else { return }
        let proposed = positions
        enqueue(toPropose) { index, outcome in collector.set(proposed[index], outcome) }
    }

    /// The leader's answer to commands this node forwarded (any thread).
    public func deliverForwardReply(requestID: UInt64, appliedIndex: LogIndex, outcomes: [[UInt8]]) {
        queueCondition.lock()
        if forwardReplies.count < configuration.limits.peerInboxMessagesMax {
            forwardReplies.append((requestID, appliedIndex, outcomes))
            if forwardReplies.count == 1 { queueCondition.signal() }
        }
        queueCondition.unlock()
    }

    /// The leader answers from its applied state when that decides the request (a replay, a
    /// conflict, a shortfall), once it has applied everything up to the start of its term.
    public func reserve(_ request: ReserveRequest) async -> Outcome {
        if isReadyForLocalAnswers, let answer = read({ $0.answerWithoutLog(request) }) { return answer }
        return await propose(.reserve(request), checked: isReadyForLocalAnswers)
    }

    /// `reserve(_:)` for the event loop's reserve path: `completion` runs at once on the caller's
    /// thread when the applied state decides, else on the loop thread once the command is decided.
    /// The caller never waits for the ledger lock: when a batch is being applied, the check is
    /// left to the loop thread (the proposal goes unchecked).
    public func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome) -> Void) {
        var checked = false
        if isReadyForLocalAnswers, ledgerLock.try() {
            let answer = ledger.answerWithoutLog(request)
            ledgerLock.unlock()
            if let answer { return completion(answer) }
            checked = true
        }
        enqueue([(.reserve(request), checked)]) { _, outcome in completion(outcome) }
    }

    private var isReadyForLocalAnswers: Bool {
        statusLock.lock()
        defer { statusLock.unlock() }
        return leaderReadyForLocalAnswers
    }

    public func readBarrier() async throws {
        let error: StockadeError? = await withCheckedContinuation { continuation in
            queueCondition.lock()
            let refusal: StockadeError?
            if !accepting {
                refusal = StockadeError(.unavailable, "the node is shutting down")
            } else if readRequests.count >= raftConfigurationReadsMax {
                refusal = StockadeError(.overloaded, "too many reads waiting for a read point")
            } else {
                refusal = nil
                readRequests.append(ReadWaiter(continuation: continuation, deadline: .now + quorumDeadline))
                if readRequests.count == 1 { queueCondition.signal() }
            }
            queueCondition.unlock()
            if let refusal { continuation.resume(returning: refusal) }
        }
        if let error { throw error }
    }

    var raftConfigurationReadsMax: Int { configuration.consensus.pendingReadsMax }

    /// A message from a peer (any thread). Dropped when the inbox is full; the protocol resends.
    public func deliver(_ envelope: Envelope) {
        queueCondition.lock()
        if inbox.count < configuration.limits.peerInboxMessagesMax {
            inbox.append(envelope)
            if inbox.count == 1 { queueCondition.signal() }
        }
        queueCondition.unlock()
    }

    // MARK: - Service

    public func run() async throws {
        startLoop()
        await withGracefulShutdownHandler {
            await waitForLoop()
        } onGracefulShutdown: {
            self.stop()
        }
    }

    public func startLoop() {
        loopThread.start { [self] in loop() }
    }

    /// Stops taking commands. Commands already appended get up to the quorum deadline to commit.
    public func stop() {
        queueCondition.lock()
        accepting = false
        stopping = true
        queueCondition.broadcast()
        queueCondition.unlock()
    }

    public func waitForLoop() async {
        await loopThread.finished()
    }

    // MARK: - The loop

    private func loop() {
        let tick = Duration.milliseconds(configuration.tickMs)
        var nextTick = ContinuousClock.now + tick
        var stopDeadline: ContinuousClock.Instant?
        while true {
            queueCondition.lock()
            while proposals.isEmpty && inbox.isEmpty && readRequests.isEmpty && forwardReplies.isEmpty
                && ContinuousClock.now < nextTick
            {
                _ = queueCondition.wait(until: Date(timeIntervalSinceNow: (nextTick - .now).secondsValue + 0.0005))
            }
            if wasLeader && !proposals.isEmpty && proposals.count < limits.commitBatchMax && limits.commitWaitMicroseconds > 0
                && inbox.isEmpty
            {
                _ = queueCondition.wait(until: Date(timeIntervalSinceNow: Double(limits.commitWaitMicroseconds) / 1e6))
            }
            let take = min(proposals.count, limits.commitBatchMax)
            let batch = Array(proposals.prefix(take))
            proposals.removeFirst(take)
            let messages = inbox
            inbox.removeAll(keepingCapacity: true)
            let reads = readRequests
            readRequests.removeAll()
            let replies = forwardReplies
            forwardReplies.removeAll()
            let isStopping = stopping
            queueCondition.unlock()

            let now = ContinuousClock.now
            turnFsync = .zero
            turnApply = .zero
            if now >= nextTick {
                // After a long stall, tick once rather than in a burst that would fire elections.
                if now - nextTick > tick * 4 { nextTick = now }
                while now >= nextTick {
                    raft.tick()
                    nextTick += tick
                }
            }
            for envelope in messages {
                lastContact[envelope.from] = now
                raft.step(envelope)
            }
            noteLeadership()
            for reply in replies { takeForwardReply(reply.requestID, reply.appliedIndex, reply.outcomes) }
            if !batch.isEmpty || !awaitingLeader.isEmpty {
                let all = awaitingLeader + batch
                awaitingLeader.removeAll()
                proposeBatch(all, now: now)
            }
            readsNotYetAccepted += reads
            submitReads()
            configureWarehousesIfNeeded()
            do {
                try processReady()
                try compactIfSnapshotDurable()
            } catch {
                // The disk can no longer be trusted to hold what we acknowledge: crash, and let
                // restart recover exactly what was fsynced.
                logger.critical("storage failed", metadata: ["error": "\(error)"])
                fatalError("storage failed: \(error)")
            }
            expire(now: now)
            publishStatus(now: now)
            noteTurn(started: now, proposals: batch.count, messages: messages.count)
            if isStopping {
                if stopDeadline == nil { stopDeadline = now + quorumDeadline }
                if waiting.isEmpty || now >= stopDeadline! { break }
            }
        }
        // Shutdown: nothing new is accepted; whatever is still waiting gets its honest answer.
        queueCondition.lock()
        let leftover = proposals
        proposals.removeAll()
        let leftoverReads = readRequests
        readRequests.removeAll()
        queueCondition.unlock()
        for proposal in leftover + awaitingLeader {
            proposal.complete(.rejected(StockadeError(.unavailable, "the node is shutting down")))
        }
        for proposal in forwardedOut.values.joined() { proposal.complete(.rejected(Self.unknown)) }
        answerForwarded(force: true)
        while let waiter = waiting.popFirst() { waiter.complete(.rejected(Self.unknown)) }
        for read in leftoverReads + readsNotYetAccepted + Array(readsAwaitingState.values) + readsAwaitingApply.map(\.waiter) {
            read.continuation.resume(returning: StockadeError(.unavailable, "the node is shutting down"))
        }
        snapshotWriter.drain()
    }


    static let unknown = StockadeError(
        .outcomeUnknown,
        "the write reached the leader's log but its commit was not confirmed in time; it may still take effect. Retry with the same reservation id, or read it back, to learn the outcome"
    )

    /// Notes a change of leadership: a new leader learns the latest command time in its log (so
    /// command times never go backwards) and answers locally only once it has applied up to its term's start.
    private func noteLeadership() {
        let isLeader = raft.isLeader
        if isLeader && !wasLeader {
            termStartIndex = raft.lastIndex
            for entry in raft.entries.reversed() where !entry.payload.isEmpty {
                if let command = try? TimedCommand(decoding: entry.payload, limits: limits) {
                    lastTimeMs = max(lastTimeMs, command.timeMs)
                    break
                }
            }
            logger.info("leading", metadata: ["term": "\(raft.term)", "lastIndex": "\(raft.lastIndex)"])
        }
        if !isLeader && wasLeader {
            logger.info("no longer leading", metadata: ["term": "\(raft.term)"])
        }
        wasLeader = isLeader
    }

    /// A leader that has not heard from a majority lately refuses at once rather than append
    /// entries that would only time out.
    private func hasRecentMajority(now: ContinuousClock.Instant) -> Bool {
        let window = Duration.milliseconds(configuration.tickMs * configuration.consensus.electionTicksMin)
        let heard = configuration.voters.filter { voter in
            voter == configuration.nodeID || lastContact[voter].map { now - $0 <= window } == true
        }
        return Quorum.size(of: configuration.voters.count) <= heard.count
    }

    private func proposeBatch(_ all: [Proposal], now: ContinuousClock.Instant) {
        // A leader's own decisions are written in the term they were taken in, or not at all.
        let currentTerm: Term? = raft.isLeader ? raft.term : nil
        var all = all
        all.removeAll { proposal in
            guard let term = proposal.leaderTerm, term != currentTerm else { return false }
            proposal.complete(
                .rejected(StockadeError(.notLeader, "node \(configuration.nodeID) does not lead in term \(term); not written")))
            return true
        }
        guard raft.isLeader else {
            forward(all)
            return
        }
        // The reserve fast path, for forwarded reserves (local ones tried it before queueing).
        var batch: [Proposal] = []
        batch.reserveCapacity(all.count)
        let local = isCaughtUpLeader
        for proposal in all {
            if local && !proposal.checked, case .reserve(let request) = proposal.command,
                let answer = ledger.answerWithoutLog(request)
            {
                proposal.complete(answer)
            } else {
                batch.append(proposal)
            }
        }
        guard !batch.isEmpty else { return }
        func refuse(_ error: StockadeError) {
            for proposal in batch { proposal.complete(.rejected(error)) }
        }
        guard hasRecentMajority(now: now) else {
            refuse(StockadeError(.quorumUnavailable, "the leader cannot reach a majority of the cluster; nothing was written"))
            return
        }
        lastTimeMs = max(lastTimeMs, clock())
        let payloads = batch.map { TimedCommand($0.command, timeMs: lastTimeMs).encoded() }
        switch raft.propose(payloads) {
        case .appended(let term, let first, _):
            // An older waiter at or after these indices lost its entry to a truncation; whether
            // its entry commits elsewhere is not known here.
            while let last = waiting.last, last.index >= first {
                waiting.removeLast()
                last.complete(.rejected(Self.unknown))
            }
            for (offset, proposal) in batch.enumerated() {
                waiting.append(
                    Waiter(index: first + LogIndex(offset), term: term, complete: proposal.complete, deadline: proposal.deadline))
            }
        case .notLeader(let leader):
            refuse(StockadeError(.notLeader, "node \(configuration.nodeID) does not lead; leader is \(leader.map { "n\($0)" } ?? "unknown")"))
        case .overloaded:
            metrics.refusedOverload.increment()
            refuse(StockadeError(.overloaded, "too many uncommitted entries; retry with backoff"))
        }
    }

    /// A follower sends its proposals to the leader it knows, in frames of at most
    /// `PeerFrame.forwardBatchMax`; with no leader known, or no link to it, they wait for the next turn.
    private func forward(_ proposals: [Proposal]) {
        guard let leader = raft.leaderID, leader != configuration.nodeID else {
            awaitingLeader += proposals
            return
        }
        var start = 0
        while start < proposals.count {
            let chunk = Array(proposals[start..<min(start + PeerFrame.forwardBatchMax, proposals.count)])
            start += chunk.count
            nextForwardID += 1
            let commands = chunk.map { TimedCommand($0.command, timeMs: 0).encoded() }
            if sendFrame(.forward(requestID: nextForwardID, commands: commands), to: leader) {
                forwardedOut[nextForwardID] = chunk
                forwardedOrder.append((nextForwardID, chunk.map(\.deadline).max()!))
            } else {
                awaitingLeader += chunk
            }
        }
    }


    /// The leader's outcomes for a forwarded batch. `not_leader` means it was not written: try
    /// again with whoever leads now.
    private func takeForwardReply(_ requestID: UInt64, _ appliedIndex: LogIndex, _ outcomes: [[UInt8]]) {
        guard let chunk = forwardedOut.removeValue(forKey: requestID) else { return }
        var answered: [(Proposal, Outcome)] = []
        for (position, proposal) in chunk.enumerated() {
            guard position < outcomes.count, let outcome = try? Outcome(decoding: outcomes[position], limits: limits) else {
                proposal.complete(.rejected(Self.unknown))
                continue
            }
            if case .rejected(let error, _) = outcome, error.code == .notLeader {
                awaitingLeader.append(proposal)
            } else if Self.answersFromLocalState(proposal.command) {
                answered.append((proposal, outcome))
            } else {
                proposal.complete(outcome)
            }
        }
        // Stock changes are answered with this node's rows, so they wait until it has applied as
        // far as the leader had. Reservation answers carry the hold itself and go at once.
        if !answered.isEmpty { awaitingLocalApply.append((appliedIndex, answered)) }
        answerForwarded()
    }

    static func answersFromLocalState(_ command: Command) -> Bool {
        switch command {
        case .setStock, .adjustStock, .configureWarehouses, .setHot, .grantAllotment, .returnAllotment: true
        case .reserve, .confirm, .release, .extend, .expireDue, .applyAllotmentHolds: false
        }
    }

    private func answerForwarded(force: Bool = false) {
        guard !awaitingLocalApply.isEmpty else { return }
        let applied = ledger.appliedIndex
        awaitingLocalApply.removeAll { item in
            guard force || item.index <= applied || item.answers.allSatisfy({ $0.0.deadline <= .now }) else { return false }
            for (proposal, outcome) in item.answers { proposal.complete(outcome) }
            return true
        }
    }

    private func configureWarehousesIfNeeded() {
        guard isCaughtUpLeader, configuredInTerm != raft.term else { return }
        configuredInTerm = raft.term
        let layout = configuration.warehouses.sorted { $0.id < $1.id }
        guard ledger.warehouses != layout else { return }
        lastTimeMs = max(lastTimeMs, clock())
        _ = raft.propose([TimedCommand(.configureWarehouses(layout), timeMs: lastTimeMs).encoded()])
        logger.info("proposing the configured warehouse layout", metadata: ["warehouses": "\(layout.count)"])
    }

    private func submitReads() {
        guard !readsNotYetAccepted.isEmpty else { return }
        if !raft.isLeader {
            let error = StockadeError(.notLeader, "node \(configuration.nodeID) does not lead")
            for read in readsNotYetAccepted { read.continuation.resume(returning: error) }
            readsNotYetAccepted.removeAll()
            return
        }
        var still: [ReadWaiter] = []
        for read in readsNotYetAccepted {
            nextReadID += 1
            if raft.readIndex(nextReadID) {
                readsAwaitingState[nextReadID] = read
            } else {
                // A new leader must commit in its term first; try again on the next turn.
                still.append(read)
            }
        }
        readsNotYetAccepted = still
    }

    private func processReady() throws {
        while true {
            let ready = raft.ready()
            if ready.isEmpty { return }
            send(ready.messagesBeforePersist)
            var entriesWritten = false
            if let snapshot = ready.snapshot {
                try install(snapshot)
                entriesWritten = true
            }
            // Entries before hard state: a commit index on disk must never cover entries that are not.
            if !entriesWritten && !ready.entries.isEmpty {
                let first = ready.entries[0].index
                if first <= log.lastIndex {
                    try log.truncate(after: first - 1, term: raft.term(at: first - 1) ?? 0)
                }
                for entry in ready.entries {
                    log.append(LogEntry(index: entry.index, term: entry.term, payload: entry.payload))
                }
                let start = ContinuousClock.now
                try log.sync()
                let fsync = ContinuousClock.now - start
                turnFsync += fsync
                metrics.fsyncDuration.recordNanoseconds(fsync.nanoseconds)
                metrics.commitBatchSize.record(ready.entries.count)
            }
            if let hardState = ready.hardState { try persist(hardState) }
            send(ready.messages)
            apply(ready.committedEntries)
            raft.advance(ready)
            for state in ready.readStates {
                if let read = readsAwaitingState.removeValue(forKey: state.requestID) {
                    readsAwaitingApply.append((index: state.index, waiter: read))
                }
            }
            answerReads()
            answerForwarded()
            try maybeSnapshot()
        }
    }

    /// Records how long the turn held the loop; a turn long enough to show in request latency is
    /// logged with where its time went.
    private func noteTurn(started: ContinuousClock.Instant, proposals: Int, messages: Int) {
        let took = ContinuousClock.now - started
        metrics.loopTurnDuration.recordNanoseconds(took.nanoseconds)
        guard took >= ReplicaMetrics.slowTurn else { return }
        logger.notice(
            "slow loop turn",
            metadata: [
                "ms": "\(took.nanoseconds / 1_000_000)", "fsyncMs": "\(turnFsync.nanoseconds / 1_000_000)",
                "applyMs": "\(turnApply.nanoseconds / 1_000_000)", "proposals": "\(proposals)",
                "messages": "\(messages)", "holds": "\(ledger.holds.count)",
            ])
    }


    private func send(_ envelopes: [Envelope]) {
        guard !envelopes.isEmpty else { return }
        senderLock.lock()
        let sender = self.sender
        senderLock.unlock()
        sender?(envelopes)
    }

    /// Term and vote are fsynced before any message that depends on them leaves; the commit
    /// index is written along, and on its own only now and then (it may lag safely).
    private func persist(_ hardState: HardState) throws {
        let value = HardStateFile.Value(term: hardState.term, votedFor: hardState.votedFor ?? 0, commit: hardState.commit)
        let durable = value.term != persistedHardState.term || value.votedFor != persistedHardState.votedFor
        guard durable || value.commit >= persistedHardState.commit + limits.hardStateCommitLagMax else { return }
        try hardStateFile.save(value, durable: durable)
        persistedHardState = value
    }

    /// A follower takes a leader's snapshot: store it, restart the log after it with whatever of
    /// the protocol's log follows it, and replace the ledger.
    private func install(_ snapshot: Snapshot) throws {
        let newLedger = try Ledger(snapshot: snapshot.data, limits: limits)
        try snapshotWriter.saveNow(index: snapshot.index, term: snapshot.term, bytes: snapshot.data)
        try log.reset(after: snapshot.index, term: snapshot.term)
        for entry in raft.entries { log.append(LogEntry(index: entry.index, term: entry.term, payload: entry.payload)) }
        try log.sync()
        ledgerLock.lock()
        ledger = newLedger
        ledgerLock.unlock()
        snapshotIndex = snapshot.index
        snapshotHolds = newLedger.holds.count
        while let first = waiting.first, first.index <= snapshot.index {
            waiting.removeFirst()
            first.complete(.rejected(Self.unknown))
        }
        logger.info("installed snapshot", metadata: ["index": "\(snapshot.index)", "bytes": "\(snapshot.data.count)"])
    }

    private func apply(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        let start = ContinuousClock.now
        defer { turnApply += ContinuousClock.now - start }
        var outcomes: [Outcome?] = []
        outcomes.reserveCapacity(entries.count)
        ledgerLock.lock()
        for entry in entries {
            if entry.payload.isEmpty {
                ledger.skip(index: entry.index)
                outcomes.append(nil)
                continue
            }
            let command: TimedCommand
            do {
                command = try TimedCommand(decoding: entry.payload, limits: limits)
            } catch {
                ledgerLock.unlock()
                fatalError("committed entry \(entry.index) does not decode: \(error)")
            }
            lastTimeMs = max(lastTimeMs, command.timeMs)
            outcomes.append(ledger.apply(command, index: entry.index))
        }
        let applied = ledger.appliedIndex
        let active = ledger.activeHoldCount
        ledgerLock.unlock()
        metrics.activeHolds.record(active)
        metrics.appliedIndex.record(Int64(applied))

        for (entry, outcome) in zip(entries, outcomes) {
            while let first = waiting.first, first.index <= entry.index {
                waiting.removeFirst()
                guard first.index == entry.index else {
                    first.complete(.rejected(Self.unknown))
                    continue
                }
                if first.term == entry.term, let outcome {
                    first.complete(outcome)
                } else {
                    first.complete(
                        .rejected(
                            StockadeError(
                                .quorumUnavailable,
                                "leadership changed before the write committed; another entry took its place, so it was not applied")))
                }
            }
        }
    }

    private func answerReads() {
        guard !readsAwaitingApply.isEmpty else { return }
        let applied = ledger.appliedIndex
        readsAwaitingApply.removeAll { item in
            guard item.index <= applied else { return false }
            item.waiter.continuation.resume(returning: nil)
            return true
        }
    }

    /// Answers everything past its deadline.
    private func expire(now: ContinuousClock.Instant) {
        while let first = waiting.first, first.deadline <= now {
            waiting.removeFirst()
            first.complete(.rejected(Self.unknown))
        }
        awaitingLeader.removeAll { proposal in
            guard proposal.deadline <= now else { return false }
            proposal.complete(
                .rejected(
                    StockadeError(
                        .quorumUnavailable,
                        "no leader reachable within \(quorumDeadline); a majority of nodes may be down. Nothing was written")))
            return true
        }
        answerForwarded()
        while let first = forwardedOrder.first, first.deadline <= now || forwardedOut[first.id] == nil {
            forwardedOrder.removeFirst()
            for proposal in forwardedOut.removeValue(forKey: first.id) ?? [] { proposal.complete(.rejected(Self.unknown)) }
        }
        let late = StockadeError(.quorumUnavailable, "no read point from a majority within the deadline")
        readsNotYetAccepted.removeAll { read in
            guard read.deadline <= now else { return false }
            read.continuation.resume(returning: late)
            return true
        }
        for (id, read) in readsAwaitingState where read.deadline <= now {
            readsAwaitingState[id] = nil
            read.continuation.resume(returning: late)
        }
        readsAwaitingApply.removeAll { item in
            guard item.waiter.deadline <= now else { return false }
            item.waiter.continuation.resume(returning: late)
            return true
        }
    }

    private func publishStatus(now: ContinuousClock.Instant) {
        let peers = status.peers.map { peer in
            Status.Peer(
                nodeID: peer.nodeID, matchIndex: raft.matchIndex(of: peer.nodeID),
                lastContactMs: lastContact[peer.nodeID].map { (now - $0).nanoseconds / 1_000_000 })
        }
        let next = Status(
            nodeID: configuration.nodeID, role: raft.role, term: raft.term, leaderID: raft.leaderID,
            commitIndex: raft.commitIndex, appliedIndex: ledger.appliedIndex, peers: peers)
        let local = isCaughtUpLeader
        statusLock.lock()
        status = next
        leaderReadyForLocalAnswers = local
        statusLock.unlock()
    }

    // MARK: - Snapshots

    /// When `SnapshotWriter.due`: start a new log segment and hand a copy of the applied state
    /// to the snapshot writer, which encodes and writes it in the background. The protocol
    /// compacts to it (and may send it to a follower) only once it is on disk.
    private func maybeSnapshot() throws {
        let applied = ledger.appliedIndex
        guard
            SnapshotWriter.due(
                applied: applied, lastIndex: snapshotIndex, lastHolds: snapshotHolds,
                interval: limits.snapshotIntervalEntries),
            let term = raft.term(at: applied)
        else { return }
        guard snapshotWriter.begin() else { return }
        try log.startSegment(firstIndex: log.lastIndex + 1)
        snapshotIndex = applied
        snapshotHolds = ledger.holds.count
        snapshotWriter.write(ledger, term: term)
    }

    /// A snapshot that is on disk: the protocol drops the entries it covers, and so does the log.
    /// One taken before a leader's snapshot was installed is already covered, and is ignored by
    /// both.
    private func compactIfSnapshotDurable() throws {
        guard let durable = snapshotWriter.takeDurable() else { return }
        raft.compact(Snapshot(index: durable.index, term: durable.term, data: durable.bytes))
        try log.compact(through: durable.index)
    }
}

/// Gathers the outcomes of one forwarded batch and sends them back when the last one is in.
final class ForwardCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [Outcome?]
    private var remaining: Int
    private let done: ([Outcome]) -> Void

    init(count: Int, done: @escaping ([Outcome]) -> Void) {
        outcomes = Array(repeating: nil, count: count)
        remaining = count
        self.done = done
    }

    func set(_ position: Int, _ outcome: Outcome) {
        lock.lock()
        guard outcomes[position] == nil else {
            lock.unlock()
            return
        }
        outcomes[position] = outcome
        remaining -= 1
        let finished = remaining == 0
        lock.unlock()
        if finished { done(outcomes.map { $0! }) }
    }
}
