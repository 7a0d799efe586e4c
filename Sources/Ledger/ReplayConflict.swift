import StockadeCore

/// A hold granted off the quorum path (a node's provisional hold, or a cache hold) that the ledger
/// could not merge with the hold it already has under the same reservation id: the requests
/// differ, or the two lifecycles contradict each other (confirmed on one side, released or expired
/// on the other). The ledger's hold stands; the conflict is kept so a person can see it (the hold
/// read, the audit, a metric), never dropped.
public struct ReplayConflict: Hashable, Sendable {
    public enum Reason: UInt8, Sendable, CaseIterable {
        /// The same id was granted for another request.
        case otherRequest = 0
        /// Confirmed off the quorum path; the ledger's hold was released or had expired.
        case confirmedButFinished = 1
        /// Released off the quorum path; the ledger's hold was confirmed.
        case releasedButConfirmed = 2

        public var name: String {
            switch self {
            case .otherRequest: "other_request"
            case .confirmedButFinished: "confirmed_but_finished"
            case .releasedButConfirmed: "released_but_confirmed"
            }
        }

        public var message: String {
            switch self {
            case .otherRequest: "the id was also granted for another request"
            case .confirmedButFinished: "confirmed off the quorum path, but the ledger's hold had already finished"
            case .releasedButConfirmed: "released off the quorum path, but the ledger's hold was confirmed"
            }
        }
    }

    public var reason: Reason
    /// The token of the ledger's hold, which stands.
    public var ledgerToken: FencingToken
    /// The hold as it was replayed.
    public var replayed: Hold
    /// The log position and command time at which the ledger found it.
    public var index: LogIndex
    public var timeMs: Int64

    public init(reason: Reason, ledgerToken: FencingToken, replayed: Hold, index: LogIndex, timeMs: Int64) {
        self.reason = reason
        self.ledgerToken = ledgerToken
        self.replayed = replayed
        self.index = index
        self.timeMs = timeMs
    }
}

extension Ledger {
    /// The conflicts recorded for a reservation id, oldest first.
    public func conflicts(of id: ReservationID) -> [ReplayConflict] {
        replayConflicts.filter { $0.replayed.reservationId == id }
    }

    /// A hold granted off the quorum path whose id the ledger already holds under another token
    /// (docs/local-fallback.md, "A reservation id granted on both sides"). The ledger's hold
    /// stands. Where both answer the same request, what the client did to the replayed hold
    /// carries onto it: a confirm confirms it, a release releases it, a later expiry extends it.
    /// Where they do not, or the lifecycles contradict, the conflict is recorded. Deterministic:
    /// it reads only the two holds and the command's time.
    mutating func mergeReplayed(_ replayed: Hold, into existing: Hold, index: LogIndex, timeMs: Int64) -> HoldReplayResult {
        precondition(existing.reservationId == replayed.reservationId && existing.token != replayed.token)
        func conflict(_ reason: ReplayConflict.Reason) -> HoldReplayResult {
            recordConflict(ReplayConflict(reason: reason, ledgerToken: existing.token, replayed: replayed, index: index, timeMs: timeMs))
            return .conflict
        }
        guard existing.answers(replayed.request) else { return conflict(.otherRequest) }
        switch (replayed.status, existing.status) {
        case (.confirmed, .held):
            finish(existing, as: .confirmed, timeMs: Swift.max(timeMs, existing.createdAtMs))
        case (.released, .held):
            finish(existing, as: .released, timeMs: Swift.max(timeMs, existing.createdAtMs))
        case (.held, .held):
            // The client was told the replayed hold's expiry; the later of the two stands.
            if replayed.expiresAtMs > existing.expiresAtMs {
                var extended = existing
                extended.expiresAtMs = replayed.expiresAtMs
                reschedule(extended)
            }
        case (.confirmed, .released), (.confirmed, .expired):
            return conflict(.confirmedButFinished)
        case (.released, .confirmed):
            return conflict(.releasedButConfirmed)
        case (.expired, _), (.held, _), (.confirmed, .confirmed), (.released, .released), (.released, .expired):
            // Nothing a client was told is lost: an expiry off the quorum path answered nobody,
            // and the rest agree with the ledger's hold.
            break
        }
        return .superseded
    }

    /// Keeps a conflict (once per replayed token), dropping the oldest past `limits.replayConflictsKept`.
    mutating func recordConflict(_ conflict: ReplayConflict) {
        guard !replayConflicts.contains(where: { $0.replayed.token == conflict.replayed.token && $0.replayed.reservationId == conflict.replayed.reservationId })
        else { return }
        replayConflicts.append(conflict)
        if replayConflicts.count > limits.replayConflictsKept { replayConflicts.removeFirst(replayConflicts.count - limits.replayConflictsKept) }
    }
}

extension ByteWriter {
    mutating func write(_ conflict: ReplayConflict) {
        write(conflict.reason.rawValue)
        write(conflict.ledgerToken.rawValue)
        write(conflict.index)
        write(conflict.timeMs)
        write(conflict.replayed)
    }
}

extension ByteReader {
    mutating func readReplayConflict(limits: Limits) throws -> ReplayConflict {
        guard let reason = ReplayConflict.Reason(rawValue: try readUInt8()) else {
            throw ByteReader.Failure(description: "unknown replay conflict reason")
        }
        let token = FencingToken(try readUInt64())
        let index = try readUInt64()
        let timeMs = try readInt64()
        return ReplayConflict(reason: reason, ledgerToken: token, replayed: try readHold(limits: limits), index: index, timeMs: timeMs)
    }
}
