import Foundation
import Ledger
import StockadeCore

/// The node's configuration file (JSON). Flags override the file; the environment supplies tokens.
struct NodeConfiguration: Decodable {
    struct WarehouseEntry: Decodable {
        var id: String
        var regions: [String]
        var priority: Int64
        /// The node that owns the warehouse (`n2`): it serves the warehouse's regions from its
        /// local reserve while cut off from the quorum (docs/local-fallback.md).
        var owner: String?
        /// The default local reserve of every SKU here: `{"units": N}` or `{"percent": P}`.
        var localReserve: LocalReserveEntry?

        init(id: String, regions: [String], priority: Int64, owner: String? = nil, localReserve: LocalReserveEntry? = nil) {
            self.id = id
            self.regions = regions
            self.priority = priority
            self.owner = owner
            self.localReserve = localReserve
        }
    }
    struct LocalReserveEntry: Decodable {
        var units: Int64?
        var percent: Int64?

        func policy(warehouse: String) throws -> LocalReservePolicy {
            switch (units, percent) {
            case (let units?, nil): return .units(units)
            case (nil, let percent?): return .percent(percent)
            default: throw ConfigurationError("warehouse \(warehouse): localReserve needs exactly one of units and percent")
            }
        }
    }
    struct Tokens: Decodable {
        var admin: [String]?
        var checkout: [String]?
    }
    /// Optional overrides of `Limits`; every replica of one log must use the same values.
    struct LimitOverrides: Decodable {
        var requestBodyBytesMax: Int?
        var reservationLinesMax: Int?
        var lineQuantityMax: Int64?
        var holdTTLSecondsDefault: Int64?
        var holdTTLSecondsMax: Int64?
        var finishedRetentionMs: Int64?
        var pendingCommandsMax: Int?
        var commitBatchMax: Int?
        var commitWaitMicroseconds: Int?
        var snapshotIntervalEntries: Int?
        var logSegmentBytes: Int?
        var connectionsMax: Int?
        var connectionsPerClientMax: Int?
    }

    /// Membership and timing of a cluster. Without it the node runs alone.
    /// The Redis hot path (docs/hot-path.md). Absent: every reservation takes the quorum path.
    struct RedisSection: Decodable {
        var host: String?
        var port: Int?
        var username: String?
        /// A file holding the password; `STOCKADE_REDIS_PASSWORD` overrides it.
        var passwordFile: String?
        var connections: Int?
        var commandTimeoutMs: Int?
        var hotThresholdPerSecond: Int?
        var coolSeconds: Int?
        var chunkPercent: Int64?
        var chunkMin: Int64?
        var chunkMax: Int64?
        var chunkSeconds: Int64?
        var lowWaterPercent: Int64?
        var backlogMax: Int?
        /// Decrement records idle this long in a stopped consumer's hands are taken over.
        var claimIdleMs: Int64?
    }

    struct ClusterSection: Decodable {
        struct Member: Decodable {
            var id: String
            var http: String
            var peer: String
        }
        /// Every voter, this node included (3 or 5). Static; every node must list the same set.
        var nodes: [Member]
        /// A file holding the shared cluster secret (else `STOCKADE_CLUSTER_SECRET`).
        var secretFile: String?
        var tickMs: Int?
        var quorumDeadlineMs: Int?
    }

    /// TLS (docs/deploying.md). Absent: plaintext, meant for loopback and development.
    struct TLSSection: Decodable {
        /// PEM: this node's certificate chain and its private key. The certificate must name the
        /// addresses other nodes and clients dial (DNS names, or IP addresses for IP literals).
        var certificateFile: String
        var keyFile: String
        /// PEM: the authorities that sign the nodes' certificates. Peer connections and reads
        /// relayed to the leader check the other node's certificate against it (the system's
        /// roots when absent).
        var caFile: String?
        /// Which listeners use TLS; each defaults to true.
        var http: Bool?
        var resp: Bool?
        var peers: Bool?
        /// Whether a node dialling the peer port must present a certificate that `caFile`
        /// signed (default: true when `caFile` is given). The shared-secret handshake runs either way.
        var requirePeerCertificates: Bool?
    }

    var nodeId: String?
    var http: String?
    /// The RESP (TCP API) listen address, host:port; no RESP listener without it.
    var resp: String?
    var cluster: ClusterSection?
    var dataDir: String?
    var warehouses: [WarehouseEntry]?
    var tokens: Tokens?
    var limits: LimitOverrides?
    var expiryTickMs: Int?
    var logLevel: String?
    /// SwiftNIO event-loop threads for HTTP and peer traffic; the machine's core count if unset.
    /// Several nodes sharing one machine run better with fewer each.
    var eventLoopThreads: Int?
    var redis: RedisSection?
    var tls: TLSSection?

    static func load(path: String) throws -> NodeConfiguration {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        do {
            return try JSONDecoder().decode(NodeConfiguration.self, from: data)
        } catch {
            throw ConfigurationError("cannot read config \(path): \(error)")
        }
    }

    /// The demo layout used by `--dev`: four warehouses, one per region.
    static let devWarehouses: [WarehouseEntry] = [
        WarehouseEntry(id: "yiwu", regions: ["east"], priority: 1),
        WarehouseEntry(id: "guangzhou", regions: ["south"], priority: 2),
        WarehouseEntry(id: "beijing", regions: ["north"], priority: 3),
        WarehouseEntry(id: "chengdu", regions: ["west"], priority: 4),
    ]

    func resolvedLimits() -> Limits {
        var result = Limits()
        guard let limits else { return result }
        if let value = limits.requestBodyBytesMax { result.requestBodyBytesMax = value }
        if let value = limits.reservationLinesMax { result.reservationLinesMax = value }
        if let value = limits.lineQuantityMax { result.lineQuantityMax = value }
        if let value = limits.holdTTLSecondsDefault { result.holdTTLSecondsDefault = value }
        if let value = limits.holdTTLSecondsMax { result.holdTTLSecondsMax = value }
        if let value = limits.finishedRetentionMs { result.finishedRetentionMs = value }
        if let value = limits.pendingCommandsMax { result.pendingCommandsMax = value }
        if let value = limits.commitBatchMax { result.commitBatchMax = value }
        if let value = limits.commitWaitMicroseconds { result.commitWaitMicroseconds = value }
        if let value = limits.snapshotIntervalEntries { result.snapshotIntervalEntries = value }
        if let value = limits.logSegmentBytes { result.logSegmentBytes = value }
        if let value = limits.connectionsMax { result.connectionsMax = value }
        if let value = limits.connectionsPerClientMax { result.connectionsPerClientMax = value }
        return result
    }

    func resolvedWarehouses() throws -> [Warehouse] {
        try (warehouses ?? []).map { entry in
            Warehouse(
                id: WarehouseID(entry.id), regions: entry.regions, priority: entry.priority,
                owner: try entry.owner.map(parseNodeID), localReserve: try entry.localReserve?.policy(warehouse: entry.id))
        }
    }
}

/// A configuration problem; the node refuses to start and says why.
struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `n3` → 3. Node ids are `n` and a positive number.
func parseNodeID(_ value: String) throws -> UInt64 {
    guard value.hasPrefix("n"), let number = UInt64(value.dropFirst()), number > 0 else {
        throw ConfigurationError("node id \(value) is not n<number> (n1, n2, ...)")
    }
    return number
}

/// Parses `host:port`.
func parseAddress(_ value: String) throws -> (host: String, port: Int) {
    guard let colon = value.lastIndex(of: ":"), let port = Int(value[value.index(after: colon)...]),
        (0...65535).contains(port)
    else { throw ConfigurationError("address \(value) is not host:port") }
    return (String(value[..<colon]), port)
}
