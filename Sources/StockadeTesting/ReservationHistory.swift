import Ledger
import StockadeCore

/// Every answer clients got about one reservation id, from any node on any path, kept so the
/// checker can hold them to one serial history of the hold's lifecycle (DESIGN.md, invariant 5).
public struct ReservationHistory: Sendable {
    /// A grant (`created: true`) a client was given.
    public struct Grant: Sendable {
        public var hold: Hold
        public var call: Int
        public var node: UInt64
    }

    public private(set) var grants: [Grant] = []
    /// Tokens whose hold a client was told is confirmed (a confirm answered `confirmed`).
    public private(set) var confirmed: Set<FencingToken> = []
    /// Tokens whose hold a client was told is released (a release answered `released`).
    public private(set) var released: Set<FencingToken> = []
    /// Per token, the latest the hold can finish by what any answer or applied state showed.
    public private(set) var bounds: [FencingToken: AcknowledgedHold] = [:]

    public init() {}

    /// Takes in one answer; returns a violation when the answer alone breaks the history.
    mutating func take(call: Int, node: UInt64, command: Command, outcome: Outcome) -> String? {
        guard case .reservation(let hold, let created) = outcome else { return nil }
        follow(hold)
        switch command {
        case .reserve:
            guard created else { return nil }
            // One grant per id on a node's own path: a second while the first is still its own
            // (same node, same local log) is a second hold for one id.
            if let local = hold.local,
                let earlier = grants.first(where: { $0.hold.local?.node == local.node && $0.hold.local?.epoch == local.epoch })
            {
                grants.append(Grant(hold: hold, call: call, node: node))
                return "reservation \(hold.reservationId) granted twice by n\(local.node)'s local log: tokens \(earlier.hold.token.rawValue) and \(hold.token.rawValue) (calls \(earlier.call), \(call))"
            }
            grants.append(Grant(hold: hold, call: call, node: node))
        case .confirm where hold.status == .confirmed:
            confirmed.insert(hold.token)
        case .release where hold.status == .released:
            released.insert(hold.token)
        default:
            break
        }
        return nil
    }

    /// A state of the hold a replica applied (or any answer showed): moves the bound on when the
    /// hold may be purged.
    mutating func follow(_ hold: Hold) {
        bounds[hold.token] = AcknowledgedHold(hold)
    }

    /// Checks the history against the converged ledger. `purgeable` says whether a hold that
    /// finishes by a time may have been purged after retention.
    func violations(_ id: ReservationID, in ledger: Ledger, purgeable: (Int64) -> Bool) -> [String] {
        var found: [String] = []
        let final = ledger.hold(id)
        let conflicted = Set(ledger.conflicts(of: id).map(\.replayed.token))
        for grant in grants {
            let token = grant.hold.token
            let mayBePurged = purgeable(bounds[token]?.finishesByMs ?? grant.hold.expiresAtMs)
            if let final, final.token == token {
                if final.allocations != grant.hold.allocations { found.append("reservation \(id) has other allocations than granted") }
                continue
            }
            if conflicted.contains(token) { continue }
            let provisional = grant.hold.path != .quorum
            if provisional, let final, final.answers(grant.hold.request) {
                // Merged into the ledger's hold: what the client did to the provisional hold
                // carries onto it.
                if confirmed.contains(token) && final.status != .confirmed && !mayBePurged {
                    found.append(
                        "reservation \(id): confirm acknowledged on \(grant.hold.path.name) hold \(token.rawValue), but the ledger's hold \(final.token.rawValue) is \(final.status.name)")
                }
                if released.contains(token) && final.status == .confirmed && confirmed.isEmpty {
                    found.append("reservation \(id): release acknowledged on \(grant.hold.path.name) hold \(token.rawValue), but the ledger's hold is confirmed")
                }
                continue
            }
            if mayBePurged { continue }
            let now = final.map { "the ledger holds token \($0.token.rawValue) (\($0.path.name), \($0.status.name))" } ?? "the ledger has no hold"
            found.append("acknowledged reservation \(id) (\(grant.hold.path.name) token \(token.rawValue), call \(grant.call) on n\(grant.node)) lost: \(now)")
        }
        if let final {
            if confirmed.contains(final.token) && final.status != .confirmed {
                found.append("reservation \(id): confirm acknowledged but it ends \(final.status.name)")
            }
            if released.contains(final.token) && final.status == .confirmed {
                found.append("reservation \(id): release acknowledged but it ends confirmed")
            }
        }
        return found
    }
}

/// The checks of refusals that claim something about the state: `not_found` (no hold with the id)
/// and `insufficient_stock` (the request cannot be planned). Each must have been true of the
/// committed state at some point while the call was outstanding, or the node guessed from state
/// it could not answer from.
struct RefusalWitness {
    enum Claim {
        case absent(ReservationID)
        case short(ReserveRequest)
    }

    var claims: [Int: Claim] = [:]
    /// Calls whose claim held at some committed state while they were outstanding.
    var witnessed: Set<Int> = []

    mutating func open(_ call: Int, _ command: Command, in ledger: Ledger?) {
        switch command {
        case .confirm(let id), .release(let id), .extend(let id, _): claims[call] = .absent(id)
        case .reserve(let request): claims[call] = .short(request)
        default: return
        }
        if let ledger { observe(ledger, only: call) }
    }

    /// Notes, for every outstanding call, whether its claim holds in `ledger`.
    mutating func observe(_ ledger: Ledger, only: Int? = nil) {
        for (call, claim) in claims where !witnessed.contains(call) && (only == nil || only == call) {
            switch claim {
            case .absent(let id):
                if ledger.hold(id) == nil { witnessed.insert(call) }
            case .short(let request):
                if case .failure(let rejected) = ledger.plan(request), rejected.error.code == .insufficientStock { witnessed.insert(call) }
            }
        }
    }

    /// Closes the call; returns a violation if it was refused with a claim never true meanwhile.
    mutating func close(_ call: Int, _ outcome: Outcome) -> String? {
        guard let claim = claims.removeValue(forKey: call) else { return nil }
        let seen = witnessed.remove(call) != nil
        guard case .rejected(let error, _) = outcome, !seen else { return nil }
        switch (claim, error.code) {
        case (.absent(let id), .notFound):
            return "call \(call) answered not_found for \(id), which was in the committed state all the while"
        case (.short(let request), .insufficientStock):
            return "reserve \(request.reservationId) (call \(call)) answered insufficient_stock, never true of the committed state while it waited"
        default:
            return nil
        }
    }
}

extension Command {
    /// The reservation id a client's call is about, if any.
    var reservationID: ReservationID? {
        switch self {
        case .reserve(let request): request.reservationId
        case .confirm(let id), .release(let id), .extend(let id, _): id
        default: nil
        }
    }
}
