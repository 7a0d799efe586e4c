import StockadeCore

extension RaftNode {
    /// Handles one message from a peer.
    public mutating func step(_ envelope: Envelope) {
        let from = envelope.from
        guard envelope.to == id, voters.contains(from), from != id else { return }
        let message = envelope.message
        if message.term > term {
            switch message {
            case .requestVote(_, _, _, let preVote):
                // A vote request inside a leader lease is ignored, so a returning node cannot depose a live leader.
                if inLeaderLease { return }
                if !preVote { becomeFollower(term: message.term, leader: nil) }
            case .voteResponse(_, let granted, let preVote):
                // A granted pre-vote carries the term the candidate proposed; anything else is newer news.
                if !(preVote && granted) { becomeFollower(term: message.term, leader: nil) }
            case .appendEntries, .installSnapshot:
                becomeFollower(term: message.term, leader: from)
            case .appendResponse:
                becomeFollower(term: message.term, leader: nil)
            }
        } else if message.term < term {
            switch message {
            case .appendEntries, .installSnapshot:
                // Tell a stale leader about the newer term so it steps down.
                outbox.append(
                    Envelope(
                        from: id, to: from,
                        message: .appendResponse(term: term, success: false, matchIndex: 0, hintIndex: 0, readContext: 0)))
                return
            case .requestVote(_, _, _, true):
                outbox.append(Envelope(from: id, to: from, message: .voteResponse(term: term, granted: false, preVote: true)))
                return
            default:
                return
            }
        }

        switch message {
        case .requestVote(let requestTerm, let lastLogIndex, let lastLogTerm, let preVote):
            handleVoteRequest(from: from, term: requestTerm, lastLogIndex: lastLogIndex, lastLogTerm: lastLogTerm, preVote: preVote)
        case .voteResponse(let responseTerm, let granted, let preVote):
            handleVoteResponse(from: from, term: responseTerm, granted: granted, preVote: preVote)
        case .appendEntries(_, let prevLogIndex, let prevLogTerm, let entries, let leaderCommit, let readContext):
            handleAppend(
                from: from, prevLogIndex: prevLogIndex, prevLogTerm: prevLogTerm, entries: entries,
                leaderCommit: leaderCommit, readContext: readContext)
        case .appendResponse(_, let success, let matchIndex, let hintIndex, let readContext):
            handleAppendResponse(from: from, success: success, matchIndex: matchIndex, hintIndex: hintIndex, readContext: readContext)
        case .installSnapshot(_, let snapshot):
            handleSnapshot(from: from, snapshot: snapshot)
        }
    }

    // MARK: - Follower side

    mutating func followLeader(_ leader: NodeID) {
        if role != .follower { becomeFollower(term: term, leader: leader) }
        leaderID = leader
        electionElapsed = 0
    }

    mutating func handleAppend(
        from leader: NodeID, prevLogIndex: LogIndex, prevLogTerm: Term, entries: [Entry], leaderCommit: LogIndex,
        readContext: UInt64
    ) {
        followLeader(leader)
        var entries = entries
        var previousIndex = prevLogIndex
        var previousTerm = prevLogTerm
        // Entries at or before our commit point are committed, hence identical (log matching): skip them.
        if previousIndex < commitIndex {
            let skip = min(entries.count, Int(commitIndex - previousIndex))
            if skip > 0 {
                previousIndex = entries[skip - 1].index
                previousTerm = entries[skip - 1].term
                entries.removeFirst(skip)
            }
            if previousIndex < commitIndex {
                // Entirely behind our commit point: nothing to do but acknowledge what we know.
                respondToAppend(leader, success: true, match: previousIndex, readContext: readContext)
                return
            }
        }
        guard let ourTerm = term(at: previousIndex), ourTerm == previousTerm else {
            let hint = min(lastIndex, previousIndex > 0 ? previousIndex - 1 : 0)
            outbox.append(
                Envelope(
                    from: id, to: leader,
                    message: .appendResponse(
                        term: term, success: false, matchIndex: 0, hintIndex: max(hint, commitIndex), readContext: readContext)))
            return
        }
        for entry in entries {
            if let existing = term(at: entry.index) {
                if existing == entry.term { continue }
                truncate(from: entry.index)
            }
            appendToLog(entry)
        }
        let match = previousIndex + LogIndex(entries.count)
        let newCommit = min(leaderCommit, match)
        if newCommit > commitIndex { commitIndex = newCommit }
        // Sent after the entries are durable.
        respondToAppend(leader, success: true, match: match, readContext: readContext)
    }

    mutating func respondToAppend(_ leader: NodeID, success: Bool, match: LogIndex, readContext: UInt64) {
        outbox.append(
            Envelope(
                from: id, to: leader,
                message: .appendResponse(term: term, success: success, matchIndex: match, hintIndex: 0, readContext: readContext)))
    }

    mutating func handleSnapshot(from leader: NodeID, snapshot: Snapshot) {
        followLeader(leader)
        guard snapshot.index > commitIndex else {
            respondToAppend(leader, success: true, match: commitIndex, readContext: 0)
            return
        }
        if term(at: snapshot.index) == snapshot.term {
            // Our log already has it: keep what follows.
            log.removeFirst(Int(snapshot.index - snapshotIndex))
        } else {
            log.removeAll()
        }
        snapshotIndex = snapshot.index
        snapshotTerm = snapshot.term
        latestSnapshot = snapshot
        commitIndex = snapshot.index
        appliedHandedOut = snapshot.index
        unstableFrom = max(unstableFrom, snapshot.index + 1)
        if log.isEmpty { unstableFrom = snapshot.index + 1 }
        stableIndex = min(stableIndex, snapshot.index)
        pendingSnapshotInstall = snapshot
        respondToAppend(leader, success: true, match: snapshot.index, readContext: 0)
    }

    // MARK: - Leader side

    mutating func handleAppendResponse(
        from follower: NodeID, success: Bool, matchIndex: LogIndex, hintIndex: LogIndex, readContext: UInt64
    ) {
        guard role == .leader, var peer = progress[follower] else { return }
        peer.recentActive = true
        if readContext > 0 { readAcknowledged[follower] = max(readAcknowledged[follower] ?? 0, readContext) }
        if success {
            if matchIndex > peer.match { peer.match = matchIndex }
            if peer.next <= peer.match { peer.next = peer.match + 1 }
            peer.inflight.removeAll { $0 <= matchIndex }
            peer.probing = false
            if let snapshotIndex = peer.snapshotInFlight, matchIndex >= snapshotIndex { peer.snapshotInFlight = nil }
            progress[follower] = peer
            maybeCommit()
        } else {
            // Walk back to where the logs can meet, then probe one append at a time.
            peer.next = max(peer.match + 1, min(peer.next > 1 ? peer.next - 1 : 1, hintIndex + 1))
            peer.inflight.removeAll()
            peer.probing = true
            peer.snapshotInFlight = nil
            progress[follower] = peer
        }
        releaseReads()
        sendAppend(to: follower)
    }

    /// Commits the highest index a majority holds durably, if it is from this term (§5.4.2).
    mutating func maybeCommit() {
        let matches = voters.map { progress[$0]?.match ?? 0 }
        let candidate = Quorum.committedIndex(matches)
        if candidate > commitIndex, term(at: candidate) == term {
            commitIndex = candidate
            broadcastAppend()
        }
    }

    mutating func broadcastAppend() {
        for peer in peers { sendAppend(to: peer) }
    }

    /// Sends the next entries to `follower` if the pipeline has room (or a snapshot if it fell behind the log).
    mutating func sendAppend(to follower: NodeID) {
        guard role == .leader, var peer = progress[follower] else { return }
        let room = peer.probing ? 1 : configuration.inflightAppendsMax
        guard peer.inflight.count < room, peer.snapshotInFlight == nil else { return }
        if peer.next <= snapshotIndex {
            guard let snapshot = latestSnapshot else { return }
            peer.snapshotInFlight = snapshot.index
            progress[follower] = peer
            outboxBeforePersist.append(Envelope(from: id, to: follower, message: .installSnapshot(term: term, snapshot: snapshot)))
            return
        }
        guard peer.next <= lastIndex || commitIndex > peer.commitSent else { return }
        let previousIndex = peer.next - 1
        guard let previousTerm = term(at: previousIndex) else { return }
        var batch: [Entry] = []
        var bytes = 0
        var index = peer.next
        while index <= lastIndex, batch.count < configuration.appendEntriesMax {
            let entry = log[position(of: index)]
            if !batch.isEmpty && bytes + entry.payload.count > configuration.appendBytesMax { break }
            batch.append(entry)
            bytes += entry.payload.count
            index += 1
        }
        if batch.isEmpty && !peer.inflight.isEmpty { return }
        if let last = batch.last {
            peer.inflight.append(last.index)
            peer.next = last.index + 1
        }
        peer.commitSent = commitIndex
        progress[follower] = peer
        // A leader's appends do not depend on its own fsync: they may be sent before it completes.
        outboxBeforePersist.append(
            Envelope(
                from: id, to: follower,
                message: .appendEntries(
                    term: term, prevLogIndex: previousIndex, prevLogTerm: previousTerm, entries: batch,
                    leaderCommit: commitIndex, readContext: readContext)))
    }

    /// Heartbeats: an empty append at the follower's known match point, carrying the read context.
    mutating func broadcastHeartbeat() {
        for follower in peers {
            guard var peer = progress[follower] else { continue }
            if (!peer.inflight.isEmpty || peer.snapshotInFlight != nil) && peer.match == peer.matchAtLastHeartbeat {
                peer.stalledHeartbeats += 1
                if peer.stalledHeartbeats >= 2 {
                    // Appends (or a snapshot) were lost: resend from what the follower is known to hold.
                    peer.next = peer.match + 1
                    peer.inflight.removeAll()
                    peer.snapshotInFlight = nil
                    peer.stalledHeartbeats = 0
                }
            } else {
                peer.stalledHeartbeats = 0
            }
            peer.matchAtLastHeartbeat = peer.match
            progress[follower] = peer
            if peer.next <= lastIndex && peer.inflight.isEmpty && peer.snapshotInFlight == nil && !peer.probing {
                sendAppend(to: follower)
                continue
            }
            let anchor = peer.match >= snapshotIndex ? peer.match : snapshotIndex
            guard let anchorTerm = term(at: anchor) else { continue }
            outboxBeforePersist.append(
                Envelope(
                    from: id, to: follower,
                    message: .appendEntries(
                        term: term, prevLogIndex: anchor, prevLogTerm: anchorTerm, entries: [],
                        leaderCommit: min(commitIndex, peer.match), readContext: readContext)))
        }
    }

    // MARK: - Read index

    /// Releases reads whose context a majority has acknowledged (this leader still led when they arrived).
    mutating func releaseReads() {
        guard role == .leader, !pendingReads.isEmpty else { return }
        var acknowledged = pendingReads.last!.context
        if voters.count > 1 {
            let contexts = peers.map { readAcknowledged[$0] ?? 0 }.sorted(by: >)
            // This leader plus (quorum − 1) followers.
            acknowledged = contexts[quorum - 2]
        }
        while let first = pendingReads.first, first.context <= acknowledged {
            readyReads.append(ReadState(requestID: first.requestID, index: first.index))
            pendingReads.removeFirst()
        }
    }

    mutating func failPendingReads() {
        pendingReads.removeAll()
    }
}
