import Consensus
import Foundation
import Ledger
import Logging
import Node
import Replication
import StockadeCore
import Storage

/// A replica's files: the command log, the hard-state file and the snapshots. It recovers what a
/// driver starts from, and carries out the writes a driver's `Work` asks for, in the order that
/// keeps them safe (snapshot, entries, hard state: a commit index on disk never covers entries
/// that are not). It decides nothing: what to write, and when, is the driver's.
///
/// Threading: used by the replica's loop thread only (and by `init`); snapshots are encoded and
/// written on the `SnapshotWriter`'s own queue.
final class ReplicaStorage {
    struct Recovered {
        var ledger: Ledger
        var hardState: HardState
        var snapshot: Snapshot?
        var entries: [Entry]
        /// The node's local log of provisional holds; nil when it has none yet.
        var local: LocalHolds?
    }

    private let log: CommandLog
    private let hardStateFile: HardStateFile
    private let snapshots: SnapshotStore
    private let localLog: RecordFile
    private let snapshotWriter: SnapshotWriter
    private let metrics: ReplicaMetrics
    /// Time spent in fsync since the last `takeFsyncTime`.
    private var fsyncTime = Duration.zero

    /// `keepsSnapshotBytes`: whether durable snapshots stay in memory (a member of a cluster of
    /// more than one sends them to followers that fell behind).
    init(directory: String, limits: Limits, keepsSnapshotBytes: Bool, metrics: ReplicaMetrics, logger: Logger) throws {
        self.metrics = metrics
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        snapshots = try SnapshotStore(directory: directory + "/snapshots")
        snapshotWriter = SnapshotWriter(
            store: snapshots, metrics: metrics, logger: logger, label: "stockade-snapshot", keepsBytes: keepsSnapshotBytes)
        log = try CommandLog(
            directory: directory + "/log", payloadBytesMax: limits.logEntryBytesMax, segmentBytes: limits.logSegmentBytes)
        hardStateFile = try HardStateFile(directory: directory)
        localLog = RecordFile(path: directory + "/local-holds.log", payloadBytesMax: limits.logEntryBytesMax)
    }

    /// The newest snapshot, the hard state, and every log entry after the snapshot (committed or
    /// not; the protocol hands out the committed ones to apply).
    func recover(limits: Limits, nodeID: NodeID) throws -> Recovered {
        let stored = try hardStateFile.load()
        var ledger = Ledger(limits: limits)
        var snapshot: Snapshot?
        if let latest = try snapshots.loadLatest() {
            ledger = try Ledger(snapshot: latest.bytes, limits: limits)
            snapshot = Snapshot(index: latest.index, term: latest.term, data: latest.bytes)
        }
        var entries: [Entry] = []
        try log.recover(after: snapshot?.index ?? 0, snapshotTerm: snapshot?.term ?? 0) { entry in
            entries.append(Entry(index: entry.index, term: entry.term, payload: entry.payload))
        }
        let hardState = HardState(term: stored.term, votedFor: stored.votedFor == 0 ? nil : stored.votedFor, commit: stored.commit)
        var records = try localLog.recover().map { try LocalRecord(decoding: $0, limits: limits) }
        // A log cut short may have lost records the ledger already took in: it starts a new epoch.
        // Said durably before anything else, or a crash now would leave a whole-looking log.
        if localLog.truncatedBytes > 0 && !records.isEmpty {
            localLog.append(LocalRecord.damaged.encoded())
            try localLog.sync()
            records.append(.damaged)
        }
        let local = records.isEmpty ? nil : try LocalHolds(node: nodeID, recovering: records)
        return Recovered(ledger: ledger, hardState: hardState, snapshot: snapshot, entries: entries, local: local)
    }

    /// Makes one step of a `Work` durable (the runner gives them in `Work.writeSteps` order).
    /// `termAt` gives the protocol's term of an index (for a truncation point).
    func write<Caller>(_ step: ReplicaDriver<Caller>.WriteStep, termAt: (LogIndex) -> Term?) throws {
        switch step {
        case .snapshot(let snapshot, let keepsLog):
            try snapshotWriter.saveNow(index: snapshot.index, term: snapshot.term, bytes: snapshot.data)
            if keepsLog && log.lastIndex >= snapshot.index {
                try log.compact(through: snapshot.index)
            } else {
                try log.reset(after: snapshot.index, term: snapshot.term)
            }
            try syncLog(entries: 0)
        case .entries(let entries):
            if let first = entries.first?.index, first <= log.lastIndex {
                try log.truncate(after: first - 1, term: first == 1 ? 0 : termAt(first - 1) ?? 0)
            }
            for entry in entries { log.append(LogEntry(index: entry.index, term: entry.term, payload: entry.payload)) }
            try syncLog(entries: entries.count)
        case .localRecords(let records):
            for record in records { localLog.append(record.encoded()) }
            let start = ContinuousClock.now
            try localLog.sync()
            fsyncTime += ContinuousClock.now - start
        case .hardState(let hardState, let durable):
            try hardStateFile.save(
                HardStateFile.Value(term: hardState.term, votedFor: hardState.votedFor ?? 0, commit: hardState.commit),
                durable: durable)
        }
    }

    private func syncLog(entries: Int) throws {
        let start = ContinuousClock.now
        try log.sync()
        let took = ContinuousClock.now - start
        fsyncTime += took
        metrics.fsyncDuration.recordNanoseconds(took.nanoseconds)
        if entries > 0 { metrics.commitBatchSize.record(entries) }
    }

    /// Starts writing a snapshot the driver asked for: a new log segment begins after it, and the
    /// copy of the ledger is encoded and written in the background.
    func startSnapshot<Caller>(_ request: ReplicaDriver<Caller>.SnapshotRequest) throws {
        try log.startSegment(firstIndex: log.lastIndex + 1)
        guard snapshotWriter.begin() else { preconditionFailure("the driver asked for a snapshot while one is being written") }
        snapshotWriter.write(request.ledger, term: request.term)
    }

    /// A snapshot that finished since the last call. Once one is durable, the log segments it
    /// covers are deleted.
    func takeFinishedSnapshot() throws -> FinishedSnapshot? {
        if let durable = snapshotWriter.takeDurable() {
            try log.compact(through: durable.index)
            return .durable(Snapshot(index: durable.index, term: durable.term, data: durable.bytes))
        }
        return snapshotWriter.takeFailure() ? .failed : nil
    }

    func takeFsyncTime() -> Duration {
        defer { fsyncTime = .zero }
        return fsyncTime
    }

    /// Waits for a snapshot being written.
    func drain() { snapshotWriter.drain() }
}
