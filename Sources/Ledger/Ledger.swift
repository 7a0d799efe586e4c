import HeapModule
import StockadeCore

/// The deterministic state machine over stock rows and holds.
///
/// The ledger is a pure function of the commands applied to it: it reads no clock (time comes in
/// `TimedCommand.timeMs`), no randomness and no I/O. Replicas that apply the same log reach the same
/// state, which `encodeSnapshot()` shows byte for byte. Not thread-safe: its owner serialises access.
public struct Ledger: Sendable {
    /// Bounds used by `apply`. Every replica of one log must run with the same limits.
    public let limits: Limits

    /// The warehouse layout, sorted by id.
    /// Set only through `setLayout(_:)`, which keeps `warehousesByPriority` in step.
    public private(set) var warehouses: [Warehouse] = []
    /// The layout by priority, then id: the order within each group of `warehouseOrder(forRegion:)`,
    /// kept so that planning a reserve does not sort the layout each time.
    public private(set) var warehousesByPriority: [Warehouse] = []
    /// Stock rows by SKU, then warehouse.
    public internal(set) var stock: [SKU: [WarehouseID: StockRow]] = [:]
    /// Every reservation that is held, or finished within the retention window, in the order stored.
    public internal(set) var holds = HoldStore()
    /// SKUs the cache may sell (see docs/hot-path.md).
    public internal(set) var hotSKUs: Set<SKU> = []
    /// Units escrowed per row and holder; each row's `allotted` is the sum over its holders.
    public internal(set) var allotments: [AllotmentKey: Allotment] = [:]
    /// Local reserve policies set per row (a warehouse's default applies to rows not named here).
    public internal(set) var localReserves: [RowKey: LocalReservePolicy] = [:]
    /// Per node, how far its local log has been replayed.
    public internal(set) var localProgress: [UInt64: LocalProgress] = [:]
    /// Holds granted off the quorum path that could not be merged with the ledger's hold of the
    /// same id, oldest first, at most `limits.replayConflictsKept` (see `ReplayConflict`).
    public internal(set) var replayConflicts: [ReplayConflict] = []
    /// The index of the last applied log entry.
    public internal(set) var appliedIndex: LogIndex = 0
    /// How many holds are in `held`.
    public internal(set) var activeHoldCount: Int = 0

    /// Held holds by expiry; entries made stale by an extend or a finish are skipped when popped.
    var expiryQueue = Heap<TimedEntry>()
    /// Finished holds by finish time, for purging after the retention window.
    var finishedQueue = Heap<TimedEntry>()

    public init(limits: Limits = .default) {
        self.limits = limits
    }

    /// Makes `layout` current: sorted by id, plus its priority order for planning.
    mutating func setLayout(_ layout: [Warehouse]) {
        warehouses = layout.sorted { $0.id < $1.id }
        warehousesByPriority = layout.sorted { ($0.priority, $0.id) < ($1.priority, $1.id) }
    }

    /// Applies the command at log position `index`. `index` must follow the last applied index.
    ///
    /// After every apply the rows the command touched are checked against the no-oversell invariant.
    public mutating func apply(_ timed: TimedCommand, index: LogIndex) -> Outcome {
        precondition(index == appliedIndex + 1, "log gap: applying \(index) after \(appliedIndex)")
        appliedIndex = index
        let time = timed.timeMs
        switch timed.command {
        case .configureWarehouses(let layout):
            return configure(layout)
        case .setStock(let sku, let warehouse, let total):
            return setStock(sku: sku, warehouse: warehouse, total: total)
        case .adjustStock(let sku, let warehouse, let delta, _):
            return adjustStock(sku: sku, warehouse: warehouse, delta: delta)
        case .reserve(let request):
            return reserve(request, timeMs: time, index: index)
        case .confirm(let id):
            return confirm(id, timeMs: time)
        case .release(let id):
            return release(id, timeMs: time)
        case .extend(let id, let ttlMs):
            return extend(id, ttlMs: ttlMs, timeMs: time)
        case .expireDue:
            return expireDue(timeMs: time)
        case .setHot(let sku, let hot):
            return setHot(sku, hot)
        case .grantAllotment(let key, let quantity):
            return grantAllotment(key, quantity: quantity, index: index)
        case .returnAllotment(let key, let quantity):
            return returnAllotment(key, quantity: quantity)
        case .applyAllotmentHolds(let cacheHolds):
            return applyAllotmentHolds(cacheHolds, index: index, timeMs: time)
        case .setLocalReserve(let key, let policy):
            return setLocalReserve(key, policy)
        case .beginLocalEpoch(let node, let nonce):
            return beginLocalEpoch(node: node, nonce: nonce)
        case .reconcileLocal(let batch):
            return reconcileLocal(batch, index: index, timeMs: time)
        }
    }

    /// Consumes a log position that carries no command (a replication no-op), keeping indices contiguous.
    public mutating func skip(index: LogIndex) {
        precondition(index == appliedIndex + 1, "log gap: skipping \(index) after \(appliedIndex)")
        appliedIndex = index
    }

    /// The sequence of the `position`-th hold stored by the entry at `index`: entries store holds
    /// in log order, and one entry stores at most `holdsPerEntryMax`.
    static func sequence(index: LogIndex, position: Int) -> UInt64 {
        precondition(position >= 0 && position < holdsPerEntryMax, "too many holds in one entry")
        return index << 16 | UInt64(position)
    }

    /// The most holds one log entry may store (see `sequence(index:position:)`).
    public static let holdsPerEntryMax = 1 << 16

    // MARK: - Reads

    /// The hold for a reservation id, if it is held or finished within retention.
    public func hold(_ id: ReservationID) -> Hold? { holds[id] }

    /// The rows of a SKU sorted by warehouse, or nil for an unknown SKU.
    public func rows(of sku: SKU) -> [(warehouse: WarehouseID, row: StockRow)]? {
        guard let rows = stock[sku] else { return nil }
        return rows.sorted { $0.key < $1.key }.map { (warehouse: $0.key, row: $0.value) }
    }

    /// The earliest expiry among held holds, if any (may be stale-early, never late).
    public var earliestExpiryMs: Int64? { expiryQueue.min?.timeMs }

    /// The earliest moment a finished reservation may be purged, if any.
    public var earliestPurgeMs: Int64? { finishedQueue.min.map { $0.timeMs + limits.finishedRetentionMs } }

    /// Whether an expire-due command at `timeMs` would change anything.
    public func hasWorkDue(atMs timeMs: Int64) -> Bool {
        if let expiry = earliestExpiryMs, expiry <= timeMs { return true }
        if let purge = earliestPurgeMs, purge <= timeMs { return true }
        return false
    }
}

/// A heap entry ordered by time, then hold sequence, so that pop order is a total order and
/// therefore deterministic. It names its hold by sequence only, to keep the queues small.
struct TimedEntry: Comparable, Sendable {
    var timeMs: Int64
    var sequence: UInt64

    static func < (lhs: TimedEntry, rhs: TimedEntry) -> Bool {
        (lhs.timeMs, lhs.sequence) < (rhs.timeMs, rhs.sequence)
    }

    static func == (lhs: TimedEntry, rhs: TimedEntry) -> Bool {
        lhs.timeMs == rhs.timeMs && lhs.sequence == rhs.sequence
    }
}
