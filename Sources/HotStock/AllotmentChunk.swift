import Foundation

/// How much one refill grants an allotment row, sized by the row's recent sales.
///
/// A fixed chunk is either too small for a flash sale (the cache runs dry between coordinator
/// turns and every reservation meanwhile takes the quorum path) or too large for a slow SKU
/// (units parked in Redis that no other channel can sell until a reclaim). The coordinator
/// therefore measures each row's sales from the cache counter between its turns and grants
/// `chunkSeconds` of them, up to `chunkMax` (see `size` for the floor and its `chunkPercent` cap).
/// A row found empty had sales the counter could not show, so its next chunk is at least double
/// the last one.
///
/// This is leader-local advice, not replicated state: the size travels in the logged
/// `grantAllotment` command, and a new leader starts measuring afresh (from `chunkMin`).
public struct AllotmentChunk: Sendable {
    /// The counter after the last turn's refill, when it was read, the smoothed sales rate and
    /// the size of the last chunk granted.
    private(set) var counter: Int64
    private(set) var atMs: Int64
    private(set) var perSecond: Double = 0
    private(set) var lastChunk: Int64 = 0

    /// The first sighting of a row.
    public init(counter: Int64, atMs: Int64) {
        self.counter = counter
        self.atMs = atMs
    }

    /// Takes a new reading of the cache counter (after crediting, before any refill) and returns
    /// whether the row ran dry since the last reading.
    public mutating func observe(counter now: Int64, atMs time: Int64) -> Bool {
        let elapsed = max(1, time - atMs)
        let sold = max(0, counter - now)
        let instant = Double(sold) * 1000 / Double(elapsed)
        // Rises at once to what was just seen; falls with a half-life of one second.
        let decayed = perSecond * Self.halving(elapsedMs: elapsed)
        perSecond = max(instant, decayed)
        let starved = now == 0 && counter > 0
        counter = now
        atMs = time
        return starved
    }

    /// Records the counter after a refill (or the unchanged one when none was needed).
    public mutating func settle(counter now: Int64, granted: Int64) {
        counter = now
        if granted > 0 { lastChunk = granted }
    }

    /// The chunk to grant a row with `available` units in the ledger.
    public func size(available: Int64, starved: Bool, configuration: HotPathConfiguration) -> Int64 {
        Self.size(
            available: available, perSecond: perSecond, starvedAfter: starved ? lastChunk : 0,
            configuration: configuration)
    }

    /// `chunkSeconds` of sales at `perSecond`, at least twice the last chunk when the row ran dry,
    /// at most `chunkMax`; never below 1.
    ///
    /// Both are evidence of what the row will sell within `chunkSeconds` anyway, so they may take
    /// everything available: a 5,000-unit flash sale selling 6,000 a second gets the whole row
    /// within a turn or two. Without evidence the chunk is `chunkMin`, held to `chunkPercent`% of
    /// what is available, so a slow SKU does not park its stock in Redis.
    static func size(
        available: Int64, perSecond: Double, starvedAfter lastChunk: Int64, configuration: HotPathConfiguration
    ) -> Int64 {
        let byRate = perSecond * Double(configuration.chunkSeconds)
        var evidence = byRate >= Double(configuration.chunkUnitsMax) ? configuration.chunkUnitsMax : Int64(byRate.rounded(.up))
        if lastChunk > 0 { evidence = max(evidence, lastChunk.multipliedReportingOverflow(by: 2).overflow ? .max : lastChunk * 2) }
        let share = available.multipliedReportingOverflow(by: configuration.chunkPercent).overflow
            ? available / 100 * configuration.chunkPercent : available * configuration.chunkPercent / 100
        let sized = max(min(configuration.chunkUnitsMin, share), min(evidence, max(0, available)))
        return max(1, min(sized, configuration.chunkUnitsMax))
    }

    /// 0.5^(elapsed / 1 s).
    static func halving(elapsedMs: Int64) -> Double {
        elapsedMs >= 60_000 ? 0 : exp2(-Double(elapsedMs) / 1000)
    }
}
