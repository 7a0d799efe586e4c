import Consensus
import Foundation
import Ledger
import Logging
import Node
import Replication
import ServiceLifecycle
import StockadeCore
import Synchronization

/// One node of a replicated ledger: the thin shell around a `ReplicaDriver`. It owns the loop
/// thread, the command log, the hard-state file, the snapshot files, the link to the peer
/// transport and the metrics, and decides nothing itself: every decision (what to write, send,
/// apply and answer, and when) is the driver's, the same code the cluster simulator runs.
///
/// Each turn of the loop takes what arrived (proposals, peer messages, forwarded commands and
/// replies, read requests) and hands it to the driver with the time, then works off the driver's
/// `Work`: send what may go before the write, write and fsync entries and hard state, send the
/// rest, report the write, and run the answers.
///
/// Threading: public methods may be called from any thread or task. The driver (and with it the
/// ledger) is guarded by `driverLock`, which the loop releases during its disk writes so reads
/// and the reserve fast path are not held up by an fsync; the queues are `ReplicaQueues`, the
/// published status is guarded by `statusLock`. (`NSLock`, not `Mutex`: the reserve
/// fast path must only *try* the lock, and reads return values derived from the guarded ledger.)
public final class ClusterReplica: ClusterMember, LoopService, @unchecked Sendable {
    /// The driver's configuration, and where the replica keeps its files.
    public struct Configuration: Sendable {
        public var replica: ReplicaConfiguration
        public var dataDirectory: String

        public init(
            nodeID: NodeID, voters: [NodeID], dataDirectory: String, warehouses: [Warehouse], limits: Limits = .default,
            tickMs: Int = 50, quorumDeadlineMs: Int = 2_000
        ) {
            replica = ReplicaConfiguration(
                nodeID: nodeID, voters: voters, warehouses: warehouses, limits: limits, tickMs: Int64(tickMs),
                quorumDeadlineMs: Int64(quorumDeadlineMs))
            self.dataDirectory = dataDirectory
        }
    }

    /// Who waits for an answer: a proposal's completion or a read barrier's continuation.
    enum Caller: Sendable {
        case proposal(@Sendable (Outcome) -> Void)
        case read(CheckedContinuation<StockadeError?, Never>)
    }
    typealias Driver = ReplicaDriver<Caller>

    public let limits: Limits
    public let clock: @Sendable () -> Int64
    public let configuration: Configuration
    let logger: Logger
    let metrics: ReplicaMetrics

    private let driverLock = NSLock()
    private var driver: Driver

    private let queues: ReplicaQueues<Caller>

    let statusLock = NSLock()
    var status: ReplicaStatus
    /// `status.caughtUpLeader`, for the reserve fast path to read without copying the status.
    private let caughtUpLeader = Atomic<Bool>(false)
    /// The driver's grant time as of the last turn, and that turn's monotonic time (see `grantTimeMs`).
    private let agreedTime = Mutex<(timeMs: Int64, atMs: Int64)?>(nil)
    var caughtUpLeaderNow: Bool { caughtUpLeader.load(ordering: .relaxed) }

    private let senderLock = NSLock()
    private var sender: (@Sendable ([Envelope]) -> Void)?
    /// Sends a forward frame (or its reply) to a peer; false if it certainly did not go.
    private var frameSender: (@Sendable (ForwardFrame, NodeID) -> Bool)?

    // Owned by the loop thread.
    private let storage: ReplicaStorage
    private let started = ContinuousClock.now
    private var overloadsCounted = 0
    /// Fallback counts already added to the metrics, and the reserve gauges set last.
    private var localCounted = (fallbacks: 0, reconciled: 0, errors: 0)
    private var reserveGauges: [RowKey: Int64] = [:]
    private var nextReserveReport = ContinuousClock.now
    private let loopThread = WorkerThread(name: "stockade-raft")

    /// Opens the data directory: newest snapshot, hard state, and every log entry after the
    /// snapshot (committed or not; the protocol hands out the committed ones to apply).
    public init(
        configuration: Configuration, logger: Logger, metrics: ReplicaMetrics,
        clock: @escaping @Sendable () -> Int64 = Replica.wallClockMs
    ) throws {
        self.configuration = configuration
        limits = configuration.replica.limits
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
        queues = ReplicaQueues(limits: limits)
        let problems = limits.violations()
        guard problems.isEmpty else { throw StockadeError(.invalidRequest, "bad limits: \(problems)") }
        let replica = configuration.replica
        guard replica.voters.contains(replica.nodeID), !replica.voters.contains(0) else {
            throw StockadeError(.invalidRequest, "node \(replica.nodeID) must be one of the voters, ids from 1")
        }
        storage = try ReplicaStorage(
            directory: configuration.dataDirectory, limits: limits, keepsSnapshotBytes: replica.voters.count > 1,
            metrics: metrics, logger: logger)
        let recovered = try storage.recover(limits: limits, nodeID: replica.nodeID)
        var seed = SystemRandomNumberGenerator()
        driver = Driver(
            configuration: replica,
            ledger: recovered.ledger, hardState: recovered.hardState, snapshot: recovered.snapshot, entries: recovered.entries,
            random: SplitMix64(seed: seed.next()), local: recovered.local)
        status = driver.status
        logger.info(
            "recovered",
            metadata: [
                "snapshotIndex": "\(recovered.snapshot?.index ?? 0)", "logEntries": "\(recovered.entries.count)",
                "term": "\(recovered.hardState.term)", "commit": "\(recovered.hardState.commit)",
            ])
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

    // MARK: - ClusterMember

    public var isAccepting: Bool { queues.isAccepting }

    public var currentStatus: ReplicaStatus {
        statusLock.lock()
        defer { statusLock.unlock() }
        return status
    }

    public func read<T>(_ body: (borrowing Ledger) throws -> T) rethrows -> T {
        try withDriver { try body($0.ledger) }
    }

    /// On the leader, proposes; on a follower, forwards to the leader over the peer link (and
    /// retries with the next leader if it answers `not_leader`), until the quorum deadline.
    public func propose(_ command: Command) async -> Outcome {
        await withCheckedContinuation { continuation in
            enqueue(Driver.NewProposal(command, caller: .proposal { continuation.resume(returning: $0) }))
        }
    }

    public func propose(_ command: Command, asLeaderOf term: UInt64) async -> Outcome {
        await withCheckedContinuation { continuation in
            enqueue(Driver.NewProposal(command, caller: .proposal { continuation.resume(returning: $0) }, leaderTerm: term))
        }
    }

    /// The leader answers from its applied state when that decides the request (a replay, a
    /// conflict, a shortfall), once it has applied everything up to the start of its term.
    public func reserve(_ request: ReserveRequest) async -> Outcome {
        await withCheckedContinuation { continuation in
            reserve(request) { continuation.resume(returning: $0) }
        }
    }

    /// `reserve(_:)` for the event loop's reserve path: `completion` runs at once on the caller's
    /// thread when the applied state decides, else on the loop thread once the command is decided.
    /// The caller never waits for the driver lock: while the loop holds it, the check is left to
    /// the driver (the proposal goes unchecked).
    public func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome) -> Void) {
        var checked = false
        if caughtUpLeader.load(ordering: .relaxed), driverLock.try() {
            let answer = Self.answerWithoutLog(&driver, request, checked: &checked)
            driverLock.unlock()
            if let answer { return completion(answer) }
        }
        enqueue(Driver.NewProposal(.reserve(request), caller: .proposal(completion), checked: checked))
    }

    private func enqueue(_ proposal: Driver.NewProposal) {
        guard let refusal = queues.propose(proposal), case .proposal(let complete) = proposal.caller else { return }
        if refusal.code == .overloaded { metrics.refusedOverload.increment() }
        complete(.rejected(refusal))
    }

    public func readBarrier() async throws {
        let error: StockadeError? = await withCheckedContinuation { continuation in
            if let refusal = queues.read(.read(continuation)) { continuation.resume(returning: refusal) }
        }
        if let error { throw error }
    }

    /// A message from a peer (any thread). Dropped when the inbox is full; the protocol resends.
    public func deliver(_ envelope: Envelope) { queues.deliver(envelope) }

    /// Commands forwarded by a follower (any thread); answered in one reply frame.
    public func deliverForward(from peer: NodeID, requestID: UInt64, commands: [[UInt8]]) {
        queues.deliver(Driver.IncomingForward(from: peer, requestID: requestID, commands: commands))
    }

    /// A peer's clock reading (any thread).
    public func deliverClock(_ ping: ClockPing, from peer: NodeID) {
        queues.deliver(ping, from: peer)
    }

    /// The leader's answer to commands this node forwarded (any thread).
    public func deliverForwardReply(requestID: UInt64, appliedIndex: LogIndex, outcomes: [[UInt8]]) {
        queues.deliver(Driver.ForwardReply(requestID: requestID, appliedIndex: appliedIndex, outcomes: outcomes))
    }

    // MARK: - Service

    public func startLoop() {
        loopThread.start { [self] in loop() }
    }

    /// Stops taking commands. Commands already appended get up to the quorum deadline to commit.
    public func stop() { queues.stop() }

    public func waitForLoop() async {
        await loopThread.finished()
    }

    // MARK: - The loop

    /// The driver's grant time at the last turn (`ReplicaDriver.grantTimeMs`: the agreed time, or
    /// cut off, the last one carried forward while the clocks agree), carried on by the monotonic
    /// clock while that turn is recent (within the allowed skew, or four ticks, whichever is
    /// longer: the loop turns at least every tick); nil otherwise. No wall clock jump between turns
    /// moves it.
    public var grantTimeMs: Int64? {
        guard let agreed = agreedTime.withLock({ $0 }) else { return nil }
        let elapsed = nowMs(.now) - agreed.atMs
        guard elapsed >= 0 && elapsed <= max(limits.clockSkewMaxMs, 4 * configuration.replica.tickMs) else { return nil }
        return agreed.timeMs + elapsed
    }

    private func nowMs(_ instant: ContinuousClock.Instant) -> Int64 {
        (instant - started).nanoseconds / 1_000_000
    }

    private func loop() {
        var stopDeadline: Int64?
        var wasLeader = false
        let shell = LoopShell(self)
        while true {
            let nextTick = withDriver { $0.nextTurnMs } ?? 0
            let turn = queues.take(until: self.started + .milliseconds(nextTick), gather: wasLeader)
            let started = ContinuousClock.now
            let now = nowMs(started)
            orCrash {
                try ReplicaRunner.turn(
                    shell,
                    Driver.TurnInput(
                        nowMs: now, wallMs: clock(), messages: turn.messages, forwards: turn.forwards, replies: turn.replies,
                        proposals: turn.proposals, reads: turn.reads, pings: turn.pings))
            }
            let (waiting, status, agreed) = withDriver { driver in (driver.waitingCount, driver.status, driver.grantTimeMs) }
            agreedTime.withLock { $0 = agreed.map { ($0, now) } }
            statusLock.lock()
            self.status = status
            statusLock.unlock()
            caughtUpLeader.store(status.caughtUpLeader, ordering: .relaxed)
            let reading = status.clock
            metrics.clockDistanceMs.record(reading.ownDistanceMs ?? 0)
            metrics.clockAgreed.record(reading.agreement != nil && !reading.ownClockOff ? 1 : 0)
            metrics.clockPeersOff.record(reading.peersOff.count)
            metrics.raftTerm.record(Int64(status.term))
            metrics.raftLeading.record(status.role == .leader ? 1 : 0)
            metrics.raftLeaderKnown.record(status.leaderID == nil ? 0 : 1)
            reportLocal(status.local)
            wasLeader = status.role == .leader
            noteTurn(started: started, proposals: turn.proposals.count, messages: turn.messages.count)
            if turn.stopping {
                if stopDeadline == nil { stopDeadline = now + configuration.replica.quorumDeadlineMs }
                if waiting == 0 || now >= stopDeadline! { break }
            }
        }
        // Shutdown: nothing new is accepted; whatever is still waiting gets its honest answer.
        let leftover = queues.drain()
        let closing = StockadeError(.unavailable, "the node is shutting down")
        for proposal in leftover.proposals { run(proposal.caller, .rejected(closing)) }
        for read in leftover.reads { run(read, closing) }
        ReplicaRunner.shutDown(shell)
        storage.drain()
    }

    /// The reserve fast path's check. The driver is reached in place (`inout`): reading a computed
    /// property of the stored driver directly copies the whole value, retaining every buffer in it
    /// from the event loop's thread while the loop thread uses them (measured: about a tenth of a
    /// three-node cluster's reserve rate).
    private static func answerWithoutLog(_ driver: inout Driver, _ request: ReserveRequest, checked: inout Bool) -> Outcome? {
        guard driver.mayAnswerFromState else { return nil }
        // An id granted here provisionally is answered from the local log, by the driver.
        if driver.local.count > 0 && driver.provisionalHold(request.reservationId) != nil { return nil }
        checked = true
        return driver.ledger.answerWithoutLog(request)
    }

    func withDriver<T>(_ body: (inout Driver) throws -> T) rethrows -> T {
        driverLock.lock()
        defer { driverLock.unlock() }
        return try body(&driver)
    }

    /// The fallback's metrics: counters by what the driver counted since, the reserve per row
    /// about once a second.
    private func reportLocal(_ local: LocalFallbackStatus) {
        if local.fallbacks > localCounted.fallbacks { metrics.localFallbacks.increment(by: local.fallbacks - localCounted.fallbacks) }
        if local.reconciledHolds > localCounted.reconciled {
            metrics.localReconciled.increment(by: local.reconciledHolds - localCounted.reconciled)
        }
        if local.reconcileErrors > localCounted.errors {
            metrics.localReconcileErrors.increment(by: local.reconcileErrors - localCounted.errors)
        }
        localCounted = (max(localCounted.fallbacks, local.fallbacks), max(localCounted.reconciled, local.reconciledHolds),
            max(localCounted.errors, local.reconcileErrors))
        metrics.localProvisionalHolds.record(local.provisionalHolds)
        metrics.localOldestAgeSeconds.record(Double(local.oldestAgeMs ?? 0) / 1000)
        guard ContinuousClock.now >= nextReserveReport else { return }
        nextReserveReport = ContinuousClock.now + .seconds(1)
        let me = configuration.replica.nodeID
        let reserves = withDriver { driver in
            var rows: [RowKey: Int64] = [:]
            for (key, allotment) in driver.ledger.allotments where key.holder == .node(me) {
                rows[RowKey(sku: key.sku, warehouse: key.warehouse)] = allotment.quantity
            }
            return rows
        }
        for (row, units) in reserves where reserveGauges[row] != units {
            metrics.localReserveUnits(sku: row.sku.rawValue, warehouse: row.warehouse.rawValue).record(units)
        }
        for row in reserveGauges.keys where reserves[row] == nil {
            metrics.localReserveUnits(sku: row.sku.rawValue, warehouse: row.warehouse.rawValue).record(0)
        }
        reserveGauges = reserves
    }

    /// Runs `body`; a storage failure crashes the process.
    private func orCrash(_ body: () throws -> Void) {
        do {
            try body()
        } catch {
            // The disk can no longer be trusted to hold what we acknowledge: crash, and let
            // restart recover exactly what was fsynced.
            logger.critical("storage failed", metadata: ["error": "\(error)"])
            fatalError("storage failed: \(error)")
        }
    }

    /// The loop's I/O for `ReplicaRunner`: files through `storage` (outside the driver's lock),
    /// peers through the sender, callers through their completions.
    final class LoopShell: ReplicaShell {
        unowned let replica: ClusterReplica

        init(_ replica: ClusterReplica) { self.replica = replica }

        func withDriver<T>(_ body: (inout Driver) throws -> T) rethrows -> T { try replica.withDriver(body) }

        func send(_ envelopes: [Envelope]) { replica.send(envelopes) }

        func write(_ step: Driver.WriteStep, of work: Driver.Work) throws -> Bool {
            try replica.storage.write(step) { index in replica.withDriver { $0.raft.term(at: index) } }
            return true
        }

        func takeFinishedSnapshot() throws -> FinishedSnapshot? { try replica.storage.takeFinishedSnapshot() }

        func deliver(_ output: Driver.Output) { replica.deliver(output) }

        func applied(_ work: Driver.Work) {
            let (applied, active, conflicts) = replica.withDriver { driver in
                (driver.ledger.appliedIndex, driver.ledger.activeHoldCount, driver.ledger.replayConflicts.count)
            }
            replica.metrics.activeHolds.record(active)
            replica.metrics.replayConflicts.record(conflicts)
            replica.metrics.appliedIndex.record(Int64(applied))
        }
    }

    /// Runs what the driver handed over: answers, frames, a snapshot to write, events to log.
    private func deliver(_ output: Driver.Output) {
        let overloads = withDriver { $0.overloadRefusals }
        if overloads > overloadsCounted {
            metrics.refusedOverload.increment(by: overloads - overloadsCounted)
            overloadsCounted = overloads
        }
        if let request = output.snapshot {
            do {
                try storage.startSnapshot(request)
            } catch {
                logger.error("cannot start a snapshot", metadata: ["error": "\(error)"])
                withDriver { $0.snapshotFailed() }
            }
        }
        var unsent: [UInt64] = []
        senderLock.lock()
        let frameSender = self.frameSender
        senderLock.unlock()
        for (frame, peer) in output.frames where !(frameSender?(frame, peer) ?? false) {
            if case .forward(let id, _) = frame { unsent.append(id) }
        }
        if !unsent.isEmpty { withDriver { driver in for id in unsent { driver.forwardNotSent(id) } } }
        for (caller, outcome) in output.answers { run(caller, outcome) }
        for (caller, error) in output.readAnswers { run(caller, error) }
        for event in output.events { log(event) }
    }

    private func run(_ caller: Caller, _ outcome: Outcome) {
        if case .proposal(let complete) = caller { complete(outcome) }
    }

    private func run(_ caller: Caller, _ error: StockadeError?) {
        if case .read(let continuation) = caller { continuation.resume(returning: error) }
    }

    private func send(_ envelopes: [Envelope]) {
        guard !envelopes.isEmpty else { return }
        senderLock.lock()
        let sender = self.sender
        senderLock.unlock()
        sender?(envelopes)
    }

    /// Records how long the turn held the loop; a turn long enough to show in request latency is
    /// logged with where its time went.
    private func noteTurn(started: ContinuousClock.Instant, proposals: Int, messages: Int) {
        let took = ContinuousClock.now - started
        let fsync = storage.takeFsyncTime()
        metrics.loopTurnDuration.recordNanoseconds(took.nanoseconds)
        guard took >= ReplicaMetrics.slowTurn else { return }
        logger.notice(
            "slow loop turn",
            metadata: [
                "ms": "\(took.nanoseconds / 1_000_000)", "fsyncMs": "\(fsync.nanoseconds / 1_000_000)",
                "proposals": "\(proposals)", "messages": "\(messages)",
            ])
    }
}
