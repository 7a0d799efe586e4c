import Foundation
import StockadeTesting
import Testing

/// `stockade-load` against real nodes: a small run must pass its verdict, and a broken node must fail it.
@Suite(.serialized, .timeLimit(.minutes(5))) struct LoadHarnessIntegrationTests {
    struct Run: @unchecked Sendable {
        var status: Int32
        var output: String
        var report: [String: Any]
    }

    /// Runs `stockade-load` against `node`. The blocking wait happens on its own thread, never on the cooperative pool.
    static func load(_ arguments: [String], node: NodeProcess) async throws -> Run {
        try await load(
            arguments, url: "http://127.0.0.1:\(node.port)", adminToken: node.adminToken, checkoutToken: node.checkoutToken)
    }

    static func load(_ arguments: [String], url: String, adminToken: String, checkoutToken: String) async throws -> Run {
        let reportDirectory = NodeProcess.temporaryDirectory(prefix: "stockade-load-report")
        defer { try? FileManager.default.removeItem(atPath: reportDirectory) }
        var environment = ProcessInfo.processInfo.environment
        environment["STOCKADE_ADMIN_TOKEN"] = adminToken
        environment["STOCKADE_CHECKOUT_TOKEN"] = checkoutToken
        let outputPath = reportDirectory + ".out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let process = try ChildProcess(
            NodeProcess.productPath("stockade-load"),
            arguments + ["--url", url, "--report-dir", reportDirectory, "--no-progress"],
            environment: environment, outputPath: outputPath)
        let status = await process.exit()
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let data = (try? Data(contentsOf: URL(fileURLWithPath: reportDirectory + "/report.json"))) ?? Data()
        let report = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:]
        let html = (try? String(contentsOfFile: reportDirectory + "/report.html", encoding: .utf8)) ?? ""
        if !report.isEmpty { #expect(html.contains("<svg"), "report.html has charts") }
        return Run(status: status, output: output, report: report)
    }

    static func checkHistory(_ file: String, node: NodeProcess) async throws -> (status: Int32, output: String) {
        var environment = ProcessInfo.processInfo.environment
        environment["STOCKADE_ADMIN_TOKEN"] = node.adminToken
        environment["STOCKADE_CHECKOUT_TOKEN"] = node.checkoutToken
        let process = try ChildProcess(
            NodeProcess.productPath("stockade-load"), ["check-history", "--history", file, "--url", "http://127.0.0.1:\(node.port)"],
            environment: environment, outputPath: file + ".check")
        let status = await process.exit()
        return (status, (try? String(contentsOfFile: file + ".check", encoding: .utf8)) ?? "")
    }

    @Test func smallFlashSalePassesItsVerdict() async throws {
        let node = NodeProcess()
        defer { node.destroy() }
        try await node.start()
        let run = try await Self.load(["flash-sale", "--stock", "200", "--attempts", "2000", "--concurrency", "32", "--confirm-percent", "30"], node: node)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.report["verdict"] as? String == "pass")
        #expect(run.report["granted"] as? Int == 200)
        #expect(run.report["attempts"] as? Int == 2000)
        for key in ["scenario", "throughputPerSecond", "latencyMs", "outcomes"] { #expect(run.report[key] != nil, "\(key)") }
        let latency = run.report["latencyMs"] as? [String: Double] ?? [:]
        #expect(Set(latency.keys) == ["p50", "p90", "p99", "p999", "max"])
    }

    /// The same scenario over the RESP port: same verdict, same counts. With `--history`, every
    /// answer goes to a file that `check-history` holds to one history per reservation, and a
    /// history that claims a confirm the node never made fails it.
    @Test func smallFlashSaleOverRESPPassesItsVerdict() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let historyFile = NodeProcess.temporaryDirectory(prefix: "history") + "/history.jsonl"
        let run = try await Self.load(
            ["flash-sale", "--stock", "200", "--attempts", "2000", "--concurrency", "32", "--confirm-percent", "30", "--history", historyFile],
            url: "resp://127.0.0.1:\(node.respPort)", adminToken: node.adminToken, checkoutToken: node.checkoutToken)
        #expect(run.status == 0, "\(run.output)")
        let lines = try String(contentsOfFile: historyFile, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 2_000, "\(lines.count) answers recorded")
        let check = try await Self.checkHistory(historyFile, node: node)
        #expect(check.status == 0 && check.output.contains("0 violations"), "\(check.output)")
        // A confirm the node never made: one held grant claimed confirmed.
        let answers = try lines.map { try JSONDecoder().decode(HistoryAnswer.self, from: Data($0.utf8)) }
        let confirmed = Set(answers.filter { $0.operation == .confirm }.map(\.reservationId))
        guard var forged = answers.first(where: { $0.operation == .reserve && $0.created && !confirmed.contains($0.reservationId) }) else {
            Issue.record("no held grant to forge a confirm for")
            return
        }
        forged.operation = .confirm
        forged.created = false
        forged.hold?.status = "confirmed"
        var text = lines.joined(separator: "\n") + "\n"
        text += String(decoding: try JSONEncoder().encode(forged), as: UTF8.self) + "\n"
        try text.write(toFile: historyFile, atomically: true, encoding: .utf8)
        let caught = try await Self.checkHistory(historyFile, node: node)
        #expect(caught.status == 1 && caught.output.contains("confirm acknowledged but it ends held"), "\(caught.output)")
        #expect(run.report["verdict"] as? String == "pass")
        #expect(run.report["granted"] as? Int == 200)
        #expect(run.report["attempts"] as? Int == 2000)
        let outcomes = run.report["outcomes"] as? [String: Int] ?? [:]
        #expect(outcomes["insufficient_stock"] == 1_800, "\(outcomes)")
    }

    @Test func smallPromotionReplayPassesItsVerdict() async throws {
        let node = NodeProcess()
        defer { node.destroy() }
        try await node.start()
        let traceFile = NodeProcess.temporaryDirectory(prefix: "trace") + "/trace.jsonl"
        let maker = try ChildProcess(
            NodeProcess.productPath("stockade-load"),
            ["make-trace", "--out", traceFile, "--hours", "2", "--baseline", "20000", "--peak", "60000", "--skus", "30"],
            environment: ProcessInfo.processInfo.environment, outputPath: traceFile + ".out")
        let makerStatus = await maker.exit()
        #expect(makerStatus == 0)
        let run = try await Self.load(["promotion-replay", "--trace", traceFile, "--compress", "1800", "--stock-per-sku", "20", "--connections", "16"], node: node)
        #expect(run.status == 0, "\(run.output)")
        #expect(run.report["verdict"] as? String == "pass")
        let outcomes = run.report["outcomes"] as? [String: Int] ?? [:]
        #expect((outcomes["granted"] ?? 0) > 0)
    }

    /// The verdict catches oversell: a node that acknowledges reserves it could not hold must fail the run.
    @Test func verdictCatchesANodeThatOversells() async throws {
        let node = NodeProcess(environment: ["STOCKADE_DEBUG_FAULT": "ack-insufficient"])
        defer { node.destroy() }
        try await node.start()
        let run = try await Self.load(["flash-sale", "--stock", "50", "--attempts", "300", "--concurrency", "8"], node: node)
        #expect(run.status == 1, "\(run.output)")
        #expect(run.report["verdict"] as? String == "fail")
        #expect(run.output.contains("flash"), "names the SKU: \(run.output)")
        #expect(run.output.contains("accounts for 300 units"), "\(run.output)")
    }
}
