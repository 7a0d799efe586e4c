import Foundation

/// The marketplaces and shops orders come from. Each has its own feed format (`ChannelAdapter`).
public enum Channel: String, Codable, CaseIterable, Sendable {
    /// Tmall/Taobao-style: `tid`, yuan strings, `receiver_state`, `WAIT_BUYER_PAY`…
    case tmall
    /// Pinduoduo-style: `order_sn`, fen integers, numeric `order_status`.
    case pinduoduo
    /// Douyin-shop-style: nested `post_addr`, fen integers, numeric status with a description.
    case douyin
    /// The shop's own web store: ISO-8601 times, `items`, lower-case statuses.
    case web
}

/// What a channel says an order is, in one vocabulary.
public enum OrderStatus: String, Codable, Sendable {
    /// Placed, not paid.
    case pending
    /// Paid (including shipped and finished: the stock is sold either way).
    case paid
    /// Cancelled or closed before it was fulfilled.
    case cancelled
}

public struct Buyer: Codable, Hashable, Sendable {
    public var name: String
    public var phone: String
    public var province: String
    public var city: String
    public var district: String
    public var street: String

    /// One line, as a person reads it.
    public var address: String { [province, city, district, street].filter { !$0.isEmpty }.joined(separator: " ") }
}

public struct OrderLine: Codable, Hashable, Sendable {
    public var sku: String
    public var quantity: Int64
    public var unitPriceFen: Int64
}

/// One update of one order from a feed, normalized. Times are UTC milliseconds.
public struct OrderEvent: Codable, Hashable, Sendable {
    public var channel: Channel
    public var channelOrderId: String
    public var status: OrderStatus
    /// The channel's own spelling of the status, kept for reports.
    public var channelStatus: String
    public var buyer: Buyer
    public var region: String
    public var lines: [OrderLine]
    public var totalFen: Int64
    public var createdAt: Int64
    public var paidAt: Int64?
    /// When the channel last changed the order: events of one order apply in this order.
    public var updatedAt: Int64

    /// The order's identity across feeds and retries: `channel:channelOrderId`.
    public var key: String { "\(channel.rawValue):\(channelOrderId)" }

    /// Identifies this update's content: the same update read twice has the same fingerprint.
    public var fingerprint: String {
        var hasher = FNV1a()
        hasher.add("\(status.rawValue)|\(buyer.address)|\(buyer.phone)|\(updatedAt)|\(paidAt ?? 0)|")
        for line in lines { hasher.add("\(line.sku)x\(line.quantity)@\(line.unitPriceFen);") }
        return String(hasher.value, radix: 16)
    }
}

/// A 64-bit FNV-1a hash: stable across processes (Swift's `Hasher` is seeded per process).
struct FNV1a {
    var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ text: String) {
        for byte in text.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x100_0000_01b3
        }
    }
}

/// Money: `"12.50"` yuan ↔ 1250 fen, exactly (no floating point).
public enum Money {
    public static func fen(fromYuan text: String) -> Int64? {
        var trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("¥") || trimmed.hasPrefix("￥") { trimmed.removeFirst() }
        let parts = trimmed.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let yuan = Int64(parts[0]), yuan >= 0 else { return nil }
        var fen: Int64 = 0
        if parts.count == 2 {
            let decimals = parts[1]
            guard (1...2).contains(decimals.count), decimals.allSatisfy(\.isASCII), let value = Int64(decimals), value >= 0 else { return nil }
            fen = decimals.count == 1 ? value * 10 : value
        }
        let (scaled, overflow) = yuan.multipliedReportingOverflow(by: 100)
        guard !overflow else { return nil }
        return scaled + fen
    }

    public static func yuan(_ fen: Int64) -> String {
        let cents = fen % 100
        return "\(fen / 100).\(cents < 10 ? "0" : "")\(cents)"
    }
}
