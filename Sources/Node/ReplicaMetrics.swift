import Metrics

/// The metrics a replica records. Built from an explicit factory so tests need no global state.
public struct ReplicaMetrics: Sendable {
    public let commitBatchSize: Recorder
    public let fsyncDuration: Metrics.Timer
    public let activeHolds: Gauge
    public let appliedIndex: Gauge
    public let snapshots: Counter
    public let refusedOverload: Counter
    /// How long one turn of a replica's loop (or one commit batch) held its thread.
    public let loopTurnDuration: Metrics.Timer
    /// Cluster members: how far this node's wall clock is from the range a majority of the
    /// cluster's clocks agree on (0 inside it); 1 when this node's clock is in that range (0: off
    /// it, or no majority agrees); how many peers' clocks are off it.
    public let clockDistanceMs: Gauge
    public let clockAgreed: Gauge
    public let clockPeersOff: Gauge
    /// The local-warehouse fallback: reserves granted from this node's reserve, provisional holds
    /// waiting for the ledger and the age of the oldest, holds the ledger took in, and replays it
    /// refused.
    public let localFallbacks: Counter
    public let localProvisionalHolds: Gauge
    public let localOldestAgeSeconds: Gauge
    public let localReconciled: Counter
    public let localReconcileErrors: Counter
    /// Holds granted off the quorum path (local or cache) that the ledger could not merge with its
    /// own hold of the same id, as the ledger keeps them (`Ledger.replayConflicts`); a person must
    /// look at each.
    public let replayConflicts: Gauge
    /// A cluster member's term, whether it leads (1) and whether it knows a leader (1): alerts
    /// watch the term for elections and the last for a cluster without one.
    public let raftTerm: Gauge
    public let raftLeading: Gauge
    public let raftLeaderKnown: Gauge
    let factory: MetricsFactory
    /// Turns at least this long are logged with where their time went.
    public static let slowTurn = Duration.milliseconds(25)

    public init(factory: MetricsFactory) {
        commitBatchSize = Recorder(label: "stockade_commit_batch_size", dimensions: [], aggregate: true, factory: factory)
        fsyncDuration = Metrics.Timer(label: "stockade_fsync_duration_seconds", dimensions: [], factory: factory)
        activeHolds = Gauge(label: "stockade_active_holds", dimensions: [], factory: factory)
        appliedIndex = Gauge(label: "stockade_applied_index", dimensions: [], factory: factory)
        snapshots = Counter(label: "stockade_snapshots_total", dimensions: [], factory: factory)
        loopTurnDuration = Metrics.Timer(label: "stockade_loop_turn_seconds", dimensions: [], factory: factory)
        clockDistanceMs = Gauge(label: "stockade_clock_distance_ms", dimensions: [], factory: factory)
        clockAgreed = Gauge(label: "stockade_clock_agreed", dimensions: [], factory: factory)
        clockPeersOff = Gauge(label: "stockade_clock_peers_off", dimensions: [], factory: factory)
        refusedOverload = Counter(label: "stockade_commands_refused_total", dimensions: [("reason", "queue_full")], factory: factory)
        localFallbacks = Counter(label: "stockade_local_fallbacks_total", dimensions: [], factory: factory)
        localProvisionalHolds = Gauge(label: "stockade_local_provisional_holds", dimensions: [], factory: factory)
        localOldestAgeSeconds = Gauge(label: "stockade_local_provisional_oldest_age_seconds", dimensions: [], factory: factory)
        localReconciled = Counter(label: "stockade_local_reconciled_holds_total", dimensions: [], factory: factory)
        localReconcileErrors = Counter(label: "stockade_local_reconcile_errors_total", dimensions: [], factory: factory)
        replayConflicts = Gauge(label: "stockade_replay_conflicts", dimensions: [], factory: factory)
        raftTerm = Gauge(label: "stockade_raft_term", dimensions: [], factory: factory)
        raftLeading = Gauge(label: "stockade_raft_leading", dimensions: [], factory: factory)
        raftLeaderKnown = Gauge(label: "stockade_raft_leader_known", dimensions: [], factory: factory)
        self.factory = factory
    }

    /// The gauge of the units a node holds in local reserve for one row.
    public func localReserveUnits(sku: String, warehouse: String) -> Gauge {
        Gauge(label: "stockade_local_reserve_units", dimensions: [("sku", sku), ("warehouse", warehouse)], factory: factory)
    }
}
