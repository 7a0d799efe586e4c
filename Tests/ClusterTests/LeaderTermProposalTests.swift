import Cluster
import Consensus
import Foundation
import Ledger
import Logging
import Metrics
import Node
import StockadeCore
import Testing

/// Three cluster replicas in one process, their messages handed over in memory.
final class InProcessCluster: Sendable {
    let replicas: [NodeID: ClusterReplica]
    let directory: String

    init(layout: [Warehouse]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("stockade-inproc-\(UUID().uuidString)").path
        let voters: [NodeID] = [1, 2, 3]
        var replicas: [NodeID: ClusterReplica] = [:]
        for id in voters {
            replicas[id] = try ClusterReplica(
                configuration: .init(
                    nodeID: id, voters: voters, dataDirectory: "\(directory)/n\(id)", warehouses: layout, tickMs: 10,
                    quorumDeadlineMs: 2_000),
                logger: Logger(label: "test"), metrics: ReplicaMetrics(factory: NOOPMetricsHandler.instance))
        }
        self.replicas = replicas
        let all = replicas
        for (id, replica) in all {
            replica.setSender(
                { envelopes in for envelope in envelopes { all[envelope.to]?.deliver(envelope) } },
                frames: { frame, peer in
                    guard let target = all[peer] else { return false }
                    switch frame {
                    case .forward(let requestID, let commands):
                        target.deliverForward(from: id, requestID: requestID, commands: commands)
                    case .reply(let requestID, let applied, let outcomes):
                        target.deliverForwardReply(requestID: requestID, appliedIndex: applied, outcomes: outcomes)
                    case .clock(let ping):
                        target.deliverClock(ping, from: id)
                    }
                    return true
                })
        }
        for replica in replicas.values { replica.startLoop() }
    }

    /// The leader and its term, once one node leads and the others follow it.
    func leader(within timeout: Duration = .seconds(20)) async throws -> (ClusterReplica, Term) {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let statuses = replicas.values.map(\.currentStatus)
            if let leader = statuses.first(where: { $0.role == .leader }),
                statuses.allSatisfy({ $0.leaderID == leader.nodeID && $0.term == leader.term })
            {
                return (replicas[leader.nodeID]!, leader.term)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw StockadeError(.unavailable, "no leader within \(timeout)")
    }

    func shutdown() async {
        for replica in replicas.values { replica.stop() }
        for replica in replicas.values { await replica.waitForLoop() }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// A leader's own decisions (the hot path's coordinator) are written in the term they were taken
/// in, or not at all: never forwarded by a node that no longer leads, never written by a leader
/// of another term.
@Suite(.timeLimit(.minutes(2))) struct LeaderTermProposalTests {
    static let layout = [Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1)]

    static func isNotLeader(_ outcome: Outcome) -> Bool {
        if case .rejected(let error, _) = outcome { return error.code == .notLeader }
        return false
    }

    @Test func aLeadersDecisionIsWrittenOnlyInItsOwnTerm() async throws {
        let cluster = try InProcessCluster(layout: Self.layout)
        let (leader, term) = try await cluster.leader()
        let follower = cluster.replicas.values.first { $0 !== leader }!
        let sku = SKU("tee")
        let yiwu = WarehouseID("yiwu")

        // The new leader writes the configured layout first.
        while leader.read({ $0.warehouses.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }

        let written = await leader.propose(.setStock(sku: sku, warehouse: yiwu, total: 7), asLeaderOf: term)
        guard case .stockRow = written else {
            Issue.record("the leader's own proposal in its term was not written: \(written)")
            await cluster.shutdown()
            return
        }
        // A node that does not lead in that term writes nothing, and does not forward.
        #expect(Self.isNotLeader(await follower.propose(.setStock(sku: sku, warehouse: yiwu, total: 3), asLeaderOf: term)))
        if term > 0 {
            #expect(
                Self.isNotLeader(await leader.propose(.setStock(sku: sku, warehouse: yiwu, total: 5), asLeaderOf: term - 1)))
        }
        #expect(
            Self.isNotLeader(await leader.propose(.setStock(sku: sku, warehouse: yiwu, total: 9), asLeaderOf: term + 1)))
        // Ordinary proposals still reach the leader from any node.
        let forwarded = await follower.propose(.setStock(sku: SKU("cap"), warehouse: yiwu, total: 4))
        guard case .stockRow = forwarded else {
            Issue.record("a follower's ordinary proposal was not forwarded: \(forwarded)")
            await cluster.shutdown()
            return
        }

        try await leader.readBarrier()
        let total = leader.read { $0.rows(of: sku)?.first?.row.total }
        #expect(total == 7)
        #expect(leader.read { $0.rows(of: SKU("cap"))?.first?.row.total } == 4)
        await cluster.shutdown()
    }
}
