import Foundation
import Histogram

/// Everything a run observed: latencies, per-second figures, outcomes, and every reservation whose
/// fate the verdict must check. Thread-safe; workers record concurrently.
public final class Recorder: @unchecked Sendable {
    /// One second of the run.
    public struct Second: Sendable {
        /// Arrivals released this second (what the workload offered).
        public var offered = 0
        public var completed = 0
        public var granted = 0
        var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .two)
        public var p99Ms: Double { latency.totalCount == 0 ? 0 : Double(latency.valueAtPercentile(99)) / 1000 }
    }

    private let lock = NSLock()
    private var latency = Histogram<UInt64>(highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: .three)
    private var seconds: [Second] = []
    private(set) var outcomes: [String: Int] = [:]
    private(set) var paths: [String: Int] = [:]
    private(set) var attempts = 0
    /// Reservations answered as granted (201 or a 200 replay), with their allocations.
    private(set) var granted: [String: [GrantedAllocation]] = [:]
    /// Reservations whose reserve got no answer: they may or may not exist.
    private(set) var unanswered: Set<String> = []
    /// Reservations this harness released or confirmed successfully.
    private(set) var released: Set<String> = []
    private(set) var confirmed: Set<String> = []
    private(set) var followUpFailures = 0
    private(set) var droppedBacklog = 0
    let start: ContinuousClock.Instant

    public init(start: ContinuousClock.Instant) {
        self.start = start
    }

    /// Records one reserve. `intended` is when it should have been sent (open loop) or was sent
    /// (closed loop), so queueing delay on the client counts as latency.
    func recordReserve(id: String, answer: ReserveAnswer, intended: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        let micros = UInt64(max(0, (now - intended) / .microseconds(1)))
        let second = Int((now - start) / .seconds(1))
        lock.lock()
        defer { lock.unlock() }
        attempts += 1
        latency.record(min(micros, latency.highestTrackableValue))
        while seconds.count <= second { seconds.append(Second()) }
        seconds[second].completed += 1
        seconds[second].latency.record(min(micros, 120_000_000))
        outcomes[answer.outcome, default: 0] += 1
        switch answer.outcome {
        case "granted", "replayed":
            seconds[second].granted += 1
            paths[answer.path ?? "unknown", default: 0] += 1
            granted[id] = answer.allocations
        case "transport_error", "outcome_unknown":
            // No definite answer: the verdict reads it back to learn whether it took effect.
            unanswered.insert(id)
        default:
            break
        }
    }

    /// Counts an arrival released at its scheduled time.
    func recordOffered() {
        let second = Int((ContinuousClock.now - start) / .seconds(1))
        lock.lock()
        while seconds.count <= second { seconds.append(Second()) }
        seconds[second].offered += 1
        lock.unlock()
    }

    func recordFinish(id: String, action: String, status: Int) {
        lock.lock()
        defer { lock.unlock() }
        if status == 200 {
            if action == "release" { released.insert(id) } else { confirmed.insert(id) }
        } else {
            followUpFailures += 1
        }
    }

    func recordDroppedBacklog() {
        lock.lock()
        droppedBacklog += 1
        lock.unlock()
    }

    /// A consistent copy of the figures.
    public func summary() -> RunSummary {
        lock.lock()
        defer { lock.unlock() }
        let elapsed = max(0.001, Double((ContinuousClock.now - start) / .milliseconds(1)) / 1000)
        func ms(_ percentile: Double) -> Double {
            latency.totalCount == 0 ? 0 : Double(latency.valueAtPercentile(percentile)) / 1000
        }
        return RunSummary(
            attempts: attempts, granted: outcomes["granted", default: 0] + outcomes["replayed", default: 0],
            elapsedSeconds: elapsed, throughputPerSecond: Double(attempts) / elapsed,
            latencyMs: .init(
                p50: ms(50), p90: ms(90), p99: ms(99), p999: ms(99.9),
                max: latency.totalCount == 0 ? 0 : Double(latency.max) / 1000),
            outcomes: outcomes, paths: paths, confirms: confirmed.count, releases: released.count,
            followUpFailures: followUpFailures, droppedBacklog: droppedBacklog,
            perSecond: seconds.map { .init(offered: $0.offered, completed: $0.completed, granted: $0.granted, p99Ms: $0.p99Ms) },
            distribution: [50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100].map { .init(percentile: $0, ms: ms($0)) })
    }

    /// The reservations the verdict checks.
    func fates() -> (granted: [String: [GrantedAllocation]], unanswered: Set<String>, released: Set<String>) {
        lock.lock()
        defer { lock.unlock() }
        return (granted, unanswered, released)
    }
}

/// The figures of a run, as written to `report.json`.
public struct RunSummary: Codable, Sendable {
    public struct Latency: Codable, Sendable {
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double
    }
    public struct Second: Codable, Sendable {
        public var offered: Int
        public var completed: Int
        public var granted: Int
        public var p99Ms: Double
    }
    public struct Point: Codable, Sendable {
        public var percentile: Double
        public var ms: Double
    }
    public var attempts: Int
    public var granted: Int
    public var elapsedSeconds: Double
    public var throughputPerSecond: Double
    public var latencyMs: Latency
    public var outcomes: [String: Int]
    public var paths: [String: Int]
    public var confirms: Int
    public var releases: Int
    public var followUpFailures: Int
    public var droppedBacklog: Int
    public var perSecond: [Second]
    public var distribution: [Point]
}
