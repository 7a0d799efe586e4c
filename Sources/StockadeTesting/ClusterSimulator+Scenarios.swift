import Consensus
import Ledger
import Replication
import StockadeCore

/// Scripted scenarios on the simulated cluster: the script makes every fault and every call, and
/// the same checkers as the random runs judge the result (`settle()`).
extension ClusterSimulator {
    /// The node that leads now, if exactly one live node thinks it does in the highest term.
    public var leader: NodeID? {
        nodeIDs.filter { nodes[$0]!.driver?.raft.isLeader == true }.max { nodes[$0]!.driver!.raft.term < nodes[$1]!.driver!.raft.term }
    }

    /// The applied ledger of a live node.
    public func ledger(of id: NodeID) -> Ledger? { nodes[id]!.driver?.ledger }

    /// The driver of a live node (for reads of its local log and status).
    public func driver(of id: NodeID) -> ReplicaDriver<Call>? { nodes[id]!.driver }

    /// Sends a client's call to `id`; returns the call's number.
    @discardableResult
    public func submit(_ command: Command, to id: NodeID) -> Int {
        call(command, on: id)
        return nextCall
    }

    /// The first answer a call got, if any yet.
    public func answer(_ call: Int) -> Outcome? { answers[call]?.first }

    /// Runs `count` steps of time, or until `until` holds.
    public func runSteps(_ count: Int, until: (() -> Bool)? = nil) {
        for _ in 0..<count {
            advance()
            if until?() == true { return }
        }
    }

    /// Cuts `id` off from every other node, both ways.
    public func isolate(_ id: NodeID) {
        for other in nodeIDs where other != id { blocked.formUnion([[id, other], [other, id]]) }
    }

    /// Crashes `id` and starts it again from its disk.
    public func restart(_ id: NodeID) {
        crash(id)
        start(id)
    }

    /// Crashes `id`, keeps only the first `keeping` records of its local log (as a recovery that
    /// truncates at a damaged record does), and starts it again.
    /// `damaged` false: recovery does not notice (as a file whose bad record happens to end it
    /// cleanly would not), and only the ledger's progress tells the node.
    public func truncateLocalLog(of id: NodeID, keeping: Int, damaged: Bool = true) {
        crash(id)
        nodes[id]!.disk.local = Array(nodes[id]!.disk.local.prefix(keeping)) + (damaged ? [.damaged] : [])
        start(id)
    }

    /// Records in `id`'s local log on disk.
    public func localLogCount(of id: NodeID) -> Int { nodes[id]!.disk.local.count }

    /// Moves `id`'s wall clock by `jumpMs` (0 sets it right).
    public func jumpClock(of id: NodeID, byMs jumpMs: Int64) { nodes[id]!.jumpMs = jumpMs }

    /// Heals everything, lets the cluster converge and runs the final checks. Returns every violation.
    @discardableResult
    public func settle() -> [String] {
        healAndConverge()
        checkFinalState()
        return violations
    }
}
