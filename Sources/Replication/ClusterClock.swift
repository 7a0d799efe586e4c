import Consensus
import DequeModule
import StockadeCore

/// The time a majority of the cluster's wall clocks agree on, learnt from clock pings, as a pure
/// value.
///
/// Each ping that echoes one of ours bounds the peer's wall clock when it arrived: it read
/// `wallMs` at most one network round trip ago (the round trip, less the time the peer held our
/// ping, is measured on our own monotonic clock). So the peer's clock lies in an interval of
/// known width. Intervals are kept relative to our monotonic clock, so a jump of our own wall
/// clock does not move what we learnt about the others.
///
/// Marzullo's algorithm then finds the smallest range that the most clocks agree on (each
/// interval widened by `clockSkewMaxMs`, our own clock included). If a majority of the voters
/// agree, cluster time is our wall clock clamped into that range: a leader stamps commands with
/// it, so no single clock, however far it jumps, decides when a hold expires. A node whose own
/// clock lies outside the range by more than `clockSkewMaxMs` is off: it does not campaign, and
/// steps down if it leads.
public struct ClusterClock: Sendable {
    /// Where a peer's wall clock is, relative to our monotonic clock, as of `atMs`.
    struct Sample: Sendable {
        var lowMs: Int64
        var highMs: Int64
        var atMs: Int64
    }

    /// What a majority agrees on, as offsets from our monotonic clock (wall = now + offset).
    public struct Agreement: Sendable, Equatable {
        public var lowOffsetMs: Int64
        public var highOffsetMs: Int64
        /// How many clocks (ours included) agree.
        public var sources: Int
    }

    let nodeID: NodeID
    let voters: [NodeID]
    let limits: Limits
    var samples: [NodeID: Sample] = [:]
    /// The last ping each peer sent us: what we echo, and when it arrived.
    var lastReceived: [NodeID: (sentMs: Int64, atMs: Int64)] = [:]
    /// What we sent each peer lately: only an echo of one of these is believed (a peer's echo of
    /// a ping from before a restart of ours is not).
    var recentlySent: [NodeID: Deque<Int64>] = [:]
    var nextPingMs: Int64?
    /// Our own wall clock minus our monotonic clock, as last seen.
    var ownOffsetMs: Int64?
    /// Readings count only if the peer took them after it saw a ping we sent at or after this
    /// time: after our clock last jumped.
    var readingsValidFromMs: Int64 = .min

    public init(nodeID: NodeID, voters: [NodeID], limits: Limits) {
        self.nodeID = nodeID
        self.voters = voters
        self.limits = limits
    }

    var peers: [NodeID] { voters.filter { $0 != nodeID } }

    /// The pings due at `nowMs`, one per peer every `clockPingIntervalMs`.
    public mutating func pingsDue(nowMs: Int64, wallMs: Int64) -> [(ClockPing, NodeID)] {
        if let next = nextPingMs, nowMs < next { return [] }
        nextPingMs = nowMs + limits.clockPingIntervalMs
        return peers.map { peer in
            let received = lastReceived[peer]
            var sent = recentlySent[peer] ?? []
            sent.append(nowMs)
            if sent.count > Self.echoesKept { sent.removeFirst() }
            recentlySent[peer] = sent
            let ping = ClockPing(
                sentMs: nowMs, wallMs: wallMs, echoMs: received?.sentMs ?? -1, heldMs: received.map { nowMs - $0.atMs } ?? 0)
            return (ping, peer)
        }
    }

    /// Pings in flight to one peer whose echo is still believed.
    static let echoesKept = 16

    /// Notes our own wall clock. When it jumps (its distance from our monotonic clock moves by
    /// more than `clockSkewMaxMs` between two readings), every reading of the peers is dropped,
    /// and only readings a peer took after it saw one of our pings sent since count (the echo
    /// says so). Otherwise a peer's reading from before that peer's own clock was set right,
    /// still recent or still in flight, could agree with our jumped clock and make a false
    /// majority.
    public mutating func observeOwnClock(nowMs: Int64, wallMs: Int64) {
        let offset = wallMs - nowMs
        if let last = ownOffsetMs, abs(offset - last) > limits.clockSkewMaxMs {
            samples.removeAll()
            readingsValidFromMs = nowMs
            nextPingMs = nil
        }
        ownOffsetMs = offset
    }

    /// A ping from `peer`, taken in at `nowMs`.
    public mutating func receive(_ ping: ClockPing, from peer: NodeID, nowMs: Int64) {
        guard peer != nodeID, voters.contains(peer) else { return }
        lastReceived[peer] = (ping.sentMs, nowMs)
        guard ping.echoMs >= 0, ping.heldMs >= 0, ping.echoMs >= readingsValidFromMs,
            recentlySent[peer]?.contains(ping.echoMs) == true
        else { return }
        let roundTripMs = nowMs - ping.echoMs - ping.heldMs
        guard roundTripMs >= 0, roundTripMs <= limits.clockRoundTripMaxMs else { return }
        // The peer read `wallMs` at most `roundTripMs` before now.
        let sample = Sample(lowMs: ping.wallMs - nowMs, highMs: ping.wallMs + roundTripMs - nowMs, atMs: nowMs)
        if let old = samples[peer], old.atMs > nowMs { return }
        samples[peer] = sample
    }

    /// The range a majority of the voters' clocks agree on at `nowMs`, given our wall clock, or nil.
    public func agreement(nowMs: Int64, wallMs: Int64) -> Agreement? {
        let skew = limits.clockSkewMaxMs
        let own = wallMs - nowMs
        var intervals = [(own - skew, own + skew)]
        for peer in peers {
            guard let sample = samples[peer], nowMs - sample.atMs <= limits.clockSampleAgeMaxMs else { continue }
            intervals.append((sample.lowMs - skew, sample.highMs + skew))
        }
        guard let best = Self.marzullo(intervals), best.count >= Quorum.size(of: voters.count) else { return nil }
        return Agreement(lowOffsetMs: best.low, highOffsetMs: best.high, sources: best.count)
    }

    /// Marzullo's algorithm: the smallest range covered by the most intervals (closed ends).
    static func marzullo(_ intervals: [(Int64, Int64)]) -> (low: Int64, high: Int64, count: Int)? {
        // Starts sort before ends at the same point, so touching intervals overlap.
        struct Edge {
            var at: Int64
            /// +1 where an interval starts, -1 where one ends.
            var step: Int
        }
        var edges: [Edge] = []
        edges.reserveCapacity(intervals.count * 2)
        for (low, high) in intervals {
            edges.append(Edge(at: low, step: 1))
            edges.append(Edge(at: high, step: -1))
        }
        edges.sort { $0.at != $1.at ? $0.at < $1.at : $0.step > $1.step }
        var best: (low: Int64, high: Int64, count: Int)?
        var count = 0
        for position in edges.indices {
            count += edges[position].step
            if edges[position].step == 1, count > (best?.count ?? 0), position + 1 < edges.count {
                best = (edges[position].at, edges[position + 1].at, count)
            }
        }
        return best
    }

    /// What the driver decides from the clocks, as of one turn.
    public struct Reading: Sendable, Equatable {
        public var agreement: Agreement?
        /// Cluster time: our wall clock clamped into what the majority agrees on (nil: none agrees).
        public var timeMs: Int64?
        /// How far our own wall clock is from the agreed range (0 inside it; nil: none agrees).
        public var ownDistanceMs: Int64?
        /// Our clock is off the agreed range by more than `clockSkewMaxMs`.
        public var ownClockOff: Bool
        /// Peers with a recent sample whose clocks are off the agreed range by more than `clockSkewMaxMs`.
        public var peersOff: [NodeID]
        /// Each peer's wall clock minus ours, as last sampled (midpoint of its interval).
        public var peerOffsetsMs: [NodeID: Int64]

        static let none = Reading(agreement: nil, timeMs: nil, ownDistanceMs: nil, ownClockOff: false, peersOff: [], peerOffsetsMs: [:])
    }

    public func reading(nowMs: Int64, wallMs: Int64) -> Reading {
        let skew = limits.clockSkewMaxMs
        var offsets: [NodeID: Int64] = [:]
        var recent: [NodeID: Sample] = [:]
        for (peer, sample) in samples where nowMs - sample.atMs <= limits.clockSampleAgeMaxMs {
            recent[peer] = sample
            offsets[peer] = (sample.lowMs + sample.highMs) / 2 + nowMs - wallMs
        }
        guard let agreement = agreement(nowMs: nowMs, wallMs: wallMs) else {
            var reading = Reading.none
            reading.peerOffsetsMs = offsets
            return reading
        }
        let low = nowMs + agreement.lowOffsetMs
        let high = nowMs + agreement.highOffsetMs
        let distance = wallMs < low ? low - wallMs : (wallMs > high ? wallMs - high : 0)
        let peersOff = recent.filter { _, sample in
            sample.highMs < agreement.lowOffsetMs - skew || sample.lowMs > agreement.highOffsetMs + skew
        }.keys.sorted()
        return Reading(
            agreement: agreement, timeMs: min(max(wallMs, low), high), ownDistanceMs: distance, ownClockOff: distance > skew,
            peersOff: peersOff, peerOffsetsMs: offsets)
    }
}
