@testable import HotStock
import PropertyBased
import Testing

/// Refill sizes: enough for the row's recent sales, within the configured bounds.
@Suite struct AllotmentChunkTests {
    static let configuration: HotPathConfiguration = {
        var configuration = HotPathConfiguration()
        configuration.chunkUnitsMin = 1_000
        configuration.chunkUnitsMax = 100_000
        configuration.chunkPercent = 10
        configuration.chunkSeconds = 1
        return configuration
    }()

    func size(available: Int64, perSecond: Double, starvedAfter: Int64 = 0) -> Int64 {
        AllotmentChunk.size(
            available: available, perSecond: perSecond, starvedAfter: starvedAfter, configuration: Self.configuration)
    }

    @Test func aQuietRowGetsTheMinimum() {
        #expect(size(available: 1_000_000_000, perSecond: 0) == 1_000)
        #expect(size(available: 1_000_000_000, perSecond: 20) == 1_000)
    }

    @Test func aBusyRowGetsItsSalesOfChunkSeconds() {
        #expect(size(available: 1_000_000_000, perSecond: 15_000) == 15_000)
        #expect(size(available: 1_000_000_000, perSecond: 15_000.2) == 15_001)
        var twoSeconds = Self.configuration
        twoSeconds.chunkSeconds = 2
        #expect(AllotmentChunk.size(available: 1_000_000_000, perSecond: 15_000, starvedAfter: 0, configuration: twoSeconds) == 30_000)
    }

    @Test func theMaximumAndTheShareOfAvailableBound() {
        #expect(size(available: 1_000_000_000, perSecond: 5_000_000) == 100_000)
        #expect(size(available: 1_000_000_000, perSecond: .infinity) == 100_000)
        // Without evidence a 5,000-unit row parks at most 10% of its units; once the rate (or a
        // row that ran dry) shows it selling out within chunkSeconds, the cache may take all of it.
        #expect(size(available: 5_000, perSecond: 0) == 500)
        #expect(size(available: 5_000, perSecond: 300) == 500)
        #expect(size(available: 5_000, perSecond: 0, starvedAfter: 400) == 800)
        #expect(size(available: 5_000, perSecond: 0, starvedAfter: 4_000) == 5_000)
        #expect(size(available: 5_000, perSecond: 3_000) == 3_000)
        #expect(size(available: 5_000, perSecond: 50_000) == 5_000)
        #expect(size(available: 3, perSecond: 0) == 1)
        #expect(size(available: 0, perSecond: 0) == 1)
        #expect(size(available: .max, perSecond: 0) == 1_000)
    }

    @Test func aRowThatRanDryDoublesItsLastChunk() {
        #expect(size(available: 1_000_000_000, perSecond: 0, starvedAfter: 1_000) == 2_000)
        #expect(size(available: 1_000_000_000, perSecond: 9_000, starvedAfter: 2_000) == 9_000)
        #expect(size(available: 1_000_000_000, perSecond: 0, starvedAfter: 80_000) == 100_000)
        #expect(size(available: 1_000_000_000, perSecond: 0, starvedAfter: .max) == 100_000)
    }

    @Test func readingsMeasureSalesAndDecayWhenTheyStop() {
        var chunk = AllotmentChunk(counter: 1_000, atMs: 0)
        // 600 sold in 100 ms: 6,000/s.
        #expect(chunk.observe(counter: 400, atMs: 100) == false)
        #expect(chunk.perSecond == 6_000)
        chunk.settle(counter: 2_400, granted: 2_000)
        // Nothing sold for one second: the rate halves.
        #expect(chunk.observe(counter: 2_400, atMs: 1_100) == false)
        #expect(abs(chunk.perSecond - 3_000) < 0.001)
        // Emptied since the last reading: starved, and the next chunk doubles the last grant.
        #expect(chunk.observe(counter: 0, atMs: 1_150) == true)
        #expect(chunk.size(available: 1_000_000_000, starved: true, configuration: Self.configuration) == 48_000)
        // A refill (counter going up) is not a sale.
        chunk.settle(counter: 0, granted: 0)
        #expect(chunk.observe(counter: 0, atMs: 1_200) == false)
    }

    @Test func theSizeStaysWithinItsBoundsForAnyReading() async {
        await propertyCheck(
            count: 500,
            input: Gen.int(in: 0...2_000_000), Gen.int(in: 0...1_000_000), Gen.int(in: 0...300_000)
        ) { available, perSecond, lastChunk in
            let size = size(available: Int64(available), perSecond: Double(perSecond), starvedAfter: Int64(lastChunk))
            #expect(size >= 1)
            #expect(size <= max(1, Int64(available) / 10, min(Int64(available), max(Int64(perSecond), 2 * Int64(lastChunk)))))
            #expect(available == 0 || size <= Int64(available))
            #expect(size <= Self.configuration.chunkUnitsMax)
            if Int64(available) / 10 >= Self.configuration.chunkUnitsMax {
                #expect(size >= min(Self.configuration.chunkUnitsMax, max(Self.configuration.chunkUnitsMin, Int64(perSecond))))
            }
        }
    }
}
