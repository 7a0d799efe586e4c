import Ledger
import StockadeCore

/// One record of a node's local log of provisional holds (see docs/local-fallback.md).
public enum LocalRecord: Hashable, Sendable {
    /// The first record of a new log: the nonce the node asks the ledger to number an epoch for.
    case opened(nonce: UInt64)
    /// The ledger numbered this log's epoch.
    case epoch(UInt64)
    /// A provisional hold as it stands after its grant or a later change.
    case hold(sequence: UInt64, Hold)
    /// Units the node gives back from its reserve.
    case returned(sequence: UInt64, [Allocation])
    /// Everything up to this sequence is about to be replayed: the node changes none of those
    /// holds on its own any more (the ledger decides them from here on).
    case handover(throughSequence: UInt64)
    /// The ledger did not take this provisional hold as granted here (another hold with its id
    /// won, or the replay was refused); kept so the node still says so after a restart, when the
    /// winner may have been purged.
    case resolved(Hold, HoldReplayResult)
    /// Recovery cut the log short: records the ledger already took in may be gone, so the node
    /// grants nothing more in this epoch and opens a new one once what it kept is replayed.
    case damaged
}

/// A node's provisional holds: granted from its local reserve while it could not reach the
/// quorum, kept in its own log, and replayed into the ledger once the quorum is back.
///
/// The accounting that keeps it safe (the bounded counter): the node may spend, per row, what its
/// applied ledger says its reserve holds, minus what its records not yet reflected in that ledger
/// consume. The leader only ever adds to the reserve and the ledger takes units out of it only by
/// this node's replayed records, so however stale the applied ledger is, the estimate is never
/// above the truth.
///
/// Pure and deterministic: the driver owns it, the shell persists `unsaved` records before the
/// answers that depend on them go out.
public struct LocalHolds {
    /// A provisional hold the ledger has not reflected yet.
    public struct Entry: Sendable {
        public var hold: Hold
        public var grantSequence: UInt64
    }

    /// What became of a provisional hold once its grant was replayed.
    public struct Resolution: Sendable, Equatable {
        public var hold: Hold
        public var result: HoldReplayResult
    }

    public let node: UInt64
    public private(set) var nonce: UInt64
    /// The epoch the ledger numbered for this log, once known; nothing is granted before.
    public private(set) var epoch: UInt64?
    public private(set) var nextSequence: UInt64 = 1
    /// Provisional holds by id, until the ledger reflects their grant.
    public private(set) var entries: [ReservationID: Entry] = [:]
    public private(set) var returns: [(sequence: UInt64, allocations: [Allocation])] = []
    /// Every record up to this sequence is handed over to the ledger.
    public private(set) var handedOverThrough: UInt64 = 0
    /// The sequence the applied ledger has taken in, as last seen.
    public private(set) var reflectedThrough: UInt64 = 0
    /// Units per row that records not yet reflected consume (provisional holds held or confirmed,
    /// and returns).
    public private(set) var pendingUnits: [RowKey: Int64] = [:]
    /// Provisional holds the ledger superseded or refused, newest last (bounded; for reads).
    public private(set) var resolutions: [ReservationID: Resolution] = [:]
    var resolutionOrder: [ReservationID] = []
    /// Records to make durable before the answers that depend on them.
    public private(set) var unsaved: [LocalRecord] = []
    /// Records made since the store was opened (those read back at recovery not counted).
    public private(set) var recordsMade = 0
    /// Replays whose results were not `applied` or `duplicate`, and refused batches (reconcile errors).
    public private(set) var reconcileErrors = 0

    static let resolutionsKept = 10_000

    /// Whether the log exists on disk (or is about to): opened once the node owns a warehouse.
    public private(set) var isOpen = false
    /// Set when the ledger has taken in a sequence at or above the next one this log would use:
    /// records were lost from the end of the log (a truncated file), and numbering on would reuse
    /// sequences the ledger skips as already seen. The node grants nothing until it `reopen`s the
    /// log under a new nonce, which the ledger numbers as a new epoch.
    public private(set) var mustReopen = false
    /// Set by a `damaged` record until the log is reopened.
    public private(set) var damaged = false

    /// A log not yet written; `open()` starts it.
    public init(node: UInt64, nonce: UInt64) {
        self.node = node
        self.nonce = nonce
    }

    /// Starts the log with its nonce.
    public mutating func open() {
        guard !isOpen else { return }
        record(.opened(nonce: nonce))
    }

    /// A log read back from disk.
    public init(node: UInt64, recovering records: [LocalRecord]) throws {
        guard case .opened(let nonce) = records.first else {
            throw StockadeError(.internalError, "the local log does not start with its nonce")
        }
        self.node = node
        self.nonce = nonce
        isOpen = true
        for record in records.dropFirst() { take(record) }
    }

    /// Provisional holds waiting for the ledger, and the age of the oldest (by its creation time).
    public var count: Int { entries.count }

    public func oldestCreatedAtMs() -> Int64? { entries.values.map(\.hold.createdAtMs).min() }

    /// Whether the node changes this hold on its own: granted here and not yet handed over.
    ///
    /// Nothing is, in a damaged log: recovery may have cut records the ledger already took in (a
    /// release, a confirm, a handover), so what is kept can be older than what the ledger holds.
    /// The ledger decides those holds until the log is reopened (100,000-seed sweep: seeds 27262,
    /// 38484, 43231, 48836, 49615 and 52480 confirmed a hold here that the ledger had released,
    /// or lost an acknowledged confirm).
    public func isLocal(_ entry: Entry) -> Bool { !damaged && entry.grantSequence > handedOverThrough }

    mutating func take(_ record: LocalRecord) {
        switch record {
        case .opened(let nonce):
            if isOpen {
                // A new log after one the ledger had taken in whole (`reopen` checks that): nothing
                // of the old one waits, and numbering starts again. (Read back at recovery, the old
                // log's entries are here still: recovery replays records, not the ledger's progress.)
                entries = [:]
                returns = []
                epoch = nil
                nextSequence = 1
                handedOverThrough = 0
                reflectedThrough = 0
                pendingUnits = [:]
                mustReopen = false
                damaged = false
            }
            self.nonce = nonce
            isOpen = true
        case .epoch(let epoch): self.epoch = epoch
        case .hold(let sequence, let hold):
            nextSequence = max(nextSequence, sequence + 1)
            let old = entries[hold.reservationId]
            if let old { account(old.hold, sign: -1) }
            entries[hold.reservationId] = Entry(hold: hold, grantSequence: old?.grantSequence ?? sequence)
            account(hold, sign: 1)
        case .returned(let sequence, let allocations):
            nextSequence = max(nextSequence, sequence + 1)
            returns.append((sequence, allocations))
            for allocation in allocations {
                pendingUnits[RowKey(sku: allocation.sku, warehouse: allocation.warehouse), default: 0] += allocation.quantity
            }
        case .handover(let through):
            handedOverThrough = max(handedOverThrough, through)
        case .damaged:
            damaged = true
        case .resolved(let hold, let result):
            if result == .refused { reconcileErrors += 1 }
            if resolutions[hold.reservationId] == nil { resolutionOrder.append(hold.reservationId) }
            resolutions[hold.reservationId] = Resolution(hold: hold, result: result)
            if resolutionOrder.count > Self.resolutionsKept {
                resolutions[resolutionOrder.removeFirst()] = nil
            }
        }
    }

    private mutating func record(_ record: LocalRecord) {
        take(record)
        unsaved.append(record)
        recordsMade += 1
    }

    /// Starts a new log under `nonce` after `mustReopen` was set (its holds are all reflected).
    public mutating func reopen(nonce: UInt64) {
        precondition(mustReopen && nonce != self.nonce && entries.isEmpty && returns.isEmpty, "reopened with records the ledger has not reflected")
        record(.opened(nonce: nonce))
    }

    /// Hands over the records to persist now.
    public mutating func takeUnsaved() -> [LocalRecord] {
        defer { unsaved = [] }
        return unsaved
    }

    private mutating func account(_ hold: Hold, sign: Int64) {
        guard hold.status == .held || hold.status == .confirmed else { return }
        for allocation in hold.allocations {
            let key = RowKey(sku: allocation.sku, warehouse: allocation.warehouse)
            let units = pendingUnits[key, default: 0] + sign * allocation.quantity
            pendingUnits[key] = units == 0 ? nil : units
        }
    }

    // MARK: - Following the ledger

    /// Takes in what the applied ledger says: this log's epoch (once the ledger numbered the
    /// nonce), and how far its records are reflected; reflected holds leave the store.
    public mutating func follow(_ ledger: Ledger) {
        guard let progress = ledger.localProgress[node], progress.nonce == nonce else { return }
        if epoch == nil { record(.epoch(progress.epoch)) }
        guard progress.epoch == epoch, progress.sequence > reflectedThrough else { return }
        reflectedThrough = progress.sequence
        for (id, entry) in entries where entry.grantSequence <= reflectedThrough {
            entries[id] = nil
            account(entry.hold, sign: -1)
            if let now = ledger.hold(id), now.token == entry.hold.token { continue }
            // Resolved already from the batch's own results.
            if resolutions[id]?.hold.token == entry.hold.token { continue }
            // Not in the ledger as granted here: another hold with this id won, or the replay was
            // refused (or the hold was already purged, for a finished one).
            let result: HoldReplayResult = ledger.hold(id) != nil ? .superseded : .refused
            if result == .refused && entry.hold.status.isFinished { continue }
            resolve(entry.hold, result)
        }
        while let first = returns.first, first.sequence <= reflectedThrough {
            returns.removeFirst()
            for allocation in first.allocations {
                let key = RowKey(sku: allocation.sku, warehouse: allocation.warehouse)
                let units = pendingUnits[key, default: 0] - allocation.quantity
                pendingUnits[key] = units == 0 ? nil : units
            }
        }
        if reflectedThrough >= nextSequence { mustReopen = true }
        if damaged && epoch != nil && entries.isEmpty && returns.isEmpty { mustReopen = true }
    }

    /// Records what the ledger made of a batch's holds, from the reconcile command's results.
    public mutating func noteResults(of batch: LocalReconcile, _ results: [HoldReplayResult]) {
        for (hold, result) in zip(batch.holds, results) where result == .superseded || result == .refused || result == .conflict {
            guard resolutions[hold.reservationId]?.hold.token != hold.token else { continue }
            resolve(hold, result)
        }
    }

    mutating func resolve(_ hold: Hold, _ result: HoldReplayResult) {
        record(.resolved(hold, result))
    }

    /// A batch the ledger refused as a whole (a stale epoch): counted as a reconcile error.
    mutating func noteRefusedBatch() { reconcileErrors += 1 }

    // MARK: - Spending the reserve

    /// Units of a row this node may still spend on its own.
    public func spendable(_ key: RowKey, in ledger: Ledger) -> Int64 {
        let reserve = ledger.allotments[AllotmentKey(sku: key.sku, warehouse: key.warehouse, holder: .node(node))]?.quantity ?? 0
        return reserve - (pendingUnits[key] ?? 0)
    }

    /// Rows whose provisional holds (and returns) not yet in the ledger use more units than the
    /// ledger escrows to this node: the one thing the fallback must never do.
    public func audit(in ledger: Ledger, sku: SKU? = nil) -> [AuditFinding] {
        pendingUnits.keys.sorted().compactMap { key in
            guard sku == nil || key.sku == sku else { return nil }
            let left = spendable(key, in: ledger)
            guard left < 0 else { return nil }
            let used = pendingUnits[key] ?? 0
            let reserve = left + used
            return AuditFinding(
                sku: key.sku, warehouse: key.warehouse, check: .local, ledger: reserve, derived: used,
                message: "n\(node)'s provisional holds use \(used) units but the ledger escrows \(reserve) to it")
        }
    }

    /// Whether this node serves `region` locally: a warehouse it owns serves it.
    public func serves(region: String, in ledger: Ledger) -> Bool {
        ledger.warehouses.contains { $0.owner == node && $0.serves(region: region) }
    }

    /// Grants `request` from this node's reserve, or says why not (nil: the node cannot serve it
    /// locally at all, and the caller's own answer stands).
    public mutating func grant(
        _ request: ReserveRequest, ledger: Ledger, term: UInt64, timeMs: Int64, limits: Limits
    ) -> Outcome? {
        // An id this node's applied ledger knows is the ledger's: its answer (a replay or a
        // conflict) must come from the quorum, so it is never granted here again (seed 50091: an
        // expired quorum hold's id, reused with another body, was granted locally).
        // One grant per id: a second request for an id granted here is a replay or a conflict,
        // never a second hold (two waiting on a cut-off node were both granted once).
        if let answer = replay(request) { return answer }
        guard let epoch, !mustReopen, !damaged, entries.count < limits.local.provisionalHoldsMax, nextSequence <= LocalGrant.sequenceMax,
            serves(region: request.region, in: ledger), ledger.hold(request.reservationId) == nil
        else { return nil }
        if let error = Validation.reserve(request, limits: limits) { return .rejected(error) }
        let owned = ledger.warehouseOrder(forRegion: request.region).filter { id in
            ledger.warehouses.contains { $0.id == id && $0.owner == node }
        }
        var allocations: [Allocation] = []
        for line in request.lines {
            let free = owned.map { (warehouse: $0, units: spendable(RowKey(sku: line.sku, warehouse: $0), in: ledger)) }
            if request.allowSplit {
                var remaining = line.quantity
                for (warehouse, units) in free where remaining > 0 && units > 0 {
                    let take = min(remaining, units)
                    allocations.append(Allocation(sku: line.sku, warehouse: warehouse, quantity: take))
                    remaining -= take
                }
                if remaining > 0 { return nil }
            } else {
                guard let (warehouse, _) = free.first(where: { $0.units >= line.quantity }) else { return nil }
                allocations.append(Allocation(sku: line.sku, warehouse: warehouse, quantity: line.quantity))
            }
        }
        let sequence = nextSequence
        let grant = LocalGrant(node: node, epoch: epoch, sequence: sequence, term: term)
        let hold = Hold(
            reservationId: request.reservationId, orderId: request.orderId, region: request.region, allocations: allocations,
            ttlMs: request.ttlMs, allowSplit: request.allowSplit, path: .local, token: grant.token, createdAtMs: timeMs,
            expiresAtMs: timeMs + request.ttlMs, status: .held, finishedAtMs: 0, local: grant)
        record(.hold(sequence: sequence, hold))
        return .reservation(hold, created: true)
    }

    /// The answer to a reserve whose id is a provisional hold here: the same hold for the same
    /// body (a replay), else a conflict. Nil when the id is not one of them.
    public func replay(_ request: ReserveRequest) -> Outcome? {
        guard let entry = entries[request.reservationId] else { return nil }
        return entry.hold.answers(request)
            ? .reservation(entry.hold, created: false)
            : .rejected(StockadeError(.idempotencyConflict, "reservation \(request.reservationId) exists with a different body"))
    }

    /// Confirms, releases or extends a provisional hold under the ledger's own rule, at `timeMs`;
    /// `expiryTimeMs` nil means the node cannot tell whether the hold is past its expiry, and it
    /// is taken as not. Nil when the id is not a provisional hold here. A hold already handed over
    /// is the ledger's to change: the caller is told to retry once it is reflected.
    public mutating func step(
        _ id: ReservationID, _ action: HoldAction, timeMs: Int64, expiryTimeMs: Int64?, limits: Limits
    ) -> Outcome? {
        guard let entry = entries[id] else { return nil }
        guard isLocal(entry) else {
            return .rejected(
                StockadeError(.unavailable, "provisional reservation \(id) is being reconciled into the ledger; retry shortly"))
        }
        // Never earlier than the hold's own creation: local times do not go back within one hold
        // (the expiry time is the node's time less a grace).
        let time = max(expiryTimeMs ?? min(timeMs, entry.hold.expiresAtMs - 1), entry.hold.createdAtMs)
        let step = entry.hold.step(action, timeMs: time, limits: limits)
        if step.hold != entry.hold {
            record(.hold(sequence: nextSequence, step.hold))
        }
        if let error = step.error { return .rejected(error) }
        return .reservation(step.hold, created: false)
    }

    /// Expires the provisional holds still local and due by `timeMs`, at most `limit`.
    public mutating func expireDue(timeMs: Int64, limit: Int) -> Int {
        var due: [Hold] = []
        for entry in entries.values where isLocal(entry) && entry.hold.status == .held && entry.hold.expiresAtMs <= timeMs {
            due.append(entry.hold)
        }
        due.sort { ($0.expiresAtMs, $0.token) < ($1.expiresAtMs, $1.token) }
        for hold in due.prefix(limit) {
            var expired = hold
            expired.status = .expired
            expired.finishedAtMs = timeMs
            record(.hold(sequence: nextSequence, expired))
        }
        return min(due.count, limit)
    }

    // MARK: - Reconciling

    /// Whether records wait to be replayed: holds not yet handed over, or returns.
    public var hasUnreplayed: Bool { !entries.isEmpty || !returns.isEmpty }

    /// The next batch to replay: every record after what the ledger reflects, up to a sequence,
    /// with each hold as it stands now, at most `limits.local.reconcileHoldsMax` holds and about
    /// `limits.logEntryBytesMax` bytes. Handing it over (a durable record) freezes those holds here.
    public mutating func nextBatch(limits: Limits) -> LocalReconcile? {
        guard let epoch else { return nil }
        let waiting = entries.values.sorted { $0.grantSequence < $1.grantSequence }
        guard !waiting.isEmpty || !returns.isEmpty else { return nil }
        var holds: [Hold] = []
        var bytes = 64
        var through = reflectedThrough
        for entry in waiting {
            var writer = ByteWriter(capacity: 256)
            writer.write(entry.hold)
            if !holds.isEmpty && (holds.count == limits.local.reconcileHoldsMax || bytes + writer.bytes.count > limits.logEntryBytesMax / 2) {
                break
            }
            holds.append(entry.hold)
            bytes += writer.bytes.count
            through = entry.grantSequence
        }
        // Everything written so far when all holds fit (the later records of included holds, returns).
        if holds.count == waiting.count { through = nextSequence - 1 }
        let returned = returns.filter { $0.sequence <= through }.flatMap { item in
            item.allocations.map { LocalReturn(sequence: item.sequence, allocation: $0) }
        }
        guard through > reflectedThrough else { return nil }
        if through > handedOverThrough { record(.handover(throughSequence: through)) }
        return LocalReconcile(node: node, epoch: epoch, throughSequence: through, holds: holds, returns: returned)
    }

    /// Gives back units of a row this node holds beyond what it should (a lowered or removed
    /// policy): a record, replayed like the holds.
    public mutating func giveBack(_ allocations: [Allocation]) {
        guard !allocations.isEmpty else { return }
        record(.returned(sequence: nextSequence, allocations))
    }
}

extension LocalRecord {
    /// The local log's binary form. Tags are stable: never renumber one, only add.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 192)
        switch self {
        case .opened(let nonce):
            writer.write(UInt8(1))
            writer.write(nonce)
        case .epoch(let epoch):
            writer.write(UInt8(2))
            writer.write(epoch)
        case .hold(let sequence, let hold):
            writer.write(UInt8(3))
            writer.write(sequence)
            writer.write(hold)
        case .returned(let sequence, let allocations):
            writer.write(UInt8(4))
            writer.write(sequence)
            writer.write(allocations)
        case .handover(let through):
            writer.write(UInt8(5))
            writer.write(through)
        case .resolved(let hold, let result):
            writer.write(UInt8(6))
            writer.write(hold)
            writer.write(result.rawValue)
        case .damaged:
            writer.write(UInt8(7))
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8], limits: Limits) throws {
        var reader = ByteReader(bytes)
        switch try reader.readUInt8() {
        case 1: self = .opened(nonce: try reader.readUInt64())
        case 2: self = .epoch(try reader.readUInt64())
        case 3: self = .hold(sequence: try reader.readUInt64(), try reader.readHold(limits: limits))
        case 4: self = .returned(sequence: try reader.readUInt64(), try reader.readAllocations(limits: limits))
        case 5: self = .handover(throughSequence: try reader.readUInt64())
        case 6:
            let hold = try reader.readHold(limits: limits)
            guard let result = HoldReplayResult(rawValue: try reader.readUInt8()) else {
                throw ByteReader.Failure(description: "unknown replay result")
            }
            self = .resolved(hold, result)
        case 7: self = .damaged
        case let tag: throw ByteReader.Failure(description: "unknown local record tag \(tag)")
        }
        guard reader.isAtEnd else { throw ByteReader.Failure(description: "trailing bytes after a local record") }
    }
}
