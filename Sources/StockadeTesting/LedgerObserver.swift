import Ledger
import StockadeCore

/// Follows a ledger through a history and checks, after every step, the four invariants:
/// no oversell, no lost acknowledgement, idempotency, and (at the end) determinism.
public struct LedgerObserver {
    /// Every hold that was ever answered as granted, as last seen.
    public private(set) var acknowledged: [ReservationID: Hold] = [:]
    public private(set) var requests: [ReservationID: ReserveRequest] = [:]
    public private(set) var log: [TimedCommand] = []
    public private(set) var grants = 0
    /// Cache holds that became ledger holds, and redeliveries recognised as such.
    public private(set) var cacheApplied = 0
    public private(set) var cacheDuplicates = 0
    /// Provisional holds replayed into the ledger, and replays recognised as such.
    public private(set) var localApplied = 0
    public private(set) var localDuplicates = 0

    public init() {}

    /// Applies `command` to `ledger` and returns every violation the step revealed.
    public mutating func step(_ ledger: inout Ledger, _ command: TimedCommand) -> [String] {
        log.append(command)
        var existedBefore = false
        if case .reserve(let request) = command.command { existedBefore = ledger.hold(request.reservationId) != nil }
        let nodeReservesBefore = ledger.allotments.filter { $0.key.holder.node != nil }
        let progressBefore = ledger.localProgress
        let outcome = ledger.apply(command, index: LogIndex(log.count))
        var problems = ledger.invariantViolations()
        // A node's local reserve shrinks only by that node's own replayed records.
        var shrinker: UInt64?
        if case .reconcileLocal(let batch) = command.command { shrinker = batch.node }
        for (key, before) in nodeReservesBefore where key.holder.node != shrinker {
            let after = ledger.allotments[key]?.quantity ?? 0
            if after < before.quantity { problems.append("reserve \(key) shrank \(before.quantity) → \(after) by \(command.command.name)") }
        }
        if case .reconcileLocal(let batch) = command.command {
            problems += checkReconcile(batch, outcome, ledger, takenInBefore: progressBefore[batch.node]?.sequence ?? 0)
        }
        if case .reserve(let request) = command.command {
            if case .reservation(let hold, let created) = outcome {
                if created {
                    if existedBefore { problems.append("reservation \(request.reservationId) granted twice") }
                    grants += 1
                    requests[request.reservationId] = request
                    if hold.lines != request.lines { problems.append("grant of \(request.reservationId) answers other lines") }
                } else if let first = requests[request.reservationId], first != request {
                    problems.append("replay of \(request.reservationId) with another body was granted")
                }
                acknowledged[request.reservationId] = hold
            } else if case .rejected(let error, _) = outcome, error.code == .idempotencyConflict {
                if requests[request.reservationId] == request {
                    problems.append("identical replay of \(request.reservationId) called a conflict")
                }
            }
        }
        if case .applyAllotmentHolds(let batch) = command.command {
            if case .cacheHoldsApplied(let results) = outcome {
                if results.count != batch.count { problems.append("\(batch.count) cache holds but \(results.count) results") }
                for (cacheHold, result) in zip(batch, results) {
                    let now = ledger.hold(cacheHold.reservationId)
                    switch result {
                    case .applied, .duplicate:
                        if now?.token != cacheHold.token || now?.path != .cache || now?.allocations != cacheHold.allocations {
                            problems.append("cache hold \(cacheHold.reservationId) \(result.name) but not in the ledger as sent")
                        }
                        if result == .applied {
                            cacheApplied += 1
                            requests[cacheHold.reservationId] = cacheHold.request
                            if let now { acknowledged[cacheHold.reservationId] = now }
                        } else {
                            cacheDuplicates += 1
                        }
                    case .superseded:
                        if now == nil || now?.token == cacheHold.token {
                            problems.append("cache hold \(cacheHold.reservationId) superseded by nothing")
                        } else if let now, now.status == .held && now.expiresAtMs < cacheHold.expiresAtMs {
                            problems.append("cache hold \(cacheHold.reservationId) superseded but its later expiry was not carried")
                        }
                    case .conflict:
                        if !ledger.conflicts(of: cacheHold.reservationId).contains(where: { $0.replayed.token == cacheHold.token }) {
                            problems.append("cache hold \(cacheHold.reservationId) in conflict but none recorded")
                        }
                    case .refused:
                        break
                    }
                }
            } else {
                problems.append("apply_allotment_holds answered \(outcome)")
            }
        }
        if case .beginLocalEpoch(let node, let nonce) = command.command {
            if case .localEpoch(_, let progress) = outcome {
                if progress.nonce != nonce || ledger.localProgress[node] != progress {
                    problems.append("local epoch of node \(node) answered \(progress) but is \(String(describing: ledger.localProgress[node]))")
                }
            } else if case .rejected = outcome, (1...Ledger.localNodeMax).contains(node) {
                problems.append("local epoch of node \(node) refused: \(outcome)")
            }
        }
        // No lost acknowledgement: every granted hold is still there (unless purged after retention),
        // with the same allocations and token, and its status only ever moves held → final.
        for (id, seen) in acknowledged {
            guard let now = ledger.hold(id) else {
                if !(seen.status.isFinished || command.timeMs >= seen.expiresAtMs) {
                    problems.append("acknowledged hold \(id) vanished while held")
                }
                continue
            }
            if now.token != seen.token {
                // A purged id may be granted again; that is a new hold.
                if seen.status == .held && command.timeMs < seen.expiresAtMs {
                    problems.append("hold \(id) replaced while held")
                }
                acknowledged[id] = now
                continue
            }
            if now.allocations != seen.allocations { problems.append("hold \(id) changed allocations") }
            if seen.status.isFinished && now.status != seen.status {
                problems.append("hold \(id) moved from \(seen.status.name) to \(now.status.name)")
            }
            acknowledged[id] = now
        }
        return problems
    }

    private mutating func checkReconcile(_ batch: LocalReconcile, _ outcome: Outcome, _ ledger: Ledger, takenInBefore: UInt64) -> [String] {
        guard case .localReconciled(let duplicate, let results) = outcome else {
            if case .rejected(let error, _) = outcome, error.code == .invalidState || error.code == .invalidRequest { return [] }
            return ["reconcile_local answered \(outcome)"]
        }
        if duplicate { return results.isEmpty ? [] : ["a duplicate reconcile batch has results"] }
        var problems: [String] = []
        if results.count != batch.holds.count { problems.append("\(batch.holds.count) local holds but \(results.count) results") }
        if ledger.localProgress[batch.node]?.sequence != batch.throughSequence {
            problems.append("reconcile of node \(batch.node) did not advance its progress to \(batch.throughSequence)")
        }
        for (hold, result) in zip(batch.holds, results) {
            let now = ledger.hold(hold.reservationId)
            switch result {
            case .applied:
                localApplied += 1
                if now != hold { problems.append("local hold \(hold.reservationId) applied but stored as \(String(describing: now))") }
                requests[hold.reservationId] = hold.request
                if let now { acknowledged[hold.reservationId] = now }
            case .duplicate:
                localDuplicates += 1
                if now?.token != hold.token && (hold.local?.sequence ?? 0) > takenInBefore {
                    problems.append("local hold \(hold.reservationId) duplicate of nothing")
                }
            case .superseded:
                if now == nil || now?.token == hold.token {
                    problems.append("local hold \(hold.reservationId) superseded by nothing")
                } else if let now, hold.status == .confirmed && now.status != .confirmed {
                    problems.append("local hold \(hold.reservationId) was confirmed but the ledger's hold is \(now.status.name)")
                } else if let now, hold.status == .released && now.status == .confirmed {
                    problems.append("local hold \(hold.reservationId) was released but the ledger's hold is confirmed")
                }
            case .conflict:
                if !ledger.conflicts(of: hold.reservationId).contains(where: { $0.replayed.token == hold.token }) {
                    problems.append("local hold \(hold.reservationId) in conflict but none recorded")
                }
            case .refused:
                break
            }
        }
        return problems
    }
}
