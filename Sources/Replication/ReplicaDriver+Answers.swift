import Consensus
import Ledger
import StockadeCore

/// Answers: to callers, to forwarded batches, at deadlines, and to read points.
extension ReplicaDriver {
    // MARK: - Answers

    mutating func answer(_ origin: Origin, _ outcome: Outcome) {
        switch origin {
        case .local(let caller):
            output.answers.append((caller, outcome))
        case .internal(let task):
            finishLocalTask(task, outcome)
        case .forwarded(let key, let position):
            guard var batch = forwarding.incoming[key], batch.outcomes[position] == nil else { return }
            batch.outcomes[position] = outcome
            batch.remaining -= 1
            if batch.remaining == 0 {
                forwarding.incoming[key] = nil
                output.frames.append(
                    (
                        .reply(
                            requestID: batch.requestID, appliedIndex: ledger.appliedIndex,
                            outcomes: batch.outcomes.map { $0!.encoded() }), batch.from
                    ))
            } else {
                forwarding.incoming[key] = batch
            }
        }
    }

    /// Answers everything past its deadline.
    mutating func expire() {
        while let first = waiting.first, first.deadlineMs <= nowMs {
            waiting.removeFirst()
            settle(first.origin, first.command.command, .rejected(Self.unknown))
        }
        let noLeader = StockadeError(
            .quorumUnavailable,
            "no leader reachable within \(configuration.quorumDeadlineMs) ms; a majority of nodes may be down. Nothing was written")
        var stillWaiting: [Proposal] = []
        for proposal in forwarding.awaitingLeader {
            if proposal.deadlineMs <= nowMs {
                settle(proposal.origin, proposal.command, .rejected(noLeader))
            } else {
                stillWaiting.append(proposal)
            }
        }
        forwarding.awaitingLeader = stillWaiting
        answerForwarded()
        while let first = forwarding.order.first, first.deadlineMs <= nowMs || forwarding.out[first.id] == nil {
            forwarding.order.removeFirst()
            for proposal in forwarding.out.removeValue(forKey: first.id) ?? [] {
                settle(proposal.origin, proposal.command, .rejected(Self.unknown))
            }
        }
        let late = StockadeError(.quorumUnavailable, "no read point from a majority within the deadline")
        readPoints.notYetAccepted.removeAll { read in
            guard read.deadlineMs <= nowMs else { return false }
            output.readAnswers.append((read.caller, late))
            return true
        }
        for (id, read) in readPoints.awaitingState where read.deadlineMs <= nowMs {
            readPoints.awaitingState[id] = nil
            output.readAnswers.append((read.caller, late))
        }
        readPoints.awaitingApply.removeAll { item in
            guard item.waiter.deadlineMs <= nowMs else { return false }
            output.readAnswers.append((item.waiter.caller, late))
            return true
        }
    }

    // MARK: - Read points

    mutating func submitReads() {
        guard !readPoints.notYetAccepted.isEmpty else { return }
        if !raft.isLeader {
            let error = StockadeError(.notLeader, "node \(configuration.nodeID) does not lead")
            for read in readPoints.notYetAccepted { output.readAnswers.append((read.caller, error)) }
            readPoints.notYetAccepted.removeAll()
            return
        }
        var still: [ReadWaiter] = []
        for read in readPoints.notYetAccepted {
            readPoints.nextID += 1
            if raft.readIndex(readPoints.nextID) {
                readPoints.awaitingState[readPoints.nextID] = read
            } else {
                // A new leader must commit in its term first; try again on the next turn.
                still.append(read)
            }
        }
        readPoints.notYetAccepted = still
    }

    mutating func answerReads() {
        guard !readPoints.awaitingApply.isEmpty else { return }
        let applied = ledger.appliedIndex
        readPoints.awaitingApply.removeAll { item in
            guard item.index <= applied else { return false }
            output.readAnswers.append((item.waiter.caller, nil))
            return true
        }
    }
}
