import Dispatch
import Foundation
import Logging
import StockadeCore
import Storage

/// Writes snapshot files off the thread that owns the log, one at a time, and reports which one
/// became durable so the owner can delete the log segments it covers.
///
/// Threading: `begin`, `takeDurable`, `saveNow` and `drain` are called by the owning loop; the
/// write itself runs on a serial queue. State is guarded by a lock.
public final class SnapshotWriter: @unchecked Sendable {
    private let store: SnapshotStore
    private let metrics: ReplicaMetrics
    private let logger: Logger
    private let queue: DispatchQueue
    private let lock = NSLock()
    private var inFlight = false
    private var durable: LogIndex?
    private var written = 0

    public init(store: SnapshotStore, metrics: ReplicaMetrics, logger: Logger, label: String) {
        self.store = store
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

    /// Writes and fsyncs the snapshot claimed with `begin` in the background. A failure is logged
    /// and not fatal: the log still holds every entry, and the next interval tries again.
    public func write(index: LogIndex, term: UInt64, bytes: [UInt8], encodeTime: Duration) {
        let start = ContinuousClock.now
        queue.async { [self] in
            do {
                try store.save(index: index, term: term, bytes: bytes)
                lock.lock()
                durable = index
                inFlight = false
                written += 1
                lock.unlock()
                metrics.snapshots.increment()
                logger.info(
                    "snapshot",
                    metadata: [
                        "index": "\(index)", "bytes": "\(bytes.count)", "encode": "\(encodeTime)",
                        "write": "\(ContinuousClock.now - start)",
                    ])
            } catch {
                logger.error("snapshot failed", metadata: ["index": "\(index)", "error": "\(error)"])
                lock.lock()
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
    public func takeDurable() -> LogIndex? {
        lock.lock()
        defer { lock.unlock() }
        defer { durable = nil }
        return durable
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
