import StockadeCore

extension Ledger {
    static func notFound(_ id: ReservationID) -> Outcome {
        .rejected(StockadeError(.notFound, "no reservation \(id)"))
    }


    mutating func confirm(_ id: ReservationID, timeMs: Int64) -> Outcome { step(id, .confirm, timeMs: timeMs) }

    mutating func release(_ id: ReservationID, timeMs: Int64) -> Outcome { step(id, .release, timeMs: timeMs) }

    mutating func extend(_ id: ReservationID, ttlMs: Int64, timeMs: Int64) -> Outcome {
        step(id, .extend(ttlMs: ttlMs), timeMs: timeMs)
    }

    /// Applies the lifecycle rule (`Hold.step`) and moves the stock it implies.
    private mutating func step(_ id: ReservationID, _ action: HoldAction, timeMs: Int64) -> Outcome {
        guard let hold = holds[id] else { return Self.notFound(id) }
        let step = hold.step(action, timeMs: timeMs, limits: limits)
        var next = step.hold
        if hold.status == .held && next.status.isFinished {
            next = finish(hold, as: next.status, timeMs: timeMs)
        } else if next.expiresAtMs != hold.expiresAtMs {
            reschedule(next)
        }
        if let error = step.error { return .rejected(error) }
        return .reservation(next, created: false)
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

    /// Stores a held hold's new expiry and queues it (the old queue entry is skipped when popped).
    mutating func reschedule(_ hold: Hold) {
        holds.update(hold)
        expiryQueue.insert(TimedEntry(timeMs: hold.expiresAtMs, sequence: holds.sequence(of: hold.reservationId)!))
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

/// What a client may do to a hold after it is granted.
public enum HoldAction: Hashable, Sendable {
    case confirm
    case release
    /// Push the expiry to at least the action's time + `ttlMs`.
    case extend(ttlMs: Int64)

    public var name: String {
        switch self {
        case .confirm: "confirm"
        case .release: "release"
        case .extend: "extend"
        }
    }
}

extension Hold {
    /// The lifecycle rule, in one place for the ledger and a node's provisional holds: the hold
    /// after `action` at `timeMs`, and the error to answer if the action is refused (a hold found
    /// past its expiry is expired even then). `held → confirmed | released | expired`; a repeated
    /// confirm, release or extend changes nothing and succeeds.
    public func step(_ action: HoldAction, timeMs: Int64, limits: Limits) -> (hold: Hold, error: StockadeError?) {
        if case .extend(let ttlMs) = action, let error = Validation.ttl(milliseconds: ttlMs, limits: limits) {
            return (self, error)
        }
        func refused(_ hold: Hold) -> (hold: Hold, error: StockadeError?) {
            (hold, StockadeError(.invalidState, "cannot \(action.name) reservation \(reservationId): it is \(hold.status.name)"))
        }
        func finished(_ status: HoldStatus) -> Hold {
            var next = self
            next.status = status
            next.finishedAtMs = timeMs
            return next
        }
        switch (status, action) {
        case (.confirmed, .confirm):
            return (self, nil)
        case (.released, .release), (.expired, .release):
            // The stock is already back; releasing again changes nothing.
            return (self, nil)
        case (.held, _) where timeMs >= expiresAtMs:
            let expired = finished(.expired)
            if case .release = action { return (expired, nil) }
            return refused(expired)
        case (.held, .confirm):
            return (finished(.confirmed), nil)
        case (.held, .release):
            return (finished(.released), nil)
        case (.held, .extend(let ttlMs)):
            // Extending never shortens a hold, so a repeated extend is harmless.
            var next = self
            next.expiresAtMs = Swift.max(expiresAtMs, timeMs + ttlMs)
            return (next, nil)
        default:
            return refused(self)
        }
    }
}
