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
