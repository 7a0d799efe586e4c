import Consensus
import Ledger
import StockadeCore

/// Leadership and admission: who may append, what is refused at once, and what is forwarded.
extension ReplicaDriver {
    // MARK: - Leadership and admission

    /// Notes a change of leadership: a new leader learns the latest command time in its log (so
    /// command times never go backwards) and answers locally only once it has applied up to its
    /// term's start.
    mutating func noteLeadership() {
        let isLeader = raft.isLeader
        if isLeader && !wasLeader {
            termStartIndex = raft.lastIndex
            for entry in raft.entries.reversed() where !entry.payload.isEmpty {
                if let command = try? TimedCommand(decoding: entry.payload, limits: limits) {
                    lastTimeMs = max(lastTimeMs, command.timeMs)
                    break
                }
            }
            output.events.append(.leading(term: raft.term, lastIndex: raft.lastIndex))
        }
        if !isLeader && wasLeader { output.events.append(.stoppedLeading(term: raft.term)) }
        wasLeader = isLeader
    }

    /// The time a leader stamps on what it proposes: cluster time, never earlier than any stamp
    /// before it. Without an agreed time (a leader steps down then, so this is not expected) time
    /// does not move: no single clock decides it.
    mutating func stampTime() -> Int64 {
        lastTimeMs = max(lastTimeMs, clockReading.timeMs ?? lastTimeMs)
        return lastTimeMs
    }

    /// Takes in the clock pings that arrived, reads the cluster's time, and sends the pings due.
    /// A node whose clock is off the majority's (or that has no majority's time) may not campaign,
    /// and a leader or candidate in that state steps down.
    mutating func observeClocks(_ pings: [(from: NodeID, ping: ClockPing)]) {
        clock.observeOwnClock(nowMs: nowMs, wallMs: wallMs)
        for (from, ping) in pings { clock.receive(ping, from: from, nowMs: nowMs) }
        let reading = clock.reading(nowMs: nowMs, wallMs: wallMs)
        if reading.ownClockOff != clockReading.ownClockOff {
            output.events.append(reading.ownClockOff ? .ownClockOff(distanceMs: reading.ownDistanceMs ?? 0) : .ownClockAgreed)
        }
        clockReading = reading
        if let agreed = reading.timeMs { fallback.lastAgreedTime = (agreed, nowMs, wallMs) }
        let inAgreement = reading.agreement != nil && !reading.ownClockOff
        raft.mayCampaign = inAgreement
        // A candidate too: votes that arrive later in an election begun before the clock went off
        // must not make it leader.
        if !inAgreement && raft.role != .follower { raft.stepDown() }
        for (ping, peer) in clock.pingsDue(nowMs: nowMs, wallMs: wallMs) { output.frames.append((.clock(ping), peer)) }
    }

    /// How recently a node must have heard from a peer for it to count as reachable: one election timeout.
    var recentContactWindowMs: Int64 { configuration.tickMs * Int64(limits.consensus.electionTicksMin) }

    /// A leader that has not heard from a majority lately refuses at once rather than append
    /// entries that would only time out.
    func hasRecentMajority() -> Bool {
        // Counted without allocating: the reserve fast path asks this for every reserve.
        let window = recentContactWindowMs
        var heard = 0
        for voter in configuration.voters
        where voter == configuration.nodeID || lastContactMs[voter].map({ nowMs - $0 <= window }) == true {
            heard += 1
        }
        return Quorum.size(of: configuration.voters.count) <= heard
    }

    mutating func proposeBatch(_ all: [Proposal]) {
        // A leader's own decisions are written in the term they were taken in, or not at all.
        let currentTerm: Term? = raft.isLeader ? raft.term : nil
        var all = all
        all.removeAll { proposal in
            guard let term = proposal.leaderTerm, term != currentTerm else { return false }
            answer(
                proposal.origin,
                .rejected(StockadeError(.notLeader, "node \(configuration.nodeID) does not lead in term \(term); not written")))
            return true
        }
        guard raft.isLeader else {
            // Commands forwarded to a node that no longer leads go back: the sender tries the
            // next leader. Its own are forwarded.
            var own: [Proposal] = []
            for proposal in all {
                if proposal.origin.isLocal {
                    own.append(proposal)
                } else {
                    answer(proposal.origin, .rejected(StockadeError(.notLeader, "node \(configuration.nodeID) does not lead; not written")))
                }
            }
            forward(own)
            return
        }
        // The reserve fast path, for proposals that did not try it before being queued.
        var batch: [Proposal] = []
        batch.reserveCapacity(all.count)
        let local = mayAnswerFromState
        for proposal in all {
            if local && !proposal.checked, case .reserve(let request) = proposal.command,
                let answer = ledger.answerWithoutLog(request)
            {
                self.answer(proposal.origin, answer)
            } else {
                batch.append(proposal)
            }
        }
        guard !batch.isEmpty else { return }
        guard hasRecentMajority() else {
            let error = StockadeError(.quorumUnavailable, "the leader cannot reach a majority of the cluster; nothing was written")
            for proposal in batch { settle(proposal.origin, proposal.command, .rejected(error)) }
            return
        }
        let timeMs = stampTime()
        let commands = batch.map { TimedCommand($0.command, timeMs: timeMs) }
        switch raft.propose(commands.map { $0.encoded() }) {
        case .appended(let term, let first, _):
            // An older waiter at or after these indices lost its entry to a truncation; whether
            // its entry commits elsewhere is not known here.
            while let last = waiting.last, last.index >= first {
                waiting.removeLast()
                answer(last.origin, .rejected(Self.unknown))
            }
            for (offset, proposal) in batch.enumerated() {
                let index = first + LogIndex(offset)
                precondition(waiting.last.map { $0.index < index } ?? true, "waiters out of index order")
                waiting.append(
                    Waiter(index: index, term: term, origin: proposal.origin, deadlineMs: proposal.deadlineMs, command: commands[offset]))
            }
        case .notLeader(let leader):
            let error = StockadeError(
                .notLeader, "node \(configuration.nodeID) does not lead; leader is \(leader.map { "n\($0)" } ?? "unknown")")
            for proposal in batch { answer(proposal.origin, .rejected(error)) }
        case .overloaded:
            overloadRefusals += batch.count
            let error = StockadeError(.overloaded, "too many uncommitted entries; retry with backoff")
            for proposal in batch { answer(proposal.origin, .rejected(error)) }
        }
    }

    /// A new leader proposes the configured warehouse layout once per term if the ledger's differs.
    mutating func configureWarehousesIfNeeded() {
        guard isCaughtUpLeader, configuredInTerm != raft.term else { return }
        configuredInTerm = raft.term
        let layout = configuration.warehouses.sorted { $0.id < $1.id }
        guard ledger.warehouses != layout else { return }
        _ = raft.propose([TimedCommand(.configureWarehouses(layout), timeMs: stampTime()).encoded()])
        output.events.append(.proposingWarehouses(count: layout.count))
    }
}
