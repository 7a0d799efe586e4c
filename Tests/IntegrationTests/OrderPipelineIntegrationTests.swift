import Foundation
import OrderPipeline
import StockadeClient
import StockadeTesting
import Testing

/// `stockade-orders` against real nodes: the four sample feeds end in the states they were
/// written for, the ledger agrees with the pipeline SKU by SKU, a second ingest changes nothing,
/// and an ingest killed with SIGKILL and run again ends where an uninterrupted one does.
@Suite(.serialized, .timeLimit(.minutes(8))) struct OrderPipelineIntegrationTests {
    static let samplesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/orders").path
    static let samples = ["tmall", "pinduoduo", "douyin", "web"].map { "\(samplesDirectory)/\($0).jsonl" }

    /// The state each sample order was written to end in.
    static let expected: [String: OrderState] = [
        "tmall:T1001": .confirmed, "tmall:T1002": .cancelled, "tmall:T1003": .reserved, "tmall:T1004": .backordered,
        "tmall:T1007": .confirmed, "tmall:T1008": .confirmed,
        "pinduoduo:PDD-2001": .confirmed, "pinduoduo:PDD-2002": .reserved, "pinduoduo:PDD-2005": .cancelled,
        "pinduoduo:PDD-2006": .confirmed, "pinduoduo:PDD-2007": .confirmed,
        "douyin:DY3001": .confirmed, "douyin:DY3002": .presale, "douyin:DY3004": .cancelled, "douyin:DY3005": .reserved,
        "web:W5001": .confirmed, "web:W5002": .cancelled, "web:W5006": .confirmed,
    ]

    /// A client with admin rights on `node`, which now has the stock the samples were written for.
    static func stockForSamples(_ node: NodeProcess) async throws -> StockadeClient {
        let admin = try StockadeClient(url: "resp://127.0.0.1:\(node.respPort)", token: node.adminToken)
        // samples/orders/stock.csv: the stock the samples were written for (the README imports it too).
        let csv = try String(contentsOfFile: samplesDirectory + "/stock.csv", encoding: .utf8)
        for row in csv.split(separator: "\n").dropFirst() {
            let fields = row.split(separator: ",").map(String.init)
            _ = try await admin.setStock(sku: fields[0], warehouse: fields[1], total: Int64(fields[2])!)
        }
        return admin
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
        let admin = try await Self.stockForSamples(node)
        let data = NodeProcess.temporaryDirectory(prefix: "orders-samples")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let common = ["--data-dir", data, "--token", node.checkoutToken, "--presale", "presale-bag=5", "--no-progress"]
        let first = try await Self.orders(["ingest", "--server", "resp://127.0.0.1:\(node.respPort)"] + common + Self.samples)
        #expect(first.status == 0, "\(first.output)")
        let records = try Self.records(data)
        #expect(records.mapValues(\.state) == Self.expected)
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

    /// The webhook: every sample line POSTed; bad lines are refused with their code, good ones
    /// answered 202 once on disk, and the orders end as the file ingest leaves them.
    @Test func theWebhookAcceptsDurablyAndEndsLikeTheFileIngest() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let admin = try await Self.stockForSamples(node)
        let data = NodeProcess.temporaryDirectory(prefix: "orders-webhook")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let ready = data + "/ready"
        let serve = try ChildProcess(
            NodeProcess.productPath("stockade-orders"),
            ["serve", "--data-dir", data, "--http", "127.0.0.1:0", "--ready-file", ready, "--server", "resp://127.0.0.1:\(node.respPort)",
             "--token", node.checkoutToken, "--presale", "presale-bag=5"],
            environment: ProcessInfo.processInfo.environment, outputPath: data + ".serve.log")
        defer { serve.signal(SIGKILL); _ = serve.wait() }
        var port: Int?
        for _ in 0..<600 where port == nil {
            port = (try? String(contentsOfFile: ready, encoding: .utf8)).flatMap { Int($0) }
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: try #require(port))
        var statuses: [String: Int] = [:]
        for file in Self.samples {
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.enumerated() where !line.isEmpty {
                let answer = try await connection.send(method: .POST, path: "/v1/orders", body: Array(line.utf8), timeout: .seconds(10))
                statuses["\((file as NSString).lastPathComponent):\(index + 1)"] = answer.status
            }
        }
        await connection.close()
        let refused = statuses.filter { $0.value != 202 }
        #expect(refused == [
            "tmall.jsonl:9": 422, "tmall.jsonl:10": 400, "pinduoduo.jsonl:5": 422, "pinduoduo.jsonl:6": 400, "douyin.jsonl:5": 422,
            "douyin.jsonl:6": 400, "web.jsonl:5": 422, "web.jsonl:6": 400, "web.jsonl:7": 400,
        ])
        var records: [String: OrderRecord] = [:]
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            records = try Self.records(data)
            if records.mapValues(\.state) == Self.expected { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(records.mapValues(\.state) == Self.expected)
        let (ledger, pipeline) = try await Self.agreement(admin, records)
        #expect(ledger == pipeline)
        #expect(try OrderStore(directory: data).exceptions().filter { $0.kind == .malformed || $0.kind == .unknownStatus }.count == 9)
        await admin.close()
    }

    /// Calls that find the node down are retried with backoff, with the same reservation ids,
    /// until it is back: the samples still end in their states, with nothing held twice.
    @Test func anIngestRidesOutANodeRestart() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let admin = try await Self.stockForSamples(node)
        await admin.close()
        node.terminate()
        let data = NodeProcess.temporaryDirectory(prefix: "orders-retry")
        defer { try? FileManager.default.removeItem(atPath: data) }
        let ingest = try ChildProcess(
            NodeProcess.productPath("stockade-orders"),
            ["ingest", "--server", "resp://127.0.0.1:\(node.respPort)", "--token", node.checkoutToken, "--data-dir", data, "--presale",
             "presale-bag=5", "--no-progress", "--json"] + Self.samples,
            environment: ProcessInfo.processInfo.environment, outputPath: data + ".out")
        try await Task.sleep(for: .milliseconds(400))
        #expect(ingest.isRunning, "the ingest waits for the node")
        try await node.start()
        let status = await ingest.exit()
        let output = (try? String(contentsOfFile: data + ".out", encoding: .utf8)) ?? ""
        let summary = (try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["summary"] as? [String: Any]
        #expect((summary?["retries"] as? Int ?? 0) > 0, "\(output)")
        // Calls still failing after their tries leave their orders for the next run (exit 1); it finishes them.
        #expect(status == 0 || (status == 1 && (summary?["unresolved"] as? Int ?? 0) > 0), "\(output)")
        if status == 1 {
            let again = try await Self.orders(
                ["ingest", "--server", "resp://127.0.0.1:\(node.respPort)", "--token", node.checkoutToken, "--data-dir", data, "--presale",
                 "presale-bag=5", "--no-progress"] + Self.samples)
            #expect(again.status == 0, "\(again.output)")
        }
        let records = try Self.records(data)
        #expect(records.mapValues(\.state) == Self.expected)
        let client = try StockadeClient(url: "resp://127.0.0.1:\(node.respPort)", token: node.adminToken)
        let (ledger, pipeline) = try await Self.agreement(client, records)
        #expect(ledger == pipeline)
        await client.close()
    }
}
