import StockadeCore

/// A node's identity within the cluster.
public typealias NodeID = UInt64

/// A Raft term.
public typealias Term = UInt64

/// One log entry. An empty payload is the no-op a new leader appends to commit its term.
public struct Entry: Hashable, Sendable {
    public var index: LogIndex
    public var term: Term
    public var payload: [UInt8]

    public init(index: LogIndex, term: Term, payload: [UInt8]) {
        self.index = index
        self.term = term
        self.payload = payload
    }
}

/// What must be durable before a node answers votes or appends: its term, its vote, and the commit index.
public struct HardState: Hashable, Sendable {
    public var term: Term
    public var votedFor: NodeID?
    public var commit: LogIndex

    public init(term: Term = 0, votedFor: NodeID? = nil, commit: LogIndex = 0) {
        self.term = term
        self.votedFor = votedFor
        self.commit = commit
    }
}

/// A snapshot of the applied state machine up to `index`.
public struct Snapshot: Hashable, Sendable {
    public var index: LogIndex
    public var term: Term
    public var data: [UInt8]

    public init(index: LogIndex, term: Term, data: [UInt8]) {
        self.index = index
        self.term = term
        self.data = data
    }
}

/// A node's role.
public enum Role: String, Sendable {
    case follower, preCandidate, candidate, leader
}

/// The messages nodes exchange (Raft, Figure 2, plus pre-vote and read-index context).
public enum Message: Hashable, Sendable {
    /// A (pre-)vote request. A pre-vote carries the term the candidate *would* use and changes nothing.
    case requestVote(term: Term, lastLogIndex: LogIndex, lastLogTerm: Term, preVote: Bool)
    case voteResponse(term: Term, granted: Bool, preVote: Bool)
    /// Entries after `prevLogIndex`, or none (a heartbeat). `readContext` lets a leader confirm
    /// its leadership for read-index reads.
    case appendEntries(
        term: Term, prevLogIndex: LogIndex, prevLogTerm: Term, entries: [Entry], leaderCommit: LogIndex,
        readContext: UInt64)
    /// `matchIndex` on success; on rejection, `hintIndex` is where the follower's log could match.
    case appendResponse(term: Term, success: Bool, matchIndex: LogIndex, hintIndex: LogIndex, readContext: UInt64)
    case installSnapshot(term: Term, snapshot: Snapshot)

    public var term: Term {
        switch self {
        case .requestVote(let term, _, _, _), .voteResponse(let term, _, _), .appendEntries(let term, _, _, _, _, _),
            .appendResponse(let term, _, _, _, _), .installSnapshot(let term, _):
            return term
        }
    }
}

/// A message with its addresses.
public struct Envelope: Hashable, Sendable {
    public var from: NodeID
    public var to: NodeID
    public var message: Message

    public init(from: NodeID, to: NodeID, message: Message) {
        self.from = from
        self.to = to
        self.message = message
    }
}

/// A linearizable read that may now be served: the state machine has applied at least `index`.
public struct ReadState: Hashable, Sendable {
    public var requestID: UInt64
    public var index: LogIndex
}

/// Bounds and timing of the protocol: they live with every other bound, in `Limits`.
public typealias ConsensusConfiguration = Limits.Consensus
