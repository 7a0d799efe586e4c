/// Every bound in Stockade, in one place, with its unit in its name.
///
/// The relations between them are checked by `Limits.violations()`, which runs at start-up and in tests.
public struct Limits: Sendable, Equatable {
    /// Largest accepted HTTP request body.
    public var requestBodyBytesMax: Int = 64 * 1024
    /// Longest identifier (SKU, warehouse, reservation, order, region, reason), in Unicode scalar
    /// values: what JSON Schema's `maxLength` counts, so docs/openapi.yaml can state it exactly.
    public var identifierLengthMax: Int = 128
    /// The most UTF-8 bytes an identifier can take (4 per scalar), for size bounds.
    public var identifierBytesMax: Int { 4 * identifierLengthMax }
    /// Most lines in one reservation.
    public var reservationLinesMax: Int = 64
    /// Largest quantity on one reservation line as sent.
    public var lineQuantityMax: Int64 = 100_000
    /// Largest quantity of one SKU in a reservation: lines naming the same SKU are added together
    /// (`Validation.mergingLines`), so up to `reservationLinesMax` lines' worth.
    public var skuQuantityMax: Int64 { lineQuantityMax * Int64(reservationLinesMax) }
    /// Largest total a stock row may hold.
    public var stockTotalMax: Int64 = 1_000_000_000_000
    /// Shortest and longest hold time-to-live.
    public var holdTTLSecondsMin: Int64 = 1
    public var holdTTLSecondsMax: Int64 = 7 * 24 * 3600
    /// Hold time-to-live when a request names none (15 minutes).
    public var holdTTLSecondsDefault: Int64 = 15 * 60
    /// How long a finished (confirmed, released, expired) reservation stays answerable for idempotent replays.
    public var finishedRetentionMs: Int64 = 24 * 3600 * 1000
    /// Replay conflicts the ledger keeps (`Ledger.replayConflicts`), oldest dropped first.
    public var replayConflictsKept: Int = 10_000
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
    /// Most records an audit reads from each Redis stream (decrement queue, dead letters); past
    /// it the cache is reported as not compared.
    public var auditStreamEntriesMax: Int = 100_000
    /// `GET /v1/stats`: the SKUs with the most units held that it lists (hot SKUs are always
    /// listed), and the soonest expiring holds.
    public var statsSKUsMax: Int = 20
    public var statsExpiriesMax: Int = 10
    /// Rows one `stockadectl sku import` file may hold.
    public var importRowsMax: Int = 100_000
    /// Most open HTTP connections.
    public var connectionsMax: Int = 4_096
    /// Most connections from one client address, HTTP and RESP counted apart; past it the
    /// connection is answered `overloaded` (429 with `Retry-After`, or `-OVERLOADED`) and closed.
    /// A quarter of `connectionsMax`: no single address can take the whole server. Clients behind
    /// one address (a NAT, a proxy) share it: raise it there. (docs/decisions.md, "Connections
    /// per client address", says why it was unbounded for a while.)
    public var connectionsPerClientMax: Int = 1_024
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

    /// The local-warehouse fallback's bounds (see docs/local-fallback.md).
    public var local = Local()

    public struct Local: Sendable, Equatable {
        /// Provisional holds a node keeps that the ledger has not taken in yet; past it the node
        /// grants no more on its own (`quorum_unavailable`).
        public var provisionalHoldsMax = 100_000
        /// Holds (and returned reserves) replayed in one reconcile command; the node also keeps
        /// the command under `logEntryBytesMax`.
        public var reconcileHoldsMax = 256
        /// The leader refills a reserve once it falls below this percentage of its target.
        public var refillLowWaterPercent: Int64 = 50
        /// Reserve refills the leader proposes at once.
        public var refillsMax = 64
        /// How often the leader looks for reserves to refill, and a node for reserve to give back.
        public var refillIntervalMs: Int64 = 500
        /// A node cut off from the cluster's time expires its provisional holds this long after
        /// their expiry by its own clock, so that a clock running a little fast ends none early.
        public var expiryGraceMs: Int64 = 1_000

        public init() {}
    }

    /// The order pipeline's bounds (`stockade-orders`; see docs/orders.md).
    public var orders = Orders()

    public struct Orders: Sendable, Equatable {
        /// Orders worked on at once by default (`--concurrency`).
        public var concurrencyDefault = 32
        /// Tries per call on a transient failure, with the same reservation id.
        public var attemptsMax = 8
        /// Backoff between tries: full jitter under `backoffBaseMs · 2^try`, at most `backoffMaxMs`.
        public var backoffBaseMs = 50
        public var backoffMaxMs = 2_000
        /// Calls one update may cause (a loop guard; a normal update needs at most three).
        public var callsPerUpdateMax = 8
        /// Fingerprints of applied updates kept per order, to recognise a repeated line.
        public var fingerprintsKept = 16
        /// A webhook request's body, and the inbox updates the worker takes at once.
        public var webhookBodyBytesMax = 1 << 20
        public var inboxBatchMax = 1_000

        public init() {}
    }

    /// Holds replayed in one reconcile command (`local.reconcileHoldsMax`).
    public var localReconcileHoldsMax: Int { local.reconcileHoldsMax }

    /// The replication protocol's bounds and timing, in ticks (see `Consensus`).
    public var consensus = Consensus()

    public struct Consensus: Sendable, Equatable {
        /// A follower that hears from no leader for a random number of ticks in
        /// `electionTicksMin..<electionTicksMax` campaigns; a leader that has not heard from a
        /// majority within `electionTicksMin` ticks steps down (with `checkQuorum`).
        public var electionTicksMin = 10
        public var electionTicksMax = 20
        public var heartbeatTicks = 2
        /// Appends in flight to one follower before waiting for answers (pipelining).
        public var inflightAppendsMax = 8
        /// Most entries, and most payload bytes, in one append (one larger entry goes alone).
        public var appendEntriesMax = 256
        public var appendBytesMax = 1 << 20
        /// Entries proposed but not yet committed, beyond which proposals are refused.
        public var uncommittedEntriesMax = 16_384
        /// Read-index reads waiting for a leader's confirmation, and read requests queued on a member.
        public var pendingReadsMax = 4_096
        public var preVote = true
        public var checkQuorum = true

        public init() {}
    }

    /// The Redis hot path's bounds (see docs/hot-path.md).
    public var hotPath = HotPath()

    public struct HotPath: Sendable, Equatable {
        /// How long Redis keeps a cache answer for idempotent replays (the ledger has it after the drain).
        public var answerRetentionMs: Int64 = 3_600_000
        /// Undrained decrement records beyond which the gate refuses (the quorum path answers instead).
        public var backlogRecordsMax: Int = 200_000
        /// An allotment chunk (see `AllotmentChunk`): enough for `chunkSeconds` of the row's recent
        /// sales, at least `chunkUnitsMin`, at most `chunkUnitsMax` and `chunkPercent`% of the
        /// row's available units, and never less than 1.
        public var chunkPercent: Int64 = 10
        public var chunkUnitsMin: Int64 = 1_000
        public var chunkUnitsMax: Int64 = 100_000
        public var chunkSeconds: Int64 = 1
        /// Refill when the cache counter drops below this share of a chunk.
        public var lowWaterPercent: Int64 = 25
        /// Automatic promotion above this many reservations per second for one SKU (0: admin only);
        /// demotion after `coolSeconds` below a tenth of it.
        public var hotThresholdPerSecond: Int = 100
        public var coolSeconds: Int = 60
        /// Decrement records per ledger batch; how long a delivered record may sit unacknowledged
        /// before another consumer claims it. (Deliveries are not counted towards a dead letter:
        /// a record delivered while the ledger cannot commit is simply delivered again.)
        public var consumerBatchMax: Int = 256
        public var claimIdleMs: Int64 = 5_000
        /// Coordinator turn.
        public var coordinatorIntervalMs: Int = 50
        /// Breaker: open when at least half of the last `breakerWindowCalls` calls failed (with at
        /// least `breakerCallsMin` of them), or when no connection is up; probe again after
        /// `breakerCooldownMs`.
        public var breakerWindowCalls: Int = 50
        public var breakerCallsMin: Int = 10
        public var breakerCooldownMs: Int64 = 1_000
        /// How long a confirm, release or extend waits for a cache hold to reach the ledger.
        public var settleTimeoutMs: Int64 = 2_000

        public init() {}

        /// Every broken relation between these bounds.
        public func violations() -> [String] {
            var problems: [String] = []
            if !(1...100).contains(chunkPercent) { problems.append("hotPath.chunkPercent must be in 1...100") }
            if chunkUnitsMin < 1 || chunkUnitsMin > chunkUnitsMax {
                problems.append("hotPath.chunkUnitsMin (\(chunkUnitsMin)) must be in 1...chunkUnitsMax (\(chunkUnitsMax))")
            }
            if !(1...3_600).contains(chunkSeconds) { problems.append("hotPath.chunkSeconds must be in 1...3600") }
            if !(1...100).contains(lowWaterPercent) { problems.append("hotPath.lowWaterPercent must be in 1...100") }
            if hotThresholdPerSecond < 0 || coolSeconds < 1 {
                problems.append("hotPath.hotThresholdPerSecond must be ≥ 0 and coolSeconds ≥ 1")
            }
            if backlogRecordsMax < 1 || consumerBatchMax < 1 {
                problems.append("hotPath.backlogRecordsMax and consumerBatchMax must be ≥ 1")
            }
            if claimIdleMs < 100 { problems.append("hotPath.claimIdleMs must be ≥ 100") }
            if breakerCallsMin < 1 || breakerCallsMin > breakerWindowCalls {
                problems.append("hotPath.breakerCallsMin must be in 1...breakerWindowCalls")
            }
            return problems
        }
    }

    public init() {}

    /// The default limits.
    public static let `default` = Limits()

    /// Checks how the limits relate to each other; returns a description of every broken relation.
    public func violations() -> [String] {
        var problems: [String] = []
        if holdTTLSecondsMin < 1 { problems.append("holdTTLSecondsMin must be ≥ 1") }
        if replayConflictsKept < 1 { problems.append("replayConflictsKept must be ≥ 1") }
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
        if connectionsPerClientMax < 1 { problems.append("connectionsPerClientMax must be ≥ 1") }
        if auditStreamEntriesMax < 1 || statsSKUsMax < 0 || statsExpiriesMax < 0 || importRowsMax < 1 {
            problems.append("auditStreamEntriesMax and importRowsMax must be ≥ 1, statsSKUsMax and statsExpiriesMax ≥ 0")
        }
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
        if respBulkBytesMax < identifierBytesMax { problems.append("respBulkBytesMax must be ≥ 4 × identifierLengthMax") }
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
        if local.provisionalHoldsMax < 1 { problems.append("local.provisionalHoldsMax must be ≥ 1") }
        if !(1...4_096).contains(local.reconcileHoldsMax) { problems.append("local.reconcileHoldsMax must be in 1...4096") }
        if !(1...100).contains(local.refillLowWaterPercent) { problems.append("local.refillLowWaterPercent must be in 1...100") }
        if local.refillsMax < 1 || local.refillIntervalMs < 1 || local.expiryGraceMs < 0 {
            problems.append("local.refillsMax and refillIntervalMs must be ≥ 1, expiryGraceMs ≥ 0")
        }
        if consensus.heartbeatTicks < 1 || consensus.heartbeatTicks >= consensus.electionTicksMin {
            problems.append("consensus.heartbeatTicks must be in 1..<electionTicksMin")
        }
        if consensus.electionTicksMax <= consensus.electionTicksMin {
            problems.append("consensus.electionTicksMax must be > electionTicksMin")
        }
        if consensus.inflightAppendsMax < 1 || consensus.appendEntriesMax < 1 || consensus.appendBytesMax < 1 {
            problems.append("consensus.inflightAppendsMax, appendEntriesMax and appendBytesMax must be ≥ 1")
        }
        if consensus.uncommittedEntriesMax < commitBatchMax {
            problems.append("consensus.uncommittedEntriesMax must be ≥ commitBatchMax")
        }
        if consensus.pendingReadsMax < 1 { problems.append("consensus.pendingReadsMax must be ≥ 1") }
        problems += hotPath.violations()
        if clockSkewMaxMs < 1 { problems.append("clockSkewMaxMs must be ≥ 1") }
        if clockRoundTripMaxMs < 1 { problems.append("clockRoundTripMaxMs must be ≥ 1") }
        // Several pings must fit in a reading's lifetime, or one lost ping loses the agreement.
        if clockPingIntervalMs < 1 || clockPingIntervalMs * 4 > clockSampleAgeMaxMs {
            problems.append("clockPingIntervalMs must be in 1...clockSampleAgeMaxMs / 4")
        }
        return problems
    }
}
