import Ledger
import StockadeCore

/// A replica that is one member of a cluster, as the API sees it: which node it is, who leads,
/// and how far the log has come. The API routes by this alone and does not know the runtime
/// behind it (`Cluster.ClusterReplica` implements it).
public protocol ClusterMember: ReplicatedLedger {
    var memberStatus: MemberStatus { get }
}

/// A cluster member's view of the cluster (`GET /v1/cluster`, `CLUSTERINFO`).
public struct MemberStatus: Sendable, Equatable {
    public struct Peer: Sendable, Equatable {
        public var nodeID: UInt64
        /// Known on the leader only: the highest log index durable on that peer.
        public var matchIndex: UInt64?
        /// Milliseconds since this node last heard from the peer.
        public var lastContactMs: Int64?
        /// The peer's wall clock minus this node's, as last measured (nil: no recent reading).
        public var clockOffsetMs: Int64?

        public init(nodeID: UInt64, matchIndex: UInt64?, lastContactMs: Int64?, clockOffsetMs: Int64? = nil) {
            self.nodeID = nodeID
            self.matchIndex = matchIndex
            self.lastContactMs = lastContactMs
            self.clockOffsetMs = clockOffsetMs
        }
    }

    /// What the cluster's clocks agree on, as this node sees it.
    public struct Clock: Sendable, Equatable {
        /// A majority of the voters' clocks agree on a time (commands are stamped only with it).
        public var agreed: Bool
        /// How far this node's wall clock is from that time (0: within it; nil: none agreed).
        public var distanceMs: Int64?
        /// Nodes (this one included) whose clocks are off the agreed time by more than the
        /// allowed skew: they do not lead.
        public var offClock: [UInt64]

        public init(agreed: Bool, distanceMs: Int64?, offClock: [UInt64]) {
            self.agreed = agreed
            self.distanceMs = distanceMs
            self.offClock = offClock
        }
    }

    public var nodeID: UInt64
    /// leader, follower, candidate or preCandidate, as the protocol names its roles.
    public var role: String
    public var term: UInt64
    public var leaderID: UInt64?
    public var commitIndex: UInt64
    public var appliedIndex: UInt64
    public var peers: [Peer]
    public var clock: Clock?
    public var local: Local?

    /// The local-warehouse fallback on this node (docs/local-fallback.md).
    public typealias Local = LocalFallbackStatus

    public init(
        nodeID: UInt64, role: String, term: UInt64, leaderID: UInt64?, commitIndex: UInt64, appliedIndex: UInt64, peers: [Peer],
        clock: Clock? = nil, local: Local? = nil
    ) {
        self.clock = clock
        self.local = local
        self.nodeID = nodeID
        self.role = role
        self.term = term
        self.leaderID = leaderID
        self.commitIndex = commitIndex
        self.appliedIndex = appliedIndex
        self.peers = peers
    }

    public var isLeader: Bool { role == "leader" }
}
