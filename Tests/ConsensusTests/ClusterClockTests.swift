import Consensus
import Replication
import StockadeCore
import Testing

/// Cluster time: what a majority of clocks agree on, measured through ping round trips.
@Suite struct ClusterClockTests {
    /// Three clocks exchanging pings over a network with a fixed one-way delay. Each node's
    /// monotonic clock starts at a different point; its wall clock is true time plus an offset.
    struct Network {
        var clocks: [NodeID: ClusterClock] = [:]
        var wallOffsetMs: [NodeID: Int64]
        var monoStartMs: [NodeID: Int64]
        var trueMs: Int64 = 1_700_000_000_000
        let delayMs: Int64
        var inFlight: [(deliverAt: Int64, to: NodeID, from: NodeID, ping: ClockPing)] = []

        init(offsets: [NodeID: Int64], delayMs: Int64 = 3) {
            wallOffsetMs = offsets
            self.delayMs = delayMs
            monoStartMs = Dictionary(uniqueKeysWithValues: offsets.keys.map { ($0, Int64($0) * 7_777) })
            for id in offsets.keys { clocks[id] = ClusterClock(nodeID: id, voters: offsets.keys.sorted(), limits: Limits()) }
        }

        func nowMs(_ id: NodeID) -> Int64 { trueMs - 1_700_000_000_000 + monoStartMs[id]! }
        func wallMs(_ id: NodeID) -> Int64 { trueMs + wallOffsetMs[id]! }

        mutating func run(ms: Int64) {
            let end = trueMs + ms
            while trueMs < end {
                trueMs += 10
                for id in clocks.keys { clocks[id]!.observeOwnClock(nowMs: nowMs(id), wallMs: wallMs(id)) }
                for index in inFlight.indices.reversed() where inFlight[index].deliverAt <= trueMs {
                    let item = inFlight.remove(at: index)
                    clocks[item.to]!.receive(item.ping, from: item.from, nowMs: nowMs(item.to))
                }
                for id in clocks.keys.sorted() {
                    for (ping, peer) in clocks[id]!.pingsDue(nowMs: nowMs(id), wallMs: wallMs(id)) {
                        inFlight.append((trueMs + delayMs, peer, id, ping))
                    }
                }
            }
        }

        func reading(_ id: NodeID) -> ClusterClock.Reading { clocks[id]!.reading(nowMs: nowMs(id), wallMs: wallMs(id)) }
    }

    @Test func clocksThatAgreeGiveEachNodeItsOwnTime() {
        var network = Network(offsets: [1: 0, 2: 40, 3: -30])
        network.run(ms: 1_000)
        for id: NodeID in [1, 2, 3] {
            let reading = network.reading(id)
            #expect(reading.agreement?.sources == 3)
            #expect(reading.timeMs == network.wallMs(id), "an agreeing clock is used as it is")
            #expect(!reading.ownClockOff)
            #expect(reading.peersOff.isEmpty)
        }
        // Offsets are measured to within the round trip.
        let offset = network.reading(1).peerOffsetsMs[2]!
        #expect(abs(offset - 40) <= 2 * network.delayMs + 10)
    }

    @Test func aClockTwoHoursAheadIsOffAndTheOthersNameIt() {
        let twoHoursMs: Int64 = 2 * 3_600_000
        var network = Network(offsets: [1: twoHoursMs, 2: 20, 3: -20])
        network.run(ms: 1_000)
        let off = network.reading(1)
        #expect(off.ownClockOff)
        #expect(off.ownDistanceMs! > twoHoursMs - 1_000)
        // Its cluster time is the majority's, not its own.
        #expect(abs(off.timeMs! - network.trueMs) <= 1_000)
        for id: NodeID in [2, 3] {
            let reading = network.reading(id)
            #expect(!reading.ownClockOff)
            #expect(reading.peersOff == [1])
            #expect(reading.timeMs == network.wallMs(id))
        }
    }

    /// A jump of a node's own wall clock shows at once: what it learnt about the others is kept
    /// relative to its monotonic clock, which did not jump.
    @Test func aJumpIsSeenAtOnceWithoutNewPings() {
        var network = Network(offsets: [1: 0, 2: 0, 3: 0])
        network.run(ms: 1_000)
        #expect(!network.reading(1).ownClockOff)
        network.wallOffsetMs[1] = 3 * 3_600_000
        let reading = network.reading(1)
        #expect(reading.ownClockOff)
        #expect(abs(reading.timeMs! - network.trueMs) <= Limits().clockSkewMaxMs + 50)
    }

    /// Node 2's clock was an hour ahead and is set right; just then node 1's jumps an hour ahead.
    /// Node 1's last reading of node 2 (an hour ahead) is still recent, and readings of node 2's
    /// old clock are still in flight: none of them may agree with node 1's new clock.
    @Test func aJumpDoesNotAgreeWithAPeersReadingFromBeforeIt() {
        let hourMs: Int64 = 3_600_000
        var network = Network(offsets: [1: 0, 2: hourMs, 3: 0], delayMs: 150)
        network.run(ms: 1_000)
        #expect(network.reading(1).peersOff == [2])
        network.wallOffsetMs[2] = 0
        network.wallOffsetMs[1] = hourMs
        network.clocks[1]!.observeOwnClock(nowMs: network.nowMs(1), wallMs: network.wallMs(1))
        #expect(network.reading(1).timeMs == nil, "no reading from before the jump counts")
        for _ in 0..<100 {
            network.run(ms: 10)
            let reading = network.reading(1)
            #expect(reading.timeMs == nil || abs(reading.timeMs! - network.trueMs) <= Limits().clockSkewMaxMs + 400)
        }
        #expect(network.reading(1).ownClockOff)
    }

    @Test func withoutAMajorityThereIsNoClusterTime() {
        // Before any ping, and once every reading is too old, only the node's own clock counts.
        var network = Network(offsets: [1: 0, 2: 0, 3: 0])
        #expect(network.reading(1).agreement == nil)
        #expect(network.reading(1).timeMs == nil)
        network.run(ms: 1_000)
        #expect(network.reading(1).agreement != nil)
        network.trueMs += Limits().clockSampleAgeMaxMs + 1
        #expect(network.reading(1).agreement == nil)
        // Three clocks that all disagree: no two make a majority.
        var split = Network(offsets: [1: 0, 2: 3_600_000, 3: -3_600_000])
        split.run(ms: 1_000)
        #expect(split.reading(1).agreement == nil)
        #expect(!split.reading(1).ownClockOff, "a node cannot tell that it is the one off")
    }

    @Test func aVoterAloneAgreesWithItself() {
        let clock = ClusterClock(nodeID: 1, voters: [1], limits: Limits())
        let reading = clock.reading(nowMs: 5, wallMs: 1_700_000_000_000)
        #expect(reading.agreement?.sources == 1)
        #expect(reading.timeMs == 1_700_000_000_000)
    }

    @Test func echoesOfPingsNeverSentAndSlowRoundTripsAreIgnored() {
        var clock = ClusterClock(nodeID: 1, voters: [1, 2, 3], limits: Limits())
        _ = clock.pingsDue(nowMs: 100, wallMs: 1_000_100)
        // An echo of a ping this node never sent (one from before a restart): no sample.
        clock.receive(ClockPing(sentMs: 5, wallMs: 9_999_999, echoMs: 99, heldMs: 0), from: 2, nowMs: 110)
        #expect(clock.reading(nowMs: 110, wallMs: 1_000_110).peerOffsetsMs[2] == nil)
        // A round trip longer than `clockRoundTripMaxMs`: no sample.
        clock.receive(ClockPing(sentMs: 6, wallMs: 9_999_999, echoMs: 100, heldMs: 0), from: 2, nowMs: 100 + Limits().clockRoundTripMaxMs + 1)
        #expect(clock.reading(nowMs: 1_200, wallMs: 1_001_200).peerOffsetsMs[2] == nil)
        // A good one: the peer held our ping 20 ms of a 30 ms round trip.
        clock.receive(ClockPing(sentMs: 7, wallMs: 1_000_125, echoMs: 100, heldMs: 20), from: 3, nowMs: 130)
        #expect(clock.reading(nowMs: 130, wallMs: 1_000_130).peerOffsetsMs[3] == 0)
    }
}
