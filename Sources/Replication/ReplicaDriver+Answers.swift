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
            guard var batch = incoming[key], batch.outcomes[position] == nil else { return }
            batch.outcomes[position] = outcome
            batch.remaining -= 1
            if batch.remaining == 0 {
                incoming[key] = nil
                output.frames.append(
                    (
                        .reply(
                            requestID: batch.requestID, appliedIndex: ledger.appliedIndex,
                            outcomes: batch.outcomes.map { $0!.encoded() }), batch.from
                    ))
            } else {
                incoming[key] = batch
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
        for proposal in awaitingLeader {
            if proposal.deadlineMs <= nowMs {
                settle(proposal.origin, proposal.command, .rejected(noLeader))
            } else {
                stillWaiting.append(proposal)
            }
        }
        awaitingLeader = stillWaiting
        answerForwarded()
        while let first = forwardedOrder.first, first.deadlineMs <= nowMs || forwardedOut[first.id] == nil {
            forwardedOrder.removeFirst()
            for proposal in forwardedOut.removeValue(forKey: first.id) ?? [] {
                settle(proposal.origin, proposal.command, .rejected(Self.unknown))
            }
        }
        let late = StockadeError(.quorumUnavailable, "no read point from a majority within the deadline")
        readsNotYetAccepted.removeAll { read in
            guard read.deadlineMs <= nowMs else { return false }
            output.readAnswers.append((read.caller, late))
            return true
        }
        for (id, read) in readsAwaitingState where read.deadlineMs <= nowMs {
            readsAwaitingState[id] = nil
            output.readAnswers.append((read.caller, late))
        }
        readsAwaitingApply.removeAll { item in
            guard item.waiter.deadlineMs <= nowMs else { return false }
            output.readAnswers.append((item.waiter.caller, late))
            return true
        }
    }

    // MARK: - Read points

    mutating func submitReads() {
        guard !readsNotYetAccepted.isEmpty else { return }
        if !raft.isLeader {
            let error = StockadeError(.notLeader, "node \(configuration.nodeID) does not lead")
            for read in readsNotYetAccepted { output.readAnswers.append((read.caller, error)) }
            readsNotYetAccepted.removeAll()
            return
        }
        var still: [ReadWaiter] = []
        for read in readsNotYetAccepted {
            nextReadID += 1
            if raft.readIndex(nextReadID) {
                readsAwaitingState[nextReadID] = read
            } else {
                // A new leader must commit in its term first; try again on the next turn.
                still.append(read)
            }
        }
        readsNotYetAccepted = still
    }

    mutating func answerReads() {
        guard !readsAwaitingApply.isEmpty else { return }
        let applied = ledger.appliedIndex
        readsAwaitingApply.removeAll { item in
            guard item.index <= applied else { return false }
            output.readAnswers.append((item.waiter.caller, nil))
            return true
        }
    }
}
