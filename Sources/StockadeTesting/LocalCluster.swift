import Foundation
import StockadeClient
import StockadeTLS

/// A real cluster of `stockade-node` processes on loopback, driven through `deploy/local/cluster.sh`
/// (so tests exercise the same tool people use), in its own state directory and port range.
public final class LocalCluster: @unchecked Sendable {
    public let nodes: Int
    public let directory: String
    public let httpBase: Int
    public let peerBase: Int
    /// Node I serves RESP on respBase + I (httpBase + 300 unless given).
    public let respBase: Int
    public let adminToken = "test-admin-token"
    public let checkoutToken = "test-checkout-token"

    public let snapshotInterval: Int?
    public let logLevel: String
    /// With a port: `up` also starts redis-server there and gives every node the hot path.
    public let redisPort: Int?
    /// With a directory (`deploy/local/tls.sh`): TLS on HTTP, RESP and peers.
    public let tlsDirectory: String?

    public init(
        nodes: Int = 3, httpBase: Int, peerBase: Int, snapshotInterval: Int? = nil, logLevel: String = "notice",
        redisPort: Int? = nil, respBase: Int? = nil, tlsDirectory: String? = nil
    ) {
        self.tlsDirectory = tlsDirectory
        self.respBase = respBase ?? httpBase + 300
        self.nodes = nodes
        self.redisPort = redisPort
        self.snapshotInterval = snapshotInterval
        self.logLevel = logLevel
        self.httpBase = httpBase
        self.peerBase = peerBase
        directory = NodeProcess.temporaryDirectory(prefix: "stockade-cluster")
    }

    static var script: String {
        // Sources/StockadeTesting/LocalCluster.swift → the repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/local/cluster.sh").path
    }

    public func httpPort(_ node: Int) -> Int { httpBase + node }
    public func respPort(_ node: Int) -> Int { respBase + node }

    /// Runs `cluster.sh` with `arguments` on a thread of its own (it blocks) and returns its output.
    @discardableResult
    public func run(_ arguments: [String]) async throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["STOCKADE_NODE_BIN"] = NodeProcess.binaryPath
        environment["STOCKADE_CLUSTER_DIR"] = directory
        environment["STOCKADE_HTTP_PORT_BASE"] = String(httpBase)
        environment["STOCKADE_PEER_PORT_BASE"] = String(peerBase)
        environment["STOCKADE_RESP_PORT_BASE"] = String(respBase)
        environment["STOCKADE_ADMIN_TOKEN"] = adminToken
        environment["STOCKADE_CHECKOUT_TOKEN"] = checkoutToken
        environment["STOCKADE_UP_TIMEOUT"] = "180"
        environment["STOCKADE_LOG_LEVEL"] = logLevel
        if let snapshotInterval { environment["STOCKADE_SNAPSHOT_INTERVAL"] = String(snapshotInterval) }
        if let redisPort { environment["STOCKADE_REDIS_PORT"] = String(redisPort) }
        if let tlsDirectory { environment["STOCKADE_TLS_DIR"] = tlsDirectory }
        let finalEnvironment = environment
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do {
                    let (status, text) = try Self.spawnAndWait(
                        "/bin/bash", [Self.script] + arguments, environment: finalEnvironment)
                    if status == 0 {
                        continuation.resume(returning: text)
                    } else {
                        continuation.resume(
                            throwing: NodeProcessError("cluster.sh \(arguments.joined(separator: " ")) failed (\(status)): \(text)"))
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    static func spawnAndWait(_ path: String, _ arguments: [String], environment: [String: String]) throws -> (Int32, String) {
        let outputPath = NSTemporaryDirectory() + "cluster-sh-\(UInt64.random(in: 0...UInt64.max)).out"
        defer { unlink(outputPath) }
        let child = try ChildProcess(path, arguments, environment: environment, outputPath: outputPath)
        let status = child.wait()
        return (status, (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "")
    }

    public func up() async throws { try await run(["up", "--nodes", String(nodes)] + (redisPort == nil ? [] : ["--redis"])) }
    public func kill(_ node: Int) async throws { try await run(["kill", "n\(node)"]) }
    public func start(_ node: Int) async throws { try await run(["start", "n\(node)"]) }

    /// Stops every node and deletes the state directory.
    public func destroy() async {
        _ = try? await run(["down"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func connect(_ node: Int) async throws -> HTTPConnection {
        let tls = try tlsDirectory.map { try StockadeTLS.clientContext(caFile: $0 + "/ca.crt") }
        return try await HTTPConnection.connect(host: "127.0.0.1", port: httpPort(node), tls: tls, timeout: .seconds(2))
    }

    public func log(_ node: Int) -> String {
        (try? String(contentsOfFile: "\(directory)/n\(node)/node.log", encoding: .utf8)) ?? ""
    }

    public func logTail(_ node: Int) -> String {
        guard let text = try? String(contentsOfFile: "\(directory)/n\(node)/node.log", encoding: .utf8) else { return "(no log)" }
        return String(text.suffix(3000))
    }
}
