import StockadeCore

extension Ledger {
    static func notFound(_ id: ReservationID) -> Outcome {
        .rejected(StockadeError(.notFound, "no reservation \(id)"))
    }

    static func invalidState(_ hold: Hold, action: String) -> Outcome {
        .rejected(StockadeError(.invalidState, "cannot \(action) reservation \(hold.reservationId): it is \(hold.status.name)"))
    }

    mutating func confirm(_ id: ReservationID, timeMs: Int64) -> Outcome {
        guard let hold = holds[id] else { return Self.notFound(id) }
        switch hold.status {
        case .confirmed:
            return .reservation(hold, created: false)
        case .released, .expired:
            return Self.invalidState(hold, action: "confirm")
        case .held:
            if timeMs >= hold.expiresAtMs {
                return Self.invalidState(finish(hold, as: .expired, timeMs: timeMs), action: "confirm")
            }
            return .reservation(finish(hold, as: .confirmed, timeMs: timeMs), created: false)
        }
    }

    mutating func release(_ id: ReservationID, timeMs: Int64) -> Outcome {
        guard let hold = holds[id] else { return Self.notFound(id) }
        switch hold.status {
        case .released, .expired:
            // The stock is already back; releasing again changes nothing.
            return .reservation(hold, created: false)
        case .confirmed:
            return Self.invalidState(hold, action: "release")
        case .held:
            let status: HoldStatus = timeMs >= hold.expiresAtMs ? .expired : .released
            return .reservation(finish(hold, as: status, timeMs: timeMs), created: false)
        }
    }

    mutating func extend(_ id: ReservationID, ttlMs: Int64, timeMs: Int64) -> Outcome {
        guard var hold = holds[id] else { return Self.notFound(id) }
        if let error = Validation.ttl(milliseconds: ttlMs, limits: limits) { return .rejected(error) }
        guard hold.status == .held else { return Self.invalidState(hold, action: "extend") }
        if timeMs >= hold.expiresAtMs {
            return Self.invalidState(finish(hold, as: .expired, timeMs: timeMs), action: "extend")
        }
        // Extending never shortens a hold, so a repeated extend is harmless.
        let expiresAt = max(hold.expiresAtMs, timeMs + ttlMs)
        if expiresAt != hold.expiresAtMs {
            hold.expiresAtMs = expiresAt
            holds.update(hold)
            expiryQueue.insert(TimedEntry(timeMs: expiresAt, sequence: holds.sequence(of: id)!))
        }
        return .reservation(hold, created: false)
    }

    mutating func expireDue(timeMs: Int64) -> Outcome {
        var expired = 0
        while expired < limits.expireBatchMax, let next = expiryQueue.min, next.timeMs <= timeMs {
            expiryQueue.removeMin()
            // Skip entries left behind by an extend or a finish.
            guard let hold = holds.hold(sequence: next.sequence), hold.status == .held, hold.expiresAtMs == next.timeMs
            else { continue }
            finish(hold, as: .expired, timeMs: timeMs)
            expired += 1
        }
        var purged = 0
        while purged < limits.expireBatchMax, let next = finishedQueue.min,
            next.timeMs + limits.finishedRetentionMs <= timeMs
        {
            finishedQueue.removeMin()
            guard let hold = holds.hold(sequence: next.sequence), hold.status.isFinished else { continue }
            holds.remove(hold.reservationId)
            purged += 1
        }
        return .expired(count: expired, purged: purged)
    }

    /// Moves a held hold to a final status and returns its stock (or sells it, when confirmed).
    @discardableResult
    mutating func finish(_ hold: Hold, as status: HoldStatus, timeMs: Int64) -> Hold {
        precondition(hold.status == .held && status.isFinished, "illegal transition \(hold.status) → \(status)")
        move(hold.allocations, heldDelta: -1, soldDelta: status == .confirmed ? 1 : 0)
        var finished = hold
        finished.status = status
        finished.finishedAtMs = timeMs
        holds.update(finished)
        activeHoldCount -= 1
        finishedQueue.insert(TimedEntry(timeMs: timeMs, sequence: holds.sequence(of: hold.reservationId)!))
        return finished
    }
}
