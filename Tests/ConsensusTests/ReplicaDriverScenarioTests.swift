import Consensus
import Ledger
import Replication
import StockadeCore
import Testing

/// Scenarios, driven by hand, for orderings the randomized simulator reaches only rarely.
@Suite struct ReplicaDriverScenarioTests {
    /// A leader counts its own copy of an entry toward the commit majority only once it is
    /// durable: with the leader's write still pending, one follower's acknowledgement is one copy
    /// of three, not two.
    @Test func aLeaderCountsItsOwnEntryOnlyAfterItsWrite() throws {
        var cluster = RaftNodeTests.Cluster(size: 3)
        cluster.settle(ticks: 30)
        let leader = try #require(cluster.leader)
        let follower = cluster.nodes.keys.sorted().first { $0 != leader }!
        guard case .appended(_, let index, _) = cluster.nodes[leader]!.propose([[7]]) else {
            Issue.record("proposal refused")
            return
        }
        let pending = cluster.nodes[leader]!.ready()
        for envelope in pending.messagesBeforePersist + pending.messages where envelope.to == follower {
            cluster.nodes[follower]!.step(envelope)
        }
        let followerReady = cluster.nodes[follower]!.ready()
        cluster.nodes[follower]!.advance(followerReady)
        for envelope in followerReady.messages where envelope.to == leader { cluster.nodes[leader]!.step(envelope) }
        #expect(cluster.nodes[leader]!.commitIndex < index, "committed before the leader's own write")
        cluster.nodes[leader]!.advance(pending)
        #expect(cluster.nodes[leader]!.commitIndex == index)
    }

    /// A follower that forwarded a stock change answers it only once it has applied as far as the
    /// leader had when it answered, since the answer is rendered from the follower's own rows.
    @Test func aFollowerAnswersAForwardedStockChangeOnlyFromAppliedState() throws {
        var cluster = DriverCluster(size: 3)
        cluster.run(rounds: 40)
        let leader = try #require(cluster.leader)
        let follower = cluster.ids.first { $0 != leader }!
        let warehouse = cluster.warehouses[0].id
        // The follower hears the leader's forward replies but none of its appends.
        cluster.cut = [leader, follower]
        cluster.propose(.setStock(sku: SKU("sku-1"), warehouse: warehouse, total: 42), on: follower, caller: 1)
        cluster.run(rounds: 6)
        #expect(cluster.repliesDelivered > 0, "the leader never answered the forward")
        #expect(cluster.answers[1] == nil, "answered before applying: \(String(describing: cluster.answers[1]))")
        cluster.cut = nil
        cluster.run(rounds: 10)
        let answer = try #require(cluster.answers[1])
        guard case .stockRow(_, _, let row) = answer else {
            Issue.record("unexpected answer \(answer)")
            return
        }
        #expect(row.total == 42)
        #expect(cluster.answeredWithTotal[1] == 42, "answered before the follower's own rows showed the change")
    }
}

/// Three production drivers on an instant network that can cut the protocol messages (not the
/// forward frames) from one node to another.
struct DriverCluster {
    typealias Driver = ReplicaDriver<Int>
    let ids: [NodeID]
    let warehouses = [Warehouse(id: WarehouseID("w1"), regions: ["east"], priority: 0)]
    var drivers: [NodeID: Driver] = [:]
    var nowMs: Int64 = 0
    var mail: [NodeID: [Envelope]] = [:]
    var forwards: [NodeID: [Driver.IncomingForward]] = [:]
    var replies: [NodeID: [Driver.ForwardReply]] = [:]
    var pings: [NodeID: [(from: NodeID, ping: ClockPing)]] = [:]
    var proposals: [NodeID: [Driver.NewProposal]] = [:]
    var cut: [NodeID]?
    var answers: [Int: Outcome] = [:]
    var answeredWithTotal: [Int: Int64] = [:]
    var repliesDelivered = 0
    /// While set, forward replies are kept here instead of delivered.
    var holdReplies = false
    var heldReplies: [(to: NodeID, reply: Driver.ForwardReply)] = []
    let limits: Limits

    init(size: Int) {
        ids = (1...size).map(NodeID.init)
        var limits = Limits()
        limits.commitBatchMax = 16
        self.limits = limits
        for id in ids {
            drivers[id] = Driver(
                configuration: .init(nodeID: id, voters: ids, warehouses: warehouses, limits: limits),
                ledger: Ledger(limits: limits), hardState: HardState(), snapshot: nil, entries: [], random: SplitMix64(seed: id))
        }
    }

    var leader: NodeID? { ids.first { drivers[$0]!.raft.isLeader } }

    /// Restarts a node from its own state as if from disk (everything it had was durable), with
    /// a fresh runtime: what it was waiting for is forgotten.
    mutating func restart(_ id: NodeID) {
        let old = drivers[id]!
        drivers[id] = Driver(
            configuration: old.configuration, ledger: Ledger(limits: limits), hardState: old.raft.hardState, snapshot: nil,
            entries: old.raft.entries, random: SplitMix64(seed: id &* 7_919 &+ UInt64(nowMs)))
        mail[id] = nil
        forwards[id] = nil
        replies[id] = nil
        proposals[id] = nil
    }

    mutating func propose(_ command: Command, on id: NodeID, caller: Int) {
        proposals[id, default: []].append(Driver.NewProposal(command, caller: caller))
    }

    mutating func run(rounds: Int) {
        for _ in 0..<rounds {
            nowMs += 50
            for id in ids {
                var driver = drivers[id]!
                driver.beginTurn(
                    nowMs: nowMs, wallMs: 1_700_000_000_000 + nowMs, messages: mail[id] ?? [], forwards: forwards[id] ?? [],
                    replies: replies[id] ?? [], proposals: proposals[id] ?? [], pings: pings[id] ?? [])
                pings[id] = nil
                repliesDelivered += replies[id]?.count ?? 0
                mail[id] = nil
                forwards[id] = nil
                replies[id] = nil
                proposals[id] = nil
                while true {
                    let work = driver.nextWork()
                    if work.isEmpty { break }
                    for envelope in work.messagesBeforePersist + work.messages where cut != [envelope.from, envelope.to] {
                        mail[envelope.to, default: []].append(envelope)
                    }
                    driver.persisted(work)
                    take(driver.takeOutput(), from: id, driver: driver)
                }
                driver.endTurn()
                take(driver.takeOutput(), from: id, driver: driver)
                drivers[id] = driver
            }
        }
    }

    mutating func take(_ output: Driver.Output, from id: NodeID, driver: Driver) {
        for (caller, outcome) in output.answers {
            answers[caller] = outcome
            answeredWithTotal[caller] = driver.ledger.rows(of: SKU("sku-1"))?.first?.row.total
        }
        for (frame, peer) in output.frames {
            switch frame {
            case .forward(let requestID, let commands):
                forwards[peer, default: []].append(.init(from: id, requestID: requestID, commands: commands))
            case .reply(let requestID, let appliedIndex, let outcomes):
                let reply = Driver.ForwardReply(requestID: requestID, appliedIndex: appliedIndex, outcomes: outcomes)
                if holdReplies { heldReplies.append((peer, reply)) } else { replies[peer, default: []].append(reply) }
            case .clock(let ping):
                if cut != [id, peer] { pings[peer, default: []].append((from: id, ping: ping)) }
            }
        }
    }
}

extension ReplicaDriverScenarioTests {
    /// A leader's late reply to a frame a follower sent before it restarted must not answer a
    /// frame the restarted follower sends (the first sweep of the production driver found a
    /// reserve answered with another reservation's hold this way).
    @Test func aReplyFromBeforeARestartAnswersNothingAfterIt() throws {
        var cluster = DriverCluster(size: 3)
        cluster.run(rounds: 40)
        let leader = try #require(cluster.leader)
        let follower = cluster.ids.first { $0 != leader }!
        cluster.holdReplies = true
        cluster.propose(.setStock(sku: SKU("sku-1"), warehouse: cluster.warehouses[0].id, total: 5), on: follower, caller: 1)
        cluster.run(rounds: 4)
        let late = cluster.heldReplies
        #expect(!late.isEmpty, "the leader did not answer the first forward")
        cluster.restart(follower)
        cluster.holdReplies = false
        cluster.run(rounds: 4)  // the restarted follower learns who leads
        #expect(cluster.drivers[follower]!.raft.leaderID == leader)
        cluster.propose(.setStock(sku: SKU("sku-2"), warehouse: cluster.warehouses[0].id, total: 7), on: follower, caller: 2)
        cluster.run(rounds: 1)
        cluster.replies[follower, default: []] += late.map(\.reply)
        cluster.run(rounds: 10)
        #expect(cluster.answers[1] == nil, "the restarted follower answered a call it never had")
        let answer = try #require(cluster.answers[2])
        guard case .stockRow(let sku, _, let row) = answer else {
            Issue.record("unexpected answer \(answer)")
            return
        }
        #expect(sku == SKU("sku-2") && row.total == 7, "answered with \(answer)")
    }
}
