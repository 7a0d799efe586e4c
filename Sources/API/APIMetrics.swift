import Metrics
import StockadeCore
import Synchronization

/// Metrics recorded at the HTTP edge.
public struct APIMetrics: Sendable {
    let reservationOutcomes: [String: Counter]
    /// The two outcomes of every successful reserve, looked up once instead of per request.
    let granted: Counter
    let replayed: Counter
    let reservationDuration: Metrics.Timer
    /// The same counts, readable: `GET /v1/stats` reports them (the metrics backend is write-only).
    let tally: OutcomeTally

    public init(factory: MetricsFactory) {
        var outcomes: [String: Counter] = [:]
        for outcome in OutcomeTally.outcomes {
            outcomes[outcome] = Counter(
                label: "stockade_reservations_total", dimensions: [("outcome", outcome)], factory: factory)
        }
        reservationOutcomes = outcomes
        granted = outcomes["granted"]!
        replayed = outcomes["replayed"]!
        reservationDuration = Metrics.Timer(label: "stockade_reservation_duration_seconds", dimensions: [], factory: factory)
        tally = OutcomeTally()
    }

    func count(outcome: String) {
        reservationOutcomes[outcome]?.increment()
        tally.add(outcome)
    }

    func countGranted() {
        granted.increment()
        tally.add(0)
    }

    func countReplayed() {
        replayed.increment()
        tally.add(1)
    }
}

/// Reservation answers by outcome since the node started: `granted`, `replayed`, then each error code.
final class OutcomeTally: Sendable {
    static let outcomes = ["granted", "replayed"] + ErrorCode.allCases.map(\.rawValue)
    static let positions = Dictionary(uniqueKeysWithValues: outcomes.enumerated().map { ($1, $0) })
    private let counts = Mutex<[Int]>(Array(repeating: 0, count: outcomes.count))

    init() {}

    func add(_ outcome: String) {
        if let position = Self.positions[outcome] { add(position) }
    }

    func add(_ position: Int) { counts.withLock { $0[position] += 1 } }

    /// Every outcome's count (zeros included), by name.
    var snapshot: [String: Int] {
        let counts = counts.withLock { $0 }
        return Dictionary(uniqueKeysWithValues: Self.outcomes.enumerated().map { ($1, counts[$0]) })
    }
}
