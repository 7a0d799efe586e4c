import API
import Cluster
import Consensus
import Replication
import Wire
import Foundation
import Ledger
import Logging
import Node
import StockadeCore

/// Builds a cluster node from the `cluster` section of the config: the replica, the peer
/// transport wired to it, and the routing the API uses to reach the leader.
struct ClusterSetup {
    let replica: ClusterReplica
    let transport: PeerTransport
    let routing: ClusterRouting

    init(
        section: NodeConfiguration.ClusterSection, nodeName: String, dataDirectory: String, warehouses: [Warehouse],
        limits: Limits, environment: [String: String], tls: NodeTLS, logger: Logger, metrics: ReplicaMetrics
    ) throws {
        let me = try parseNodeID(nodeName)
        var members: [UInt64: NodeConfiguration.ClusterSection.Member] = [:]
        for member in section.nodes {
            let id = try parseNodeID(member.id)
            guard members[id] == nil else { throw ConfigurationError("cluster node \(member.id) is listed twice") }
            members[id] = member
        }
        guard [3, 5].contains(members.count) else {
            throw ConfigurationError("a cluster has 3 or 5 nodes; the config lists \(members.count)")
        }
        guard let self_ = members[me] else { throw ConfigurationError("this node (\(nodeName)) is not in cluster.nodes") }

        let secretText: String
        if let path = section.secretFile {
            secretText = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } else if let value = environment["STOCKADE_CLUSTER_SECRET"] {
            secretText = value
        } else {
            throw ConfigurationError("no cluster secret: set STOCKADE_CLUSTER_SECRET or cluster.secretFile")
        }
        guard secretText.utf8.count >= 16 else { throw ConfigurationError("the cluster secret must be at least 16 bytes") }

        let tickMs = section.tickMs ?? 50
        let deadlineMs = section.quorumDeadlineMs ?? 2_000
        guard (5...1_000).contains(tickMs) else { throw ConfigurationError("cluster.tickMs must be 5…1000") }
        guard (100...60_000).contains(deadlineMs) else { throw ConfigurationError("cluster.quorumDeadlineMs must be 100…60000") }

        replica = try ClusterReplica(
            configuration: .init(
                nodeID: me, voters: members.keys.sorted(), dataDirectory: dataDirectory, warehouses: warehouses,
                limits: limits, tickMs: tickMs, quorumDeadlineMs: deadlineMs),
            logger: logger, metrics: metrics)
        let listen = try parseAddress(self_.peer)
        var peers: [PeerTransport.Peer] = []
        var http: [NodeID: (host: String, port: Int)] = [:]
        for (id, member) in members {
            let address = try parseAddress(member.http)
            http[id] = (address.host, address.port)
            guard id != me else { continue }
            let peerAddress = try parseAddress(member.peer)
            peers.append(PeerTransport.Peer(id: id, host: peerAddress.host, port: peerAddress.port))
        }
        let replica = self.replica
        transport = PeerTransport(
            nodeID: me, listenHost: listen.host, listenPort: listen.port, peers: peers, secret: Array(secretText.utf8),
            logger: logger, deliver: { replica.deliver($0) },
            forwarding: .init(
                onForward: { peer, id, commands in replica.deliverForward(from: peer, requestID: id, commands: commands) },
                onReply: { id, applied, outcomes in
                    replica.deliverForwardReply(requestID: id, appliedIndex: applied, outcomes: outcomes)
                },
                onClock: { peer, ping in replica.deliverClock(ping, from: peer) }),
            tls: tls.peers)
        let transport = self.transport
        replica.setSender(
            { transport.send($0) },
            frames: { frame, peer in
                switch frame {
                case .forward(let id, let commands): transport.send(.forward(requestID: id, commands: commands), to: peer)
                case .reply(let id, let applied, let outcomes):
                    transport.send(.forwardReply(requestID: id, appliedIndex: applied, outcomes: outcomes), to: peer)
                case .clock(let ping): transport.send(.clock(ping), to: peer)
                }
            })
        routing = ClusterRouting(
            replica: replica, httpAddresses: http, quorumDeadline: .milliseconds(deadlineMs), tls: tls.relay)
    }
}
