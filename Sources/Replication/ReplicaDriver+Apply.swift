import Consensus
import Ledger
import StockadeCore

extension ReplicaDriver {
    // MARK: - Forwarding

    /// Commands a follower forwarded: each is proposed here, and the batch is answered in one
    /// reply frame once every command has its outcome.
    mutating func admitForward(_ forward: IncomingForward, deadlineMs: Int64) -> [Proposal] {
        forwarding.nextIncomingID += 1
        let key = forwarding.nextIncomingID
        forwarding.incoming[key] = ForwardBatch(
            from: forward.from, requestID: forward.requestID, outcomes: Array(repeating: nil, count: forward.commands.count),
            remaining: forward.commands.count)
        var proposals: [Proposal] = []
        for (position, bytes) in forward.commands.enumerated() {
            if let timed = try? TimedCommand(decoding: bytes, limits: limits) {
                proposals.append(
                    Proposal(
                        command: timed.command, origin: .forwarded(batch: key, position: position), deadlineMs: deadlineMs,
                        checked: false, leaderTerm: nil))
            } else {
                answer(
                    .forwarded(batch: key, position: position),
                    .rejected(StockadeError(.invalidRequest, "forwarded command does not decode")))
            }
        }
        if forward.commands.isEmpty {
            forwarding.incoming[key] = nil
            output.frames.append((.reply(requestID: forward.requestID, appliedIndex: ledger.appliedIndex, outcomes: []), forward.from))
        }
        return proposals
    }

    /// A follower sends its proposals to the leader it knows, in frames of at most
    /// `PeerFrame.forwardBatchMax`; with no leader known, or none heard from lately, they wait
    /// for the next turn (so one that times out was certainly not sent: `quorum_unavailable`).
    mutating func forward(_ proposals: [Proposal]) {
        guard !proposals.isEmpty else { return }
        guard let leader = raft.leaderID, leader != configuration.nodeID, reachesQuorum else {
            forwarding.awaitingLeader += proposals
            return
        }
        var start = 0
        while start < proposals.count {
            let chunk = Array(proposals[start..<min(start + limits.forwardBatchMax, proposals.count)])
            start += chunk.count
            forwarding.nextID += 1
            let commands = chunk.map { TimedCommand($0.command, timeMs: 0).encoded() }
            output.frames.append((.forward(requestID: forwarding.nextID, commands: commands), leader))
            forwarding.out[forwarding.nextID] = chunk
            forwarding.order.append((forwarding.nextID, chunk.map(\.deadlineMs).max()!))
        }
    }

    /// The shell could not send forward frame `requestID` (no link to the leader): its commands
    /// were certainly not written, and wait for the next turn.
    public mutating func forwardNotSent(_ requestID: UInt64) {
        guard let chunk = forwarding.out.removeValue(forKey: requestID) else { return }
        forwarding.awaitingLeader += chunk
    }

    /// The leader's outcomes for a forwarded batch. `not_leader` means it was not written: try
    /// again with whoever leads now.
    mutating func takeForwardReply(_ reply: ForwardReply) {
        guard let chunk = forwarding.out.removeValue(forKey: reply.requestID) else { return }
        var answered: [(Proposal, Outcome)] = []
        for (position, proposal) in chunk.enumerated() {
            guard position < reply.outcomes.count, let outcome = try? Outcome(decoding: reply.outcomes[position], limits: limits)
            else {
                answer(proposal.origin, .rejected(Self.unknown))
                continue
            }
            if case .rejected(let error, _) = outcome, error.code == .notLeader {
                forwarding.awaitingLeader.append(proposal)
            } else if Self.answersFromLocalState(proposal.command) {
                answered.append((proposal, outcome))
            } else {
                answer(proposal.origin, outcome)
            }
        }
        // Stock changes are answered with this node's rows, so they wait until it has applied as
        // far as the leader had. Reservation answers carry the hold itself and go at once.
        if !answered.isEmpty { awaitingLocalApply.append((reply.appliedIndex, answered)) }
        answerForwarded()
    }

    static func answersFromLocalState(_ command: Command) -> Bool {
        switch command {
        case .setStock, .adjustStock, .configureWarehouses, .setHot, .grantAllotment, .returnAllotment, .setLocalReserve,
            .beginLocalEpoch, .reconcileLocal:
            true
        case .reserve, .confirm, .release, .extend, .expireDue, .applyAllotmentHolds: false
        }
    }

    mutating func answerForwarded(force: Bool = false) {
        guard !awaitingLocalApply.isEmpty else { return }
        let applied = ledger.appliedIndex
        var still: [(index: LogIndex, answers: [(Proposal, Outcome)])] = []
        for item in awaitingLocalApply {
            if force || item.index <= applied || item.answers.allSatisfy({ $0.0.deadlineMs <= nowMs }) {
                for (proposal, outcome) in item.answers { answer(proposal.origin, outcome) }
            } else {
                still.append(item)
            }
        }
        awaitingLocalApply = still
    }

    // MARK: - Applying

    /// A follower takes a leader's snapshot: its applied state replaces the ledger, and proposals
    /// whose entries it covers can no longer be matched to an outcome.
    mutating func install(_ snapshot: Snapshot) {
        let newLedger: Ledger
        do {
            newLedger = try Ledger(snapshot: snapshot.data, limits: limits)
        } catch {
            preconditionFailure("a leader's snapshot \(snapshot.index) does not decode: \(error)")
        }
        ledger = newLedger
        snapshots.index = snapshot.index
        snapshots.holds = newLedger.holds.count
        while let first = waiting.first, first.index <= snapshot.index {
            waiting.removeFirst()
            answer(first.origin, .rejected(Self.unknown))
        }
        output.events.append(.installedSnapshot(index: snapshot.index, bytes: snapshot.data.count))
    }

    /// Applies committed entries in order and answers the callers whose entries they are.
    mutating func apply(_ entries: [Entry]) {
        guard !entries.isEmpty else { return }
        for entry in entries {
            precondition(entry.index == ledger.appliedIndex + 1, "applying \(entry.index) after \(ledger.appliedIndex)")
            var outcome: Outcome?
            if entry.payload.isEmpty {
                ledger.skip(index: entry.index)
            } else {
                let command: TimedCommand
                if let first = waiting.first, first.index == entry.index, first.term == entry.term {
                    command = first.command
                } else {
                    do {
                        command = try TimedCommand(decoding: entry.payload, limits: limits)
                    } catch {
                        preconditionFailure("committed entry \(entry.index) does not decode: \(error)")
                    }
                }
                lastTimeMs = max(lastTimeMs, command.timeMs)
                outcome = ledger.apply(command, index: entry.index)
                // This node's own batch: what became of each hold is read from the entry's outcome,
                // at once, not later from a ledger that may have purged the winner of an id
                // granted on both sides by then (seed 50105).
                if case .reconcileLocal(let batch) = command.command, batch.node == configuration.nodeID,
                    case .localReconciled(_, let results)? = outcome
                {
                    local.noteResults(of: batch, results)
                    local.follow(ledger)
                }
            }
            while let first = waiting.first, first.index <= entry.index {
                waiting.removeFirst()
                guard first.index == entry.index else {
                    answer(first.origin, .rejected(Self.unknown))
                    continue
                }
                if first.term == entry.term, let outcome {
                    answer(first.origin, outcome)
                } else {
                    answer(
                        first.origin,
                        .rejected(
                            StockadeError(
                                .quorumUnavailable,
                                "leadership changed before the write committed; another entry took its place, so it was not applied")))
                }
            }
        }
    }

    // MARK: - Snapshots

    /// When due (`Ledger.snapshotDue`) and none is being written: hands a copy of the applied state to
    /// the shell, which encodes and writes it in the background. The protocol compacts to it (and
    /// may send it to a follower) only once it is on disk.
    mutating func requestSnapshotIfDue() {
        let applied = ledger.appliedIndex
        guard !snapshots.inProgress,
            Ledger.snapshotDue(
                applied: applied, lastIndex: snapshots.index, lastHolds: snapshots.holds, interval: limits.snapshotIntervalEntries),
            let term = raft.term(at: applied)
        else { return }
        snapshots.inProgress = true
        snapshots.index = applied
        snapshots.holds = ledger.holds.count
        output.snapshot = SnapshotRequest(index: applied, term: term, ledger: ledger)
    }

    /// The requested snapshot is on disk: the protocol drops the entries it covers. One taken
    /// before a leader's snapshot was installed is already covered, and is ignored.
    public mutating func snapshotDurable(_ snapshot: Snapshot) {
        snapshots.inProgress = false
        raft.compact(snapshot)
    }

    /// Writing the requested snapshot failed; the next one will be asked for when due.
    public mutating func snapshotFailed() {
        snapshots.inProgress = false
    }

    // MARK: - Status

    /// What `GET /v1/cluster` reports, as of this turn.
    public var status: ReplicaStatus {
        ReplicaStatus(
            nodeID: configuration.nodeID, role: raft.role, term: raft.term, leaderID: raft.leaderID, commitIndex: raft.commitIndex,
            appliedIndex: ledger.appliedIndex,
            peers: configuration.voters.filter { $0 != configuration.nodeID }.map { peer in
                ReplicaStatus.Peer(
                    nodeID: peer, matchIndex: raft.matchIndex(of: peer), lastContactMs: lastContactMs[peer].map { nowMs - $0 })
            },
            caughtUpLeader: mayAnswerFromState, clock: clockReading,
            local: LocalFallbackStatus(
                epoch: local.epoch, provisionalHolds: local.count,
                oldestAgeMs: local.count > 0 ? fallback.oldestProvisionalMs.map { max(0, localTimeMs - $0) } : nil,
                fallbacks: fallback.fallbacksTaken, reconciledHolds: fallback.reconciledHolds, reconcileErrors: local.reconcileErrors))
    }
}

/// A replica's view of itself and its peers.
public struct ReplicaStatus: Sendable, Equatable {
    public struct Peer: Sendable, Equatable {
        public var nodeID: NodeID
        public var matchIndex: LogIndex?
        /// Milliseconds since this node last heard from the peer.
        public var lastContactMs: Int64?
    }
    public var nodeID: NodeID
    public var role: Role
    public var term: Term
    public var leaderID: NodeID?
    public var commitIndex: LogIndex
    public var appliedIndex: LogIndex
    public var peers: [Peer]
    /// The leader has applied up to its term's start and heard from a majority lately: it may
    /// answer from its applied state (`ReplicaDriver.mayAnswerFromState`).
    public var caughtUpLeader: Bool
    /// What the cluster's clocks agree on, and whose clock is off, as of this turn.
    public var clock: ClusterClock.Reading
    /// The local-warehouse fallback, as of this turn.
    public var local: LocalFallbackStatus
}
