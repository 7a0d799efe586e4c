import Foundation
import Logging
import Metrics

/// Closed → open → half-open → closed, over a window of recent calls.
final class Breaker: @unchecked Sendable {
    enum State { case closed, open(until: ContinuousClock.Instant), halfOpen(probing: Bool) }
    private let configuration: HotPathConfiguration
    private let lock = NSLock()
    private var state = State.closed
    private var window: [Bool] = []
    private var position = 0

    init(configuration: HotPathConfiguration) { self.configuration = configuration }

    var stateName: String {
        lock.lock()
        defer { lock.unlock() }
        switch state {
        case .closed: return "closed"
        case .open: return "open"
        case .halfOpen: return "half_open"
        }
    }

    /// Whether a call may go to Redis now. In half-open, one probe at a time.
    func allows() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        switch state {
        case .closed:
            return true
        case .open(let until):
            guard ContinuousClock.now >= until else { return false }
            state = .halfOpen(probing: true)
            return true
        case .halfOpen(let probing):
            if probing { return false }
            state = .halfOpen(probing: true)
            return true
        }
    }

    func record(success: Bool, switches: HotCounters, counter: Counter, logger: Logger) {
        lock.lock()
        var opened = false
        var closed = false
        switch state {
        case .closed:
            if window.count < configuration.breakerWindowCalls {
                window.append(success)
            } else {
                window[position] = success
                position = (position + 1) % configuration.breakerWindowCalls
            }
            let failures = window.filter { !$0 }.count
            if window.count >= configuration.breakerCallsMin && failures * 2 >= window.count {
                state = .open(until: .now + .milliseconds(configuration.breakerCooldownMs))
                opened = true
            }
        case .open:
            break
        case .halfOpen:
            if success {
                state = .closed
                window.removeAll()
                position = 0
                closed = true
            } else {
                state = .open(until: .now + .milliseconds(configuration.breakerCooldownMs))
            }
        }
        lock.unlock()
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
        lock.lock()
        let wasClosed: Bool
        if case .closed = state { wasClosed = true } else { wasClosed = false }
        if wasClosed { state = .open(until: .now + .milliseconds(configuration.breakerCooldownMs)) }
        lock.unlock()
        if wasClosed {
            switches.degradeSwitches.add(1, ordering: .relaxed)
            counter.increment()
            logger.warning("cache breaker open: no Redis connection")
        }
    }
}
