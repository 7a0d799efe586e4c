import Foundation
import Ledger
import StockadeCore

/// A hold as an answer or a read showed it: what the history checks compare. Built from a
/// `Hold` in the simulator and from the API's JSON for real processes, so one checker serves both.
public struct HoldView: Codable, Hashable, Sendable {
    public var reservationId: String
    public var orderId: String
    public var region: String
    /// The request's lines, `sku×quantity`, in request order.
    public var lines: [String]
    /// `sku@warehouse×quantity`, sorted.
    public var allocations: [String]
    public var token: UInt64
    /// quorum, cache or local.
    public var path: String
    /// held, confirmed, released or expired.
    public var status: String
    public var expiresAtMs: Int64
    public var finishedAtMs: Int64?
    public var localNode: UInt64?
    public var localEpoch: UInt64?

    public init(
        reservationId: String, orderId: String, region: String, lines: [String], allocations: [String], token: UInt64,
        path: String, status: String, expiresAtMs: Int64, finishedAtMs: Int64?, localNode: UInt64? = nil, localEpoch: UInt64? = nil
    ) {
        self.reservationId = reservationId
        self.orderId = orderId
        self.region = region
        self.lines = lines
        self.allocations = allocations.sorted()
        self.token = token
        self.path = path
        self.status = status
        self.expiresAtMs = expiresAtMs
        self.finishedAtMs = finishedAtMs
        self.localNode = localNode
        self.localEpoch = localEpoch
    }

    public init(_ hold: Hold) {
        self.init(
            reservationId: hold.reservationId.rawValue, orderId: hold.orderId, region: hold.region,
            lines: hold.lines.map { "\($0.sku.rawValue)×\($0.quantity)" },
            allocations: hold.allocations.map { "\($0.sku.rawValue)@\($0.warehouse.rawValue)×\($0.quantity)" }, token: hold.token.rawValue,
            path: hold.path.name, status: hold.status.name, expiresAtMs: hold.expiresAtMs,
            finishedAtMs: hold.status.isFinished ? hold.finishedAtMs : nil, localNode: hold.local?.node, localEpoch: hold.local?.epoch)
    }

    /// A hold in the API's JSON (a reservation read, or a grant, confirm, release or extend answer),
    /// with the tokens of conflicts the read lists.
    public init?(json: [String: Any]) {
        func int64(_ value: Any?) -> Int64? { (value as? NSNumber)?.int64Value }
        guard let id = json["reservationId"] as? String, let token = (json["token"] as? NSNumber)?.uint64Value,
            let path = json["path"] as? String, let status = json["status"] as? String, let expiresAt = int64(json["expiresAt"])
        else { return nil }
        let lines = (json["lines"] as? [[String: Any]] ?? []).map { "\($0["sku"] as? String ?? "?")×\(int64($0["quantity"]) ?? 0)" }
        let allocations = (json["allocations"] as? [[String: Any]] ?? []).map {
            "\($0["sku"] as? String ?? "?")@\($0["warehouse"] as? String ?? "?")×\(int64($0["quantity"]) ?? 0)"
        }
        self.init(
            reservationId: id, orderId: json["orderId"] as? String ?? "", region: json["region"] as? String ?? "", lines: lines,
            allocations: allocations, token: token, path: path, status: status, expiresAtMs: expiresAt,
            finishedAtMs: int64(json["finishedAt"]), localNode: (json["localNode"] as? NSNumber)?.uint64Value,
            localEpoch: (json["localEpoch"] as? NSNumber)?.uint64Value)
    }

    /// The tokens of the conflicts a reservation read lists.
    public static func conflictTokens(json: [String: Any]) -> Set<UInt64> {
        Set((json["conflicts"] as? [[String: Any]] ?? []).compactMap { ($0["token"] as? NSNumber)?.uint64Value })
    }

    /// Whether both answer the same request (order, region and lines; what the API shows of it).
    public func sameRequest(as other: HoldView) -> Bool {
        orderId == other.orderId && region == other.region && lines == other.lines
    }

    /// The latest time it finishes: its finish if known, its expiry otherwise.
    public var finishesByMs: Int64 { min(expiresAtMs, finishedAtMs ?? .max) }
}

/// One answer a client got, as a history records it (one JSON line in a history file).
public struct HistoryAnswer: Codable, Sendable {
    public enum Operation: String, Codable, Sendable {
        case reserve, confirm, release, extend
    }

    public var call: Int
    /// The node asked (`n2`, or an endpoint).
    public var node: String
    public var operation: Operation
    public var reservationId: String
    /// The request's lines (`sku×quantity`) for a reserve.
    public var lines: [String]?
    /// The hold the answer carried, for a success.
    public var hold: HoldView?
    /// A reserve that made the hold (201), rather than replayed it.
    public var created: Bool
    /// The refusal's code; nil for a success, `transport_error` when no answer came back.
    public var code: String?

    public init(
        call: Int, node: String, operation: Operation, reservationId: String, lines: [String]? = nil, hold: HoldView?, created: Bool,
        code: String?
    ) {
        self.call = call
        self.node = node
        self.operation = operation
        self.reservationId = reservationId
        self.lines = lines
        self.hold = hold
        self.created = created
        self.code = code
    }
}

/// Every answer clients got about one reservation id, from any node on any path, kept so the
/// checker can hold them to one serial history of the hold's lifecycle (DESIGN.md, invariant 5).
public struct ReservationHistory: Sendable {
    /// A grant (`created: true`) a client was given.
    public struct Grant: Sendable {
        public var hold: HoldView
        public var call: Int
        public var node: String
    }

    public private(set) var grants: [Grant] = []
    /// Tokens whose hold a client was told is confirmed (a confirm answered `confirmed`).
    public private(set) var confirmed: Set<UInt64> = []
    /// Tokens whose hold a client was told is released (a release answered `released`).
    public private(set) var released: Set<UInt64> = []
    /// Per token, the hold as last seen (by an answer or a replica), which bounds when it may be purged.
    public private(set) var bounds: [UInt64: HoldView] = [:]

    public init() {}

    /// Takes in one answer; returns a violation when the answer alone breaks the history.
    public mutating func take(_ answer: HistoryAnswer) -> String? {
        guard let hold = answer.hold else { return nil }
        follow(hold)
        switch answer.operation {
        case .reserve:
            // (A RESP answer cannot tell a grant from its replay: a grant of a token already seen is one.)
            guard answer.created, !grants.contains(where: { $0.hold.token == hold.token }) else { return nil }
            defer { grants.append(Grant(hold: hold, call: answer.call, node: answer.node)) }
            // One grant per id on a node's own path: a second while the first is still its own
            // (same node, same local log) is a second hold for one id.
            if let node = hold.localNode,
                let earlier = grants.first(where: { $0.hold.localNode == node && $0.hold.localEpoch == hold.localEpoch })
            {
                return "reservation \(hold.reservationId) granted twice by n\(node)'s local log: tokens \(earlier.hold.token) and \(hold.token) (calls \(earlier.call), \(answer.call))"
            }
            // One grant per id in the cache: its answer store is shared by every node.
            if hold.path == "cache", let earlier = grants.first(where: { $0.hold.path == "cache" }) {
                return "reservation \(hold.reservationId) granted twice by the cache: tokens \(earlier.hold.token) and \(hold.token) (calls \(earlier.call), \(answer.call))"
            }
        case .confirm where hold.status == "confirmed":
            confirmed.insert(hold.token)
        case .release where hold.status == "released":
            released.insert(hold.token)
        default:
            break
        }
        return nil
    }

    /// A state of the hold a replica applied (or any answer showed): moves the bound on when the
    /// hold may be purged.
    public mutating func follow(_ hold: HoldView) {
        bounds[hold.token] = hold
    }

    /// Checks the history against the final state: the hold the ledger ends with (nil: none),
    /// the tokens recorded in conflict with it, and whether a hold that finishes by a time may
    /// have been purged after retention.
    public func violations(_ id: String, final: HoldView?, conflicts: Set<UInt64>, purgeable: (Int64) -> Bool) -> [String] {
        var found: [String] = []
        for grant in grants {
            let token = grant.hold.token
            let mayBePurged = purgeable(bounds[token]?.finishesByMs ?? grant.hold.expiresAtMs)
            if let final, final.token == token {
                if final.allocations != grant.hold.allocations { found.append("reservation \(id) has other allocations than granted") }
                continue
            }
            if conflicts.contains(token) { continue }
            if grant.hold.path != "quorum", let final, final.sameRequest(as: grant.hold) {
                // Merged into the ledger's hold: what the client did to the provisional (or cache)
                // hold carries onto it.
                if confirmed.contains(token) && final.status != "confirmed" && !mayBePurged {
                    found.append(
                        "reservation \(id): confirm acknowledged on \(grant.hold.path) hold \(token), but the ledger's hold \(final.token) is \(final.status)")
                }
                if released.contains(token) && final.status == "confirmed" && confirmed.isEmpty {
                    found.append("reservation \(id): release acknowledged on \(grant.hold.path) hold \(token), but the ledger's hold is confirmed")
                }
                continue
            }
            if mayBePurged { continue }
            let now = final.map { "the ledger holds token \($0.token) (\($0.path), \($0.status))" } ?? "the ledger has no hold"
            found.append("acknowledged reservation \(id) (\(grant.hold.path) token \(token), call \(grant.call) on \(grant.node)) lost: \(now)")
        }
        if let final {
            if confirmed.contains(final.token) && final.status != "confirmed" {
                found.append("reservation \(id): confirm acknowledged but it ends \(final.status)")
            }
            if released.contains(final.token) && final.status == "confirmed" {
                found.append("reservation \(id): release acknowledged but it ends confirmed")
            }
        }
        return found
    }
}

/// The histories of many reservation ids: taken in answer by answer (the simulator, the load
/// harness) or read from a history file (one `HistoryAnswer` per JSON line), then checked against
/// the final state read from the ledger or from the nodes.
public struct HistoryCheck: Sendable {
    public private(set) var histories: [String: ReservationHistory] = [:]
    public private(set) var answers = 0

    public init() {}

    /// Takes in one answer; returns a violation when the answer alone breaks its id's history.
    public mutating func take(_ answer: HistoryAnswer) -> String? {
        answers += 1
        return histories[answer.reservationId, default: ReservationHistory()].take(answer)
    }

    public mutating func follow(_ hold: HoldView) {
        guard histories[hold.reservationId]?.bounds[hold.token] != nil else { return }
        histories[hold.reservationId]!.follow(hold)
    }

    /// Reads a history file: one `HistoryAnswer` per line. Returns the check and the violations
    /// that single answers showed.
    public static func read(lines: some Sequence<Substring>) throws -> (HistoryCheck, [String]) {
        var check = HistoryCheck()
        var found: [String] = []
        let decoder = JSONDecoder()
        for line in lines where !line.isEmpty {
            let answer = try decoder.decode(HistoryAnswer.self, from: Data(line.utf8))
            if let problem = check.take(answer) { found.append(problem) }
        }
        return (check, found)
    }

    /// Every id's history against its final state (`final(id)` gives the hold and the tokens
    /// recorded in conflict with it), in id order.
    public func violations(final: (String) -> (hold: HoldView?, conflicts: Set<UInt64>), purgeable: (Int64) -> Bool) -> [String] {
        histories.keys.sorted().flatMap { id in
            let (hold, conflicts) = final(id)
            return histories[id]!.violations(id, final: hold, conflicts: conflicts, purgeable: purgeable)
        }
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

    /// The operation a client's call is, for histories.
    var historyOperation: HistoryAnswer.Operation? {
        switch self {
        case .reserve: .reserve
        case .confirm: .confirm
        case .release: .release
        case .extend: .extend
        default: nil
        }
    }
}
