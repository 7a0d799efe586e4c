import Foundation
import StockadeClient
import StockadeCore
import StockadeTesting
import Testing

/// TLS on every way into a node, with certificates from `deploy/local/tls.sh` (openssl): the
/// Swift client and clients nobody here wrote (curl, redis-cli) reserve over HTTPS and RESP with
/// TLS; a plaintext client and one that does not trust the authority get nothing; in a cluster
/// whose peers must present a certificate from the cluster's authority, one from another
/// authority is refused, and the node holding it is cut off while the others carry on.
@Suite(.serialized, .timeLimit(.minutes(6))) struct TLSIntegrationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    /// Makes an authority in `directory` (unless there is one) and certificates for `names`.
    static func certificates(_ directory: String, _ names: [String]) async throws {
        let made = try await ChildProcess.run("bash", [root + "/deploy/local/tls.sh", directory] + names)
        try #require(made.status == 0, "tls.sh: \(made.output)")
    }

    @Test func reservationsOverHTTPSAndRESPWithTLS() async throws {
        let tls = NodeProcess.temporaryDirectory(prefix: "tls")
        defer { try? FileManager.default.removeItem(atPath: tls) }
        try await Self.certificates(tls, ["node"])
        let node = NodeProcess(extraArguments: ["--tls-cert", tls + "/node.crt", "--tls-key", tls + "/node.key"], resp: true)
        defer { node.destroy() }
        try await node.start()
        let trust = StockadeClient.TLSOptions(caFile: tls + "/ca.crt")

        // The Swift client, over HTTPS (by IP address) and RESP with TLS (by name).
        let admin = try StockadeClient(url: "https://127.0.0.1:\(node.port)", token: node.adminToken, tls: trust)
        _ = try await admin.setStock(sku: "tee", warehouse: "yiwu", total: 10)
        let https = try StockadeClient(url: "https://localhost:\(node.port)", token: node.checkoutToken, tls: trust)
        let overHTTPS = try await https.reserve(.init(reservationId: "tls-1", orderId: "o", region: "east", lines: [.init(sku: "tee", quantity: 2)]))
        #expect(overHTTPS.status == "held")
        let resps = try StockadeClient(url: "resps://localhost:\(node.respPort)", token: node.checkoutToken, tls: trust)
        let overRESP = try await resps.reserve(.init(reservationId: "tls-2", orderId: "o", region: "east", lines: [.init(sku: "tee", quantity: 3)]))
        #expect(overRESP.status == "held")
        #expect(try await resps.confirm("tls-1").status == "confirmed")

        // Clients nobody here wrote.
        let curl = try await ChildProcess.run(
            "curl", [
                "-s", "-w", "\n%{http_code}", "--cacert", tls + "/ca.crt", "-X", "POST", "https://127.0.0.1:\(node.port)/v1/reservations",
                "-H", "Authorization: Bearer \(node.checkoutToken)",
                "-d", #"{"reservationId":"tls-3","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1}]}"#,
            ])
        #expect(curl.status == 0 && curl.output.hasSuffix("\n201"), "\(curl.output)")
        let redisCLI = try await ChildProcess.run(
            "redis-cli", [
                "--tls", "--cacert", tls + "/ca.crt", "-h", "127.0.0.1", "-p", "\(node.respPort)", "-a", node.checkoutToken,
                "--no-auth-warning", "RESERVE", "tls-4", "o", "east", "60", "0", "tee", "1",
            ])
        let heldOverRedisCLI = redisCLI.output.contains("held")
        #expect(redisCLI.status == 0 && heldOverRedisCLI, "\(redisCLI.output)")
        let stock = try await admin.sku("tee")
        #expect(stock.warehouses.first?.held == 5 && stock.warehouses.first?.sold == 2)

        // stockadectl over resps://, trusting the authority by --ca-file, then by nothing.
        let ctl = NodeProcess.productPath("stockadectl")
        let status = try await ChildProcess.run(
            ctl, ["--server", "resps://127.0.0.1:\(node.respPort)", "--token", node.adminToken, "--ca-file", tls + "/ca.crt", "sku", "show", "tee", "-o", "json"])
        let showsHeld = status.output.contains(#""held": 5"#)
        #expect(status.status == 0 && showsHeld, "\(status.output)")
        let refused = try await ChildProcess.run(
            ctl, ["--server", "https://127.0.0.1:\(node.port)", "--token", node.adminToken, "cluster", "status"])
        // On a loaded machine the server's alert can arrive as a closed connection before the
        // client reports the failed verification; either way nothing was answered.
        let saysTLS = refused.output.contains("TLS") || refused.output.contains("CERTIFICATE_VERIFY_FAILED")
            || refused.output.contains("connection closed")
        #expect(refused.status == 2 && saysTLS, "\(refused.output)")

        // Plaintext to a TLS port, and TLS without trusting the authority, get nothing.
        let plain = try StockadeClient(url: "http://127.0.0.1:\(node.port)", token: node.checkoutToken, timeout: .seconds(3))
        await #expect(throws: TransportError.self) { _ = try await plain.warehouses() }
        let untrusting = try StockadeClient(url: "https://127.0.0.1:\(node.port)", token: node.checkoutToken, timeout: .seconds(3))
        await #expect(throws: TransportError.self) { _ = try await untrusting.warehouses() }
        let plainRESP = try await ChildProcess.run("redis-cli", ["-h", "127.0.0.1", "-p", "\(node.respPort)", "PING"], timeout: .seconds(10))
        let ponged = plainRESP.output.contains("PONG")
        #expect(!ponged, "\(plainRESP.output)")
        #expect(try await admin.sku("tee").warehouses.first?.held == 5)
        #expect(node.exitStatus == nil, "the node died: \(node.logTail())")
    }

    @Test func aClusterRefusesAPeerWithTheWrongCertificate() async throws {
        let tls = NodeProcess.temporaryDirectory(prefix: "tls-cluster")
        let rogue = NodeProcess.temporaryDirectory(prefix: "tls-rogue")
        defer {
            try? FileManager.default.removeItem(atPath: tls)
            try? FileManager.default.removeItem(atPath: rogue)
        }
        try await Self.certificates(tls, ["n1", "n2", "n3"])
        try await Self.certificates(rogue, ["n3"])  // same name, another authority
        let cluster = LocalCluster(httpBase: 19_130, peerBase: 19_230, respBase: 19_330, tlsDirectory: tls)
        try await cluster.up()
        do {
            let trust = StockadeClient.TLSOptions(caFile: tls + "/ca.crt")
            // A write through each node: followers send theirs to the leader over TLS peer links,
            // and a linearizable read on a follower is relayed to the leader over HTTPS.
            let admin = try StockadeClient(url: "https://127.0.0.1:\(cluster.httpPort(1))", token: cluster.adminToken, tls: trust)
            _ = try await admin.setStock(sku: "tee", warehouse: "yiwu", total: 100)
            for node in 1...3 {
                let client = try StockadeClient(url: "https://127.0.0.1:\(cluster.httpPort(node))", token: cluster.checkoutToken, tls: trust)
                let hold = try await client.reserve(
                    .init(reservationId: "peer-\(node)", orderId: "o", region: "east", lines: [.init(sku: "tee", quantity: 1)]))
                #expect(hold.status == "held" && hold.path == "quorum")
                #expect(try await client.reservation("peer-\(node)").status == "held")
            }

            // openssl as a peer: n2's certificate is let in; n3's from the other authority is refused.
            func handshake(_ directory: String, _ name: String) async throws -> String {
                try await ChildProcess.run(
                    "bash", [
                        "-c",
                        // TLS 1.3 checks the client's certificate after the client's half of the
                        // handshake: stay a second to read the server's verdict.
                        "sleep 1 | openssl s_client -connect 127.0.0.1:\(cluster.peerBase + 1) -CAfile \(tls)/ca.crt -cert \(directory)/\(name).crt -key \(directory)/\(name).key -verify_return_error 2>&1",
                    ], timeout: .seconds(30)
                ).output
            }
            let good = try await handshake(tls, "n2")
            let goodVerified = good.contains("Verify return code: 0 (ok)") && !good.contains("alert")
            #expect(goodVerified, "\(good)")
            let bad = try await handshake(rogue, "n3")
            let badRefused = bad.contains("alert") && (bad.contains("unknown ca") || bad.contains("certificate"))
            #expect(badRefused, "\(bad)")

            // n3 restarts with the other authority's certificate: no peer takes it, and it takes
            // none, so it never learns a leader; n1 and n2 keep granting.
            try await cluster.kill(3)
            for file in ["n3.crt", "n3.key"] {
                try FileManager.default.removeItem(atPath: tls + "/" + file)
                try FileManager.default.copyItem(atPath: rogue + "/" + file, toPath: tls + "/" + file)
            }
            try await cluster.start(3)
            let rogueTrust = StockadeClient.TLSOptions(caFile: rogue + "/ca.crt")
            let cutOff = try StockadeClient(url: "https://127.0.0.1:\(cluster.httpPort(3))", token: cluster.checkoutToken, tls: rogueTrust)
            var view: ClusterStatus?
            for _ in 0..<100 {
                view = try? await cutOff.cluster()
                if view != nil { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .seconds(3))
            view = try await cutOff.cluster()
            #expect(view?.leaderId == nil, "n3 found a leader: \(String(describing: view))")
            let others = try StockadeClient(url: "https://127.0.0.1:\(cluster.httpPort(1))", token: cluster.checkoutToken, tls: trust)
            let hold = try await others.reserve(
                .init(reservationId: "after-rogue", orderId: "o", region: "east", lines: [.init(sku: "tee", quantity: 1)]))
            #expect(hold.status == "held")
            let logs = cluster.log(1) + cluster.log(2)
            let refusedInLog = logs.contains("closing peer connection")
            #expect(refusedInLog, "no refusal in the logs: \(cluster.logTail(1))")
        } catch {
            Issue.record("\(error)\nn1: \(cluster.logTail(1))\nn3: \(cluster.logTail(3))")
        }
        await cluster.destroy()
    }
}
