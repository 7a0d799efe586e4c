import Foundation
import StockadeClient
import StockadeTesting
import Testing

/// The RESP port of a real node, driven by clients nobody here wrote: redis-cli (RESP2 and
/// RESP3), the `redis` package from PyPI, and redis-benchmark.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RESPIntegrationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    static func withNode(_ body: (NodeProcess) async throws -> Void) async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        try await body(node)
    }

    /// redis-cli's output for one command (no TTY: raw replies, one element per line).
    static func cli(_ node: NodeProcess, _ protocol3: Bool = false, token: String?, _ words: String...) async throws -> String {
        var arguments = ["-p", "\(node.respPort)", "--no-auth-warning"]
        if protocol3 { arguments.append("-3") }
        if let token { arguments += ["-a", token] }
        let (status, output) = try await ChildProcess.run("redis-cli", arguments + words)
        #expect(status == 0, "redis-cli \(words) exited \(status): \(output)")
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test(arguments: [false, true])
    func redisCLIReservesReplaysAndIsRefusedClearly(protocol3: Bool) async throws {
        try await Self.withNode { node in
            let stock = try await Self.cli(node, token: node.adminToken, "STOCK.SET", "tee", "yiwu", "10")
            #expect(stock.contains("available\n10"), "\(stock)")

            let reserve = ["RESERVE", "r-1", "o-1", "east", "60", "0", "tee", "3"]
            let granted = try await Self.cli(node, protocol3, token: node.checkoutToken, reserve[0], reserve[1], reserve[2], reserve[3], reserve[4], reserve[5], reserve[6], reserve[7])
            let status = protocol3 ? "status held" : "status\nheld"
            #expect(granted.contains(status), "\(granted)")
            #expect(granted.contains(protocol3 ? "path quorum" : "path\nquorum"), "\(granted)")
            let replayed = try await Self.cli(node, protocol3, token: node.checkoutToken, reserve[0], reserve[1], reserve[2], reserve[3], reserve[4], reserve[5], reserve[6], reserve[7])
            #expect(replayed == granted, "a replay gets the identical reply")

            let changed = try await Self.cli(node, protocol3, token: node.checkoutToken, "RESERVE", "r-1", "o-1", "east", "60", "0", "tee", "4")
            #expect(changed.hasPrefix("IDEMPOTENCY_CONFLICT "), "\(changed)")

            let unauthenticated = try await Self.cli(node, protocol3, token: nil, "RESERVE", "r-2", "o-1", "east", "60", "0", "tee", "1")
            #expect(unauthenticated == "NOAUTH Authentication required.")

            let forbidden = try await Self.cli(node, protocol3, token: node.checkoutToken, "STOCK.SET", "tee", "yiwu", "99")
            #expect(forbidden.hasPrefix("FORBIDDEN "), "\(forbidden)")

            let short = try await Self.cli(node, protocol3, token: node.checkoutToken, "RESERVE", "r-3", "o-1", "east", "60", "0", "tee", "8")
            #expect(short.hasPrefix("INSUFFICIENT_STOCK available=7 requested=8 sku=tee "), "\(short)")

            let sku = try await Self.cli(node, protocol3, token: node.checkoutToken, "SKU", "tee")
            #expect(sku.contains(protocol3 ? "held 3" : "held\n3"), "nothing was applied twice: \(sku)")

            let unknown = try await Self.cli(node, protocol3, token: nil, "GET", "k")
            #expect(unknown == "ERR unknown command 'GET', with args beginning with: 'k'")
        }
    }

    @Test func redisPyBothProtocolsPipelinesAndBadFrames() async throws {
        try await Self.withNode { node in
            let (status, output) = try await ChildProcess.run(
                "python3",
                [Self.repository + "/scripts/tests/resp_clients.py", "\(node.respPort)", node.adminToken, node.checkoutToken],
                timeout: .seconds(180))
            #expect(status == 0, "\(output)")
            #expect(output.contains(" passed, 0 failed"), "\(output)")
            #expect(!node.logTail().contains("\"level\":\"error\""), "\(node.logTail())")
        }
    }

    @Test func redisBenchmarkRunsWithoutAWarningOrError() async throws {
        try await Self.withNode { node in
            _ = try await Self.cli(node, token: node.adminToken, "STOCK.SET", "bench", "yiwu", "1000000")
            let (status, output) = try await ChildProcess.run(
                "redis-benchmark",
                ["-p", "\(node.respPort)", "-a", node.checkoutToken, "-n", "3000", "-c", "16", "-P", "4", "-r", "2000000000",
                 "RESERVE", "rb-__rand_int__-__rand_int__", "o", "east", "60", "0", "bench", "1"],
                timeout: .seconds(180))
            #expect(status == 0, "\(output)")
            #expect(output.contains("throughput summary"), "\(output)")
            for line in output.split(separator: "\n") {
                let lowered = line.lowercased()
                #expect(!lowered.contains("warning") && !lowered.contains("error") && !lowered.contains("err "), "\(line)")
            }
            let sku = try await Self.cli(node, token: node.adminToken, "SKU", "bench")
            #expect(sku.contains("held\n3000"), "every benchmark reserve held one unit: \(sku)")
        }
    }
}

/// Any node of a cluster answers any RESP command: writes are forwarded to the leader as
/// commands, linearizable reads relayed to it, as over HTTP.
@Suite(.serialized, .timeLimit(.minutes(5))) struct RESPClusterIntegrationTests {
    @Test func aFollowerAnswersEveryCommand() async throws {
        let cluster = LocalCluster(httpBase: 17_140, peerBase: 17_240)
        do {
            try await cluster.up()
            let leader = try #require(await ClusterIntegrationTests.leader(cluster, among: [1, 2, 3]))
            let follower = [1, 2, 3].first { $0 != leader }!
            let admin = try StockadeClient(url: "resp://127.0.0.1:\(cluster.respPort(follower))", token: cluster.adminToken)
            let checkout = try StockadeClient(url: "resp://127.0.0.1:\(cluster.respPort(follower))", token: cluster.checkoutToken)
            _ = try await admin.setStock(sku: "tee", warehouse: "yiwu", total: 5)
            let held = try await checkout.reserve(
                .init(reservationId: "f-1", orderId: "o", region: "east", lines: [.init(sku: "tee", quantity: 2)], ttlSeconds: 60))
            #expect(held.status == "held")
            // Read back through the follower: relayed to the leader, so it sees its own write.
            #expect(try await checkout.reservation("f-1") == held)
            #expect(try await checkout.sku("tee").warehouses.first?.held == 2)
            #expect(try await admin.holds(HoldsQuery(sku: "tee")).holds.map(\.reservationId) == ["f-1"])
            #expect(try await checkout.confirm("f-1").status == "confirmed")
            let view = try await checkout.cluster()
            #expect(view.nodeId == "n\(follower)" && view.role == "follower" && view.leaderId == "n\(leader)")
            // The leader's own RESP port agrees.
            let atLeader = try StockadeClient(url: "resp://127.0.0.1:\(cluster.respPort(leader))", token: cluster.checkoutToken)
            #expect(try await atLeader.sku("tee").warehouses.first?.sold == 2)
            for client in [admin, checkout, atLeader] { await client.close() }
        } catch {
            Issue.record("\(error); leader log: \(cluster.logTail(1))")
        }
        await cluster.destroy()
    }
}
