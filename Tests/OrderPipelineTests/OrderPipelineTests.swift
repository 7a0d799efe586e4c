import Foundation
import StockadeClient
import StockadeCore
import Testing

@testable import OrderPipeline

/// The samples shipped in samples/orders, read from the source tree.
func samplePath(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("samples/orders/\(name)").path
}

@Suite struct ChannelAdapterTests {
    @Test func provincesMapToRegions() {
        #expect(Regions.region(ofProvince: "浙江省") == "east")
        #expect(Regions.region(ofProvince: "江苏") == "east")
        #expect(Regions.region(ofProvince: "上海市") == "east")
        #expect(Regions.region(ofProvince: "Anhui") == "east")
        #expect(Regions.region(ofProvince: "广西壮族自治区") == "south")
        #expect(Regions.region(ofProvince: "新疆维吾尔自治区") == "west")
        #expect(Regions.region(ofProvince: "北京") == "north")
        #expect(Regions.region(ofProvince: "火星省") == nil)
    }

    @Test func moneyIsExact() {
        #expect(Money.fen(fromYuan: "39.90") == 3990)
        #expect(Money.fen(fromYuan: "¥12.5") == 1250)
        #expect(Money.fen(fromYuan: "7") == 700)
        for bad in ["", "1.234", "-1.00", "1,00", "abc", "1.x"] { #expect(Money.fen(fromYuan: bad) == nil, "\(bad)") }
        #expect(Money.yuan(3990) == "39.90" && Money.yuan(5) == "0.05")
    }

    @Test func timesAreUTC() {
        // 2026-11-11 00:00:03 in Beijing is 2026-11-10 16:00:03 UTC.
        #expect(Times.beijing("2026-11-11 00:00:03") == 1_794_326_403_000)
        #expect(Times.iso("2026-11-11T00:00:03+08:00") == 1_794_326_403_000)
        #expect(Times.beijing("2026-13-01 00:00:00") == nil)
    }

    /// Every sample line reads as its channel's event, or as the problem it was written to have.
    @Test(arguments: [
        ("tmall.jsonl", 10, ["tmall.jsonl:9": "unknown_status", "tmall.jsonl:10": "malformed"]),
        ("pinduoduo.jsonl", 8, ["pinduoduo.jsonl:5": "unknown_status", "pinduoduo.jsonl:6": "malformed"]),
        ("douyin.jsonl", 6, ["douyin.jsonl:5": "unknown_status", "douyin.jsonl:6": "malformed"]),
        ("web.jsonl", 5, ["web.jsonl:5": "unknown_status", "web.jsonl:6": "malformed", "web.jsonl:7": "malformed"]),
    ])
    func samplesReadAsTheirChannel(file: String, events: Int, problems: [String: String]) throws {
        let items = try FeedReader.read(samplePath(file))
        var found: [String: String] = [:]
        var count = 0
        for item in items {
            switch item.result {
            case .success(let event):
                count += 1
                #expect(event.channel.rawValue == file.replacingOccurrences(of: ".jsonl", with: ""))
                #expect(!event.lines.isEmpty && event.createdAt > 1_794_000_000_000 && event.updatedAt >= event.createdAt)
            case .failure(let problem): found[item.source] = problem.kind.rawValue
            }
        }
        #expect(count == events)
        #expect(found == problems)
    }

    @Test func statusSpellingsThatMeanTheSameMapToOne() throws {
        func status(_ channel: Channel, _ json: String) throws -> OrderStatus { try ChannelAdapter.event(channel, line: Data(json.utf8)).status }
        let tmall = try String(contentsOfFile: samplePath("tmall.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        for (spelling, expected) in [("TRADE_CLOSED", OrderStatus.cancelled), ("CLOSED", .cancelled), ("TRADE_CLOSED_BY_TAOBAO", .cancelled),
                                     ("WAIT_SELLER_SEND_GOODS", .paid), ("TRADE_FINISHED", .paid), ("WAIT_BUYER_PAY", .pending)] {
            #expect(try status(.tmall, tmall.replacingOccurrences(of: "WAIT_BUYER_PAY", with: spelling)) == expected, "\(spelling)")
        }
        let web = try String(contentsOfFile: samplePath("web.jsonl"), encoding: .utf8).split(separator: "\n")[0]
        for spelling in ["cancelled", "canceled", "CLOSED", "Voided"] {
            #expect(try status(.web, web.replacingOccurrences(of: "\"pending\"", with: "\"\(spelling)\"")) == .cancelled, "\(spelling)")
        }
        let line = try ChannelAdapter.event(nil, line: Data(String(tmall).utf8))
        #expect(line.key == "tmall:T1001" && line.region == "east" && line.totalFen == 11800 && line.buyer.city == "金华市")
    }
}

@Suite struct OrderLifecycleTests {
    static func event(_ status: OrderStatus, at seconds: Int64, province: String = "浙江省", sku: String = "tee", quantity: Int64 = 1) -> OrderEvent {
        OrderEvent(
            channel: .web, channelOrderId: "W1", status: status, channelStatus: status.rawValue,
            buyer: Buyer(name: "王伟", phone: "139", province: province, city: "", district: "", street: "路1号"),
            region: Regions.region(ofProvince: province)!, lines: [OrderLine(sku: sku, quantity: quantity, unitPriceFen: 100)], totalFen: 100,
            createdAt: 1_000_000, paidAt: status == .paid ? 1_000_000 + seconds * 1000 : nil, updatedAt: 1_000_000 + seconds * 1000)
    }

    static func hold(_ id: String, _ status: String) -> Reservation {
        let json = """
            {"reservationId":"\(id)","orderId":"web:W1","region":"east","status":"\(status)","token":7,"path":"quorum",
             "allocations":[{"sku":"tee","warehouse":"yiwu","quantity":1}],"lines":[{"sku":"tee","quantity":1}],
             "createdAt":1000000,"expiresAt":1900000}
            """
        return try! JSONDecoder().decode(Reservation.self, from: Data(json.utf8))
    }

    /// Runs the reconciler with made-up answers: `answer` decides each action's result.
    static func settle(_ record: OrderRecord, policy: LifecyclePolicy = LifecyclePolicy(), presale: inout [String: Int64],
                       answer: (OrderAction) -> ActionResult) -> (OrderRecord, [OrderAction], [OrderException]) {
        var record = record
        var actions: [OrderAction] = []
        var exceptions: [OrderException] = []
        for _ in 0..<8 {
            if let settled = OrderLifecycle.settleWithoutAction(record) { record = settled; continue }
            guard let action = OrderLifecycle.next(record, policy: policy) else { break }
            actions.append(action)
            let folded = OrderLifecycle.fold(record, action, answer(action), policy: policy, presaleUsed: &presale)
            record = folded.record
            exceptions += folded.exceptions
        }
        return (record, actions, exceptions)
    }

    static func granted(_ action: OrderAction) -> ActionResult {
        switch action {
        case .reserve(let request): .reservation(hold(request.reservationId, "held"))
        case .confirm(let id): .reservation(hold(id, "confirmed"))
        case .release(let id): .reservation(hold(id, "released"))
        }
    }

    @Test func placedPaidConfirmedAndADuplicateChangesNothing() {
        var presale: [String: Int64] = [:]
        let placed = OrderLifecycle.merge(nil, Self.event(.pending, at: 0), policy: LifecyclePolicy(), source: "f:1").record!
        let (reserved, actions, _) = Self.settle(placed, presale: &presale, answer: Self.granted)
        #expect(reserved.state == .reserved && reserved.reservationId == "web:W1")
        guard case .reserve(let request) = actions.first else { Issue.record("no reserve"); return }
        #expect(request.reservationId == "web:W1" && request.region == "east" && request.ttlSeconds == 900)
        let paid = OrderLifecycle.merge(reserved, Self.event(.paid, at: 60), policy: LifecyclePolicy(), source: "f:2").record!
        let (confirmed, confirmActions, _) = Self.settle(paid, presale: &presale, answer: Self.granted)
        #expect(confirmed.state == .confirmed && confirmActions == [.confirm("web:W1")])
        #expect(OrderLifecycle.merge(confirmed, Self.event(.paid, at: 60), policy: LifecyclePolicy(), source: "f:3").record == nil, "duplicate")
        #expect(OrderLifecycle.merge(confirmed, Self.event(.pending, at: 1), policy: LifecyclePolicy(), source: "f:4").record == nil, "older")
    }

    @Test func anAddressChangeInsideTheWindowRebooksAndOutsideIsAnException() {
        var presale: [String: Int64] = [:]
        let placed = OrderLifecycle.merge(nil, Self.event(.pending, at: 0), policy: LifecyclePolicy(), source: "f:1").record!
        let (reserved, _, _) = Self.settle(placed, presale: &presale, answer: Self.granted)
        let moved = OrderLifecycle.merge(reserved, Self.event(.pending, at: 5, province: "广东省"), policy: LifecyclePolicy(), source: "f:2")
        #expect(moved.exceptions.isEmpty && moved.record?.rebook == true)
        let (rebooked, actions, _) = Self.settle(moved.record!, presale: &presale, answer: Self.granted)
        #expect(actions.count == 2)
        #expect(actions.first == .release("web:W1"))
        guard case .reserve(let request) = actions.last else { Issue.record("no reserve"); return }
        #expect(request.reservationId == "web:W1#2" && request.region == "south")
        #expect(rebooked.state == .reserved && rebooked.revision == 2 && rebooked.region == "south")

        let late = OrderLifecycle.merge(rebooked, Self.event(.pending, at: 60, province: "四川省"), policy: LifecyclePolicy(), source: "f:3")
        #expect(late.exceptions.map(\.kind) == [.addressChangedAfterFreeze])
        #expect(late.record?.region == "south" && late.record?.rebook == false, "the hold stays as it is")
    }

    @Test func outOfStockIsBackorderedUnlessAPresaleCapTakesIt() {
        var presale: [String: Int64] = [:]
        var policy = LifecyclePolicy()
        policy.presaleCaps = ["bag": 2]
        let short: (OrderAction) -> ActionResult = { _ in .refused(StockadeError(.insufficientStock, "requested 1, available 0")) }
        for (index, expected) in [OrderState.presale, .presale, .backordered].enumerated() {
            var event = Self.event(.pending, at: 0, sku: "bag")
            event.channelOrderId = "W\(index)"
            let record = OrderLifecycle.merge(nil, event, policy: policy, source: "f").record!
            #expect(Self.settle(record, policy: policy, presale: &presale, answer: short).0.state == expected, "order \(index)")
        }
        #expect(presale["bag"] == 2)
        // A cancel of a backordered order needs no call.
        var event = Self.event(.pending, at: 0, sku: "bag")
        event.channelOrderId = "W2"
        let backordered = Self.settle(OrderLifecycle.merge(nil, event, policy: policy, source: "f").record!, policy: policy, presale: &presale, answer: short).0
        var cancel = event
        cancel.status = .cancelled
        cancel.updatedAt += 1000
        let (cancelled, actions, _) = Self.settle(OrderLifecycle.merge(backordered, cancel, policy: policy, source: "g").record!, presale: &presale, answer: short)
        #expect(cancelled.state == .cancelled && actions.isEmpty)
    }

    @Test func paidAfterTheHoldExpiredIsAnException() {
        var presale: [String: Int64] = [:]
        let placed = OrderLifecycle.merge(nil, Self.event(.pending, at: 0), policy: LifecyclePolicy(), source: "f:1").record!
        let (reserved, _, _) = Self.settle(placed, presale: &presale, answer: Self.granted)
        let paid = OrderLifecycle.merge(reserved, Self.event(.paid, at: 1000), policy: LifecyclePolicy(), source: "f:2").record!
        let (expired, _, exceptions) = Self.settle(paid, presale: &presale) { action in
            if case .confirm(let id) = action { return .reservation(Self.hold(id, "expired")) }
            return Self.granted(action)
        }
        #expect(expired.state == .expired && exceptions.map(\.kind) == [.paidAfterExpiry])
    }

    @Test func theLifecycleRefusesTransitionsItDoesNotAllow() {
        #expect(OrderState.created.allows(.reserved) && OrderState.reserved.allows(.paid) && OrderState.paid.allows(.confirmed))
        #expect(!OrderState.confirmed.allows(.cancelled) && !OrderState.cancelled.allows(.reserved) && !OrderState.created.allows(.confirmed))
        #expect(!OrderState.expired.allows(.confirmed) && !OrderState.backordered.allows(.confirmed))
    }
}

@Suite struct OrderStoreAndReportTests {
    @Test func theStoreKeepsOrdersExceptionsAndPresaleAcrossOpens() throws {
        let directory = NSTemporaryDirectory() + "orders-store-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let record = OrderLifecycle.merge(nil, OrderLifecycleTests.event(.pending, at: 0), policy: LifecyclePolicy(), source: "f:1").record!
        let exception = OrderException(kind: .malformed, orderKey: nil, source: "f:2", reason: "not JSON")
        do {
            let store = try OrderStore(directory: directory)
            try store.save(orders: [record], exceptions: [exception, exception], presale: ["bag": 3])
        }
        let reopened = try OrderStore(directory: directory)
        #expect(try reopened.order("web:W1") == record)
        #expect(try reopened.exceptions() == [exception], "an exception noted twice is kept once")
        #expect(try reopened.presaleUsed() == ["bag": 3])
    }

    @Test func brushingIsTheSamePhoneAndSKUWithinTenMinutes() {
        func order(_ id: String, phone: String, minute: Int64) -> OrderRecord {
            var event = OrderLifecycleTests.event(.paid, at: 0)
            event.channelOrderId = id
            event.buyer.phone = phone
            event.createdAt = minute * 60_000
            event.updatedAt = event.createdAt
            return OrderLifecycle.merge(nil, event, policy: LifecyclePolicy(), source: "f").record!
        }
        let orders = [order("A", phone: "1", minute: 0), order("B", phone: "1", minute: 9), order("C", phone: "1", minute: 30),
                      order("D", phone: "2", minute: 0)]
        let suspects = ExceptionsReport.brushing(orders, windowMs: 600_000)
        #expect(suspects.map(\.orders) == [["web:A", "web:B"]])
    }

    @Test func aGeneratedDayReadsCleanAndIsTheSameForTheSameSeed() throws {
        var options = FeedGenerator.Options()
        options.orders = 400
        let first = FeedGenerator.generate(options)
        #expect(first.values.map(\.count).reduce(0, +) >= 400)
        #expect(first == FeedGenerator.generate(options))
        for (channel, lines) in first {
            for line in lines {
                let event = try ChannelAdapter.event(nil, line: Data(line.utf8))
                #expect(event.channel == channel)
            }
        }
    }
}
