import StockadeCore

/// A leader's view of one follower's log.
struct Progress: Sendable {
    /// The highest index known to be on the follower durably.
    var match: LogIndex
    /// The next index to send.
    var next: LogIndex
    /// Last indices of appends sent and not yet answered, oldest first (the pipeline).
    var inflight: [LogIndex] = []
    /// After a rejection: send one append at a time until the logs meet.
    var probing = false
    /// Heard from during the current election timeout (for check-quorum).
    var recentActive = true
    /// A snapshot at this index is on its way.
    var snapshotInFlight: LogIndex?
    /// `match` at the previous heartbeat, and how many heartbeats in a row saw no progress with
    /// appends outstanding: then they were probably lost, and the leader resends from `match`.
    var matchAtLastHeartbeat: LogIndex = 0
    /// The commit index last sent to the follower: an append without entries goes out only to
    /// carry a newer one, so answers to empty appends never start a ping-pong of empty appends.
    var commitSent: LogIndex = 0
    var stalledHeartbeats = 0
}
