import Metrics
import StockadeCore

/// Metrics recorded at the HTTP edge.
public struct APIMetrics: Sendable {
    let reservationOutcomes: [String: Counter]
    /// The two outcomes of every successful reserve, looked up once instead of per request.
    let granted: Counter
    let replayed: Counter
    let reservationDuration: Metrics.Timer

    public init(factory: MetricsFactory) {
        var outcomes: [String: Counter] = [:]
        for outcome in ["granted", "replayed"] + ErrorCode.allCases.map(\.rawValue) {
            outcomes[outcome] = Counter(
                label: "stockade_reservations_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        reservationOutcomes = outcomes
        granted = outcomes["granted"]!
        replayed = outcomes["replayed"]!
        reservationDuration = Metrics.Timer(label: "stockade_reservation_duration_seconds", dimensions: [], factory: factory)
    }

    func count(outcome: String) { reservationOutcomes[outcome]?.increment() }
}
