import Consensus
import Ledger
import Replication
import StockadeCore

/// The whole cluster in one process on a seeded scheduler: each node is the production
/// `ReplicaDriver` (the pure `RaftNode`, the real `Ledger`, and the runtime's admission,
/// forwarding, deadlines, read points and snapshot cadence), over a simulated network (delay,
/// loss, duplication, reordering, symmetric and one-way partitions), simulated disks (crashes lose
/// unsynced writes; a crash mid-write keeps a torn prefix) and skewed clocks. Clients call any
/// node, so followers forward to the leader and deadlines fire.
///
/// Every step checks election safety, log matching, leader completeness and the ledger
/// invariants. The end heals everything, lets the cluster converge, and checks every answer a
/// client got against the final state (see `ClusterSimulator+Checks.swift`).
public final class ClusterSimulator {
    /// Fault rates, drawn per seed.
    public struct Faults: CustomStringConvertible, Sendable {
        public var dropPercent: Int
        public var duplicatePercent: Int
        public var delayMaxSteps: Int
        public var crashPerMille: Int
        public var tornWritePercent: Int
        public var partitionPerMille: Int
        public var healPerMille: Int
        public var clockSkewPercent: Int
        public var proposePercent: Int
        /// Per step, the chance that the leader crashes or is cut off: leadership changes while
        /// entries of older terms sit on a minority, the ground of Raft's Figure 8.
        public var leaderFaultPerMille: Int
        /// Per step, the chance that one node's wall clock jumps by hours (or jumps back): a bad
        /// NTP step, a virtual machine resumed from a snapshot. At most one node is off at a time.
        public var clockJumpPerMille: Int

        public var description: String {
            "drop \(dropPercent)% dup \(duplicatePercent)% delay≤\(delayMaxSteps) crash \(crashPerMille)‰ torn \(tornWritePercent)% partition \(partitionPerMille)‰ heal \(healPerMille)‰ skew \(clockSkewPercent)% propose \(proposePercent)% leader \(leaderFaultPerMille)‰ jump \(clockJumpPerMille)‰"
        }

        /// No faults at all: for scripted scenarios.
        public static let none = Faults(
            dropPercent: 0, duplicatePercent: 0, delayMaxSteps: 1, crashPerMille: 0, tornWritePercent: 0, partitionPerMille: 0,
            healPerMille: 0, clockSkewPercent: 0, proposePercent: 0, leaderFaultPerMille: 0, clockJumpPerMille: 0)

        static func draw(_ random: inout SplitMix64) -> Faults {
            Faults(
                dropPercent: Int.random(in: 0...20, using: &random), duplicatePercent: Int.random(in: 0...10, using: &random),
                delayMaxSteps: Int.random(in: 1...6, using: &random), crashPerMille: Int.random(in: 0...8, using: &random),
                tornWritePercent: Int.random(in: 0...50, using: &random),
                partitionPerMille: Int.random(in: 0...10, using: &random), healPerMille: Int.random(in: 5...40, using: &random),
                clockSkewPercent: Int.random(in: 0...30, using: &random), proposePercent: Int.random(in: 10...60, using: &random),
                leaderFaultPerMille: Int.random(in: 0...20, using: &random), clockJumpPerMille: Int.random(in: 0...6, using: &random))
        }
    }

    /// A client's call, as the driver carries it back with its answer.
    public struct Call: Sendable {
        public var id: Int
        public var command: Command
        /// The node the client called.
        public var node: NodeID
    }

    typealias Driver = ReplicaDriver<Call>

    struct Disk {
        var hardState = HardState()
        var snapshot: Snapshot?
        var entries: [Entry] = []
        /// The node's local log of provisional holds.
        var local: [LocalRecord] = []

        mutating func persist(_ newEntries: [Entry]) {
            guard let first = newEntries.first else { return }
            entries.removeAll { $0.index >= first.index }
            entries.append(contentsOf: newEntries)
        }

        /// As the shell installs a leader's snapshot: the stored log is kept after it when the
        /// protocol kept its own and the stored log reaches that far, else emptied.
        mutating func install(_ snapshot: Snapshot, keepingLog: Bool) {
            let lastIndex = entries.last?.index ?? self.snapshot?.index ?? 0
            if keepingLog && lastIndex >= snapshot.index {
                entries.removeAll { $0.index <= snapshot.index }
            } else {
                entries.removeAll()
            }
            self.snapshot = snapshot
        }
    }

    struct SimulatedNode {
        var driver: Driver?
        var disk = Disk()
        /// The node's monotonic clock runs at this rate (a skewed tick).
        var clockRate = 1.0
        /// The node's monotonic clock.
        var nowMs: Double = 0
        /// The node's wall clock is the true time plus this small offset, plus `jumpMs` while jumped.
        var wallOffsetMs: Int64 = 0
        var jumpMs: Int64 = 0
        var pings: [(from: NodeID, ping: ClockPing)] = []
        var messages: [Envelope] = []
        var forwards: [Driver.IncomingForward] = []
        var replies: [Driver.ForwardReply] = []
        var proposals: [Driver.NewProposal] = []
        /// A snapshot being written in the background: done (or failed) at `dueStep`.
        var pendingSnapshot: (request: Driver.SnapshotRequest, dueStep: Int, fails: Bool)?
    }

    enum Packet {
        case raft(Envelope)
        case forward(from: NodeID, to: NodeID, requestID: UInt64, commands: [[UInt8]])
        case reply(to: NodeID, requestID: UInt64, appliedIndex: LogIndex, outcomes: [[UInt8]])
        case clock(from: NodeID, to: NodeID, ping: ClockPing)
    }

    struct InFlight {
        var deliverAt: Int
        var order: UInt64
        var packet: Packet
        var from: NodeID
    }

    static let stepMs = 50.0
    static let wallBaseMs: Int64 = 1_700_000_000_000

    public let seed: UInt64
    public let faults: Faults
    let nodeIDs: [NodeID]
    let limits: Limits
    var random: SplitMix64
    var nodes: [NodeID: SimulatedNode] = [:]
    var network: [InFlight] = []
    var blocked = Set<[NodeID]>()
    var step = 0
    var generator: HistoryGenerator
    var setupCommands: [TimedCommand]
    var nextCall = 0
    /// Set once the faulty steps are over.
    var healing = false
    /// Whether warehouses have owning nodes with local reserves, so cut-off nodes fall back.
    public let localReserves: Bool
    /// The most advanced applied state any node has reached so far (every applied state is a
    /// prefix of the one committed log, so this is the latest committed state known).
    var reference: Ledger?
    /// Reserves granted from a node's local reserve, as clients were answered.
    public internal(set) var localGrants = 0
    /// Grants answered, by the path that granted them.
    public internal(set) var grantsByPath: [String: Int] = [:]
    /// Local logs cut short at a damaged record.
    public internal(set) var damagedLocalLogs = 0
    /// Whether this seed churns leadership: five nodes, and the leader crashed or cut off often
    /// with partitions that heal quickly, the ground on which an entry of an older term sits on a
    /// minority while leaders change (Raft's Figure 8). Decided from a stream of its own, like
    /// `localReserves`, so other seeds run as before.
    public let churn: Bool
    /// Whether this seed runs the Redis hot path (see `ClusterSimulator+Cache.swift`): decided, and
    /// its faults drawn, from a stream of its own, so seeds without it run as before.
    public let cacheOn: Bool
    var cache: SimulatedCache?
    /// Draws of the faults added after the main stream was fixed (a damaged local log), so that
    /// seeds without them run as before.
    var damageRandom: SplitMix64
    /// Acknowledged provisional holds found in the converged ledger with their local token, and
    /// those superseded by a hold a majority granted under the same id.
    public internal(set) var provisionalReconciled = 0
    public internal(set) var provisionalSuperseded = 0

    // What the checkers remember.
    var leaderOfTerm: [Term: NodeID] = [:]
    /// Per node, the highest committed index already compared against `committed`.
    var checkedThrough: [NodeID: LogIndex] = [:]
    var committed: [LogIndex: Entry] = [:]
    /// Who first reported each committed entry, in which term and at which step. That term is at
    /// least the term in which the entry was committed, so leader completeness is checked only
    /// against leaders of later terms (a stale leader of an older term may lack it).
    var committedBy: [LogIndex: (node: NodeID, term: Term, step: Int, commit: LogIndex)] = [:]
    /// Reservation ids of every committed reserve.
    var committedReserves = Set<ReservationID>()
    /// Every call a client made, and the answers it got (in order).
    var calls: [Int: Command] = [:]
    var answers: [Int: [Outcome]] = [:]
    /// Who answered each call and when, for traces.
    var answerNotes: [Int: String] = [:]
    /// How many calls named each reservation id in a reserve.
    var reserveCalls: [ReservationID: Int] = [:]
    /// Every reservation acknowledged as granted, with what bounds when it may leave the ledger:
    /// it is purged `finishedRetentionMs` after it finished, and it finishes when it is confirmed
    /// or released, or by its (possibly extended) expiry at the latest.
    public internal(set) var acknowledged: [ReservationID: AcknowledgedHold] = [:]
    /// Every answer about each reservation id, from any node on any path (see `ReservationHistory`).
    public internal(set) var histories = HistoryCheck()
    /// The committed state, applied entry by entry as the first node applies it: refusals that
    /// claim something about the state are held to it at every index while they are outstanding.
    var truth: Ledger
    var witness = RefusalWitness()
    /// The latest command time in any committed entry.
    var lastCommittedTimeMs: Int64 = 0
    /// The highest index whose entry `noteApplied` has read.
    var appliedSeenThrough: LogIndex = 0
    public internal(set) var violations: [String] = []
    public internal(set) var leaderElections = 0
    public internal(set) var appliedEntries = 0
    /// Answers by kind, for reports: granted, refused, quorum_unavailable, outcome_unknown, …
    public internal(set) var answerCounts: [String: Int] = [:]

    /// `localReserves` nil: decided by the seed (half of all seeds), from a stream of its own so
    /// that seeds without it run exactly as they did before local reserves existed.
    /// `layout` set: a scripted scenario (see `ClusterSimulator+Scenarios.swift`) on that layout,
    /// with no faults but the ones the script makes and no clients but the script's calls.
    public init(seed: UInt64, nodeCount: Int? = nil, localReserves: Bool? = nil, layout: [Warehouse]? = nil, cache: Bool? = nil) {
        self.seed = seed
        var localRandom = SplitMix64(seed: seed ^ 0x10CA_1F_A11B_ACC)
        self.localReserves = localReserves ?? (localRandom.next() % 2 == 0)
        var random = SplitMix64(seed: seed)
        var churnRandom = SplitMix64(seed: seed ^ 0xC4_0C_F1_6E_8)
        churn = layout == nil && nodeCount == nil && churnRandom.next() % 4 == 0
        damageRandom = SplitMix64(seed: seed ^ 0xDA_4A_6E)
        var faults = layout == nil ? Faults.draw(&random) : .none
        var count = nodeCount ?? (Bool.random(using: &random) ? 3 : 5)
        if churn {
            count = 5
            faults.leaderFaultPerMille = Int.random(in: 40...150, using: &churnRandom)
            faults.healPerMille = Int.random(in: 60...200, using: &churnRandom)
            faults.crashPerMille = max(faults.crashPerMille, Int.random(in: 5...20, using: &churnRandom))
        }
        self.faults = faults
        nodeIDs = (1...count).map(NodeID.init)
        var limits = Limits()
        limits.consensus.inflightAppendsMax = Int.random(in: 1...8, using: &random)
        limits.consensus.appendEntriesMax = Int.random(in: 1...64, using: &random)
        limits.finishedRetentionMs = 60_000
        limits.commitBatchMax = 16
        limits.snapshotIntervalEntries = Int.random(in: 20...200, using: &random)
        limits.hardStateCommitLagMax = UInt64.random(in: 1...64, using: &random)
        limits.forwardBatchMax = Int.random(in: 1...8, using: &random)
        // A script restarts nodes and expects them back where they were: the commit index is
        // written with every change.
        if layout != nil { limits.hardStateCommitLagMax = 1 }
        var cacheRandom = SplitMix64(seed: seed ^ 0xCA_C4E_6A7E)
        let cacheDrawn = cacheRandom.next() % 2 == 0  // drawn either way, so a forced seed runs as drawn
        cacheOn = cache ?? (layout == nil && cacheDrawn)
        if cacheOn {
            Self.cacheLimits(&limits, random: &cacheRandom)
            self.cache = SimulatedCache(seed: cacheRandom.next())
        }
        self.limits = limits
        truth = Ledger(limits: limits)
        generator = HistoryGenerator(seed: random.next())
        if self.localReserves { generator.assignOwners(nodeCount: count, random: &localRandom) }
        setupCommands = generator.setup()
        if let layout {
            generator.warehouses = layout
            setupCommands = []
        }
        self.random = random
        for id in nodeIDs {
            var node = SimulatedNode()
            node.clockRate = 1 + Double(Int.random(in: -faults.clockSkewPercent...faults.clockSkewPercent, using: &self.random)) / 100
            node.nowMs = Double(Int.random(in: 0...10_000, using: &self.random))
            node.wallOffsetMs = Int64.random(in: -100...100, using: &self.random)
            nodes[id] = node
            start(id)
        }
    }

    /// Runs `steps` faulty steps, then heals everything and lets the cluster settle. Returns the violations.
    @discardableResult
    public func run(steps: Int) -> [String] {
        for _ in 0..<steps {
            faultStep()
            clientStep()
            advance()
            if !violations.isEmpty { return violations }
        }
        healAndConverge()
        guard violations.isEmpty else { return violations }
        checkFinalState()
        if violations.isEmpty { checkRetries() }
        return violations
    }

    /// Heals: every node up, no partitions, no loss; runs until the cluster converges (or a
    /// violation, or 4,000 steps).
    func healAndConverge() {
        healing = true
        blocked.removeAll()
        for id in nodeIDs where nodes[id]!.driver == nil { start(id) }
        var quiet = 0
        while quiet < 4_000 {
            advance(lossless: true)
            quiet += 1
            if !violations.isEmpty { return }
            if quiet > 40 && quiet % 10 == 0 && converged() { break }
        }
    }

    // MARK: - Faults and clients

    func faultStep() {
        if localReserves && Int.random(in: 0..<1000, using: &random) < 8 {
            // Cut off a warehouse owner (both ways), so that its region falls back on its reserve.
            if let owner = generator.warehouses.compactMap(\.owner).randomElement(using: &random) {
                for other in nodeIDs where other != owner { blocked.formUnion([[owner, other], [other, owner]]) }
            }
        }
        if Int.random(in: 0..<1000, using: &random) < faults.crashPerMille {
            let id = nodeIDs.randomElement(using: &random)!
            if nodes[id]!.driver == nil {
                start(id)
            } else if Int.random(in: 0..<4, using: &random) == 0 {
                stop(id)
            } else {
                crash(id)
            }
        }
        for id in nodeIDs where nodes[id]!.driver == nil && Int.random(in: 0..<100, using: &random) < 3 {
            if localReserves && damageRandom.next() % 8 == 0 { damageLocalLog(id) }
            start(id)
        }
        if Int.random(in: 0..<1000, using: &random) < faults.partitionPerMille {
            let isolated = nodeIDs.randomElement(using: &random)!
            let oneWay = Bool.random(using: &random)
            for other in nodeIDs where other != isolated {
                blocked.insert([isolated, other])
                if !oneWay { blocked.insert([other, isolated]) }
            }
        }
        if Int.random(in: 0..<1000, using: &random) < faults.healPerMille { blocked.removeAll() }
        if Int.random(in: 0..<1000, using: &random) < faults.clockJumpPerMille {
            // Jump one node's clock by hours either way, often the leader's; or set it right again.
            if let jumped = nodeIDs.first(where: { nodes[$0]!.jumpMs != 0 }) {
                nodes[jumped]!.jumpMs = 0
            } else {
                let leader = nodeIDs.first { nodes[$0]!.driver?.raft.isLeader == true }
                let id = Bool.random(using: &random) ? leader ?? nodeIDs.randomElement(using: &random)! : nodeIDs.randomElement(using: &random)!
                nodes[id]!.jumpMs = Int64.random(in: 1...3, using: &random) * 3_600_000 * (Bool.random(using: &random) ? 1 : -1)
            }
        }
        if Int.random(in: 0..<1000, using: &random) < faults.leaderFaultPerMille,
            let leader = nodeIDs.first(where: { nodes[$0]!.driver?.raft.isLeader == true })
        {
            if Bool.random(using: &random) {
                crash(leader)
            } else {
                for other in nodeIDs where other != leader { blocked.formUnion([[leader, other], [other, leader]]) }
            }
        }
    }

    /// A client calls a node: usually the one it believes leads, sometimes any other.
    func clientStep() {
        if localReserves && Int.random(in: 0..<100, using: &random) < 25 { localClientStep() }
        guard Int.random(in: 0..<100, using: &random) < faults.proposePercent else { return }
        let live = nodeIDs.filter { nodes[$0]!.driver != nil }
        let leaders = live.filter { nodes[$0]!.driver!.raft.isLeader }
        let target = Int.random(in: 0..<3, using: &random) == 0 ? live.randomElement(using: &random) : leaders.randomElement(using: &random)
        guard let target else { return }
        let command = setupCommands.isEmpty ? generator.next().command : setupCommands.removeFirst().command
        call(command, on: target)
    }

    func call(_ command: Command, on id: NodeID) {
        nextCall += 1
        calls[nextCall] = command
        if case .reserve(let request) = command { reserveCalls[request.reservationId, default: 0] += 1 }
        witness.open(nextCall, command, in: truth)
        let caller = Call(id: nextCall, command: command, node: id)
        if cache != nil, case .reserve(let request) = command, cacheTakes(caller, request, on: id) { return }
        nodes[id]!.proposals.append(Driver.NewProposal(command, caller: caller))
    }

    func crash(_ id: NodeID) {
        cacheCrashed(id)
        nodes[id]!.driver = nil
        nodes[id]!.pendingSnapshot = nil
        nodes[id]!.messages.removeAll()
        nodes[id]!.forwards.removeAll()
        nodes[id]!.replies.removeAll()
        nodes[id]!.proposals.removeAll()
        nodes[id]!.pings.removeAll()
        network.removeAll { $0.packet.to == id }
    }

    /// Starts (or restarts) a node from what its disk holds.
    func start(_ id: NodeID) {
        var ledger = Ledger(limits: limits)
        let disk = nodes[id]!.disk
        if let snapshot = disk.snapshot {
            do {
                ledger = try Ledger(snapshot: snapshot.data, limits: limits)
            } catch {
                violations.append("node \(id) cannot load its snapshot: \(error)")
            }
        }
        checkedThrough[id] = disk.snapshot?.index ?? 0
        nodes[id]!.driver = Driver(
            configuration: .init(
                nodeID: id, voters: nodeIDs, warehouses: generator.warehouses, limits: limits,
                tickMs: Int64(Self.stepMs), quorumDeadlineMs: 2_000),
            ledger: ledger, hardState: disk.hardState, snapshot: disk.snapshot, entries: disk.entries,
            random: SplitMix64(seed: random.next()), local: localHolds(of: id))
    }

    // MARK: - One step of time

    func advance(lossless: Bool = false) {
        step += 1
        deliver(lossless: lossless)
        cacheStep()
        for id in nodeIDs.shuffled(using: &random) where nodes[id]!.driver != nil { turn(id, lossless: lossless) }
        checkStep()
    }

    /// True time: the same for every node.
    var trueTimeMs: Int64 { Self.wallBaseMs + Int64(Double(step) * Self.stepMs) }

    func wallMs(of id: NodeID) -> Int64 { trueTimeMs + nodes[id]!.wallOffsetMs + nodes[id]!.jumpMs }

    /// The median of the nodes' wall clocks: the time "by the majority's clocks".
    var majorityWallMs: Int64 {
        let walls = nodeIDs.map { wallMs(of: $0) }.sorted()
        return walls[walls.count / 2]
    }

    /// One turn of node `id`, through the production runner (`ReplicaRunner`) with simulated I/O.
    /// Like the production loop, a node with nothing arrived sleeps until its driver's
    /// `nextTurnMs` (its next tick or earliest deadline).
    func turn(_ id: NodeID, lossless: Bool) {
        nodes[id]!.nowMs += Self.stepMs * nodes[id]!.clockRate
        var node = nodes[id]!
        let nowMs = Int64(node.nowMs)
        let input = Driver.TurnInput(
            nowMs: nowMs, wallMs: wallMs(of: id), messages: node.messages, forwards: node.forwards, replies: node.replies,
            proposals: node.proposals, pings: node.pings)
        let snapshotDue = node.pendingSnapshot.map { $0.dueStep <= step } ?? false
        if input.isEmpty && !snapshotDue, let next = node.driver!.nextTurnMs, next > nowMs { return }
        node.pings.removeAll()
        node.messages.removeAll()
        node.forwards.removeAll()
        node.replies.removeAll()
        node.proposals.removeAll()
        nodes[id] = node
        let shell = SimulatedShell(self, id, lossless: lossless)
        // The simulated disk never throws; a crash is `false`.
        _ = try? ReplicaRunner.turn(shell, input)
    }

    /// Stops node `id` as an operator would: everything waiting gets its answer, then it is down.
    func stop(_ id: NodeID) {
        ReplicaRunner.shutDown(SimulatedShell(self, id, lossless: true))
        crash(id)
    }

    func send(_ packet: Packet, from: NodeID, lossless: Bool) {
        let to = packet.to
        if blocked.contains([from, to]) { return }
        if !lossless && Int.random(in: 0..<100, using: &random) < faults.dropPercent { return }
        // Protocol messages may be duplicated; frames travel on a stream and are not.
        var copies = 1
        if case .raft = packet, !lossless && Int.random(in: 0..<100, using: &random) < faults.duplicatePercent { copies = 2 }
        for _ in 0..<copies {
            let delay = lossless ? 1 : Int.random(in: 1...faults.delayMaxSteps, using: &random)
            network.append(InFlight(deliverAt: step + delay, order: random.next(), packet: packet, from: from))
        }
    }

    func deliver(lossless: Bool) {
        let due = network.filter { $0.deliverAt <= step }.sorted { $0.order < $1.order }
        network.removeAll { $0.deliverAt <= step }
        for item in due {
            let to = item.packet.to
            guard nodes[to]!.driver != nil, !blocked.contains([item.from, to]) else { continue }
            switch item.packet {
            case .raft(let envelope): nodes[to]!.messages.append(envelope)
            case .forward(let from, _, let requestID, let commands):
                nodes[to]!.forwards.append(Driver.IncomingForward(from: from, requestID: requestID, commands: commands))
            case .reply(_, let requestID, let appliedIndex, let outcomes):
                nodes[to]!.replies.append(Driver.ForwardReply(requestID: requestID, appliedIndex: appliedIndex, outcomes: outcomes))
            case .clock(let from, _, let ping): nodes[to]!.pings.append((from: from, ping: ping))
            }
        }
    }
}

extension ClusterSimulator.Packet {
    var to: NodeID {
        switch self {
        case .raft(let envelope): envelope.to
        case .forward(_, let to, _, _): to
        case .reply(let to, _, _, _): to
        case .clock(_, let to, _): to
        }
    }
}
