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

    /// The same scenario over the RESP port: same verdict, same counts.
    @Test func smallFlashSaleOverRESPPassesItsVerdict() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let run = try await Self.load(
            ["flash-sale", "--stock", "200", "--attempts", "2000", "--concurrency", "32", "--confirm-percent", "30"],
            url: "resp://127.0.0.1:\(node.respPort)", adminToken: node.adminToken, checkoutToken: node.checkoutToken)
        #expect(run.status == 0, "\(run.output)")
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
