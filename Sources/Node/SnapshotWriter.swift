import Dispatch
import Foundation
import Ledger
import Logging
import StockadeCore
import Storage

/// Encodes and writes snapshots off the thread that owns the log, one at a time, and reports which
/// one became durable so the owner can compact its log to it.
///
/// The owner hands over a copy of its `Ledger`. The copy is cheap (the ledger's storage is
/// copy-on-write); the owner's next write to a collection the copy shares pays for duplicating
/// that collection, which is a plain memory copy and an order of magnitude cheaper than encoding
/// it. Encoding 200,000 holds on the owning thread stalled every request for about 200 ms.
///
/// Threading: `begin`, `takeDurable`, `saveNow` and `drain` are called by the owning loop; the
/// encode and write run on a serial queue. State is guarded by a lock.
public final class SnapshotWriter: @unchecked Sendable {
    private let store: SnapshotStore
    private let metrics: ReplicaMetrics
    private let logger: Logger
    private let queue: DispatchQueue
    private let lock = NSLock()
    private var inFlight = false
    private var durable: Durable?
    private var failed = false
    private var written = 0
    private let keepsBytes: Bool

    /// `keepsBytes`: whether the owner needs each durable snapshot's bytes in memory (a cluster
    /// member sends them to lagging followers). Without it the snapshot streams to disk as it is
    /// encoded, a mebibyte at a time, and is never all in memory: at a million holds it is over
    /// 100 MB, which the node's resident memory would otherwise carry on top of the ledger while
    /// the snapshot is written.
    public init(store: SnapshotStore, metrics: ReplicaMetrics, logger: Logger, label: String, keepsBytes: Bool) {
        self.store = store
        self.keepsBytes = keepsBytes
        self.metrics = metrics
        self.logger = logger
        queue = DispatchQueue(label: label)
    }

    /// Claims the writer for a new snapshot; false while one is still being written.
    public func begin() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if inFlight { return false }
        inFlight = true
        return true
    }

    /// A snapshot that is on disk: the owner may compact its log through `index`.
    public struct Durable: Sendable {
        public var index: LogIndex
        public var term: UInt64
        /// The snapshot's bytes when the writer keeps them (`keepsBytes`), else empty.
        public var bytes: [UInt8]
    }

    /// Encodes `ledger` (a copy of the owner's applied state at `ledger.appliedIndex`), writes and
    /// fsyncs it in the background, for the snapshot claimed with `begin`. A failure is logged and
    /// not fatal: the log still holds every entry, and the next interval tries again.
    public func write(_ ledger: Ledger, term: UInt64) {
        let index = ledger.appliedIndex
        queue.async { [self] in
            let start = ContinuousClock.now
            do {
                let bytes: [UInt8]
                let length: Int
                if keepsBytes {
                    bytes = ledger.encodeSnapshot()
                    length = bytes.count
                    try store.save(index: index, term: term, bytes: bytes)
                } else {
                    bytes = []
                    length = try store.save(index: index, term: term) { write in
                        try ledger.encodeSnapshot(chunkBytes: 1 << 20, write)
                    }
                }
                lock.lock()
                durable = Durable(index: index, term: term, bytes: bytes)
                inFlight = false
                written += 1
                lock.unlock()
                metrics.snapshots.increment()
                logger.info(
                    "snapshot",
                    metadata: [
                        "index": "\(index)", "bytes": "\(length)", "took": "\(ContinuousClock.now - start)",
                    ])
            } catch {
                logger.error("snapshot failed", metadata: ["index": "\(index)", "error": "\(error)"])
                lock.lock()
                failed = true
                inFlight = false
                lock.unlock()
            }
        }
    }

    /// Saves a snapshot now (after any background write), e.g. one installed from a leader.
    public func saveNow(index: LogIndex, term: UInt64, bytes: [UInt8]) throws {
        try queue.sync { try store.save(index: index, term: term, bytes: bytes) }
    }

    /// The newest snapshot that became durable since the last call, if any.
    public func takeDurable() -> Durable? {
        lock.lock()
        defer { lock.unlock() }
        defer { durable = nil }
        return durable
    }

    /// Whether a write failed since the last call.
    public func takeFailure() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        defer { failed = false }
        return failed
    }

    /// How many snapshots have been written.
    public var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return written
    }

    /// Waits for a write in progress to finish.
    public func drain() { queue.sync {} }
}
