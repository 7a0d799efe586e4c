import StockadeClient
import StockadeCore

/// Where an order stands in the pipeline.
///
///     created → reserved → paid → confirmed
///        │         │         └→ expired (paid after its hold expired)
///        │         └→ cancelled (hold released)
///        └→ backordered | presale | failed
public enum OrderState: String, Codable, Sendable, CaseIterable {
    /// Seen; no hold yet.
    case created
    /// Stock held for it (unpaid).
    case reserved
    /// Paid; the confirm is on its way.
    case paid
    /// Paid and confirmed: its units are sold.
    case confirmed
    /// Cancelled; any hold released.
    case cancelled
    /// Refused for want of stock.
    case backordered
    /// Out of stock but accepted against a pre-sale SKU's cap.
    case presale
    /// Paid after its hold had expired: a person decides.
    case expired
    /// The service refused the reservation for another reason (unknown SKU, bad request).
    case failed

    /// Whether `self → next` is a transition the lifecycle allows.
    public func allows(_ next: OrderState) -> Bool {
        switch (self, next) {
        case (.created, .reserved), (.created, .backordered), (.created, .presale), (.created, .failed), (.created, .cancelled),
            (.reserved, .paid), (.reserved, .cancelled), (.reserved, .created),  // created again: rebooked after an address change
            (.paid, .confirmed), (.paid, .expired), (.paid, .cancelled),
            (.backordered, .cancelled), (.presale, .cancelled), (.failed, .cancelled),
            (.backordered, .created):
            true
        default:
            self == next
        }
    }
}

/// The pipeline's settings that decide what happens to an order.
public struct LifecyclePolicy: Codable, Sendable, Hashable {
    /// How long a hold lasts unpaid.
    public var ttlSeconds: Int64 = 900
    /// An address change this soon after the order was placed rebooks the hold; later, it is an
    /// exception for a person.
    public var freezeWindowMs: Int64 = 15_000
    /// Pre-sale SKUs and how many units each may accept beyond its stock.
    public var presaleCaps: [String: Int64] = [:]
    /// Fingerprints of applied updates kept per order (`Limits.orders.fingerprintsKept`).
    public var fingerprintsKept = Limits.Orders().fingerprintsKept

    public init() {}
}

/// Something to note for a person: an order the pipeline could not settle alone.
public struct OrderException: Codable, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case malformed
        case unknownStatus = "unknown_status"
        case addressChangedAfterFreeze = "address_changed_after_freeze"
        case failedReservation = "failed_reservation"
        case paidAfterExpiry = "paid_after_expiry"
        case cancelledAfterConfirm = "cancelled_after_confirm"
        case unresolved
    }
    public var kind: Kind
    public var orderKey: String?
    /// `file:line` of the feed line, or the order's key for what the lifecycle found.
    public var source: String
    public var reason: String

    public init(kind: Kind, orderKey: String?, source: String, reason: String) {
        self.kind = kind
        self.orderKey = orderKey
        self.source = source
        self.reason = reason
    }

    /// A feed line that did not read.
    public init(_ problem: FeedProblem, source: String) {
        self.init(kind: problem.kind == .malformed ? .malformed : .unknownStatus, orderKey: problem.channelOrderId, source: source, reason: problem.reason)
    }
}

/// One order as the pipeline keeps it.
public struct OrderRecord: Codable, Hashable, Sendable {
    public var key: String
    public var channel: Channel
    public var channelOrderId: String
    public var state: OrderState
    /// What the channel last said: the state the lifecycle steers towards.
    public var status: OrderStatus
    public var channelStatus: String
    public var buyer: Buyer
    public var region: String
    public var lines: [OrderLine]
    public var totalFen: Int64
    public var createdAt: Int64
    public var paidAt: Int64?
    public var updatedAt: Int64
    /// Bumped when an address change rebooks the hold; part of the reservation id.
    public var revision: Int = 1
    /// The hold this order has (or had) in Stockade.
    public var reservationId: String?
    public var holdExpiresAt: Int64?
    public var reservedPath: String?
    /// Why it is backordered, failed or expired.
    public var reason: String?
    /// A rebook is owed: release the current hold, then reserve under the next revision.
    public var rebook = false
    /// Fingerprints of the updates applied (the newest few): a duplicate line changes nothing.
    public var applied: [String] = []

    /// The reservation id of a revision: derived from the channel and its order id, so every retry
    /// and every rerun asks for the same hold.
    public static func reservationId(key: String, revision: Int) -> String {
        revision == 1 ? key : "\(key)#\(revision)"
    }

    /// Whether the order holds stock in Stockade now (a hold not yet confirmed or released).
    public var holdsStock: Bool { state == .reserved || state == .paid }
}

/// What the pipeline asks of Stockade next for an order.
public enum OrderAction: Hashable, Sendable {
    case reserve(ReservationRequest)
    case confirm(String)
    case release(String)
}

/// How Stockade answered an action (transient failures are retried by the shell and never reach here).
public enum ActionResult: Sendable {
    case reservation(Reservation)
    case refused(StockadeError)
}

/// The order lifecycle, pure: merging a feed update into the record, choosing the next action
/// towards what the channel says, and folding in Stockade's answer. The ingest shell runs these
/// against a real node; the tests run them against answers they make up.
public enum OrderLifecycle {
    /// Merges an update. Returns the record (nil: nothing to do, a duplicate or an older update)
    /// and exceptions to note.
    public static func merge(_ existing: OrderRecord?, _ event: OrderEvent, policy: LifecyclePolicy, source: String)
        -> (record: OrderRecord?, exceptions: [OrderException])
    {
        let fingerprint = event.fingerprint
        guard var record = existing else {
            let record = OrderRecord(
                key: event.key, channel: event.channel, channelOrderId: event.channelOrderId, state: .created, status: event.status,
                channelStatus: event.channelStatus, buyer: event.buyer, region: event.region, lines: event.lines, totalFen: event.totalFen,
                createdAt: event.createdAt, paidAt: event.paidAt, updatedAt: event.updatedAt, applied: [fingerprint])
            return (record, [])
        }
        if record.applied.contains(fingerprint) || event.updatedAt < record.updatedAt { return (nil, []) }
        var exceptions: [OrderException] = []
        record.applied = Array((record.applied + [fingerprint]).suffix(policy.fingerprintsKept))
        record.updatedAt = event.updatedAt
        record.channelStatus = event.channelStatus
        // A cancelled order stays cancelled; otherwise the newest status wins.
        if record.status != .cancelled { record.status = event.status }
        if let paid = event.paidAt { record.paidAt = paid }
        if event.buyer.address != record.buyer.address || event.buyer.phone != record.buyer.phone {
            let early = event.updatedAt - record.createdAt <= policy.freezeWindowMs
            if early && record.state != .confirmed {
                record.buyer = event.buyer
                if event.region != record.region {
                    record.region = event.region
                    // The hold may be in the wrong region's warehouse: book again.
                    if record.holdsStock || record.state == .backordered { record.rebook = true }
                }
            } else {
                exceptions.append(
                    OrderException(
                        kind: .addressChangedAfterFreeze, orderKey: record.key, source: source,
                        reason: "address changed \((event.updatedAt - record.createdAt) / 1000) s after the order (window \(policy.freezeWindowMs / 1000) s) to \(event.buyer.address); the hold is unchanged"))
            }
        }
        return (record, exceptions)
    }

    /// The next action for the record, or nil when it is where the channel says it should be.
    public static func next(_ record: OrderRecord, policy: LifecyclePolicy) -> OrderAction? {
        let current = record.reservationId ?? OrderRecord.reservationId(key: record.key, revision: record.revision)
        if record.status == .cancelled || record.rebook {
            if record.holdsStock { return .release(current) }
            if record.status == .cancelled { return nil }
        }
        switch (record.state, record.status) {
        case (.created, .pending), (.created, .paid):
            let id = OrderRecord.reservationId(key: record.key, revision: record.revision)
            return .reserve(
                ReservationRequest(
                    reservationId: id, orderId: record.key, region: record.region,
                    lines: record.lines.map { .init(sku: $0.sku, quantity: $0.quantity) }, ttlSeconds: policy.ttlSeconds, allowSplit: true))
        case (.reserved, .paid), (.paid, .paid):
            return .confirm(current)
        default:
            return nil
        }
    }

    /// Folds Stockade's answer to `action` into the record. `presaleUsed` is the units each
    /// pre-sale SKU has accepted so far (across orders), updated here.
    public static func fold(
        _ record: OrderRecord, _ action: OrderAction, _ result: ActionResult, policy: LifecyclePolicy, presaleUsed: inout [String: Int64]
    ) -> (record: OrderRecord, exceptions: [OrderException]) {
        var record = record
        var exceptions: [OrderException] = []
        func move(_ state: OrderState) {
            precondition(record.state.allows(state), "order \(record.key): \(record.state) → \(state) is not a transition")
            record.state = state
        }
        switch (action, result) {
        case (.reserve(let request), .reservation(let hold)):
            record.reservationId = request.reservationId
            record.holdExpiresAt = hold.expiresAt
            record.reservedPath = hold.path
            record.reason = nil
            move(.reserved)
            if record.status == .paid { move(.paid) }
        case (.reserve(let request), .refused(let error)) where error.code == .insufficientStock:
            // Pre-sale SKUs take the order while under their cap; everything else waits for stock.
            let presale = request.lines.allSatisfy { policy.presaleCaps[$0.sku] != nil }
                && request.lines.allSatisfy { (presaleUsed[$0.sku] ?? 0) + $0.quantity <= policy.presaleCaps[$0.sku]! }
            if presale {
                for line in request.lines { presaleUsed[line.sku, default: 0] += line.quantity }
                move(.presale)
                record.reason = "pre-sale: \(error.message)"
            } else {
                move(.backordered)
                record.reason = error.message
            }
            record.reservationId = nil
        case (.reserve, .refused(let error)):
            move(.failed)
            record.reason = "\(error.code.rawValue): \(error.message)"
            record.reservationId = nil
            exceptions.append(OrderException(kind: .failedReservation, orderKey: record.key, source: record.key, reason: record.reason!))
        case (.confirm, .reservation(let hold)) where hold.status == "confirmed":
            if record.state == .reserved { move(.paid) }
            move(.confirmed)
        case (.confirm, _):
            // Confirmed too late: the hold expired (or was released) first.
            let why = hold(from: result).map { "the hold is \($0.status)" } ?? refusal(from: result)
            if record.state == .reserved { move(.paid) }
            move(.expired)
            record.reason = "paid after the hold ended: \(why)"
            exceptions.append(OrderException(kind: .paidAfterExpiry, orderKey: record.key, source: record.key, reason: record.reason!))
        case (.release, _):
            // Released, or already finished (expired, released): either way the order holds nothing now.
            if record.rebook {
                record.rebook = false
                record.revision += 1
                record.reservationId = nil
                record.holdExpiresAt = nil
                move(.created)
            } else {
                move(.cancelled)
            }
        }
        if record.status == .cancelled && record.state == .confirmed && !exceptions.contains(where: { $0.kind == .cancelledAfterConfirm }) {
            exceptions.append(
                OrderException(kind: .cancelledAfterConfirm, orderKey: record.key, source: record.key, reason: "cancelled after its stock was sold: a refund and a return"))
        }
        return (record, exceptions)
    }

    static func hold(from result: ActionResult) -> Reservation? {
        if case .reservation(let hold) = result { return hold }
        return nil
    }

    static func refusal(from result: ActionResult) -> String {
        if case .refused(let error) = result { return "\(error.code.rawValue): \(error.message)" }
        return ""
    }

    /// Changes that need no call to Stockade: a cancelled order that holds nothing becomes
    /// cancelled; a backordered order whose address moved to another region is tried again there.
    public static func settleWithoutAction(_ record: OrderRecord) -> OrderRecord? {
        var settled = record
        if record.status == .cancelled, !record.holdsStock, ![.cancelled, .confirmed, .expired].contains(record.state) {
            settled.state = .cancelled
            settled.rebook = false
            return settled
        }
        if record.rebook, record.state == .backordered {
            settled.rebook = false
            settled.revision += 1
            settled.state = .created
            return settled
        }
        return nil
    }
}
