import Foundation

/// Why a feed line was not turned into an event.
public struct FeedProblem: Error, Hashable, Sendable {
    public enum Kind: String, Codable, Sendable {
        /// Not JSON, or a field missing or of the wrong type.
        case malformed
        /// A status the channel's mapping does not know.
        case unknownStatus = "unknown_status"
    }
    public var kind: Kind
    public var reason: String
    /// The order it was about, when that could be read.
    public var channelOrderId: String?

    static func malformed(_ reason: String, _ id: String? = nil) -> FeedProblem { FeedProblem(kind: .malformed, reason: reason, channelOrderId: id) }
}

/// Reads one channel's feed lines. Every field name, money format, address layout and status code
/// of a channel is here, in its adapter, and nowhere else.
public enum ChannelAdapter {
    /// The channel a line comes from, by the fields only it has.
    static func detect(_ object: [String: Any]) -> Channel? {
        if object["tid"] != nil { return .tmall }
        if object["order_sn"] != nil { return .pinduoduo }
        if object["order_id"] != nil && object["post_addr"] != nil { return .douyin }
        if object["id"] != nil && object["items"] != nil { return .web }
        return nil
    }

    /// Reads one line of a feed; `channel` nil: recognised by its fields.
    public static func event(_ channel: Channel?, line: Data) throws(FeedProblem) -> OrderEvent {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: line) as? [String: Any] else {
                throw FeedProblem.malformed("a line must be a JSON object")
            }
            object = parsed
        } catch let problem as FeedProblem {
            throw problem
        } catch {
            throw FeedProblem.malformed("not JSON")
        }
        let fields = Fields(object: object)
        guard let channel = channel ?? detect(object) else { throw FeedProblem.malformed("no channel's order fields (tid, order_sn, order_id, id)") }
        switch channel {
        case .tmall: return try tmall(fields)
        case .pinduoduo: return try pinduoduo(fields)
        case .douyin: return try douyin(fields)
        case .web: return try web(fields)
        }
    }

    // MARK: - Status vocabularies (several spellings of one status map to one)

    static let tmallStatuses: [String: OrderStatus] = [
        "WAIT_BUYER_PAY": .pending, "TRADE_NO_CREATE_PAY": .pending,
        "WAIT_SELLER_SEND_GOODS": .paid, "SELLER_CONSIGNED_PART": .paid, "WAIT_BUYER_CONFIRM_GOODS": .paid, "TRADE_BUYER_SIGNED": .paid,
        "TRADE_FINISHED": .paid,
        "TRADE_CLOSED": .cancelled, "TRADE_CLOSED_BY_TAOBAO": .cancelled, "CLOSED": .cancelled,
    ]
    /// Pinduoduo-style `order_status` (0 unpaid, 1 awaiting shipment, 2 shipped, 3 received) and
    /// `refund_status` 4 (refunded: the order is closed).
    static let pinduoduoStatuses: [Int: OrderStatus] = [0: .pending, 1: .paid, 2: .paid, 3: .paid, 5: .cancelled]
    /// Douyin-shop-style `order_status`: 1 to confirm (unpaid), 2 preparing, 3 shipped, 5 done, 4 cancelled.
    static let douyinStatuses: [Int: OrderStatus] = [1: .pending, 105: .paid, 2: .paid, 101: .paid, 3: .paid, 5: .paid, 4: .cancelled]
    static let webStatuses: [String: OrderStatus] = [
        "pending": .pending, "awaiting_payment": .pending, "unpaid": .pending,
        "paid": .paid, "processing": .paid, "shipped": .paid, "completed": .paid,
        "cancelled": .cancelled, "canceled": .cancelled, "closed": .cancelled, "voided": .cancelled,
    ]

    // MARK: - Adapters

    static func tmall(_ f: Fields) throws(FeedProblem) -> OrderEvent {
        let id = try f.string("tid")
        let raw = try f.string("status", id)
        guard let status = tmallStatuses[raw] else { throw FeedProblem(kind: .unknownStatus, reason: "unknown status \(raw)", channelOrderId: id) }
        let buyer = Buyer(
            name: try f.string("receiver_name", id), phone: try f.string("receiver_mobile", id), province: try f.string("receiver_state", id),
            city: f.optionalString("receiver_city") ?? "", district: f.optionalString("receiver_district") ?? "",
            street: try f.string("receiver_address", id))
        var lines: [OrderLine] = []
        for item in try f.array("orders", id) {
            let line = Fields(object: item)
            guard let price = Money.fen(fromYuan: try line.string("price", id)) else { throw .malformed("price is not a yuan amount", id) }
            lines.append(OrderLine(sku: try line.string("outer_sku_id", id), quantity: try line.integer("num", id), unitPriceFen: price))
        }
        guard let total = Money.fen(fromYuan: try f.string("payment", id)) else { throw .malformed("payment is not a yuan amount", id) }
        return try event(
            .tmall, id, status, raw, buyer, lines, total, created: try f.beijingTime("created", id), paid: try f.optionalBeijingTime("pay_time", id),
            updated: try f.beijingTime("modified", id))
    }

    static func pinduoduo(_ f: Fields) throws(FeedProblem) -> OrderEvent {
        let id = try f.string("order_sn")
        let code = try f.integer("order_status", id)
        let refund = f.optionalInteger("refund_status") ?? 0
        guard let mapped = pinduoduoStatuses[Int(code)] else {
            throw FeedProblem(kind: .unknownStatus, reason: "unknown order_status \(code)", channelOrderId: id)
        }
        let status: OrderStatus = refund == 4 ? .cancelled : mapped
        let buyer = Buyer(
            name: try f.string("receiver_name", id), phone: try f.string("receiver_phone", id), province: try f.string("province", id),
            city: f.optionalString("city") ?? "", district: f.optionalString("town") ?? "", street: try f.string("address", id))
        var lines: [OrderLine] = []
        for item in try f.array("item_list", id) {
            let line = Fields(object: item)
            lines.append(
                OrderLine(sku: try line.string("outer_id", id), quantity: try line.integer("goods_count", id), unitPriceFen: try line.integer("goods_price", id)))
        }
        let created = try f.integer("created_time", id) * 1000
        let paid = f.optionalInteger("pay_time").flatMap { $0 > 0 ? $0 * 1000 : nil }
        return try event(
            .pinduoduo, id, status, "\(code)/\(refund)", buyer, lines, try f.integer("pay_amount", id), created: created, paid: paid,
            updated: try f.integer("updated_at", id) * 1000)
    }

    static func douyin(_ f: Fields) throws(FeedProblem) -> OrderEvent {
        let id = try f.string("order_id")
        let code = try f.integer("order_status", id)
        guard let status = douyinStatuses[Int(code)] else {
            throw FeedProblem(kind: .unknownStatus, reason: "unknown order_status \(code) (\(f.optionalString("order_status_desc") ?? "no description"))", channelOrderId: id)
        }
        let address = Fields(object: try f.object("post_addr", id))
        func name(_ key: String) throws(FeedProblem) -> String { try Fields(object: try address.object(key, id)).string("name", id) }
        let buyer = Buyer(
            name: try f.string("post_receiver", id), phone: try f.string("post_tel", id), province: try name("province"), city: try name("city"),
            district: (try? name("town")) ?? "", street: try address.string("detail", id))
        var lines: [OrderLine] = []
        for item in try f.array("sku_order_list", id) {
            let line = Fields(object: item)
            lines.append(OrderLine(sku: try line.string("code", id), quantity: try line.integer("item_num", id), unitPriceFen: try line.integer("origin_amount", id)))
        }
        let paid = f.optionalInteger("pay_time").flatMap { $0 > 0 ? $0 * 1000 : nil }
        return try event(
            .douyin, id, status, "\(code) \(f.optionalString("order_status_desc") ?? "")".trimmingCharacters(in: .whitespaces), buyer, lines,
            try f.integer("pay_amount", id), created: try f.integer("create_time", id) * 1000, paid: paid, updated: try f.integer("update_time", id) * 1000)
    }

    static func web(_ f: Fields) throws(FeedProblem) -> OrderEvent {
        let id = try f.string("id")
        let raw = try f.string("status", id)
        guard let status = webStatuses[raw.lowercased()] else { throw FeedProblem(kind: .unknownStatus, reason: "unknown status \(raw)", channelOrderId: id) }
        let customer = Fields(object: try f.object("customer", id))
        let shipping = Fields(object: try f.object("shipping", id))
        let buyer = Buyer(
            name: try customer.string("name", id), phone: try customer.string("phone", id), province: try shipping.string("province", id),
            city: shipping.optionalString("city") ?? "", district: shipping.optionalString("district") ?? "", street: try shipping.string("line1", id))
        var lines: [OrderLine] = []
        for item in try f.array("items", id) {
            let line = Fields(object: item)
            guard let price = Money.fen(fromYuan: try line.string("price", id)) else { throw .malformed("price is not a yuan amount", id) }
            lines.append(OrderLine(sku: try line.string("sku", id), quantity: try line.integer("qty", id), unitPriceFen: price))
        }
        guard let total = Money.fen(fromYuan: try f.string("total", id)) else { throw .malformed("total is not a yuan amount", id) }
        return try event(
            .web, id, status, raw, buyer, lines, total, created: try f.isoTime("created_at", id), paid: try f.optionalISOTime("paid_at", id),
            updated: try f.isoTime("updated_at", id))
    }

    static func event(
        _ channel: Channel, _ id: String, _ status: OrderStatus, _ raw: String, _ buyer: Buyer, _ lines: [OrderLine], _ total: Int64,
        created: Int64, paid: Int64?, updated: Int64
    ) throws(FeedProblem) -> OrderEvent {
        guard !lines.isEmpty else { throw .malformed("the order has no lines", id) }
        var merged: [String: Int64] = [:]
        var order: [String] = []
        for line in lines {
            guard line.quantity > 0 else { throw .malformed("quantity of \(line.sku) must be at least 1", id) }
            guard !line.sku.isEmpty else { throw .malformed("a line has no sku", id) }
            if merged[line.sku] == nil { order.append(line.sku) }
            merged[line.sku, default: 0] += line.quantity
        }
        // A request names each SKU once: lines of one SKU are added up.
        let normalized = order.map { sku in OrderLine(sku: sku, quantity: merged[sku]!, unitPriceFen: lines.first { $0.sku == sku }!.unitPriceFen) }
        guard let region = Regions.region(ofProvince: buyer.province) else { throw .malformed("unknown province \(buyer.province)", id) }
        return OrderEvent(
            channel: channel, channelOrderId: id, status: status, channelStatus: raw, buyer: buyer, region: region, lines: normalized,
            totalFen: total, createdAt: created, paidAt: paid, updatedAt: max(updated, created))
    }
}

/// Typed access to a JSON object's fields, every miss a `malformed` problem naming the field.
struct Fields {
    var object: [String: Any]

    func string(_ key: String, _ id: String? = nil) throws(FeedProblem) -> String {
        if let value = object[key] as? String, !value.isEmpty { return value }
        if let value = object[key] as? NSNumber { return value.stringValue }
        throw .malformed(object[key] == nil ? "missing \(key)" : "\(key) must be a non-empty string", id)
    }

    func optionalString(_ key: String) -> String? { object[key] as? String }

    func integer(_ key: String, _ id: String? = nil) throws(FeedProblem) -> Int64 {
        // (Foundation on Linux reads JSON 0 and 1 as numbers that also cast to Bool, so no Bool check.)
        if let value = object[key] as? NSNumber, let exact = Int64(exactly: value.doubleValue) { return exact }
        if let text = object[key] as? String, let value = Int64(text) { return value }
        throw .malformed(object[key] == nil ? "missing \(key)" : "\(key) must be an integer", id)
    }

    func optionalInteger(_ key: String) -> Int64? { try? integer(key) }

    func array(_ key: String, _ id: String?) throws(FeedProblem) -> [[String: Any]] {
        guard let value = object[key] as? [[String: Any]] else { throw .malformed("missing \(key) (a list of objects)", id) }
        return value
    }

    func object(_ key: String, _ id: String?) throws(FeedProblem) -> [String: Any] {
        guard let value = object[key] as? [String: Any] else { throw .malformed("missing \(key) (an object)", id) }
        return value
    }

    /// `2026-11-11 00:00:03` in Beijing time (UTC+8), as Tmall-style feeds write it.
    func beijingTime(_ key: String, _ id: String?) throws(FeedProblem) -> Int64 {
        guard let ms = Times.beijing(try string(key, id)) else { throw .malformed("\(key) must be yyyy-MM-dd HH:mm:ss", id) }
        return ms
    }

    func optionalBeijingTime(_ key: String, _ id: String?) throws(FeedProblem) -> Int64? {
        guard let text = object[key] as? String, !text.isEmpty else { return nil }
        guard let ms = Times.beijing(text) else { throw .malformed("\(key) must be yyyy-MM-dd HH:mm:ss", id) }
        return ms
    }

    func isoTime(_ key: String, _ id: String?) throws(FeedProblem) -> Int64 {
        guard let ms = Times.iso(try string(key, id)) else { throw .malformed("\(key) must be an ISO-8601 time with an offset", id) }
        return ms
    }

    func optionalISOTime(_ key: String, _ id: String?) throws(FeedProblem) -> Int64? {
        guard let text = object[key] as? String, !text.isEmpty else { return nil }
        guard let ms = Times.iso(text) else { throw .malformed("\(key) must be an ISO-8601 time with an offset", id) }
        return ms
    }
}

enum Times {
    /// `yyyy-MM-dd HH:mm:ss` at UTC+8 → UTC milliseconds, by arithmetic (no locale, no time zone database).
    static func beijing(_ text: String) -> Int64? {
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int64($0) }
        guard parts.count == 6, parts.allSatisfy({ $0 != nil }) else { return nil }
        let p = parts.map { $0! }
        guard (1...12).contains(p[1]), (1...31).contains(p[2]), (0...23).contains(p[3]), (0...59).contains(p[4]), (0...60).contains(p[5]) else { return nil }
        return (days(year: p[0], month: p[1], day: p[2]) * 86_400 + p[3] * 3600 + p[4] * 60 + p[5] - 8 * 3600) * 1000
    }

    static func iso(_ text: String) -> Int64? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
    }

    /// Days from 1970-01-01 to a civil date (proleptic Gregorian).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}
