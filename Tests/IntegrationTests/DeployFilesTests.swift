import Foundation
import StockadeClient
import StockadeTesting
import Testing

/// The deploy files, each checked by the tool its world uses: `systemd-analyze verify` for the
/// units, `promtool` for the alert rules and scrape config, a real Prometheus scraping a real node
/// for the series the rules and the Grafana board use, and the Kubernetes manifests' shape.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DeployFilesTests {
    static let deploy = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy").path

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func systemdUnitsVerify() async throws {
        let directory = NodeProcess.temporaryDirectory(prefix: "units")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // verify checks that ExecStart's binary exists: point it at the one just built.
        let node = try String(contentsOfFile: Self.deploy + "/systemd/stockade-node@.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/stockade-node", with: NodeProcess.productPath("stockade-node"))
        try node.write(toFile: directory + "/stockade-node@n1.service", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: Self.deploy + "/systemd/stockade-redis.service", toPath: directory + "/stockade-redis.service")
        let run = try await ChildProcess.run(
            "systemd-analyze", ["verify", directory + "/stockade-node@n1.service", directory + "/stockade-redis.service"])
        #expect(run.status == 0, "\(run.output)")
        // A setting systemd does not understand is only a warning: none may appear.
        #expect(run.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(run.output)")
        for setting in ["ProtectSystem=strict", "StateDirectory=stockade/%i", "LimitNOFILE=", "NoNewPrivileges=yes", "User=stockade"] {
            #expect(node.contains(setting), "\(setting)")
        }
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/promtool")))
    func alertRulesAndScrapeConfigCheck() async throws {
        let rules = try await ChildProcess.run("promtool", ["check", "rules", Self.deploy + "/prometheus/alerts.yml"])
        #expect(rules.status == 0 && rules.output.contains("SUCCESS: 10 rules found"), "\(rules.output)")
        let config = try await ChildProcess.run("promtool", ["check", "config", Self.deploy + "/prometheus/prometheus.yml"])
        #expect(config.status == 0, "\(config.output)")
    }

    /// A real Prometheus scrapes a real node (with Redis, so the cache's series exist too), loads
    /// the alert rules, and has every series the rules and the dashboard name.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus")))
    func aRealPrometheusScrapesARealNode() async throws {
        let redis = RedisServerProcess()
        try await redis.start()
        let node = try HotPathIntegrationTests.node(redis: redis)
        defer { node.destroy() }
        try await node.start()
        let client = NodeClient(connection: try await node.connect(), token: node.adminToken)
        try await client.setStock("tee", "yiwu", 10, admin: node.adminToken)
        _ = try await client.reserve(id: "prom-1", sku: "tee")

        let directory = NodeProcess.temporaryDirectory(prefix: "prometheus")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let port = try RedisServerProcess.freePort()
        try """
            global: {scrape_interval: 1s, evaluation_interval: 1s}
            rule_files: ["\(Self.deploy)/prometheus/alerts.yml"]
            scrape_configs:
              - job_name: stockade
                static_configs: [{targets: ["127.0.0.1:\(node.port)"]}]
            """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try ChildProcess(
            "/usr/bin/prometheus",
            ["--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data", "--web.listen-address=127.0.0.1:\(port)"],
            environment: ProcessInfo.processInfo.environment, outputPath: directory + "/prometheus.log")
        defer {
            prometheus.signal(SIGKILL)
            prometheus.wait()
        }
        func query(_ path: String) async throws -> [String: Any] {
            let connection = try await HTTPConnection.connect(host: "127.0.0.1", port: port)
            defer { Task { await connection.close() } }
            let answer = try await connection.send(method: .GET, path: path, timeout: .seconds(5))
            return (try? JSONSerialization.jsonObject(with: Data(answer.body))) as? [String: Any] ?? [:]
        }
        var names: Set<String> = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let answer = try? await query("/api/v1/query?query=stockade_reservations_total"),
                let result = (answer["data"] as? [String: Any])?["result"] as? [Any], !result.isEmpty,
                let labels = try? await query("/api/v1/label/__name__/values")
            {
                names = Set((labels["data"] as? [String] ?? []).filter { $0.hasPrefix("stockade_") })
                if names.contains("stockade_cache_hit_rate") { break }
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(!names.isEmpty, "Prometheus scraped stockade_ series: \((try? String(contentsOfFile: directory + "/prometheus.log", encoding: .utf8))?.suffix(2000) ?? "")")
        // Every series the alert rules and the dashboard use is one the node exports.
        let rules = try String(contentsOfFile: Self.deploy + "/prometheus/alerts.yml", encoding: .utf8)
        let board = try String(contentsOfFile: Self.deploy + "/grafana/stockade.json", encoding: .utf8)
        let used = Self.seriesNames(in: rules).union(Self.seriesNames(in: board))
        #expect(used.count >= 15, "\(used.sorted())")
        let missing = used.filter { !names.contains($0) && !names.contains($0 + "_bucket") }
        #expect(missing.isEmpty, "not exported: \(missing.sorted()); exported: \(names.sorted())")
        let loaded = try await query("/api/v1/rules")
        let groups = (loaded["data"] as? [String: Any])?["groups"] as? [[String: Any]] ?? []
        #expect(groups.flatMap { $0["rules"] as? [Any] ?? [] }.count == 10, "\(loaded)")
        await client.connection.close()
        await redis.stop()
    }

    /// `stockade_…` names in a text, without the `_bucket` of a histogram.
    static func seriesNames(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "stockade_[a-z_]+")
        let range = NSRange(text.startIndex..., in: text)
        return Set(regex.matches(in: text, range: range).compactMap { Range($0.range, in: text).map { String(text[$0]) } }.map {
            $0.hasSuffix("_bucket") ? String($0.dropLast(7)) : $0
        })
    }

    @Test func theKubernetesManifestsHaveWhatAClusterNeeds() async throws {
        let script = """
            import sys, yaml, json
            docs = list(yaml.safe_load_all(open(sys.argv[1])))
            kinds = {d["kind"]: d for d in docs if d}
            s = kinds["StatefulSet"]["spec"]
            c = s["template"]["spec"]["containers"][0]
            headless = [d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"]
            configs = kinds["ConfigMap"]["data"]
            nodes = sorted(json.loads(v)["nodeId"] for v in configs.values())
            print(json.dumps({
              "replicas": s["replicas"], "serviceName": s["serviceName"], "headless": [h["metadata"]["name"] for h in headless],
              "pdb": kinds["PodDisruptionBudget"]["spec"].get("maxUnavailable"),
              "readiness": c["readinessProbe"]["httpGet"]["path"], "liveness": c["livenessProbe"]["httpGet"]["path"],
              "claims": [t["metadata"]["name"] for t in s["volumeClaimTemplates"]],
              "secret": [v["secret"]["secretName"] for v in s["template"]["spec"]["volumes"] if "secret" in v],
              "configMap": [v["configMap"]["name"] for v in s["template"]["spec"]["volumes"] if "configMap" in v],
              "nodes": nodes, "digestsOnly": all("sha256:" in t for v in configs.values() for r in json.loads(v)["tokens"].values() for t in r),
              "probeSchemes": sorted({c[p]["httpGet"].get("scheme", "HTTP") for p in ("readinessProbe", "livenessProbe")}),
              "tlsMount": [m["mountPath"] for m in c["volumeMounts"] if m["name"] == "tls"],
              "tlsFiles": sorted({f for v in configs.values() for k, f in json.loads(v)["tls"].items() if k.endswith("File")}),
              "peerCertificates": all(json.loads(v)["tls"].get("requirePeerCertificates") for v in configs.values())}))
            """
        let scriptPath = NodeProcess.temporaryDirectory(prefix: "k8s") + "/check.py"
        try script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let run = try await ChildProcess.run("python3", [scriptPath, Self.deploy + "/k8s/stockade.yaml"])
        #expect(run.status == 0, "\(run.output)")
        let facts = (try? JSONSerialization.jsonObject(with: Data(run.output.utf8))) as? [String: Any] ?? [:]
        #expect(facts["replicas"] as? Int == 3 && facts["serviceName"] as? String == "stockade", "\(run.output)")
        #expect(facts["headless"] as? [String] == ["stockade"] && facts["pdb"] as? Int == 1)
        #expect(facts["readiness"] as? String == "/readyz" && facts["liveness"] as? String == "/healthz")
        #expect(facts["claims"] as? [String] == ["data"] && facts["secret"] as? [String] == ["stockade-cluster", "stockade-tls"])
        // TLS everywhere: the material from the Secret, mounted where every node's config looks.
        #expect(facts["probeSchemes"] as? [String] == ["HTTPS"] && facts["tlsMount"] as? [String] == ["/etc/stockade-tls"])
        #expect(facts["tlsFiles"] as? [String] == ["/etc/stockade-tls/ca.crt", "/etc/stockade-tls/tls.crt", "/etc/stockade-tls/tls.key"])
        #expect(facts["peerCertificates"] as? Bool == true)
        #expect(facts["configMap"] as? [String] == ["stockade-config"] && facts["nodes"] as? [String] == ["n1", "n2", "n3"])
        #expect(facts["digestsOnly"] as? Bool == true)
    }
}
