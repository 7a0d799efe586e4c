import Ledger
import Logging
import Node
import Replication
import StockadeCore

/// What a cluster member tells the API about itself, and what it logs as its driver reports events.
extension ClusterReplica {
    public var leaderTerm: UInt64? {
        let status = currentStatus
        return status.role == .leader ? status.term : nil
    }

    public var memberStatus: MemberStatus {
        let status = currentStatus
        return MemberStatus(
            nodeID: status.nodeID, role: status.role.rawValue, term: status.term, leaderID: status.leaderID,
            commitIndex: status.commitIndex, appliedIndex: status.appliedIndex,
            peers: status.peers.map {
                MemberStatus.Peer(
                    nodeID: $0.nodeID, matchIndex: $0.matchIndex, lastContactMs: $0.lastContactMs,
                    clockOffsetMs: status.clock.peerOffsetsMs[$0.nodeID])
            },
            clock: MemberStatus.Clock(
                agreed: status.clock.agreement != nil, distanceMs: status.clock.ownDistanceMs,
                offClock: (status.clock.ownClockOff ? [status.nodeID] : []) + status.clock.peersOff),
            local: status.local)
    }

    public var answersFromAppliedState: Bool { caughtUpLeaderNow }

    public func provisionalHold(_ id: ReservationID) -> Hold? {
        withDriver { $0.provisionalHold(id) }
    }

    public func localAudit(sku: SKU?) -> (provisionalHolds: Int, findings: [AuditFinding]) {
        withDriver { ($0.local.count, $0.local.audit(in: $0.ledger, sku: sku)) }
    }

    func log(_ event: Driver.Event) {
        switch event {
        case .leading(let term, let lastIndex): logger.info("leading", metadata: ["term": "\(term)", "lastIndex": "\(lastIndex)"])
        case .stoppedLeading(let term): logger.info("no longer leading", metadata: ["term": "\(term)"])
        case .proposingWarehouses(let count):
            logger.info("proposing the configured warehouse layout", metadata: ["warehouses": "\(count)"])
        case .installedSnapshot(let index, let bytes):
            logger.info("installed snapshot", metadata: ["index": "\(index)", "bytes": "\(bytes)"])
        case .ownClockOff(let distanceMs):
            logger.error(
                "this node's wall clock is off the time a majority of the cluster agrees on; it will not lead until it is back",
                metadata: ["offByMs": "\(distanceMs)"])
        case .ownClockAgreed:
            logger.notice("this node's wall clock agrees with the cluster's again")
        }
    }
}
