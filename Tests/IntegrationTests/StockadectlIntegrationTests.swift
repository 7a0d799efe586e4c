import Foundation
import StockadeClient
import StockadeTesting
import Testing

/// `stockadectl` against real nodes: its `-o json` output against the API's own answers, over
/// RESP and HTTP; its error lines and exit codes; `audit` against a Redis counter changed behind
/// the node's back; and `watch` in a real terminal (tmux).
@Suite(.serialized, .timeLimit(.minutes(6))) struct StockadectlIntegrationTests {
    struct Run {
        var status: Int32
        var output: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(output.utf8)) }
        var lines: [Substring] { output.split(separator: "\n") }
    }

    static func ctl(_ arguments: [String]) async throws -> Run {
        let (status, output) = try await ChildProcess.run(NodeProcess.productPath("stockadectl"), arguments, timeout: .seconds(60))
        return Run(status: status, output: output)
    }

    static func servers(_ node: NodeProcess) -> [String] {
        ["resp://127.0.0.1:\(node.respPort)", "http://127.0.0.1:\(node.port)"]
    }

    /// The API's answer to a GET, parsed.
    static func api(_ node: NodeProcess, _ path: String) async throws -> Any {
        let connection = try await node.connect()
        defer { Task { await connection.close() } }
        let response = try await connection.send(
            method: .GET, path: path, headers: [("Authorization", "Bearer \(node.adminToken)")], timeout: .seconds(10))
        #expect(response.status == 200, "\(path): \(response.bodyString)")
        return try JSONSerialization.jsonObject(with: Data(response.body))
    }

    static func same(_ a: Any?, _ b: Any?) -> Bool {
        guard let a, let b else { return false }
        return NSDictionary(dictionary: ["v": a]).isEqual(to: ["v": b])
    }

    @Test func jsonOutputAgreesWithTheAPIOverRESPAndHTTP() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let admin = ["--token", node.adminToken]
        // Stock from a file, checked as a whole: a dry run applies nothing, a bad file nothing either.
        let directory = NodeProcess.temporaryDirectory(prefix: "ctl-import")
        let file = directory + "/stock.csv"
        try "sku,warehouse,total\ntee,yiwu,40\ntee,guangzhou,10\n\"mug, large\",chengdu,7\n".write(toFile: file, atomically: true, encoding: .utf8)
        let bad = directory + "/bad.csv"
        try "sku,warehouse,total\ncap,yiwu,5\ncap,nowhere,5\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let server = Self.servers(node)[0]
        let dry = try await Self.ctl(["sku", "import", file, "--dry-run", "--server", server] + admin)
        #expect(dry.status == 0, "\(dry.output)")
        let refused = try await Self.ctl(["sku", "import", bad, "--server", server] + admin)
        #expect(refused.status == 1)
        #expect(refused.output.contains("line 3: unknown warehouse nowhere"), "\(refused.output)")
        let client = NodeClient(connection: try await node.connect(), token: node.adminToken)
        #expect(try await client.call("GET", "/v1/skus/tee").0 == 404, "a dry run applies nothing")
        #expect(try await client.call("GET", "/v1/skus/cap").0 == 404, "a file with a problem applies nothing")
        let imported = try await Self.ctl(["sku", "import", file, "--server", server, "-o", "json"] + admin)
        #expect(imported.status == 0, "\(imported.output)")
        #expect((imported.json as? [String: Any])?["applied"] as? Int == 3)

        for index in 0..<5 {
            let (status, _) = try await client.reserve(id: "ctl-\(index)", sku: "tee", quantity: index + 1)
            #expect(status == 201)
        }
        for server in Self.servers(node) {
            let flags = ["--server", server] + admin + ["-o", "json"]
            let list = try await Self.ctl(["holds", "list", "--sku", "tee", "--limit", "0"] + flags)
            #expect(list.status == 0, "\(list.output)")
            let apiHolds = (try await Self.api(node, "/v1/holds?sku=tee") as? [String: Any])?["holds"]
            #expect(Self.same((list.json as? [String: Any])?["holds"], apiHolds), "holds list over \(server)")
            // A short limit stops at the limit, paging by the server's cursor.
            let short = try await Self.ctl(["holds", "list", "--limit", "2"] + flags)
            #expect(((short.json as? [String: Any])?["holds"] as? [Any])?.count == 2)
            let byOrder = try await Self.ctl(["holds", "list", "--order", "order-ctl-3"] + flags)
            let orderHolds = (byOrder.json as? [String: Any])?["holds"] as? [[String: Any]] ?? []
            #expect(orderHolds.map { $0["reservationId"] as? String } == ["ctl-3"])

            let show = try await Self.ctl(["holds", "show", "ctl-2"] + flags)
            #expect(Self.same(show.json, try await Self.api(node, "/v1/reservations/ctl-2")), "holds show over \(server): \(show.output)")
            let sku = try await Self.ctl(["sku", "show", "tee"] + flags)
            #expect(Self.same(sku.json, try await Self.api(node, "/v1/skus/tee")), "sku show over \(server)")
            let mug = try await Self.ctl(["sku", "show", "mug, large"] + flags)
            #expect((mug.json as? [String: Any])?["sku"] as? String == "mug, large")

            let cluster = try await Self.ctl(["cluster", "status"] + flags)
            let mine = cluster.json as? [String: Any] ?? [:]
            let theirs = try await Self.api(node, "/v1/cluster") as? [String: Any] ?? [:]
            for key in ["nodeId", "role", "term", "leaderId", "commitIndex", "appliedIndex"] {
                #expect(Self.same(mine[key], theirs[key]), "cluster status \(key) over \(server): \(mine[key] ?? "nil") vs \(theirs[key] ?? "nil")")
            }
            let audit = try await Self.ctl(["audit"] + flags)
            #expect(audit.status == 0, "\(audit.output)")
            #expect((audit.json as? [String: Any])?["clean"] as? Bool == true)
            let stats = try await Self.ctl(["stats", "--interval", "200ms"] + flags)
            #expect(stats.status == 0, "\(stats.output)")
            let counts = ((stats.json as? [String: Any])?["stats"] as? [String: Any])?["reservations"] as? [String: Int]
            #expect(counts?["granted"] == 5)
            // The table says the same in columns.
            let table = try await Self.ctl(["holds", "list", "--sku", "tee", "--server", server] + admin)
            #expect(table.lines.first?.hasPrefix("RESERVATION") == true)
            #expect(table.lines.count == 6, "\(table.output)")
        }
        // Lifecycle: extend, confirm, release; each answers the hold.
        let extended = try await Self.ctl(["holds", "extend", "ctl-0", "--ttl", "10m", "-o", "json", "--server", server] + admin)
        let expiresAt = (extended.json as? [String: Any])?["expiresAt"] as? Int ?? 0
        let createdAt = (extended.json as? [String: Any])?["createdAt"] as? Int ?? 0
        #expect(extended.status == 0 && expiresAt >= createdAt + 600_000 - 1000, "\(extended.output)")
        let confirmed = try await Self.ctl(["holds", "confirm", "ctl-0", "-o", "json", "--server", Self.servers(node)[1]] + admin)
        #expect((confirmed.json as? [String: Any])?["status"] as? String == "confirmed")
        let released = try await Self.ctl(["--server", server, "holds", "release", "ctl-1"] + admin)
        #expect(released.status == 0 && released.output.contains("released"), "\(released.output)")
        let rows = try await client.rows("tee")
        #expect(rows.values.reduce(0) { $0 + ($1["sold"] ?? 0) } == 1)
        #expect(rows.values.reduce(0) { $0 + ($1["held"] ?? 0) } == 3 + 4 + 5)
        await client.connection.close()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func errorsAreOneLineWithTheDocumentedExitCode() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let closedPort = try RedisServerProcess.freePort()
        for server in Self.servers(node) {
            let scheme = server.hasPrefix("resp") ? "resp" : "http"
            let unknown = try await Self.ctl(["holds", "show", "no-such-hold", "--server", server, "--token", node.adminToken])
            #expect(unknown.status == 1)
            #expect(unknown.lines == ["stockadectl: not_found: no reservation no-such-hold"], "\(unknown.output)")
            let wrongToken = try await Self.ctl(["holds", "list", "--server", server, "--token", "not-a-token"])
            #expect(wrongToken.status == 2)
            #expect(wrongToken.lines.count == 1 && wrongToken.output.contains("refused the token"), "\(wrongToken.output)")
            let checkout = try await Self.ctl(["audit", "--server", server, "--token", node.checkoutToken])
            #expect(checkout.status == 2)
            #expect(checkout.lines.count == 1 && checkout.output.contains("admin token"), "\(checkout.output)")
            let noServer = try await Self.ctl(["cluster", "status", "--server", "\(scheme)://127.0.0.1:\(closedPort)", "--token", "x"])
            #expect(noServer.status == 2)
            #expect(noServer.lines == ["stockadectl: cannot reach \(scheme)://127.0.0.1:\(closedPort): connection refused"], "\(noServer.output)")
        }
        let usage = try await Self.ctl(["holds", "extend", "x", "--ttl", "soon", "--token", "t"])
        #expect(usage.status == 2 && usage.lines.count == 1, "\(usage.output)")
        let noToken = try await Self.ctl(["holds", "list", "--server", Self.servers(node)[0]])
        #expect(noToken.status == 2 && noToken.lines == ["stockadectl: no token: pass --token or set STOCKADE_TOKEN"], "\(noToken.output)")
        let completion = try await Self.ctl(["--generate-completion-script", "bash"])
        #expect(completion.status == 0 && completion.output.contains("stockadectl"))
    }

    /// A healthy node with a hot SKU audits clean; a cache counter raised by 5 behind the node's
    /// back is reported on its exact row, with the numbers, and exit 1.
    @Test func auditReportsACacheCounterChangedBehindTheNode() async throws {
        let redis = RedisServerProcess()
        try await redis.start()
        let node = try HotPathIntegrationTests.node(redis: redis, resp: true)
        defer { node.destroy() }
        try await node.start()
        let client = NodeClient(connection: try await node.connect(), token: node.adminToken)
        try await client.setStock("flash", "yiwu", 500, admin: node.adminToken)
        try await client.setStock("flash", "guangzhou", 300, admin: node.adminToken)
        let flags = ["--server", Self.servers(node)[0], "--token", node.adminToken]
        let hot = try await Self.ctl(["sku", "hot", "flash"] + flags)
        #expect(hot.status == 0, "\(hot.output)")
        // Wait until the coordinator has credited both rows' allotments to Redis.
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            let counter = try await redis.admin("GET", "stockade:allot:flash\u{1F}guangzhou")
            if let units = Int(counter), units > 0 { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        for index in 0..<20 {
            let (status, json) = try await client.reserve(id: "hot-\(index)", sku: "flash", quantity: 2)
            #expect(status == 201 && json["path"] as? String == "cache", "\(json)")
        }
        let clean = try await Self.ctl(["audit", "-o", "json"] + flags)
        #expect(clean.status == 0, "\(clean.output)")
        let checked = (clean.json as? [String: Any])?["checked"] as? [String: Any]
        #expect(checked?["cacheRows"] as? Int == 2, "\(clean.output)")
        let queue = try await Self.ctl(["queue", "status", "-o", "json"] + flags)
        #expect(queue.status == 0 && (queue.json as? [String: Any])?["breaker"] as? String == "closed", "\(queue.output)")

        _ = try await redis.admin("INCRBY", "stockade:allot:flash\u{1F}yiwu", "5")
        let broken = try await Self.ctl(["audit", "-o", "json"] + flags)
        #expect(broken.status == 1, "\(broken.output)")
        let findings = (broken.json as? [String: Any])?["findings"] as? [[String: Any]] ?? []
        #expect(findings.count == 1, "\(broken.output)")
        let finding = findings.first ?? [:]
        #expect(finding["sku"] as? String == "flash" && finding["warehouse"] as? String == "yiwu" && finding["check"] as? String == "cache")
        #expect((finding["derived"] as? Int ?? 0) - (finding["ledger"] as? Int ?? 0) == 5, "\(finding)")
        let table = try await Self.ctl(["audit", "--sku", "flash"] + flags)
        #expect(table.status == 1)
        #expect(table.lines.contains { $0.hasPrefix("flash") && $0.contains("yiwu") && $0.contains("cache") && $0.contains("-5") }, "\(table.output)")
        await client.connection.close()
        await redis.stop()
    }

    /// `watch` in a real terminal: the hold count on screen follows new reservations, `q` quits,
    /// and the shell gets its terminal back (canonical mode, echo, the main screen).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"))) func watchRefreshesAndQuitsCleanlyUnderTmux() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let client = NodeClient(connection: try await node.connect(), token: node.adminToken)
        try await client.setStock("tee", "yiwu", 100, admin: node.adminToken)
        _ = try await client.reserve(id: "w-0", sku: "tee")
        let socket = "stockade-watch-\(ProcessInfo.processInfo.processIdentifier)"
        func tmux(_ arguments: String...) async throws -> String {
            try await ChildProcess.run("tmux", ["-L", socket] + arguments, timeout: .seconds(10)).output
        }
        defer { _ = try? ChildProcess(
            "/usr/bin/tmux", ["-L", socket, "kill-server"], environment: [:], outputPath: "/dev/null").wait() }
        _ = try await tmux("new-session", "-d", "-s", "w", "-x", "120", "-y", "40", "env -i PATH=/usr/bin:/bin TERM=xterm-256color bash --norc --noprofile")
        let command = "\(NodeProcess.productPath("stockadectl")) watch --server resp://127.0.0.1:\(node.respPort) --token \(node.adminToken); echo WATCH-EXIT=$?"
        _ = try await tmux("send-keys", "-t", "w", command, "Enter")
        func screenShows(_ text: String) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if try await tmux("capture-pane", "-t", "w", "-p").contains(text) { return true }
                try await Task.sleep(for: .milliseconds(100))
            }
            return false
        }
        let first = try await screenShows("holds held: 1 ")
        let initial = try await tmux("capture-pane", "-t", "w", "-p")
        #expect(first, "\(initial)")
        for index in 1...4 { _ = try await client.reserve(id: "w-\(index)", sku: "tee") }
        let changed = try await screenShows("holds held: 5 ")
        let screen = try await tmux("capture-pane", "-t", "w", "-p")
        #expect(changed, "\(screen)")
        _ = try await tmux("send-keys", "-t", "w", "q")
        #expect(try await screenShows("WATCH-EXIT=0"))
        _ = try await tmux(
            "send-keys", "-t", "w", "stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo | sed s/^/MODE=/", "Enter")
        #expect(try await screenShows("MODE=icanon"))
        let pane = try await tmux("capture-pane", "-t", "w", "-p")
        #expect(pane.contains("MODE=echo") && !pane.contains("MODE=-icanon") && !pane.contains("MODE=-echo"), "\(pane)")
        #expect(!pane.contains("EXPIRING NEXT"), "the watch screen is gone: \(pane)")
        // Ctrl-C ends it the same way: the terminal comes back.
        _ = try await tmux("send-keys", "-t", "w", "clear; " + command.replacingOccurrences(of: "WATCH-EXIT", with: "AGAIN-EXIT"), "Enter")
        #expect(try await screenShows("holds held: 5 "))
        _ = try await tmux("send-keys", "-t", "w", "C-c")
        #expect(try await screenShows("AGAIN-EXIT=0"))
        _ = try await tmux(
            "send-keys", "-t", "w", "stty -a | tr ' ;' '\\n\\n' | grep -x -e -icanon -e icanon -e -echo -e echo | sed s/^/AFTER=/", "Enter")
        #expect(try await screenShows("AFTER=icanon"))
        let after = try await tmux("capture-pane", "-t", "w", "-p")
        #expect(after.contains("AFTER=echo") && !after.contains("AFTER=-echo") && !after.contains("EXPIRING NEXT"), "\(after)")
        await client.connection.close()
    }
}
