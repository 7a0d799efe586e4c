/// Every bound in Stockade, in one place, with its unit in its name.
///
/// The relations between them are checked by `Limits.violations()`, which runs at start-up and in tests.
public struct Limits: Sendable, Equatable {
    /// Largest accepted HTTP request body.
    public var requestBodyBytesMax: Int = 64 * 1024
    /// Longest identifier (SKU, warehouse, reservation, order, region, reason), in UTF-8 bytes.
    public var identifierBytesMax: Int = 128
    /// Most lines in one reservation.
    public var reservationLinesMax: Int = 64
    /// Largest quantity on one reservation line.
    public var lineQuantityMax: Int64 = 100_000
    /// Largest total a stock row may hold.
    public var stockTotalMax: Int64 = 1_000_000_000_000
    /// Shortest and longest hold time-to-live.
    public var holdTTLSecondsMin: Int64 = 1
    public var holdTTLSecondsMax: Int64 = 7 * 24 * 3600
    /// Hold time-to-live when a request names none (15 minutes).
    public var holdTTLSecondsDefault: Int64 = 15 * 60
    /// How long a finished (confirmed, released, expired) reservation stays answerable for idempotent replays.
    public var finishedRetentionMs: Int64 = 24 * 3600 * 1000
    /// Most holds one expire-due command expires (and most finished reservations it purges).
    public var expireBatchMax: Int = 10_000
    /// Most warehouses in a layout.
    public var warehousesMax: Int = 256
    /// Most commands waiting to enter the log; beyond it, requests are refused as `overloaded`.
    public var pendingCommandsMax: Int = 16_384
    /// Most commands written and fsynced together.
    public var commitBatchMax: Int = 1_024
    /// How long the log writer waits for more commands before an fsync when the batch is small (0: never wait).
    /// 300 µs roughly triples commands per fsync under load (8 → 21 at 64 connections) for +8–13%
    /// throughput and no change in p99; an idle request pays at most this much extra.
    public var commitWaitMicroseconds: Int = 300
    /// Log entries between snapshots.
    public var snapshotIntervalEntries: Int = 200_000
    /// Size of a preallocated (zero-filled) log segment; 0 turns preallocation off. Overwriting
    /// preallocated blocks lets an fdatasync skip file-size metadata (see `CommandLog`).
    public var logSegmentBytes: Int = 16 << 20
    /// Largest encoded log entry.
    public var logEntryBytesMax: Int = 256 * 1024
    /// Most holds one page of `GET /v1/holds` returns, and most it examines.
    public var holdsPageMax: Int = 1_000
    /// Cache holds in one `applyAllotmentHolds` entry (the consumer also keeps it under `logEntryBytesMax`).
    public var cacheHoldsBatchMax: Int = 512
    public var holdsScanMax: Int = 100_000
    /// Most open HTTP connections.
    public var connectionsMax: Int = 4_096
    /// Peer messages waiting for a cluster member's loop thread; beyond it new ones are dropped
    /// (the protocol resends what matters).
    public var peerInboxMessagesMax: Int = 65_536
    /// Log entries a cluster member's commit index may run ahead of its last hard-state write
    /// before a write that only moves the commit index is made (the commit index may lag safely:
    /// it is learnt again from the leader).
    public var hardStateCommitLagMax: UInt64 = 4_096
    /// Commands a follower forwards to the leader in one frame (at most `forwardFrameCommandsMax`,
    /// which the peer frame decoder enforces).
    public var forwardBatchMax: Int = 4_096
    /// Commands or outcomes one forward frame may carry on the wire.
    public static let forwardFrameCommandsMax = 4_096
    /// Idle keep-alive HTTP connections a follower keeps to each other node for relaying reads.
    public var forwardIdleConnectionsMax: Int = 512
    /// Most hot reserves sent to Redis in one gate call.
    public var cacheGateBatchMax: Int = 64
    /// Longest a hot reserve waits for its gate call to leave while earlier ones are at Redis
    /// (none waits while the pipe is idle).
    public var cacheGateWaitMicroseconds: Int = 200
    /// Most open RESP (TCP API) connections; one more is accepted only to be told `-ERR max number of clients reached`.
    public var respConnectionsMax: Int = 4_096
    /// Longest RESP bulk string a client may send (an argument), in bytes.
    public var respBulkBytesMax: Int = 64 * 1024
    /// Most arguments in one RESP command (a `RESERVE` needs 6 + 2 per line).
    public var respArgumentsMax: Int = 1_024
    /// Longest RESP line (an inline command, or a length header), in bytes.
    public var respLineBytesMax: Int = 64 * 1024
    /// Commands read from one RESP connection and not yet answered; past it the server stops
    /// reading that connection until answers go out (pipelining waits, nothing is refused).
    public var respPendingRequestsMax: Int = 1_024

    /// How far a node's wall clock may be from the time a majority of the cluster's clocks agree
    /// on (beyond what the round trip leaves uncertain). Two clocks agree when their readings
    /// overlap once each is widened by this much; a node further than this from the majority's
    /// range does not lead. A leader's command time, which decides when holds expire, is at most
    /// this plus `clockRoundTripMaxMs` from the median of the cluster's clocks.
    public var clockSkewMaxMs: Int64 = 500
    /// How often a cluster member sends each peer its clock reading.
    public var clockPingIntervalMs: Int64 = 200
    /// How long a peer's clock reading is used after it arrived.
    public var clockSampleAgeMaxMs: Int64 = 2_000
    /// Clock readings that took longer than this round trip are not used (too uncertain).
    public var clockRoundTripMaxMs: Int64 = 1_000

    public init() {}

    /// The default limits.
    public static let `default` = Limits()

    /// Checks how the limits relate to each other; returns a description of every broken relation.
    public func violations() -> [String] {
        var problems: [String] = []
        if holdTTLSecondsMin < 1 { problems.append("holdTTLSecondsMin must be ≥ 1") }
        if !(holdTTLSecondsMin...holdTTLSecondsMax).contains(holdTTLSecondsDefault) {
            problems.append("holdTTLSecondsDefault must lie within [holdTTLSecondsMin, holdTTLSecondsMax]")
        }
        if lineQuantityMax < 1 || lineQuantityMax > stockTotalMax { problems.append("lineQuantityMax must be in 1...stockTotalMax") }
        // A reservation's total must not overflow Int64 arithmetic.
        if Double(lineQuantityMax) * Double(reservationLinesMax) > Double(Int64.max / 4) {
            problems.append("lineQuantityMax × reservationLinesMax is too large")
        }
        if commitBatchMax < 1 || commitBatchMax > pendingCommandsMax { problems.append("commitBatchMax must be in 1...pendingCommandsMax") }
        if snapshotIntervalEntries < commitBatchMax { problems.append("snapshotIntervalEntries must be ≥ commitBatchMax") }
        if holdsPageMax < 1 || holdsPageMax > holdsScanMax { problems.append("holdsPageMax must be in 1...holdsScanMax") }
        if expireBatchMax < 1 { problems.append("expireBatchMax must be ≥ 1") }
        if cacheHoldsBatchMax < 1 || cacheHoldsBatchMax > 65_535 { problems.append("cacheHoldsBatchMax must be in 1...65535") }
        // Every encoded reserve (the largest command) must fit one log entry.
        let reserveBytesMax = 64 + 6 * identifierBytesMax + reservationLinesMax * (identifierBytesMax + 16)
        if reserveBytesMax > logEntryBytesMax { problems.append("logEntryBytesMax is too small for the largest reserve") }
        if logSegmentBytes != 0 && !((1 << 20)...(1 << 30)).contains(logSegmentBytes) {
            problems.append("logSegmentBytes must be 0 (off) or in 1 MiB...1 GiB")
        }
        if requestBodyBytesMax < 1024 { problems.append("requestBodyBytesMax must be ≥ 1 KiB") }
        if respArgumentsMax < 6 + 2 * reservationLinesMax {
            problems.append("respArgumentsMax must hold a RESERVE of reservationLinesMax lines (6 + 2 per line)")
        }
        if respBulkBytesMax < identifierBytesMax { problems.append("respBulkBytesMax must be ≥ identifierBytesMax") }
        if respLineBytesMax < 64 { problems.append("respLineBytesMax must be ≥ 64") }
        if respPendingRequestsMax < 1 { problems.append("respPendingRequestsMax must be ≥ 1") }
        if cacheGateBatchMax < 1 || cacheGateBatchMax > 1_024 { problems.append("cacheGateBatchMax must be in 1...1024") }
        if cacheGateWaitMicroseconds < 0 || cacheGateWaitMicroseconds > 1_000 {
            problems.append("cacheGateWaitMicroseconds must be in 0...1000")
        }
        if peerInboxMessagesMax < 1 { problems.append("peerInboxMessagesMax must be ≥ 1") }
        if hardStateCommitLagMax < 1 { problems.append("hardStateCommitLagMax must be ≥ 1") }
        if forwardIdleConnectionsMax < 0 { problems.append("forwardIdleConnectionsMax must be ≥ 0") }
        if respConnectionsMax < 1 { problems.append("respConnectionsMax must be ≥ 1") }
        if !(1...Self.forwardFrameCommandsMax).contains(forwardBatchMax) {
            problems.append("forwardBatchMax must be in 1...\(Self.forwardFrameCommandsMax)")
        }
        if clockSkewMaxMs < 1 { problems.append("clockSkewMaxMs must be ≥ 1") }
        if clockRoundTripMaxMs < 1 { problems.append("clockRoundTripMaxMs must be ≥ 1") }
        // Several pings must fit in a reading's lifetime, or one lost ping loses the agreement.
        if clockPingIntervalMs < 1 || clockPingIntervalMs * 4 > clockSampleAgeMaxMs {
            problems.append("clockPingIntervalMs must be in 1...clockSampleAgeMaxMs / 4")
        }
        return problems
    }
}
