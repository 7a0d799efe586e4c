import Ledger
import StockadeCore

/// The hot path's decisions, pure: which requests go to the gate and with what, what a gate reply
/// means, how drained records are batched and settled, and when a row is refilled. The node's
/// shells (`HotPath`, `HotStockService`) and the simulator run these same functions; only the
/// waiting, the Redis connections and the counters differ.
public enum CacheDecisions {
    /// What the gate's reply (or the failure of its call) decides for one reservation.
    public enum Verdict: Sendable, Equatable {
        /// A grant (created) or the replay of one.
        case granted(Hold, created: Bool)
        /// The id exists in the cache with another body.
        case conflict
        /// A line the cache's allotments cannot cover: `available` is what it found.
        case short(SKU, available: Int64)
        /// Not the cache's to answer (a SKU no longer hot, a full backlog, a call that certainly
        /// did not run, an unreadable reply): the quorum path decides.
        case quorum
        /// The call may have run, and its answer is lost: the client must retry with the same id.
        case unknown(String)
    }

    /// The gate's verdict, and whether Redis answered sanely (nil: says nothing about Redis).
    public static func verdict(of result: Result<RedisValue, any Error>, for request: ReserveRequest) -> (Verdict, healthy: Bool?) {
        let reply: RedisValue
        do {
            reply = try result.get()
        } catch let error as RedisError {
            if error.certainlyNotRun { return (.quorum, false) }
            return (.unknown("the cache did not answer in time; retry with the same reservationId"), false)
        } catch {
            return (.quorum, nil)
        }
        guard let parts = reply.elements, let kind = parts.first?.string else { return (.quorum, false) }
        switch kind {
        case "granted", "replay":
            guard parts.count >= 2, let stored = parts[1].string, let hold = HotPath.hold(request, stored: stored) else {
                return (.unknown("the cache answer could not be read; retry with the same reservationId"), true)
            }
            return (.granted(hold, created: kind == "granted"), true)
        case "conflict":
            return (.conflict, true)
        case "short":
            let sku = SKU(parts.count > 1 ? parts[1].string ?? "" : "")
            return (.short(sku, available: parts.count > 2 ? parts[2].integer ?? 0 : 0), true)
        default:  // not_hot, backlog
            return (.quorum, true)
        }
    }

    /// The client's outcome for a verdict; nil: the quorum path decides. A short line is
    /// `insufficient_stock` only when `soldOut(sku)`: this node may answer from its applied state
    /// and the ledger has no units of the SKU outside the allotments either.
    public static func outcome(_ verdict: Verdict, for request: ReserveRequest, soldOut: (SKU) -> Bool) -> Outcome? {
        switch verdict {
        case .granted(let hold, let created):
            return .reservation(hold, created: created)
        case .conflict:
            return .rejected(StockadeError(.idempotencyConflict, "reservation \(request.reservationId) exists with a different body"))
        case .short(let sku, let available):
            guard soldOut(sku) else { return nil }
            let requested = request.lines.first { $0.sku == sku }?.quantity ?? 0
            return .rejected(
                StockadeError(.insufficientStock, "sku \(sku): requested \(requested), available \(available) in the cache"),
                detail: RejectionDetail(sku: sku, requested: requested, available: available))
        case .quorum:
            return nil
        case .unknown(let message):
            return .rejected(StockadeError(.outcomeUnknown, message))
        }
    }

    /// The gate plan for `request` from the applied state, or nil when the cache does not take it:
    /// an id the ledger knows, an invalid body, or a line that is not hot. Per line, the warehouses
    /// the cache holds allotments in, in the region's order.
    public static func plan(_ request: ReserveRequest, in ledger: borrowing Ledger) -> HotPath.GatePlan? {
        guard ledger.hold(request.reservationId) == nil, Validation.reserve(request, limits: ledger.limits) == nil,
            request.lines.allSatisfy({ ledger.hotSKUs.contains($0.sku) })
        else { return nil }
        let order = ledger.warehouseOrder(forRegion: request.region)
        return HotPath.GatePlan(
            lines: request.lines.map { line in
                (line, order.filter { ledger.allotments[AllotmentKey(sku: line.sku, warehouse: $0, holder: .cache)] != nil })
            })
    }

    /// Units of `sku` the ledger could still sell outside its allotments.
    public static func ledgerAvailable(_ sku: SKU, in ledger: borrowing Ledger) -> Int64 {
        (ledger.rows(of: sku) ?? []).reduce(Int64(0)) { $0 + max(0, $1.row.available) }
    }

    /// The keys and arguments of one gate script call deciding `requests` in order (with their
    /// plans and creation times).
    public static func gateScriptCall(
        _ requests: [(ReserveRequest, HotPath.GatePlan, createdAtMs: Int64)], limits: Limits.HotPath
    ) -> (keys: [String], arguments: RedisCommand) {
        GateBatcher.scriptCall(
            requests.map { HotPath.gateCall($0.0, plan: $0.1, createdAtMs: $0.createdAtMs) }, answerRetentionMs: limits.answerRetentionMs,
            backlogMax: limits.backlogRecordsMax)
    }

    // MARK: - The drain

    /// A decrement record as the consumer read it from the stream.
    public struct StreamEntry: Sendable, Equatable {
        public var id: String
        public var record: String?
    }

    /// The entries of an `XREADGROUP` stream reply or an `XAUTOCLAIM` entry list.
    public static func entries(_ value: RedisValue) -> [StreamEntry] {
        (value.elements ?? []).compactMap { entry in
            guard let parts = entry.elements, let id = parts.first?.string else { return nil }
            let fields = parts.count > 1 ? parts[1].elements ?? [] : []
            var record: String?
            var index = 0
            while index + 1 < fields.count {
                if fields[index].string == "h" { record = fields[index + 1].string }
                index += 2
            }
            return StreamEntry(id: id, record: record)
        }
    }

    /// Read entries cut into ledger batches (bounded in count and in bytes), and the entries that
    /// do not parse (dead letters).
    public static func batches(_ entries: [StreamEntry], limits: Limits) -> (batches: [[(StreamEntry, CacheHold)]], unreadable: [StreamEntry]) {
        var unreadable: [StreamEntry] = []
        var batches: [[(StreamEntry, CacheHold)]] = []
        var batch: [(StreamEntry, CacheHold)] = []
        var batchBytes = 0
        for entry in entries {
            guard let record = entry.record, let cacheHold = HotPath.cacheHold(record: record) else {
                unreadable.append(entry)
                continue
            }
            let size = record.utf8.count + 64
            if !batch.isEmpty && (batch.count >= limits.cacheHoldsBatchMax || batchBytes + size > limits.logEntryBytesMax / 2) {
                batches.append(batch)
                batch.removeAll()
                batchBytes = 0
            }
            batch.append((entry, cacheHold))
            batchBytes += size
        }
        if !batch.isEmpty { batches.append(batch) }
        return (batches, unreadable)
    }

    /// Whether a drained record is done with once the ledger answered it (acknowledged and
    /// deleted); false: the ledger refused it, and it goes to the dead letters.
    public static func settled(by result: HoldReplayResult) -> Bool {
        switch result {
        case .applied, .duplicate, .superseded, .conflict: true
        case .refused: false
        }
    }

    // MARK: - The coordinator

    /// Whether a hot row whose cache counter reads `counter` is refilled with a chunk of `chunk`.
    public static func refills(available: Int64, counter: Int64, chunk: Int64, limits: Limits.HotPath) -> Bool {
        available > 0 && counter < max(1, chunk * limits.lowWaterPercent / 100)
    }
}
