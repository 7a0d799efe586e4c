import Foundation
import Ledger
import Logging
import ServiceLifecycle
import StockadeCore
import Storage
import Synchronization

/// A replicated state machine of one: commands in, a durable ordered log, deterministic apply.
///
/// Callers `propose` commands. A single commit thread takes what is queued (up to
/// `Limits.commitBatchMax`), stamps it with the time, appends it to the log, fsyncs once for the
/// whole batch, applies it to the ledger and only then answers every caller in the batch.
/// Requests that arrive during an fsync form the next batch, so concurrent requests share fsyncs.
///
/// Threading: `propose` and `read` may be called from any thread or task. The log is touched only
/// by the commit thread (and by `init`, before that thread exists). The ledger is guarded by
/// `ledgerLock`; the queue by `queueCondition`.
public final class Replica: ReplicatedLedger, LoopService, @unchecked Sendable {
    public struct Configuration: Sendable {
        public var dataDirectory: String
        public var warehouses: [Warehouse]
        public var limits: Limits
        public init(dataDirectory: String, warehouses: [Warehouse], limits: Limits = .default) {
            self.dataDirectory = dataDirectory
            self.warehouses = warehouses
            self.limits = limits
        }
    }

    struct Pending {
        var command: Command
        /// Called on the commit thread with the outcome once the command is durable and applied.
        var completion: @Sendable (Outcome) -> Void
    }

    public let limits: Limits
    let logger: Logger
    let metrics: ReplicaMetrics
    /// The wall clock, in UTC milliseconds. Only commands stamped by the commit thread carry its readings into the ledger.
    public let clock: @Sendable () -> Int64

    private let ledgerLock = NSLock()
    private var ledger: Ledger

    private let queueCondition = NSCondition()
    private var pending: [Pending] = []
    private var accepting = true
    private var stopping = false

    // Owned by the commit thread after start.
    private let log: CommandLog
    private let snapshots: SnapshotStore
    private let snapshotWriter: SnapshotWriter
    private var snapshotIndex: LogIndex
    /// Holds in the newest snapshot (or the one loaded at start): see `Ledger.snapshotDue`.
    private var snapshotHolds = 0
    private var lastTimeMs: Int64 = 0
    /// `lastTimeMs` as other threads read it (see `grantTimeMs`).
    private let lastStampMs = Atomic<Int64>(0)
    private let statsLock = NSLock()
    private var stats = CommitStats()
    private let commitThread = WorkerThread(name: "stockade-commit")

    /// Opens the data directory, loads the newest snapshot, replays the log after it, and makes
    /// the configured warehouse layout current (through the log, so replay stays deterministic).
    public init(
        configuration: Configuration, logger: Logger, metrics: ReplicaMetrics,
        clock: @escaping @Sendable () -> Int64 = Replica.wallClockMs
    ) throws {
        limits = configuration.limits
        self.logger = logger
        self.metrics = metrics
        self.clock = clock
        let problems = limits.violations()
        guard problems.isEmpty else { throw StockadeError(.invalidRequest, "bad limits: \(problems)") }
        let directory = configuration.dataDirectory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        snapshots = try SnapshotStore(directory: directory + "/snapshots")
        snapshotWriter = SnapshotWriter(store: snapshots, metrics: metrics, logger: logger, label: "stockade-snapshot", keepsBytes: false)
        log = try CommandLog(
            directory: directory + "/log", payloadBytesMax: limits.logEntryBytesMax, segmentBytes: limits.logSegmentBytes)
        var recovered = Ledger(limits: limits)
        var snapshotTerm: UInt64 = 0
        if let snapshot = try snapshots.loadLatest() {
            recovered = try Ledger(snapshot: snapshot.bytes, limits: limits)
            precondition(recovered.appliedIndex == snapshot.index, "snapshot index mismatch")
            snapshotTerm = snapshot.term
        }
        snapshotIndex = recovered.appliedIndex
        snapshotHolds = recovered.holds.count
        var replayed = 0
        var lastTime: Int64 = 0
        try log.recover(after: recovered.appliedIndex, snapshotTerm: snapshotTerm) { entry in
            let command = try TimedCommand(decoding: entry.payload, limits: configuration.limits)
            _ = recovered.apply(command, index: entry.index)
            lastTime = max(lastTime, command.timeMs)
            replayed += 1
        }
        lastTimeMs = lastTime
        lastStampMs.store(lastTime, ordering: .relaxed)
        ledger = recovered
        logger.info(
            "recovered",
            metadata: [
                "snapshotIndex": "\(snapshotIndex)", "replayedEntries": "\(replayed)",
                "appliedIndex": "\(ledger.appliedIndex)", "activeHolds": "\(ledger.activeHoldCount)",
            ])
        let layout = configuration.warehouses.sorted { $0.id < $1.id }
        if ledger.warehouses != layout {
            let outcome = try commitBatch([.configureWarehouses(layout)]).first!
            if case .rejected(let error, _) = outcome { throw error }
        }
        metrics.activeHolds.record(ledger.activeHoldCount)
        metrics.appliedIndex.record(Int64(ledger.appliedIndex))
    }

    /// Milliseconds since the Unix epoch, UTC (in debug builds, plus `DebugClock.offsetMs`).
    public static let wallClockMs: @Sendable () -> Int64 = {
        let ms = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        #if DEBUG
        return ms + DebugClock.offsetMs.load(ordering: .relaxed)
        #else
        return ms
        #endif
    }

    /// How many batches and entries the commit loop has made durable since start.
    public struct CommitStats: Sendable, Equatable {
        public var batches = 0
        public var entries = 0
        public var snapshots = 0
        /// Commands refused because the queue was full.
        public var refused = 0
    }

    public var commitStats: CommitStats {
        statsLock.lock()
        var current = stats
        statsLock.unlock()
        current.snapshots = snapshotWriter.count
        return current
    }

    /// Whether the replica still takes commands (false once shutdown has begun).
    public var isAccepting: Bool {
        queueCondition.lock()
        defer { queueCondition.unlock() }
        return accepting
    }

    /// A single node leads in term 0 for good.
    public var leaderTerm: UInt64? { 0 }

    /// The time the commands are stamped with: the clock, never before the last stamp (a clock
    /// stepped back does not stamp a cache hold before the ledger's own time, where the next
    /// expiry pass would end it).
    public var grantTimeMs: Int64? { max(clock(), lastStampMs.load(ordering: .relaxed)) }

    /// Every acknowledged command is already applied here: the single node is its own read point.
    public func readBarrier() async throws {}

    /// Reads the applied state under the ledger lock. Keep `body` short: it blocks the commit thread's apply.
    public func read<T>(_ body: (borrowing Ledger) throws -> T) rethrows -> T {
        ledgerLock.lock()
        defer { ledgerLock.unlock() }
        return try body(ledger)
    }

    /// Queues a command and returns its outcome once it is durable and applied.
    /// Refuses with `overloaded` when the queue is full and `unavailable` when shutting down.
    public func propose(_ command: Command) async -> Outcome {
        await withCheckedContinuation { continuation in
            propose(command) { continuation.resume(returning: $0) }
        }
    }

    /// Queues a command; `completion` gets its outcome once it is durable and applied, on the
    /// commit thread (so it must be short and must not block), or at once on the caller's thread
    /// when the command is refused (`overloaded` when the queue is full, `unavailable` when
    /// shutting down).
    public func propose(_ command: Command, completion: @escaping @Sendable (Outcome) -> Void) {
        queueCondition.lock()
        let refusal: StockadeError?
        if !accepting {
            refusal = StockadeError(.unavailable, "the node is shutting down")
        } else if pending.count >= limits.pendingCommandsMax {
            refusal = StockadeError(.overloaded, "too many commands waiting for the log; retry with backoff")
        } else {
            refusal = nil
            pending.append(Pending(command: command, completion: completion))
            if pending.count == 1 { queueCondition.signal() }
        }
        queueCondition.unlock()
        if let refusal {
            if refusal.code == .overloaded {
                metrics.refusedOverload.increment()
                statsLock.lock()
                stats.refused += 1
                statsLock.unlock()
            }
            completion(.rejected(refusal))
        }
    }

    /// The single node's only term is 0; any other is not its own.
    public func propose(_ command: Command, asLeaderOf term: UInt64) async -> Outcome {
        guard term == 0 else { return .rejected(StockadeError(.notLeader, "a single node leads in term 0 only")) }
        return await propose(command)
    }

    /// Reserves, answering without the log when the applied state already decides the request.
    public func reserve(_ request: ReserveRequest) async -> Outcome {
        if let answer = read({ $0.answerWithoutLog(request) }) { return answer }
        return await propose(.reserve(request))
    }

    /// `reserve(_:)` with a completion instead of a suspension: called at once on the caller's
    /// thread when the applied state decides the request, else on the commit thread.
    ///
    /// The caller is an event loop, which must not wait while the commit thread applies a batch
    /// (usually well under a millisecond, but tens of milliseconds for the first batch after a
    /// snapshot of a large ledger). So when the ledger is busy the request goes to the log without
    /// the check: applying it decides exactly as the check would, it only costs a log entry.
    public func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome) -> Void) {
        if ledgerLock.try() {
            let answer = ledger.answerWithoutLog(request)
            ledgerLock.unlock()
            if let answer { return completion(answer) }
        }
        propose(.reserve(request), completion: completion)
    }

    // MARK: - Service

    /// Starts the commit thread (`LoopService.run()`: at graceful shutdown it stops taking
    /// commands, commits what is queued, in-flight fsyncs finish, and returns).
    public func startLoop() {
        commitThread.start { [self] in commitLoop() }
    }

    /// Stops accepting commands; queued ones are still committed and answered.
    public func stop() {
        queueCondition.lock()
        accepting = false
        stopping = true
        queueCondition.broadcast()
        queueCondition.unlock()
    }

    /// Waits until the commit thread has drained and exited.
    public func waitForLoop() async {
        await commitThread.finished()
    }

    private func commitLoop() {
        while true {
            queueCondition.lock()
            while pending.isEmpty && !stopping { queueCondition.wait() }
            if pending.isEmpty && stopping {
                queueCondition.unlock()
                break
            }
            if pending.count < limits.commitBatchMax && limits.commitWaitMicroseconds > 0 && !stopping {
                _ = queueCondition.wait(until: Date(timeIntervalSinceNow: Double(limits.commitWaitMicroseconds) / 1e6))
            }
            let take = min(pending.count, limits.commitBatchMax)
            let batch = Array(pending.prefix(take))
            pending.removeFirst(take)
            queueCondition.unlock()

            let outcomes: [Outcome]
            do {
                outcomes = try commitBatch(batch.map(\.command))
            } catch {
                // The log can no longer be trusted to be durable. Crashing is the only safe answer:
                // restart recovers exactly what was fsynced, and nothing unsynced was acknowledged.
                logger.critical("log write failed", metadata: ["error": "\(error)"])
                fatalError("log write failed: \(error)")
            }
            for (item, outcome) in zip(batch, outcomes) { item.completion(outcome) }
        }
        snapshotWriter.drain()  // let a snapshot being written finish before the thread reports done
    }

    /// Appends, fsyncs and applies one batch; returns the outcomes in order.
    private func commitBatch(_ commands: [Command]) throws -> [Outcome] {
        let batchStart = ContinuousClock.now
        lastTimeMs = max(lastTimeMs, clock())
        lastStampMs.store(lastTimeMs, ordering: .relaxed)
        var entries: [TimedCommand] = []
        entries.reserveCapacity(commands.count)
        var index = log.lastIndex
        for command in commands {
            let timed = TimedCommand(command, timeMs: lastTimeMs)
            index += 1
            log.append(LogEntry(index: index, term: 0, payload: timed.encoded()))
            entries.append(timed)
        }
        let start = ContinuousClock.now
        try log.sync()  // Persist before acknowledging: nothing below runs unless the batch is durable.
        let fsync = ContinuousClock.now - start
        metrics.fsyncDuration.recordNanoseconds(fsync.nanoseconds)
        metrics.commitBatchSize.record(commands.count)
        statsLock.lock()
        stats.batches += 1
        stats.entries += commands.count
        statsLock.unlock()

        let applyStart = ContinuousClock.now
        ledgerLock.lock()
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(entries.count)
        var applyIndex = ledger.appliedIndex
        for entry in entries {
            applyIndex += 1
            outcomes.append(ledger.apply(entry, index: applyIndex))
        }
        let active = ledger.activeHoldCount
        let conflicts = ledger.replayConflicts.count
        let applied = ledger.appliedIndex
        ledgerLock.unlock()
        let took = ContinuousClock.now - batchStart
        metrics.loopTurnDuration.recordNanoseconds(took.nanoseconds)
        if took >= ReplicaMetrics.slowTurn {
            logger.notice(
                "slow commit batch",
                metadata: [
                    "ms": "\(took.nanoseconds / 1_000_000)", "fsyncMs": "\(fsync.nanoseconds / 1_000_000)",
                    "applyMs": "\((ContinuousClock.now - applyStart).nanoseconds / 1_000_000)",
                    "commands": "\(commands.count)", "holds": "\(active)",
                ])
        }
        precondition(applied == log.lastIndex, "applied \(applied) but logged \(log.lastIndex)")
        metrics.activeHolds.record(active)
        metrics.replayConflicts.record(conflicts)
        metrics.appliedIndex.record(Int64(applied))

        try compactIfSnapshotDurable()
        if Ledger.snapshotDue(
            applied: applied, lastIndex: snapshotIndex, lastHolds: snapshotHolds, interval: limits.snapshotIntervalEntries),
            snapshotWriter.begin()
        {
            try takeSnapshot()
        }
        return outcomes
    }

    /// Starts a new log segment at the next index and hands a copy of the applied state (the
    /// commit thread is the ledger's only writer, so it reads it without the lock) to the snapshot
    /// queue to encode, write and fsync. The log segments it covers are deleted only after that.
    private func takeSnapshot() throws {
        let index = ledger.appliedIndex
        try log.startSegment(firstIndex: index + 1)
        snapshotIndex = index
        snapshotHolds = ledger.holds.count
        snapshotWriter.write(ledger, term: 0)
    }


    /// Deletes log segments covered by a snapshot that has become durable.
    private func compactIfSnapshotDurable() throws {
        if let durable = snapshotWriter.takeDurable() { try log.compact(through: durable.index) }
    }

}
