import Consensus
import Ledger
import Replication
import StockadeCore

/// One simulated node's I/O for `ReplicaRunner`: its simulated disk (a crash partway through a
/// write step keeps a prefix of it and nothing after), its simulated network, its callers' answers
/// recorded by the checkers, and snapshots written in the background that finish a few steps
/// later, or fail.
final class SimulatedShell: ReplicaShell {
    typealias Caller = ClusterSimulator.Call
    typealias Driver = ReplicaDriver<Caller>

    unowned let simulator: ClusterSimulator
    let id: NodeID
    let lossless: Bool

    init(_ simulator: ClusterSimulator, _ id: NodeID, lossless: Bool) {
        self.simulator = simulator
        self.id = id
        self.lossless = lossless
    }

    func withDriver<T>(_ body: (inout Driver) throws -> T) rethrows -> T {
        try body(&simulator.nodes[id]!.driver!)
    }

    func send(_ envelopes: [Envelope]) {
        for envelope in envelopes { simulator.send(.raft(envelope), from: id, lossless: lossless) }
    }

    /// A torn write: with the seed's crash and torn-write rates, the node crashes partway
    /// through this step.
    private func tears() -> Bool {
        !lossless && Int.random(in: 0..<1000, using: &simulator.random) < simulator.faults.crashPerMille
            && Int.random(in: 0..<100, using: &simulator.random) < simulator.faults.tornWritePercent
    }

    func write(_ step: Driver.WriteStep, of work: Driver.Work) throws -> Bool {
        switch step {
        case .snapshot(let snapshot, let keepsLog):
            if tears() {
                simulator.crash(id)
                return false
            }
            simulator.nodes[id]!.disk.install(snapshot, keepingLog: keepsLog)
        case .entries(let entries):
            if tears() {
                simulator.nodes[id]!.disk.persist(Array(entries.prefix(Int.random(in: 0..<entries.count, using: &simulator.random))))
                simulator.crash(id)
                return false
            }
            simulator.nodes[id]!.disk.persist(entries)
        case .localRecords(let records):
            if tears() {
                simulator.nodes[id]!.disk.local += records.prefix(Int.random(in: 0..<records.count, using: &simulator.random))
                simulator.crash(id)
                return false
            }
            simulator.nodes[id]!.disk.local += records
        case .hardState(let hardState, _):
            simulator.nodes[id]!.disk.hardState = hardState
        }
        return true
    }

    func takeFinishedSnapshot() throws -> FinishedSnapshot? {
        guard let pending = simulator.nodes[id]!.pendingSnapshot, pending.dueStep <= simulator.step else { return nil }
        simulator.nodes[id]!.pendingSnapshot = nil
        if pending.fails { return .failed }
        let request = pending.request
        let snapshot = Snapshot(index: request.index, term: request.term, data: request.ledger.encodeSnapshot())
        // A leader's snapshot installed meanwhile is newer: recovery takes the newest, and the
        // log after it stays whole.
        if (simulator.nodes[id]!.disk.snapshot?.index ?? 0) < snapshot.index {
            simulator.nodes[id]!.disk.snapshot = snapshot
            simulator.nodes[id]!.disk.entries.removeAll { $0.index <= snapshot.index }
        }
        return .durable(snapshot)
    }

    func deliver(_ output: Driver.Output) {
        for (call, outcome) in output.answers { simulator.record(call, outcome) }
        for (frame, peer) in output.frames {
            switch frame {
            case .forward(let requestID, let commands):
                // A peer link that is down refuses the frame at once; the driver keeps the commands.
                if simulator.blocked.contains([id, peer]) || simulator.nodes[peer]!.driver == nil {
                    withDriver { $0.forwardNotSent(requestID) }
                } else {
                    simulator.send(.forward(from: id, to: peer, requestID: requestID, commands: commands), from: id, lossless: lossless)
                }
            case .reply(let requestID, let appliedIndex, let outcomes):
                simulator.send(
                    .reply(to: peer, requestID: requestID, appliedIndex: appliedIndex, outcomes: outcomes), from: id, lossless: lossless)
            case .clock(let ping):
                simulator.send(.clock(from: id, to: peer, ping: ping), from: id, lossless: lossless)
            }
        }
        if let request = output.snapshot {
            // Written in the background: done in 0–3 steps; now and then the write fails.
            let delay = lossless ? 0 : Int.random(in: 0...3, using: &simulator.random)
            let fails = !lossless && Int.random(in: 0..<100, using: &simulator.random) < 5
            simulator.nodes[id]!.pendingSnapshot = (request, simulator.step + delay, fails)
        }
    }

    func applied(_ work: Driver.Work) {
        simulator.appliedEntries += work.committedCount
        simulator.noteApplied(work.committedEntries)
    }
}
