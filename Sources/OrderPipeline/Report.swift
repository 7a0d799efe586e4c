import Foundation

/// Two orders from one phone for one SKU, placed within the window: possibly brushing (fake
/// orders that inflate sales). A report, never a block.
public struct BrushingSuspect: Codable, Hashable, Sendable {
    public var phone: String
    public var sku: String
    public var orders: [String]
    public var spanSeconds: Int64
}

/// What `stockade-orders report` shows: the orders and feed lines a person should look at.
public struct ExceptionsReport: Codable, Sendable {
    public struct Entry: Codable, Hashable, Sendable {
        public var order: String?
        public var source: String?
        public var detail: String
    }
    public var generatedAt: Int64
    public var orders: Int
    public var states: [String: Int]
    /// Placed more than `unpaidAfter` ago and still unpaid.
    public var unpaid: [Entry]
    /// Reserved, unpaid, and past the hold's expiry: Stockade has let the hold go.
    public var holdsPastTTL: [Entry]
    /// Refused by Stockade: backordered for want of stock, or failed.
    public var failedReservations: [Entry]
    public var unknownStatuses: [Entry]
    public var malformedLines: [Entry]
    /// Everything else noted: address changes after the freeze window, payment after expiry,
    /// cancellations after confirmation, calls left unresolved.
    public var other: [Entry]
    public var suspectedBrushing: [BrushingSuspect]

    public var total: Int {
        unpaid.count + holdsPastTTL.count + failedReservations.count + unknownStatuses.count + malformedLines.count + other.count
            + suspectedBrushing.count
    }

    public static func make(
        orders: [OrderRecord], exceptions: [OrderException], nowMs: Int64, unpaidAfterMs: Int64 = 2 * 3_600_000,
        brushingWindowMs: Int64 = 600_000
    ) -> ExceptionsReport {
        var states: [String: Int] = [:]
        for order in orders { states[order.state.rawValue, default: 0] += 1 }
        let unpaid = orders.filter { $0.status == .pending && ($0.state == .reserved || $0.state == .created) && nowMs - $0.createdAt > unpaidAfterMs }
            .map { Entry(order: $0.key, source: nil, detail: "unpaid for \((nowMs - $0.createdAt) / 60_000) min (\($0.buyer.name), \(Money.yuan($0.totalFen)) yuan)") }
        let pastTTL = orders.filter { $0.state == .reserved && ($0.holdExpiresAt ?? .max) < nowMs }
            .map { Entry(order: $0.key, source: nil, detail: "hold \($0.reservationId ?? "?") expired \((nowMs - ($0.holdExpiresAt ?? nowMs)) / 1000) s ago, unpaid") }
        let failed = orders.filter { $0.state == .backordered || $0.state == .failed }
            .map { Entry(order: $0.key, source: nil, detail: "\($0.state.rawValue): \($0.reason ?? "")") }
        func entries(_ kinds: Set<OrderException.Kind>) -> [Entry] {
            exceptions.filter { kinds.contains($0.kind) }.map { Entry(order: $0.orderKey, source: $0.source, detail: "\($0.kind.rawValue): \($0.reason)") }
        }
        return ExceptionsReport(
            generatedAt: nowMs, orders: orders.count, states: states, unpaid: unpaid, holdsPastTTL: pastTTL, failedReservations: failed,
            unknownStatuses: entries([.unknownStatus]), malformedLines: entries([.malformed]),
            other: entries([.addressChangedAfterFreeze, .paidAfterExpiry, .cancelledAfterConfirm, .unresolved, .failedReservation])
                .filter { entry in !failed.contains { $0.order == entry.order } },
            suspectedBrushing: brushing(orders, windowMs: brushingWindowMs))
    }

    /// Orders by the same phone for the same SKU placed within `windowMs` of each other.
    public static func brushing(_ orders: [OrderRecord], windowMs: Int64) -> [BrushingSuspect] {
        var groups: [String: [OrderRecord]] = [:]
        for order in orders {
            for line in order.lines { groups[order.buyer.phone + "\u{1F}" + line.sku, default: []].append(order) }
        }
        var suspects: [BrushingSuspect] = []
        for (group, members) in groups where members.count > 1 {
            let sorted = members.sorted { ($0.createdAt, $0.key) < ($1.createdAt, $1.key) }
            var cluster: [OrderRecord] = [sorted[0]]
            func close() {
                if Set(cluster.map(\.key)).count > 1 {
                    let parts = group.split(separator: "\u{1F}", maxSplits: 1).map(String.init)
                    suspects.append(
                        BrushingSuspect(
                            phone: parts[0], sku: parts.count > 1 ? parts[1] : "", orders: cluster.map(\.key),
                            spanSeconds: (cluster.last!.createdAt - cluster[0].createdAt) / 1000))
                }
            }
            for order in sorted.dropFirst() {
                if order.createdAt - cluster.last!.createdAt <= windowMs {
                    cluster.append(order)
                } else {
                    close()
                    cluster = [order]
                }
            }
            close()
        }
        return suspects.sorted { ($0.phone, $0.sku) < ($1.phone, $1.sku) }
    }
}
