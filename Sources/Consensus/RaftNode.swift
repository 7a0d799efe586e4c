import StockadeCore

/// Raft (the paper's Figure 2) with pre-vote and check-quorum, as a pure deterministic state machine.
///
/// Events go in: `tick()`, `step(_:)`, `propose(_:)`, `readIndex(_:)`, `advance(_:)`, `compact(...)`.
/// Work comes out through `ready()`. The node reads no clock, touches no disk or socket and draws
/// randomness only from the generator it was given, so a seeded simulator can replay any history.
///
/// Threading: a value type; its owner serialises every call.
public struct RaftNode: Sendable {
    public let id: NodeID
    /// Every voter, this node included, sorted.
    public private(set) var voters: [NodeID]
    let configuration: ConsensusConfiguration
    var random: SplitMix64

    public internal(set) var term: Term = 0
    public internal(set) var votedFor: NodeID?
    public internal(set) var role: Role = .follower
    public internal(set) var leaderID: NodeID?
    public internal(set) var commitIndex: LogIndex = 0

    // The log: entries after the snapshot point.
    var snapshotIndex: LogIndex = 0
    var snapshotTerm: Term = 0
    var log: [Entry] = []
    /// The last index known durable on this node.
    public internal(set) var stableIndex: LogIndex = 0
    /// The first index whose entry has not yet been handed out for persistence.
    var unstableFrom: LogIndex = 1
    /// The last committed index handed out for applying.
    public internal(set) var appliedHandedOut: LogIndex = 0

    var electionElapsed = 0
    var heartbeatElapsed = 0
    var randomizedElectionTimeout = 0
    /// Set by the runtime: false holds this node back from campaigning when its election timeout
    /// passes (its wall clock is off the cluster's). It still votes and follows.
    public var mayCampaign = true
    var votes: [NodeID: Bool] = [:]
    var progress: [NodeID: Progress] = [:]
    /// The newest snapshot, sent to followers that fell behind the log.
    var latestSnapshot: Snapshot?

    // Read-index.
    var readContext: UInt64 = 0
    var pendingReads: [(requestID: UInt64, index: LogIndex, context: UInt64)] = []
    var readAcknowledged: [NodeID: UInt64] = [:]

    // Outbox, drained by `ready()`.
    var outboxBeforePersist: [Envelope] = []
    var outbox: [Envelope] = []
    var pendingSnapshotInstall: Snapshot?
    var readyReads: [ReadState] = []
    var lastHardState: HardState

    /// Starts (or restarts) a node from what it had persisted.
    public init(
        id: NodeID, voters: [NodeID], configuration: ConsensusConfiguration, random: SplitMix64,
        hardState: HardState = HardState(), snapshot: Snapshot? = nil, entries: [Entry] = []
    ) {
        precondition(voters.contains(id), "a node must be one of the voters")
        self.id = id
        self.voters = voters.sorted()
        self.configuration = configuration
        self.random = random
        lastHardState = hardState
        term = hardState.term
        votedFor = hardState.votedFor
        if let snapshot {
            snapshotIndex = snapshot.index
            snapshotTerm = snapshot.term
            latestSnapshot = snapshot
        }
        let compacted = snapshot?.index ?? 0
        log = entries.filter { $0.index > compacted }
        for (offset, entry) in log.enumerated() {
            precondition(entry.index == snapshotIndex + 1 + LogIndex(offset), "restored log has a gap")
        }
        stableIndex = lastIndex
        unstableFrom = lastIndex + 1
        commitIndex = min(max(hardState.commit, snapshotIndex), lastIndex)
        appliedHandedOut = snapshotIndex
        resetElectionTimeout()
        // A voter alone needs nobody's answer: it campaigns on its first tick.
        if self.voters.count == 1 { electionElapsed = randomizedElectionTimeout - 1 }
    }

    var quorum: Int { Quorum.size(of: voters.count) }
    var peers: [NodeID] { voters.filter { $0 != id } }
    public var isLeader: Bool { role == .leader }

    public var hardState: HardState { HardState(term: term, votedFor: votedFor, commit: commitIndex) }

    mutating func resetElectionTimeout() {
        electionElapsed = 0
        randomizedElectionTimeout = Int.random(
            in: configuration.electionTicksMin..<configuration.electionTicksMax, using: &random)
    }

    // MARK: - Events

    /// Advances logical time by one tick.
    public mutating func tick() {
        electionElapsed += 1
        if role == .leader {
            heartbeatElapsed += 1
            if electionElapsed >= configuration.electionTicksMin {
                electionElapsed = 0
                if configuration.checkQuorum && !hasActiveQuorum() {
                    // Cut off from a majority: stop acting as leader so clients go elsewhere.
                    becomeFollower(term: term, leader: nil)
                    return
                }
            }
            if heartbeatElapsed >= configuration.heartbeatTicks {
                heartbeatElapsed = 0
                broadcastHeartbeat()
            }
        } else if electionElapsed >= randomizedElectionTimeout {
            if mayCampaign {
                campaign()
            } else {
                resetElectionTimeout()
            }
        }
    }

    /// Gives up leadership at once, in the same term (it still votes, and follows whoever wins next).
    public mutating func stepDown() {
        guard role != .follower else { return }
        becomeFollower(term: term, leader: nil)
    }

    /// The outcome of a proposal.
    public enum ProposeResult: Equatable, Sendable {
        /// Appended at these indices in this term; committed once a majority has them durably.
        case appended(term: Term, firstIndex: LogIndex, lastIndex: LogIndex)
        case notLeader(leader: NodeID?)
        /// Too many uncommitted entries; retry later.
        case overloaded
    }

    /// Appends payloads to the log if this node leads.
    public mutating func propose(_ payloads: [[UInt8]]) -> ProposeResult {
        guard role == .leader else { return .notLeader(leader: leaderID) }
        guard !payloads.isEmpty else { return .appended(term: term, firstIndex: lastIndex + 1, lastIndex: lastIndex) }
        guard Int(lastIndex - commitIndex) + payloads.count <= configuration.uncommittedEntriesMax else {
            return .overloaded
        }
        let first = lastIndex + 1
        for payload in payloads { appendToLog(Entry(index: lastIndex + 1, term: term, payload: payload)) }
        broadcastAppend()
        return .appended(term: term, firstIndex: first, lastIndex: lastIndex)
    }

    /// Asks for a linearizable read point. True if accepted (the answer arrives as a `ReadState`);
    /// false if this node cannot serve it now (not leader, or its term has nothing committed yet).
    public mutating func readIndex(_ requestID: UInt64) -> Bool {
        guard role == .leader, term(at: commitIndex) == term, pendingReads.count < configuration.pendingReadsMax else {
            return false
        }
        readContext += 1
        pendingReads.append((requestID: requestID, index: commitIndex, context: readContext))
        if voters.count == 1 {
            releaseReads()
        } else {
            broadcastHeartbeat()
        }
        return true
    }

    /// Takes the work that has accumulated since the last call. Call `advance` once it is done.
    public mutating func ready() -> Ready {
        var ready = Ready()
        let state = hardState
        if state != lastHardState { ready.hardState = state }
        if unstableFrom <= lastIndex {
            ready.entries = Array(log[position(of: max(unstableFrom, snapshotIndex + 1))...])
        }
        unstableFrom = lastIndex + 1
        ready.snapshot = pendingSnapshotInstall
        pendingSnapshotInstall = nil
        ready.messagesBeforePersist = outboxBeforePersist
        ready.messages = outbox
        outboxBeforePersist.removeAll()
        outbox.removeAll()
        if appliedHandedOut < commitIndex {
            let from = max(appliedHandedOut + 1, snapshotIndex + 1)
            if from <= commitIndex {
                ready.committedEntries = Array(log[position(of: from)...position(of: commitIndex)])
            }
            appliedHandedOut = commitIndex
        }
        ready.readStates = readyReads
        readyReads.removeAll()
        lastHardState = state
        return ready
    }

    /// Reports that everything in `ready` is durable (and applied). A leader counts its own log
    /// toward the commit majority only from here: its fsync may overlap replication, never precede it.
    public mutating func advance(_ ready: Ready) {
        if let last = ready.entries.last {
            // Only if the entry is still in the log with that term (a newer leader may have replaced it).
            if term(at: last.index) == last.term { stableIndex = max(stableIndex, last.index) }
        }
        if let snapshot = ready.snapshot { stableIndex = max(stableIndex, snapshot.index) }
        stableIndex = min(stableIndex, lastIndex)
        if role == .leader {
            progress[id]?.match = stableIndex
            maybeCommit()
        }
    }

    /// Forgets log entries through `index` (≤ the applied index) now that `snapshot` covers them.
    public mutating func compact(_ snapshot: Snapshot) {
        guard snapshot.index > snapshotIndex, snapshot.index <= appliedHandedOut, let snapshotTermAtIndex = term(at: snapshot.index)
        else { return }
        precondition(snapshotTermAtIndex == snapshot.term, "snapshot term does not match the log")
        log.removeFirst(Int(snapshot.index - snapshotIndex))
        snapshotIndex = snapshot.index
        snapshotTerm = snapshot.term
        latestSnapshot = snapshot
    }

    /// On a leader, the highest index known durable on `peer`; nil elsewhere.
    public func matchIndex(of peer: NodeID) -> LogIndex? {
        role == .leader ? progress[peer]?.match : nil
    }

    /// The log's entries after the snapshot point (for checks and tests).
    public var entries: [Entry] { log }
    public var firstIndex: LogIndex { snapshotIndex + 1 }
    public var compactedThrough: LogIndex { snapshotIndex }
}

extension RaftNode: CustomDebugStringConvertible {
    /// A one-line summary of the node's state, for failure reports.
    public var debugDescription: String {
        var text = "n\(id) \(role.rawValue) term \(term) vote \(votedFor.map(String.init) ?? "-") commit \(commitIndex) last \(lastIndex) stable \(stableIndex) snap \(snapshotIndex) handed \(appliedHandedOut)"
        if role == .leader {
            text += " progress " + voters.map { voter in
                let peer = progress[voter]
                return "n\(voter):m\(peer?.match ?? 0)/n\(peer?.next ?? 0)/i\(peer?.inflight.count ?? 0)\(peer?.probing == true ? "p" : "")\(peer?.snapshotInFlight != nil ? "s" : "")"
            }.joined(separator: ",")
        }
        return text
    }
}
