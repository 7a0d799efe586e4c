import Testing

@testable import HotStock

/// The breaker's contract as `HotPath` relies on it: open on failures, one probe after the
/// cooldown, and only the probe's recorded result closes or reopens it.
@Suite struct BreakerStateTests {
    @Test func opensHandsOutOneProbeAndClosesOnlyOnItsResult() {
        var breaker = BreakerState(windowCalls: 10, callsMin: 4, cooldownMs: 1_000)
        for _ in 0..<4 { _ = breaker.record(success: false, nowMs: 0) }
        #expect(breaker.name == "open")
        let r1 = breaker.allows(nowMs: 999)
        #expect(!r1)
        let r2 = breaker.allows(nowMs: 1_000)
        #expect(r2, "the probe after the cooldown")
        let r3 = breaker.allows(nowMs: 1_001)
        #expect(!r3, "one probe at a time")
        let r4 = breaker.allows(nowMs: 60_000)
        #expect(!r4, "still waiting for the probe's result, however long")
        let r5 = breaker.record(success: true, nowMs: 60_001)
        #expect(!r5.opened && r5.closed)
        let r6 = breaker.allows(nowMs: 60_002)
        #expect(r6)
    }

    @Test func aFailedProbeReopensForAnotherCooldown() {
        var breaker = BreakerState(windowCalls: 10, callsMin: 2, cooldownMs: 500)
        _ = breaker.record(success: false, nowMs: 0)
        _ = breaker.record(success: false, nowMs: 0)
        let r7 = breaker.allows(nowMs: 500)
        #expect(r7)
        _ = breaker.record(success: false, nowMs: 600)
        #expect(breaker.name == "open")
        let r8 = breaker.allows(nowMs: 1_099)
        #expect(!r8)
        let r9 = breaker.allows(nowMs: 1_100)
        #expect(r9)
    }

    @Test func tripOpensOnlyAClosedBreaker() {
        var breaker = BreakerState(windowCalls: 10, callsMin: 2, cooldownMs: 500)
        let r10 = breaker.trip(nowMs: 0)
        #expect(r10)
        let r11 = breaker.trip(nowMs: 1)
        #expect(!r11)
        #expect(breaker.name == "open")
    }
}
