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
    /// Turns at least this long are logged with where their time went.
    public static let slowTurn = Duration.milliseconds(25)

    public init(factory: MetricsFactory) {
        commitBatchSize = Recorder(label: "stockade_commit_batch_size", dimensions: [], aggregate: true, factory: factory)
        fsyncDuration = Metrics.Timer(label: "stockade_fsync_duration_seconds", dimensions: [], factory: factory)
        activeHolds = Gauge(label: "stockade_active_holds", dimensions: [], factory: factory)
        appliedIndex = Gauge(label: "stockade_applied_index", dimensions: [], factory: factory)
        snapshots = Counter(label: "stockade_snapshots_total", dimensions: [], factory: factory)
        loopTurnDuration = Metrics.Timer(label: "stockade_loop_turn_seconds", dimensions: [], factory: factory)
        refusedOverload = Counter(label: "stockade_commands_refused_total", dimensions: [("reason", "queue_full")], factory: factory)
    }
}
