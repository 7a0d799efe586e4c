import Foundation

/// A day of orders in the four channels' formats, seeded: a 42,000-order 11.11-style day (a
/// burst at midnight, a peak in the evening), for the benchmark and for trying the pipeline.
/// 80% of orders are paid within minutes, 8% cancelled, the rest stay unpaid.
public enum FeedGenerator {
    public struct Options: Sendable {
        public var orders = 42_000
        public var skus = 200
        public var seed: UInt64 = 1111
        /// The day, UTC ms at its Beijing midnight (2026-11-11 00:00 +08:00).
        public var dayStartMs: Int64 = 1_794_326_400_000
        public init() {}
    }

    static let places: [(province: String, city: String, district: String)] = [
        ("浙江省", "金华市", "义乌市"), ("浙江省", "杭州市", "西湖区"), ("江苏省", "苏州市", "工业园区"), ("江苏省", "南京市", "鼓楼区"),
        ("上海市", "上海市", "浦东新区"), ("安徽省", "合肥市", "蜀山区"), ("广东省", "广州市", "天河区"), ("广东省", "深圳市", "南山区"),
        ("四川省", "成都市", "武侯区"), ("重庆市", "重庆市", "渝中区"), ("北京市", "北京市", "朝阳区"), ("湖北省", "武汉市", "洪山区"),
        ("山东省", "济南市", "历下区"), ("福建省", "厦门市", "思明区"), ("河南省", "郑州市", "金水区"), ("陕西省", "西安市", "雁塔区"),
    ]
    static let surnames = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"]
    static let given = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟"]

    /// The lines of each channel's file.
    public static func generate(_ options: Options) -> [Channel: [String]] {
        var random = SplitMix64(seed: options.seed)
        var files: [Channel: [String]] = [:]
        let channels = Channel.allCases
        for index in 0..<options.orders {
            let channel = channels[index % channels.count]
            // Minute of the day: 15% in the first ten minutes, the rest around an evening peak.
            let second: Int64 = random.unit() < 0.15
                ? Int64(random.next() % 600) : Int64(12 * 3600 + random.next() % UInt64(11 * 3600))
            let created = options.dayStartMs + second * 1000 + Int64(random.next() % 1000)
            let place = places[Int(random.next() % UInt64(places.count))]
            let name = surnames[Int(random.next() % UInt64(surnames.count))] + given[Int(random.next() % UInt64(given.count))]
            let phone = "1\(3 + random.next() % 7)\(String(format: "%09d", random.next() % 1_000_000_000))"
            let street = "\(place.district)幸福路\(1 + random.next() % 200)号\(1 + random.next() % 30)栋\(101 + random.next() % 2000)室"
            var lines: [(sku: String, quantity: Int64, priceFen: Int64)] = []
            for _ in 0..<(1 + Int(random.next() % 3)) {
                // A few SKUs sell most: the square of a uniform draw favours low numbers.
                let pick = Int(pow(random.unit(), 2) * Double(options.skus))
                let sku = "sku-\(String(format: "%04d", pick))"
                if lines.contains(where: { $0.sku == sku }) { continue }
                lines.append((sku, Int64(1 + random.next() % 2), Int64(990 + (random.next() % 50) * 1000)))
            }
            let order = Generated(
                channel: channel, id: "\(channelPrefix(channel))\(20_261_111_000_000 + Int64(index))", name: name, phone: phone, place: place,
                street: street, lines: lines, created: created)
            var events = [order.line(status: .pending, at: created, paidAt: nil)]
            let fate = random.unit()
            if fate < 0.80 {
                let paid = created + Int64(5_000 + random.next() % 295_000)
                events.append(order.line(status: .paid, at: paid, paidAt: paid))
            } else if fate < 0.88 {
                events.append(order.line(status: .cancelled, at: created + Int64(30_000 + random.next() % 570_000), paidAt: nil))
            }
            files[channel, default: []] += events
        }
        return files
    }

    static func channelPrefix(_ channel: Channel) -> String {
        switch channel {
        case .tmall: ""
        case .pinduoduo: "PDD-"
        case .douyin: "DY"
        case .web: "W"
        }
    }

    struct Generated {
        var channel: Channel
        var id: String
        var name: String
        var phone: String
        var place: (province: String, city: String, district: String)
        var street: String
        var lines: [(sku: String, quantity: Int64, priceFen: Int64)]
        var created: Int64

        var totalFen: Int64 { lines.reduce(0) { $0 + $1.quantity * $1.priceFen } }

        func line(status: OrderStatus, at ms: Int64, paidAt: Int64?) -> String {
            let object: [String: Any]
            switch channel {
            case .tmall:
                object = [
                    "tid": id, "status": ["pending": "WAIT_BUYER_PAY", "paid": "WAIT_SELLER_SEND_GOODS", "cancelled": "TRADE_CLOSED"][status.rawValue]!,
                    "receiver_name": name, "receiver_mobile": phone, "receiver_state": place.province, "receiver_city": place.city,
                    "receiver_district": place.district, "receiver_address": street, "payment": Money.yuan(totalFen),
                    "orders": lines.map { ["outer_sku_id": $0.sku, "num": $0.quantity, "price": Money.yuan($0.priceFen)] as [String: Any] },
                    "created": beijing(created), "pay_time": paidAt.map(beijing) ?? "", "modified": beijing(ms),
                ]
            case .pinduoduo:
                object = [
                    "order_sn": id, "order_status": status == .paid ? 1 : 0, "refund_status": status == .cancelled ? 4 : 0,
                    "receiver_name": name, "receiver_phone": phone, "province": place.province, "city": place.city, "town": place.district,
                    "address": street, "pay_amount": totalFen,
                    "item_list": lines.map { ["outer_id": $0.sku, "goods_count": $0.quantity, "goods_price": $0.priceFen] as [String: Any] },
                    "created_time": created / 1000, "pay_time": (paidAt ?? 0) / 1000, "updated_at": ms / 1000,
                ]
            case .douyin:
                let code = ["pending": 1, "paid": 2, "cancelled": 4][status.rawValue]!
                object = [
                    "order_id": id, "order_status": code, "order_status_desc": ["pending": "待确认", "paid": "备货中", "cancelled": "已取消"][status.rawValue]!,
                    "post_receiver": name, "post_tel": phone,
                    "post_addr": ["province": ["name": place.province], "city": ["name": place.city], "town": ["name": place.district], "detail": street],
                    "pay_amount": totalFen,
                    "sku_order_list": lines.map { ["code": $0.sku, "item_num": $0.quantity, "origin_amount": $0.priceFen] as [String: Any] },
                    "create_time": created / 1000, "pay_time": (paidAt ?? 0) / 1000, "update_time": ms / 1000,
                ]
            case .web:
                var fields: [String: Any] = [
                    "id": id, "status": status.rawValue, "customer": ["name": name, "phone": phone],
                    "shipping": ["province": place.province, "city": place.city, "district": place.district, "line1": street],
                    "items": lines.map { ["sku": $0.sku, "qty": $0.quantity, "price": Money.yuan($0.priceFen)] as [String: Any] },
                    "total": Money.yuan(totalFen), "created_at": iso(created), "updated_at": iso(ms),
                ]
                if let paidAt { fields["paid_at"] = iso(paidAt) }
                object = fields
            }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }

        func beijing(_ ms: Int64) -> String {
            let seconds = ms / 1000 + 8 * 3600
            let days = seconds / 86_400
            let (y, m, d) = civil(days)
            let rest = seconds % 86_400
            return String(format: "%04d-%02d-%02d %02d:%02d:%02d", y, m, d, rest / 3600, rest / 60 % 60, rest % 60)
        }

        func iso(_ ms: Int64) -> String {
            beijing(ms).replacingOccurrences(of: " ", with: "T") + "+08:00"
        }

        /// Civil date from days since 1970-01-01.
        func civil(_ z0: Int64) -> (Int64, Int64, Int64) {
            let z = z0 + 719_468
            let era = (z >= 0 ? z : z - 146_096) / 146_097
            let doe = z - era * 146_097
            let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
            let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
            let mp = (5 * doy + 2) / 153
            let d = doy - (153 * mp + 2) / 5 + 1
            let m = mp < 10 ? mp + 3 : mp - 9
            return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
        }
    }
}

/// A small seeded generator (SplitMix64): the same seed gives the same day on every machine.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}
