import Consensus
import StockadeCore
import Testing

/// Raft's Figure 8 (§5.4.2), played by hand on five protocol cores: a leader must not commit an
/// entry of an earlier term by counting the replicas that hold it, or a later leader may
/// overwrite an entry that was already applied.
@Suite struct FigureEightTests {
    struct Nodes {
        var nodes: [NodeID: RaftNode] = [:]
        var applied: [NodeID: [LogIndex: Entry]] = [:]
        /// Nodes that are down: they take no turn, and messages to them are lost.
        var down = Set<NodeID>()
        let configuration: ConsensusConfiguration
        let ids: [NodeID] = [1, 2, 3, 4, 5]

        init() {
            var configuration = ConsensusConfiguration()
            // Plain votes and one entry per append, so each step below is one message.
            configuration.preVote = false
            configuration.checkQuorum = false
            configuration.appendEntriesMax = 1
            self.configuration = configuration
            for id in ids { nodes[id] = RaftNode(id: id, voters: ids, configuration: configuration, random: SplitMix64(seed: id)) }
        }

        /// Restarts `id` from what it made durable (every round persists all it has).
        mutating func restart(_ id: NodeID) {
            let old = nodes[id]!
            nodes[id] = RaftNode(
                id: id, voters: ids, configuration: configuration, random: SplitMix64(seed: id &+ 100),
                hardState: old.hardState, entries: old.entries)
            down.remove(id)
        }

        /// One round: every live node persists and applies what its `Ready` holds, then the
        /// messages `keep` lets through are delivered. Returns whether any message was delivered.
        @discardableResult
        mutating func round(keep: (Envelope) -> Bool = { _ in true }) -> Bool {
            var mail: [Envelope] = []
            for id in nodes.keys.sorted() where !down.contains(id) {
                let ready = nodes[id]!.ready()
                mail += ready.messagesBeforePersist + ready.messages
                for entry in ready.committedEntries { applied[id, default: [:]][entry.index] = entry }
                nodes[id]!.advance(ready)
            }
            let delivered = mail.filter { !down.contains($0.to) && keep($0) }
            for envelope in delivered { nodes[envelope.to]!.step(envelope) }
            return !delivered.isEmpty
        }

        mutating func settle(keep: (Envelope) -> Bool = { _ in true }) {
            for _ in 0..<200 where round(keep: keep) {}
        }

        /// Ticks `id` alone until it campaigns, and delivers until it leads (its first appends
        /// are still unsent when this returns).
        mutating func elect(_ id: NodeID) {
            for _ in 0..<40 where !nodes[id]!.isLeader {
                nodes[id]!.tick()
                for _ in 0..<4 where !nodes[id]!.isLeader { round() }
            }
        }

        /// Entries applied at the same index on two nodes differ: an applied entry was lost.
        var conflicts: [String] {
            var seen: [LogIndex: (NodeID, Entry)] = [:]
            var found: [String] = []
            for id in applied.keys.sorted() {
                for (index, entry) in applied[id]! {
                    if let (other, earlier) = seen[index], earlier != entry {
                        found.append("index \(index): n\(other) applied term \(earlier.term), n\(id) term \(entry.term)")
                    }
                    seen[index] = (id, entry)
                }
            }
            return found
        }
    }

    @Test func anEntryOfAnEarlierTermIsNotCommittedByCountingReplicas() throws {
        var cluster = Nodes()
        // (a) n1 leads; its entry reaches n2 only.
        cluster.elect(1)
        cluster.settle()
        let base = cluster.nodes[1]!.lastIndex
        cluster.down = [3, 4, 5]
        _ = cluster.nodes[1]!.propose([[0xA]])
        cluster.settle()
        let index = base + 1
        #expect(cluster.nodes[2]!.lastIndex == index)

        // (b) n1 is down; n5 is elected by n3 and n4, and its no-op at that index stays on n5.
        cluster.down = [1, 2]
        cluster.restart(3)
        cluster.restart(4)
        cluster.restart(5)
        cluster.elect(5)
        #expect(cluster.nodes[5]!.isLeader)
        cluster.round { $0.from != 5 }
        #expect(cluster.nodes[5]!.term(at: index) == cluster.nodes[5]!.term)

        // (c) n5 is down; n1 returns and is elected. Its new no-op reaches n2; n3 gets the old
        // entry (one entry per append) but not the no-op. The old entry is now on a majority
        // (n1, n2, n3), the no-op of n1's term is not. Then n1 goes down.
        cluster.down = [5, 4]
        cluster.restart(1)
        cluster.elect(1)
        #expect(cluster.nodes[1]!.isLeader)
        for _ in 0..<20 {
            let n3HasOldEntry = cluster.nodes[3]!.lastIndex >= index
            cluster.round { envelope in
                if envelope.to == 3, n3HasOldEntry, case .appendEntries(_, _, _, let entries, _, _) = envelope.message {
                    return entries.allSatisfy { $0.index <= index }
                }
                return true
            }
        }
        #expect(cluster.nodes[3]!.lastIndex == index && cluster.nodes[2]!.lastIndex == index + 1)
        let oldEntryCommitted = cluster.nodes[1]!.commitIndex >= index
        cluster.round { _ in false }  // n1 applies whatever it committed, and then goes down.
        cluster.down = [1]

        // (d) n5 returns, is elected by n3 and n4 (its last term is newer than theirs), and
        // replaces the entry.
        cluster.restart(4)
        cluster.restart(5)
        cluster.elect(5)
        cluster.settle()
        #expect(cluster.nodes[5]!.isLeader)
        #expect(!oldEntryCommitted, "n1 committed an entry of an earlier term by counting replicas")
        #expect(cluster.conflicts.isEmpty, "\(cluster.conflicts)")
    }
}
