import StockadeCore

extension RaftNode {
    /// Starts a pre-vote (or, without pre-vote, a real election).
    mutating func campaign() {
        if configuration.preVote {
            becomePreCandidate()
        } else {
            becomeCandidate()
        }
    }

    mutating func becomeFollower(term newTerm: Term, leader: NodeID?) {
        if newTerm > term {
            term = newTerm
            votedFor = nil
        }
        role = .follower
        leaderID = leader
        votes.removeAll()
        progress.removeAll()
        failPendingReads()
        resetElectionTimeout()
    }

    /// Asks peers whether they *would* vote, without touching any term: a node that was cut off
    /// cannot inflate terms and depose a healthy leader when it returns.
    mutating func becomePreCandidate() {
        role = .preCandidate
        leaderID = nil
        votes = [id: true]
        resetElectionTimeout()
        if votes.count >= quorum {
            becomeCandidate()
            return
        }
        for peer in peers {
            outbox.append(
                Envelope(
                    from: id, to: peer,
                    message: .requestVote(term: term + 1, lastLogIndex: lastIndex, lastLogTerm: lastTerm, preVote: true)))
        }
    }

    mutating func becomeCandidate() {
        term += 1
        votedFor = id
        role = .candidate
        leaderID = nil
        votes = [id: true]
        resetElectionTimeout()
        if votes.count >= quorum {
            becomeLeader()
            return
        }
        // Sent after the new term and vote are durable (they are in this ready's hard state).
        for peer in peers {
            outbox.append(
                Envelope(
                    from: id, to: peer,
                    message: .requestVote(term: term, lastLogIndex: lastIndex, lastLogTerm: lastTerm, preVote: false)))
        }
    }

    mutating func becomeLeader() {
        role = .leader
        leaderID = id
        votes.removeAll()
        heartbeatElapsed = 0
        electionElapsed = 0
        progress = [:]
        for voter in voters {
            progress[voter] = Progress(match: voter == id ? stableIndex : 0, next: lastIndex + 1)
        }
        readAcknowledged = [:]
        // A no-op in the new term lets the leader learn the commit index (§5.4.2, §8).
        appendToLog(Entry(index: lastIndex + 1, term: term, payload: []))
        broadcastAppend()
    }

    /// Whether a leader heard from a majority during the last election timeout.
    mutating func hasActiveQuorum() -> Bool {
        var active = 1
        for peer in peers where progress[peer]?.recentActive == true { active += 1 }
        for peer in peers { progress[peer]?.recentActive = false }
        return active >= quorum
    }

    /// Whether this node heard from a live leader recently enough to ignore vote requests (the leader lease).
    var inLeaderLease: Bool {
        configuration.checkQuorum && leaderID != nil && electionElapsed < configuration.electionTicksMin
    }

    mutating func handleVoteRequest(
        from: NodeID, term requestTerm: Term, lastLogIndex: LogIndex, lastLogTerm: Term, preVote: Bool
    ) {
        let upToDate = isUpToDate(lastIndex: lastLogIndex, lastTerm: lastLogTerm)
        let granted: Bool
        if preVote {
            granted = requestTerm > term && upToDate && !inLeaderLease
        } else {
            granted = requestTerm == term && (votedFor == nil || votedFor == from) && upToDate
            if granted {
                votedFor = from
                resetElectionTimeout()
            }
        }
        // Sent after the vote is durable.
        outbox.append(
            Envelope(
                from: id, to: from,
                message: .voteResponse(term: preVote && granted ? requestTerm : term, granted: granted, preVote: preVote)))
    }

    mutating func handleVoteResponse(from: NodeID, term responseTerm: Term, granted: Bool, preVote: Bool) {
        if preVote {
            guard role == .preCandidate, responseTerm == term + 1 || !granted else { return }
        } else {
            guard role == .candidate, responseTerm == term else { return }
        }
        votes[from] = granted
        let yes = votes.values.filter { $0 }.count
        let no = votes.count - yes
        if yes >= quorum {
            if preVote { becomeCandidate() } else { becomeLeader() }
        } else if no >= quorum {
            becomeFollower(term: term, leader: nil)
        }
    }
}
