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

    public init() {}

    /// Applies `command` to `ledger` and returns every violation the step revealed.
    public mutating func step(_ ledger: inout Ledger, _ command: TimedCommand) -> [String] {
        log.append(command)
        var existedBefore = false
        if case .reserve(let request) = command.command { existedBefore = ledger.hold(request.reservationId) != nil }
        let outcome = ledger.apply(command, index: LogIndex(log.count))
        var problems = ledger.invariantViolations()
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
                        }
                    case .refused:
                        break
                    }
                }
            } else {
                problems.append("apply_allotment_holds answered \(outcome)")
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
}
