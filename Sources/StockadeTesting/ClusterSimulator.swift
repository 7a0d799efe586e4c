import Consensus
import Ledger
import StockadeCore

/// The whole cluster in one process on a seeded scheduler: real `RaftNode`s and real `Ledger`s over
/// a simulated network (delay, loss, duplication, reordering, symmetric and one-way partitions),
/// simulated disks (crashes lose unsynced writes; a crash mid-write keeps a torn prefix), and
/// skewed clocks. Every step checks election safety, log matching, leader completeness,
/// state-machine safety and the ledger invariants; the end checks that no acknowledged
/// reservation was lost and that every replica reached the same state, byte for byte.
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

        public var description: String {
            "drop \(dropPercent)% dup \(duplicatePercent)% delay≤\(delayMaxSteps) crash \(crashPerMille)‰ torn \(tornWritePercent)% partition \(partitionPerMille)‰ heal \(healPerMille)‰ skew \(clockSkewPercent)% propose \(proposePercent)%"
        }

        static func draw(_ random: inout SplitMix64) -> Faults {
            Faults(
                dropPercent: Int.random(in: 0...20, using: &random), duplicatePercent: Int.random(in: 0...10, using: &random),
                delayMaxSteps: Int.random(in: 1...6, using: &random), crashPerMille: Int.random(in: 0...8, using: &random),
                tornWritePercent: Int.random(in: 0...50, using: &random),
                partitionPerMille: Int.random(in: 0...10, using: &random), healPerMille: Int.random(in: 5...40, using: &random),
                clockSkewPercent: Int.random(in: 0...30, using: &random), proposePercent: Int.random(in: 10...60, using: &random))
        }
    }

    struct Disk {
        var hardState = HardState()
        var snapshot: Snapshot?
        var entries: [Entry] = []

        mutating func persist(_ newEntries: [Entry]) {
            guard let first = newEntries.first else { return }
            entries.removeAll { $0.index >= first.index }
            entries.append(contentsOf: newEntries)
        }
    }

    struct SimulatedNode {
        var raft: RaftNode?
        var disk = Disk()
        var ledger = Ledger(limits: ClusterSimulator.limits)
        var clockRate = 1.0
        var clockDebt = 0.0
    }

    struct InFlight {
        var deliverAt: Int
        var order: UInt64
        var envelope: Envelope
    }

    static let limits: Limits = {
        var limits = Limits()
        limits.finishedRetentionMs = 60_000
        return limits
    }()

    public let seed: UInt64
    public let faults: Faults
    let nodeIDs: [NodeID]
    var random: SplitMix64
    var nodes: [NodeID: SimulatedNode] = [:]
    var network: [InFlight] = []
    var blocked = Set<[NodeID]>()
    var step = 0
    var generator: HistoryGenerator
    var setupCommands: [TimedCommand]
    let configuration: ConsensusConfiguration
    let snapshotEvery: LogIndex

    // What the checkers remember.
    var leaderOfTerm: [Term: NodeID] = [:]
    /// Per node, the highest committed index already compared against `committed`.
    var checkedThrough: [NodeID: LogIndex] = [:]
    var committed: [LogIndex: Entry] = [:]
    /// Who first reported each committed entry, in which term and at which step. That term is at
    /// least the term in which the entry was committed, so leader completeness is checked only
    /// against leaders of later terms (a stale leader of an older term may lack it).
    var committedBy: [LogIndex: (node: NodeID, term: Term, step: Int, commit: LogIndex)] = [:]
    var appliedGlobally: [LogIndex: Entry] = [:]
    /// Proposals waiting to be answered: (node, term, index) → the reserve it carries, if any.
    var awaiting: [LogIndex: (node: NodeID, term: Term, reservation: ReservationID?)] = [:]
    /// Reservations answered as granted to a client, with their token and expiry.
    /// Every reservation acknowledged as granted, with what bounds when it may leave the ledger:
    /// it is purged `finishedRetentionMs` after it finished, and it finishes when it is confirmed
    /// or released, or by its (possibly extended) expiry at the latest.
    public private(set) var acknowledged: [ReservationID: AcknowledgedHold] = [:]
    /// The latest command time any replica applied.
    var lastAppliedTimeMs: Int64 = 0
    public private(set) var violations: [String] = []
    public private(set) var leaderElections = 0
    public private(set) var appliedEntries = 0

    public init(seed: UInt64, nodeCount: Int? = nil) {
        self.seed = seed
        var random = SplitMix64(seed: seed)
        faults = Faults.draw(&random)
        let count = nodeCount ?? (Bool.random(using: &random) ? 3 : 5)
        nodeIDs = (1...count).map(NodeID.init)
        var configuration = ConsensusConfiguration()
        configuration.inflightAppendsMax = Int.random(in: 1...8, using: &random)
        configuration.entriesPerAppendMax = Int.random(in: 1...64, using: &random)
        self.configuration = configuration
        snapshotEvery = LogIndex.random(in: 20...200, using: &random)
        generator = HistoryGenerator(seed: random.next())
        setupCommands = generator.setup()
        self.random = random
        for id in nodeIDs {
            var node = SimulatedNode()
            node.clockRate = 1 + Double(Int.random(in: -faults.clockSkewPercent...faults.clockSkewPercent, using: &self.random)) / 100
            checkedThrough[id] = node.disk.snapshot?.index ?? 0
        node.raft = RaftNode(id: id, voters: nodeIDs, configuration: configuration, random: SplitMix64(seed: self.random.next()))
            nodes[id] = node
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
        // Heal: every node up, no partitions, no loss; the cluster must converge.
        blocked.removeAll()
        for id in nodeIDs where nodes[id]!.raft == nil { restart(id) }
        var quiet = 0
        while quiet < 4_000 {
            advance(lossless: true)
            quiet += 1
            if !violations.isEmpty { return violations }
            if quiet > 40 && quiet % 10 == 0 && converged() { break }
        }
        checkFinalState()
        return violations
    }

    // MARK: - Faults and clients

    func faultStep() {
        if Int.random(in: 0..<1000, using: &random) < faults.crashPerMille {
            let id = nodeIDs.randomElement(using: &random)!
            if nodes[id]!.raft != nil { crash(id) } else { restart(id) }
        }
        for id in nodeIDs where nodes[id]!.raft == nil && Int.random(in: 0..<100, using: &random) < 3 { restart(id) }
        if Int.random(in: 0..<1000, using: &random) < faults.partitionPerMille {
            let isolated = nodeIDs.randomElement(using: &random)!
            let oneWay = Bool.random(using: &random)
            for other in nodeIDs where other != isolated {
                blocked.insert([isolated, other])
                if !oneWay { blocked.insert([other, isolated]) }
            }
        }
        if Int.random(in: 0..<1000, using: &random) < faults.healPerMille { blocked.removeAll() }
    }

    func clientStep() {
        guard Int.random(in: 0..<100, using: &random) < faults.proposePercent else { return }
        let leaders = nodeIDs.filter { nodes[$0]!.raft?.isLeader == true }
        guard let leader = leaders.randomElement(using: &random) else { return }
        let command: TimedCommand
        if !setupCommands.isEmpty {
            command = setupCommands.removeFirst()
        } else {
            var next = generator.next()
            next.timeMs = Int64(step) * 50 + 1_700_000_000_000
            command = next
        }
        var stamped = command
        stamped.timeMs = Int64(step) * 50 + 1_700_000_000_000
        guard case .appended(let term, let first, _) = nodes[leader]!.raft!.propose([stamped.encoded()]) else { return }
        var reservation: ReservationID?
        if case .reserve(let request) = stamped.command { reservation = request.reservationId }
        awaiting[first] = (node: leader, term: term, reservation: reservation)
    }

    func crash(_ id: NodeID) {
        nodes[id]!.raft = nil
        nodes[id]!.ledger = Ledger(limits: Self.limits)
        network.removeAll { $0.envelope.to == id }
    }

    func restart(_ id: NodeID) {
        var node = nodes[id]!
        node.ledger = Ledger(limits: Self.limits)
        if let snapshot = node.disk.snapshot {
            do {
                node.ledger = try Ledger(snapshot: snapshot.data, limits: Self.limits)
            } catch {
                violations.append("node \(id) cannot load its snapshot: \(error)")
            }
        }
        checkedThrough[id] = node.disk.snapshot?.index ?? 0
        node.raft = RaftNode(
            id: id, voters: nodeIDs, configuration: configuration, random: SplitMix64(seed: random.next()),
            hardState: node.disk.hardState, snapshot: node.disk.snapshot, entries: node.disk.entries)
        nodes[id] = node
    }

    // MARK: - One step of time

    func advance(lossless: Bool = false) {
        step += 1
        for id in nodeIDs {
            guard nodes[id]!.raft != nil else { continue }
            nodes[id]!.clockDebt += nodes[id]!.clockRate
            while nodes[id]!.clockDebt >= 1 {
                nodes[id]!.clockDebt -= 1
                nodes[id]!.raft!.tick()
            }
        }
        deliver(lossless: lossless)
        for id in nodeIDs.shuffled(using: &random) { processReady(id, lossless: lossless) }
        checkStep()
    }

    func send(_ envelope: Envelope, lossless: Bool) {
        if blocked.contains([envelope.from, envelope.to]) { return }
        if !lossless && Int.random(in: 0..<100, using: &random) < faults.dropPercent { return }
        let copies = !lossless && Int.random(in: 0..<100, using: &random) < faults.duplicatePercent ? 2 : 1
        for _ in 0..<copies {
            let delay = lossless ? 1 : Int.random(in: 1...faults.delayMaxSteps, using: &random)
            network.append(InFlight(deliverAt: step + delay, order: random.next(), envelope: envelope))
        }
    }

    func deliver(lossless: Bool) {
        let due = network.filter { $0.deliverAt <= step }.sorted { $0.order < $1.order }
        network.removeAll { $0.deliverAt <= step }
        for item in due {
            guard nodes[item.envelope.to]!.raft != nil, !blocked.contains([item.envelope.from, item.envelope.to]) else { continue }
            nodes[item.envelope.to]!.raft!.step(item.envelope)
        }
    }

    func processReady(_ id: NodeID, lossless: Bool) {
        guard var raft = nodes[id]!.raft else { return }
        let ready = raft.ready()
        nodes[id]!.raft = raft
        for envelope in ready.messagesBeforePersist { send(envelope, lossless: lossless) }
        // A crash in the middle of the write: a prefix of the entries reaches the disk, nothing is sent or applied.
        if !lossless && !ready.entries.isEmpty && Int.random(in: 0..<1000, using: &random) < faults.crashPerMille
            && Int.random(in: 0..<100, using: &random) < faults.tornWritePercent
        {
            // Write order is snapshot, entries, hard state: a torn write keeps a prefix of the
            // entries and never the hard state after them (its commit index may cover them).
            var kept = Int.random(in: 0..<ready.entries.count, using: &random)
            // Entries after an installed snapshot are written only once the snapshot is: the crash
            // lands either before the snapshot (nothing after it is on disk) or after it.
            if let snapshot = ready.snapshot {
                if Bool.random(using: &random) {
                    nodes[id]!.disk.snapshot = snapshot
                    nodes[id]!.disk.entries.removeAll { $0.index <= snapshot.index }
                } else {
                    kept = 0
                }
            }
            nodes[id]!.disk.persist(Array(ready.entries.prefix(kept)))
            crash(id)
            return
        }
        if let snapshot = ready.snapshot {
            nodes[id]!.disk.snapshot = snapshot
            nodes[id]!.disk.entries.removeAll { $0.index <= snapshot.index }
            do {
                nodes[id]!.ledger = try Ledger(snapshot: snapshot.data, limits: Self.limits)
            } catch {
                violations.append("node \(id) cannot install snapshot \(snapshot.index): \(error)")
            }
        }
        if let hardState = ready.hardState { nodes[id]!.disk.hardState = hardState }
        nodes[id]!.disk.persist(ready.entries)
        for envelope in ready.messages { send(envelope, lossless: lossless) }
        for entry in ready.committedEntries { apply(entry, on: id) }
        nodes[id]!.raft!.advance(ready)
        maybeCompact(id)
    }

    func apply(_ entry: Entry, on id: NodeID) {
        appliedEntries += 1
        if let earlier = appliedGlobally[entry.index], earlier != entry {
            violations.append("state-machine safety: index \(entry.index) applied as term \(earlier.term) and as term \(entry.term)")
            return
        }
        appliedGlobally[entry.index] = entry
        guard nodes[id]!.ledger.appliedIndex + 1 == entry.index else {
            violations.append("node \(id) applies \(entry.index) after \(nodes[id]!.ledger.appliedIndex)")
            return
        }
        var outcome: Outcome?
        if entry.payload.isEmpty {
            nodes[id]!.ledger.skip(index: entry.index)
        } else {
            do {
                let command = try TimedCommand(decoding: entry.payload, limits: Self.limits)
                lastAppliedTimeMs = max(lastAppliedTimeMs, command.timeMs)
                outcome = nodes[id]!.ledger.apply(command, index: entry.index)
            } catch {
                violations.append("index \(entry.index) does not decode: \(error)")
                return
            }
        }
        // The proposing leader answers its client once it applies its own entry.
        if let waiting = awaiting[entry.index], waiting.node == id {
            awaiting[entry.index] = nil
            if waiting.term == entry.term, let reservation = waiting.reservation,
                case .reservation(let hold, true)? = outcome
            {
                acknowledged[reservation] = AcknowledgedHold(token: hold.token, expiresAtMs: hold.expiresAtMs)
            }
        }
        // A confirm, release or extend of an acknowledged hold moves the earliest time it may be purged.
        if case .reservation(let hold, _)? = outcome, var known = acknowledged[hold.reservationId], known.token == hold.token {
            known.expiresAtMs = hold.expiresAtMs
            if hold.status.isFinished { known.finishedAtMs = min(known.finishedAtMs ?? .max, hold.finishedAtMs) }
            acknowledged[hold.reservationId] = known
        }
    }

    func maybeCompact(_ id: NodeID) {
        guard let raft = nodes[id]!.raft else { return }
        let applied = nodes[id]!.ledger.appliedIndex
        guard applied >= raft.compactedThrough + snapshotEvery, let term = raft.term(at: applied) else { return }
        let snapshot = Snapshot(index: applied, term: term, data: nodes[id]!.ledger.encodeSnapshot())
        nodes[id]!.disk.snapshot = snapshot
        nodes[id]!.disk.entries.removeAll { $0.index <= applied }
        nodes[id]!.raft!.compact(snapshot)
    }

    // MARK: - Checks

    func checkStep() {
        for id in nodeIDs {
            guard let raft = nodes[id]!.raft else { continue }
            if raft.isLeader {
                if let other = leaderOfTerm[raft.term], other != id {
                    violations.append("election safety: nodes \(other) and \(id) both lead term \(raft.term)")
                }
                let newLeader = leaderOfTerm[raft.term] == nil
                if newLeader { leaderElections += 1 }
                leaderOfTerm[raft.term] = id
                // Leader completeness: the leader holds every committed entry (or has it in its snapshot).
                for (index, entry) in committed
                where (newLeader || step % 25 == 0) && index > raft.compactedThrough
                    && (committedBy[index]?.term ?? .max) < raft.term
                {
                    if raft.term(at: index) != entry.term {
                        let source = committedBy[index]
                        violations.append(
                            "leader completeness: leader \(id) of term \(raft.term) lacks committed \(index) (term \(entry.term), first seen committed on n\(source?.node ?? 0) at step \(source?.step ?? 0) with commit \(source?.commit ?? 0)); leader: \(String(reflecting: raft)); step \(step)")
                        break
                    }
                }
            }
            // Log matching over committed prefixes, and remember what is committed.
            let from = checkedThrough[id] ?? 0
            for entry in raft.entries where entry.index > from && entry.index <= raft.commitIndex {
                if let known = committed[entry.index] {
                    if known != entry {
                        violations.append("log matching: committed \(entry.index) differs on node \(id)")
                        break
                    }
                } else {
                    committed[entry.index] = entry
                    committedBy[entry.index] = (node: id, term: raft.term, step: step, commit: raft.commitIndex)
                }
            }
            checkedThrough[id] = max(from, raft.commitIndex)
            if step % 100 == 0 {
                let problems = nodes[id]!.ledger.invariantViolations()
                if !problems.isEmpty { violations.append("node \(id) ledger: \(problems.prefix(3))") }
            }
        }
    }

    func converged() -> Bool {
        let applied = nodeIDs.map { nodes[$0]!.ledger.appliedIndex }
        let commits = nodeIDs.compactMap { nodes[$0]!.raft?.commitIndex }
        let hasLeader = nodeIDs.contains { nodes[$0]!.raft?.isLeader == true }
        let leaderLast = nodeIDs.compactMap { nodes[$0]!.raft }.first { $0.isLeader }?.lastIndex
        return hasLeader && Set(applied).count == 1 && commits.allSatisfy { $0 == applied[0] } && leaderLast == applied[0]
    }

    func checkFinalState() {
        guard converged() else {
            let state = nodeIDs.map { "applied \(nodes[$0]!.ledger.appliedIndex): \(nodes[$0]!.raft.map { String(reflecting: $0) } ?? "down")" }
            violations.append("cluster did not converge after healing: \(state)")
            return
        }
        let reference = nodes[nodeIDs[0]]!.ledger.encodeSnapshot()
        for id in nodeIDs.dropFirst() where nodes[id]!.ledger.encodeSnapshot() != reference {
            violations.append("replicas differ after converging: node \(id) vs node \(nodeIDs[0])")
        }
        for id in nodeIDs {
            let ledger = nodes[id]!.ledger
            let problems = ledger.invariantViolations()
            if !problems.isEmpty { violations.append("node \(id) ledger: \(problems.prefix(3))") }
            for (reservation, acknowledgedHold) in acknowledged {
                // Purge after retention is the only way an acknowledged hold may leave the ledger: it
                // finishes when confirmed or released, or by its expiry at the latest, and is purged
                // `finishedRetentionMs` later.
                let purgeable = lastAppliedTimeMs >= acknowledgedHold.finishesByMs + Self.limits.finishedRetentionMs
                if ledger.hold(reservation)?.token == acknowledgedHold.token || purgeable { continue }
                violations.append("acknowledged reservation \(reservation) lost on node \(id)")
            }
        }
    }
}

/// An acknowledged reservation as the simulator's checker follows it.
public struct AcknowledgedHold: Sendable, Equatable {
    public var token: FencingToken
    public var expiresAtMs: Int64
    /// When a confirm or release finished it, once one was applied.
    public var finishedAtMs: Int64?

    public init(token: FencingToken, expiresAtMs: Int64, finishedAtMs: Int64? = nil) {
        self.token = token
        self.expiresAtMs = expiresAtMs
        self.finishedAtMs = finishedAtMs
    }

    /// The latest time it finishes: its finish if known, its expiry otherwise.
    public var finishesByMs: Int64 { min(expiresAtMs, finishedAtMs ?? .max) }
}
