import Foundation
import OrderPipeline
import StockadeClient
import StockadeTesting
import Testing

/// `stockade-orders` against real nodes: the four sample feeds end in the states they were
/// written for, the ledger agrees with the pipeline SKU by SKU, a second ingest changes nothing,
/// and an ingest killed with SIGKILL and run again ends where an uninterrupted one does.
@Suite(.serialized, .timeLimit(.minutes(8))) struct OrderPipelineIntegrationTests {
    static let samples = ["tmall", "pinduoduo", "douyin", "web"].map {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("samples/orders/\($0).jsonl").path
    }

    static func orders(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        try await ChildProcess.run(NodeProcess.productPath("stockade-orders"), arguments, timeout: .seconds(240))
    }

    static func records(_ dataDirectory: String) throws -> [String: OrderRecord] {
        Dictionary(uniqueKeysWithValues: try OrderStore(directory: dataDirectory).allOrders().map { ($0.key, $0) })
    }

    /// Held and sold units per SKU: what the ledger says, and what the pipeline's orders add up to.
    static func agreement(_ client: StockadeClient, _ records: [String: OrderRecord]) async throws -> (ledger: [String: [Int64]], pipeline: [String: [Int64]]) {
        var pipeline: [String: [Int64]] = [:]
        for record in records.values {
            for line in record.lines {
                var sums = pipeline[line.sku] ?? [0, 0]
                if record.holdsStock { sums[0] += line.quantity }
                if record.state == .confirmed { sums[1] += line.quantity }
                pipeline[line.sku] = sums
            }
        }
        var ledger: [String: [Int64]] = [:]
        for sku in pipeline.keys {
            let stock = try await client.sku(sku)
            ledger[sku] = [stock.warehouses.reduce(0) { $0 + $1.held }, stock.warehouses.reduce(0) { $0 + $1.sold }]
        }
        return (ledger, pipeline)
    }

    @Test func theSampleFeedsEndInTheirStatesAndTheLedgerAgrees() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let admin = try StockadeClient(url: "resp://127.0.0.1:\(node.respPort)", token: node.adminToken)
        for (sku, warehouse, total) in [
            ("tee-white-m", "yiwu", 10), ("tee-white-m", "guangzhou", 10), ("tee-white-m", "beijing", 5), ("tee-white-m", "chengdu", 5),
            ("mug-ceramic", "yiwu", 10), ("mug-ceramic", "chengdu", 5), ("socks-wool", "yiwu", 20), ("lamp-limited", "yiwu", 1),
            ("presale-bag", "yiwu", 0),
        ] {
            _ = try await admin.setStock(sku: sku, warehouse: warehouse, total: Int64(total))
        }
        let data = NodeProcess.temporaryDirectory(prefix: "orders-samples")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let common = ["--data-dir", data, "--token", node.checkoutToken, "--presale", "presale-bag=5", "--no-progress"]
        let first = try await Self.orders(["ingest", "--server", "resp://127.0.0.1:\(node.respPort)"] + common + Self.samples)
        #expect(first.status == 0, "\(first.output)")
        let records = try Self.records(data)
        let expected: [String: OrderState] = [
            "tmall:T1001": .confirmed, "tmall:T1002": .cancelled, "tmall:T1003": .reserved, "tmall:T1004": .backordered,
            "tmall:T1007": .confirmed, "tmall:T1008": .confirmed,
            "pinduoduo:PDD-2001": .confirmed, "pinduoduo:PDD-2002": .reserved, "pinduoduo:PDD-2005": .cancelled,
            "pinduoduo:PDD-2006": .confirmed, "pinduoduo:PDD-2007": .confirmed,
            "douyin:DY3001": .confirmed, "douyin:DY3002": .presale, "douyin:DY3004": .cancelled, "douyin:DY3005": .reserved,
            "web:W5001": .confirmed, "web:W5002": .cancelled, "web:W5006": .confirmed,
        ]
        #expect(records.mapValues(\.state) == expected)
        // The address change inside the freeze window moved the hold to the south; the one outside did not.
        #expect(records["tmall:T1003"]?.reservationId == "tmall:T1003#2" && records["tmall:T1003"]?.region == "south")
        #expect(records["pinduoduo:PDD-2002"]?.region == "west")
        let (ledger, pipeline) = try await Self.agreement(admin, records)
        #expect(ledger == pipeline, "held and sold per SKU")
        #expect(pipeline["tee-white-m"] == [1, 4] && pipeline["socks-wool"] == [1, 4] && pipeline["mug-ceramic"] == [2, 2])
        let oldHold = try await admin.reservation("tmall:T1003")
        #expect(oldHold.status == "released", "the first hold of the rebooked order is released")

        let report = try await Self.orders(["report", "--data-dir", data, "--json", "--now", "1794327000000"])
        let json = try JSONSerialization.jsonObject(with: Data(report.output.utf8)) as? [String: Any] ?? [:]
        func count(_ key: String) -> Int { (json[key] as? [Any])?.count ?? -1 }
        #expect(count("unknownStatuses") == 4 && count("malformedLines") == 5 && count("failedReservations") == 1, "\(report.output)")
        #expect(count("suspectedBrushing") == 1 && (json["other"] as? [[String: Any]])?.first?["order"] as? String == "pinduoduo:PDD-2002")

        // Again, over HTTP this time: nothing changes, in the pipeline or in the ledger.
        let again = try await Self.orders(["ingest", "--server", "http://127.0.0.1:\(node.port)"] + common + Self.samples)
        #expect(again.status == 0, "\(again.output)")
        #expect(try Self.records(data) == records)
        let after = try await Self.agreement(admin, records)
        #expect(after.ledger == ledger)
        await admin.close()
    }

    @Test func aKilledIngestRunAgainEndsWhereAnUninterruptedOneDoes() async throws {
        let feeds = NodeProcess.temporaryDirectory(prefix: "orders-day")
        defer { try? FileManager.default.removeItem(atPath: feeds) }
        let generated = try await Self.orders(["generate", "--orders", "4000", "--skus", "50", "--out-dir", feeds])
        #expect(generated.status == 0)
        let files = Channel.allCases.map { "\(feeds)/\($0.rawValue).jsonl" }
        var outcomes: [(records: [String: OrderRecord], ledger: [String: [Int64]])] = []
        for interrupted in [false, true] {
            let node = NodeProcess(resp: true)
            defer { node.destroy() }
            try await node.start()
            let admin = try StockadeClient(url: "resp://127.0.0.1:\(node.respPort)", token: node.adminToken)
            for index in 0..<50 { _ = try await admin.setStock(sku: String(format: "sku-%04d", index), warehouse: "yiwu", total: 1_000_000) }
            let data = feeds + "/data-\(interrupted)"
            let arguments = ["ingest", "--server", "resp://127.0.0.1:\(node.respPort)", "--token", node.checkoutToken, "--data-dir", data, "--no-progress"] + files
            if interrupted {
                let ingest = try ChildProcess(
                    NodeProcess.productPath("stockade-orders"), arguments, environment: ProcessInfo.processInfo.environment, outputPath: feeds + "/killed.out")
                // Kill it once some orders are saved and before it is done.
                let deadline = ContinuousClock.now + .seconds(60)
                while ContinuousClock.now < deadline {
                    if let saved = try? OrderStore(directory: data).allOrders().count, saved >= 300 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(ingest.isRunning, "the ingest was still running when killed")
                ingest.signal(SIGKILL)
                #expect(await ingest.exit() == 128 + SIGKILL)
                let partial = try OrderStore(directory: data).allOrders().count
                #expect(partial >= 300 && partial < 4000, "killed mid-ingest with \(partial) orders saved")
            }
            let run = try await Self.orders(arguments)
            #expect(run.status == 0, "\(run.output)")
            let records = try Self.records(data)
            let (ledger, pipeline) = try await Self.agreement(admin, records)
            #expect(ledger == pipeline, "no hold leaked or doubled (interrupted: \(interrupted))")
            outcomes.append((records, ledger))
            await admin.close()
        }
        #expect(outcomes[0].records.count == 4000)
        #expect(outcomes[0].records.mapValues(\.state) == outcomes[1].records.mapValues(\.state))
        #expect(outcomes[0].records.mapValues(\.reservationId) == outcomes[1].records.mapValues(\.reservationId))
        #expect(outcomes[0].ledger == outcomes[1].ledger)
    }
}
