import Foundation
import Logging
import Metrics

/// The breaker's decisions, pure: closed → open → half-open → closed, over a window of recent
/// calls, with time passed in (milliseconds of a monotonic clock). The node wraps it in `Breaker`;
/// the simulator runs it on simulated time.
public struct BreakerState: Sendable {
    enum State: Sendable { case closed, open(untilMs: Int64), halfOpen(probing: Bool) }
    let windowCalls: Int
    let callsMin: Int
    let cooldownMs: Int64
    var state = State.closed
    var window: [Bool] = []
    var position = 0

    public init(windowCalls: Int, callsMin: Int, cooldownMs: Int64) {
        self.windowCalls = max(1, windowCalls)
        self.callsMin = max(1, callsMin)
        self.cooldownMs = max(0, cooldownMs)
    }

    public init(configuration: HotPathConfiguration) {
        self.init(
            windowCalls: configuration.breakerWindowCalls, callsMin: configuration.breakerCallsMin,
            cooldownMs: Int64(configuration.breakerCooldownMs))
    }

    public var name: String {
        switch state {
        case .closed: "closed"
        case .open: "open"
        case .halfOpen: "half_open"
        }
    }

    /// Whether a call may go to Redis now. In half-open, one probe at a time.
    public mutating func allows(nowMs: Int64) -> Bool {
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard nowMs >= until else { return false }
            state = .halfOpen(probing: true)
            return true
        case .halfOpen(let probing):
            if probing { return false }
            state = .halfOpen(probing: true)
            return true
        }
    }

    /// Takes in a call's result. Returns whether the breaker opened or closed with it.
    public mutating func record(success: Bool, nowMs: Int64) -> (opened: Bool, closed: Bool) {
        switch state {
        case .closed:
            if window.count < windowCalls {
                window.append(success)
            } else {
                window[position] = success
                position = (position + 1) % windowCalls
            }
            let failures = window.filter { !$0 }.count
            if window.count >= callsMin && failures * 2 >= window.count {
                state = .open(untilMs: nowMs + cooldownMs)
                return (true, false)
            }
        case .open:
            break
        case .halfOpen:
            if success {
                state = .closed
                window.removeAll()
                position = 0
                return (false, true)
            }
            state = .open(untilMs: nowMs + cooldownMs)
        }
        return (false, false)
    }

    /// Opens at once (no connection is up). Returns whether it was closed.
    public mutating func trip(nowMs: Int64) -> Bool {
        guard case .closed = state else { return false }
        state = .open(untilMs: nowMs + cooldownMs)
        return true
    }
}

/// `BreakerState` on the node: under a lock, on the monotonic clock, with its switches counted and logged.
final class Breaker: @unchecked Sendable {
    private let lock = NSLock()
    private var state: BreakerState
    private let start = ContinuousClock.now

    init(configuration: HotPathConfiguration) { state = BreakerState(configuration: configuration) }

    private var nowMs: Int64 {
        let elapsed = ContinuousClock.now - start
        return elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
    }

    var stateName: String { lock.withLock { state.name } }

    /// Whether a call may go to Redis now. In half-open, one probe at a time.
    func allows() -> Bool {
        let now = nowMs
        return lock.withLock { state.allows(nowMs: now) }
    }

    func record(success: Bool, switches: HotCounters, counter: Counter, logger: Logger) {
        let now = nowMs
        let (opened, closed) = lock.withLock { state.record(success: success, nowMs: now) }
        if opened {
            switches.degradeSwitches.add(1, ordering: .relaxed)
            counter.increment()
            logger.warning("cache breaker open: hot SKUs go through the quorum path")
        }
        if closed {
            switches.degradeSwitches.add(1, ordering: .relaxed)
            counter.increment()
            logger.notice("cache breaker closed: hot SKUs go through the cache again")
        }
    }

    /// Opens at once (no connection is up).
    func trip(switches: HotCounters, counter: Counter, logger: Logger) {
        let now = nowMs
        if lock.withLock({ state.trip(nowMs: now) }) {
            switches.degradeSwitches.add(1, ordering: .relaxed)
            counter.increment()
            logger.warning("cache breaker open: no Redis connection")
        }
    }
}
