import Foundation
import Glibc
import StockadeClient

/// Three `stockade-node` processes, each in its own network namespace, driven through
/// `deploy/local/netns-cluster.sh` (partition and heal are real link changes). Needs root and
/// iproute2; `available` says whether this machine has them.
public final class NetnsCluster: @unchecked Sendable {
    public let directory: String
    public let prefix: String
    public let quorumDeadlineMs: Int
    public let adminToken = "test-admin-token"
    public let checkoutToken = "test-checkout-token"

    public init(prefix: String, quorumDeadlineMs: Int = 2_000) {
        self.prefix = prefix
        self.quorumDeadlineMs = quorumDeadlineMs
        directory = NodeProcess.temporaryDirectory(prefix: "stockade-netns")
    }

    /// Root, and `ip netns` works here.
    public static var available: Bool {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip")
        else { return false }
        return (try? LocalCluster.spawnAndWait("/bin/sh", ["-c", "ip netns list"], environment: ProcessInfo.processInfo.environment).0) == 0
    }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/local/netns-cluster.sh").path
    }

    /// Where node `node` answers HTTP from this host.
    public func host(_ node: Int) -> String { "10.232.\(node).2" }

    @discardableResult
    public func run(_ arguments: [String]) async throws -> String {
        var environment = ProcessInfo.processInfo.environment
        environment["STOCKADE_NODE_BIN"] = NodeProcess.binaryPath
        environment["STOCKADE_CLUSTER_DIR"] = directory
        environment["STOCKADE_NETNS_PREFIX"] = prefix
        environment["STOCKADE_QUORUM_DEADLINE_MS"] = String(quorumDeadlineMs)
        environment["STOCKADE_ADMIN_TOKEN"] = adminToken
        environment["STOCKADE_CHECKOUT_TOKEN"] = checkoutToken
        environment["STOCKADE_UP_TIMEOUT"] = "180"
        let finalEnvironment = environment
        return try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do {
                    let (status, text) = try LocalCluster.spawnAndWait("/bin/bash", [Self.script] + arguments, environment: finalEnvironment)
                    if status == 0 {
                        continuation.resume(returning: text)
                    } else {
                        continuation.resume(
                            throwing: NodeProcessError("netns-cluster.sh \(arguments.joined(separator: " ")) failed (\(status)): \(text)"))
                    }
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    public func up() async throws { try await run(["up"]) }
    public func partition(_ node: Int) async throws { try await run(["partition", "n\(node)"]) }
    public func heal() async throws { try await run(["heal"]) }

    /// Stops the nodes, removes the namespaces and links, and deletes the state directory.
    public func destroy() async {
        _ = try? await run(["down"])
        try? FileManager.default.removeItem(atPath: directory)
    }

    public func connect(_ node: Int) async throws -> HTTPConnection {
        try await HTTPConnection.connect(host: host(node), port: 7100, timeout: .seconds(2))
    }

    public func logTail(_ node: Int) -> String {
        guard let text = try? String(contentsOfFile: "\(directory)/n\(node)/node.log", encoding: .utf8) else { return "(no log)" }
        return String(text.suffix(3000))
    }
}
