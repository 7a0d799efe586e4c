import Consensus
import StockadeCore
import Testing

/// Scenario tests of the protocol core, driven by hand.
@Suite struct RaftNodeTests {
    /// Delivers every message until the cluster is quiet, persisting and applying as the Ready contract says.
    struct Cluster {
        var nodes: [NodeID: RaftNode] = [:]
        var applied: [NodeID: [Entry]] = [:]
        var down = Set<NodeID>()

        init(size: Int) {
            let ids = (1...size).map(NodeID.init)
            for id in ids {
                nodes[id] = RaftNode(id: id, voters: ids, configuration: ConsensusConfiguration(), random: SplitMix64(seed: id))
            }
        }

        mutating func settle(ticks: Int = 0) {
            for _ in 0..<max(1, ticks) {
                for id in nodes.keys.sorted() where !down.contains(id) { nodes[id]!.tick() }
                var rounds = 0
                while rounds < 100 {
                    rounds += 1
                    var mail: [Envelope] = []
                    for id in nodes.keys.sorted() where !down.contains(id) {
                        let ready = nodes[id]!.ready()
                        mail += ready.messagesBeforePersist + ready.messages
                        applied[id, default: []] += ready.committedEntries
                        nodes[id]!.advance(ready)
                    }
                    if mail.isEmpty { break }
                    for envelope in mail where !down.contains(envelope.to) { nodes[envelope.to]!.step(envelope) }
                }
            }
        }

        var leader: NodeID? { nodes.keys.sorted().first { nodes[$0]!.isLeader && !down.contains($0) } }
    }

    @Test func aClusterElectsOneLeaderAndReplicates() {
        var cluster = Cluster(size: 3)
        cluster.settle(ticks: 30)
        let leader = try! #require(cluster.leader)
        guard case .appended(_, let index, _) = cluster.nodes[leader]!.propose([[1, 2, 3]]) else {
            Issue.record("proposal refused")
            return
        }
        cluster.settle(ticks: 3)
        for id in cluster.nodes.keys {
            #expect(cluster.applied[id]?.last?.index == index)
            #expect(cluster.applied[id]?.last?.payload == [1, 2, 3])
        }
        #expect(cluster.nodes.values.filter(\.isLeader).count == 1)
    }

    /// With instant delivery and no ticks, replication goes quiet after a few rounds: answers to
    /// appends that carry nothing new must not trigger more empty appends (a ping-pong that, on a
    /// real network, spins at full CPU).
    @Test func replicationGoesQuietWithoutTicks() {
        var cluster = Cluster(size: 3)
        cluster.settle(ticks: 30)
        let leader = try! #require(cluster.leader)
        for round in 0..<5 { _ = cluster.nodes[leader]!.propose([[UInt8(round)]]) }
        var rounds = 0
        var quiet = false
        while rounds < 50 {
            rounds += 1
            var mail: [Envelope] = []
            for id in cluster.nodes.keys.sorted() {
                let ready = cluster.nodes[id]!.ready()
                mail += ready.messagesBeforePersist + ready.messages
                cluster.nodes[id]!.advance(ready)
            }
            if mail.isEmpty {
                quiet = true
                break
            }
            for envelope in mail { cluster.nodes[envelope.to]!.step(envelope) }
        }
        #expect(quiet, "still sending after \(rounds) rounds")
        #expect(rounds <= 8)
        for id in cluster.nodes.keys { #expect(cluster.nodes[id]!.commitIndex == cluster.nodes[leader]!.lastIndex) }
    }

    @Test func nothingCommitsWithoutAMajority() {
        var cluster = Cluster(size: 3)
        cluster.settle(ticks: 30)
        let leader = try! #require(cluster.leader)
        let followers = cluster.nodes.keys.filter { $0 != leader }
        cluster.down = Set(followers)
        let before = cluster.nodes[leader]!.commitIndex
        _ = cluster.nodes[leader]!.propose([[9]])
        cluster.settle(ticks: 5)
        #expect(cluster.nodes[leader]!.commitIndex == before)
        // Check-quorum: a leader cut off from the majority steps down.
        cluster.settle(ticks: 30)
        #expect(!cluster.nodes[leader]!.isLeader)
    }

    @Test func aReturningNodeDoesNotDeposeAHealthyLeader() {
        var cluster = Cluster(size: 3)
        cluster.settle(ticks: 30)
        let leader = try! #require(cluster.leader)
        let isolated = cluster.nodes.keys.sorted().first { $0 != leader }!
        let term = cluster.nodes[leader]!.term
        cluster.down = [isolated]
        cluster.settle(ticks: 200)
        cluster.down = []
        // The isolated node campaigned alone (pre-vote only), so its term did not grow.
        #expect(cluster.nodes[isolated]!.term == term)
        cluster.settle(ticks: 30)
        #expect(cluster.leader == leader)
        #expect(cluster.nodes[leader]!.term == term)
    }

    @Test func readIndexNeedsAMajorityToConfirmLeadership() {
        var cluster = Cluster(size: 3)
        cluster.settle(ticks: 30)
        let leader = try! #require(cluster.leader)
        let accepted = cluster.nodes[leader]!.readIndex(7)
        #expect(accepted)
        var ready = cluster.nodes[leader]!.ready()
        #expect(ready.readStates.isEmpty)  // not before the heartbeat round
        cluster.nodes[leader]!.advance(ready)
        for envelope in ready.messagesBeforePersist + ready.messages { cluster.nodes[envelope.to]!.step(envelope) }
        for id in cluster.nodes.keys where id != leader {
            let answer = cluster.nodes[id]!.ready()
            cluster.nodes[id]!.advance(answer)
            for envelope in answer.messages { cluster.nodes[envelope.to]!.step(envelope) }
        }
        ready = cluster.nodes[leader]!.ready()
        #expect(ready.readStates.map(\.requestID) == [7])
        let follower = cluster.nodes.keys.first { $0 != leader }!
        let refused = !cluster.nodes[follower]!.readIndex(8)
        #expect(refused)
    }

    @Test func aVoterAloneLeadsOnItsFirstTick() {
        var node = RaftNode(id: 1, voters: [1], configuration: ConsensusConfiguration(), random: SplitMix64(seed: 9))
        node.tick()
        #expect(node.isLeader)
        guard case .appended(_, let index, _) = node.propose([[1]]) else {
            Issue.record("proposal refused")
            return
        }
        let ready = node.ready()
        #expect(node.commitIndex < index, "committed before its own write")
        node.advance(ready)
        #expect(node.commitIndex == index)
    }

    @Test func quorumArithmetic() {
        #expect(Quorum.size(of: 3) == 2)
        #expect(Quorum.size(of: 5) == 3)
        #expect(Quorum.committedIndex([5, 3, 9]) == 5)
        #expect(Quorum.committedIndex([1, 1, 7, 7, 2]) == 2)
    }
}
