import Foundation
import StockadeCore

/// One order of a promotion trace: when it arrives, from where, what it wants, and how it ends.
public struct TraceOrder: Codable, Hashable, Sendable {
    /// What the customer does after the hold: pay, cancel, or let payment time out.
    public enum Outcome: String, Codable, Sendable {
        case pay, cancel, timeout
    }
    /// Milliseconds from the start of the trace, in trace time (before compression).
    public var atMs: Int64
    public var orderId: String
    public var channel: String
    public var region: String
    public var lines: [OrderLine]
    public var outcome: Outcome
    /// Trace-time delay from the hold to the pay or cancel.
    public var actionDelayMs: Int64
}

/// The shape of a big-promotion day. Rates are in orders per day, as dashboards show them.
public struct TraceShape: Sendable {
    public var hours: Double = 24
    /// Hours after the trace start at which the midnight peak falls.
    public var peakAtHour: Double = 12
    public var baselineOrdersPerDay: Double = 8_000
    public var peakOrdersPerDay: Double = 42_000
    /// Width (standard deviation) of the peak, in hours.
    public var peakWidthHours: Double = 0.75
    /// Live-stream drops: short bursts on top of the curve.
    public var spikes: Int = 4
    public var spikeMinutes: Double = 6
    public var spikeMultiplier: Double = 4
    public var skus: Int = 200
    public var zipfExponent: Double = 1.1
    public var cancelRatio: Double = 0.20
    public var timeoutRatio: Double = 0.03
    public var regions = ["east", "south", "north", "west"]
    public var channels = ["app", "web", "mini-program", "live-stream"]

    public init() {}
}

/// Generates a trace from a seed: a non-homogeneous Poisson process (by thinning) over the shape.
public struct TraceGenerator {
    public let shape: TraceShape
    var random: SplitMix64

    public init(shape: TraceShape, seed: UInt64) {
        self.shape = shape
        random = SplitMix64(seed: seed)
    }

    /// Orders per day at `hour` hours into the trace.
    public func rate(atHour hour: Double, spikeStarts: [Double]) -> Double {
        let distance = (hour - shape.peakAtHour) / shape.peakWidthHours
        var rate = shape.baselineOrdersPerDay
            + (shape.peakOrdersPerDay - shape.baselineOrdersPerDay) * exp(-0.5 * distance * distance)
        for start in spikeStarts where hour >= start && hour < start + shape.spikeMinutes / 60 {
            rate *= shape.spikeMultiplier
        }
        return rate
    }

    public mutating func generate() -> [TraceOrder] {
        let spikeStarts = (0..<shape.spikes).map { _ in Double.random(in: 0..<max(0.01, shape.hours - 0.2), using: &random) }
        let maximumRate = shape.peakOrdersPerDay * shape.spikeMultiplier / 86_400_000  // per millisecond
        let zipf = ZipfSampler(count: shape.skus, exponent: shape.zipfExponent)
        var orders: [TraceOrder] = []
        var timeMs = 0.0
        let endMs = shape.hours * 3_600_000
        var number = 0
        while true {
            timeMs += -log(1 - Double.random(in: 0..<1, using: &random)) / maximumRate
            guard timeMs < endMs else { break }
            let accept = rate(atHour: timeMs / 3_600_000, spikeStarts: spikeStarts) / 86_400_000 / maximumRate
            guard Double.random(in: 0..<1, using: &random) < accept else { continue }
            number += 1
            let lineCount = [1, 1, 1, 2, 2, 3].randomElement(using: &random)!
            var skus = Set<Int>()
            while skus.count < min(lineCount, shape.skus) { skus.insert(zipf.sample(using: &random)) }
            let roll = Double.random(in: 0..<1, using: &random)
            let outcome: TraceOrder.Outcome =
                roll < shape.cancelRatio ? .cancel : roll < shape.cancelRatio + shape.timeoutRatio ? .timeout : .pay
            orders.append(
                TraceOrder(
                    atMs: Int64(timeMs), orderId: "order-\(number)", channel: shape.channels.randomElement(using: &random)!,
                    region: shape.regions.randomElement(using: &random)!,
                    lines: skus.sorted().map { OrderLine(sku: "sku-\($0)", quantity: Int.random(in: 1...2, using: &random)) },
                    outcome: outcome, actionDelayMs: Int64.random(in: 30_000...600_000, using: &random)))
        }
        return orders
    }
}

/// Trace files are JSON lines, one `TraceOrder` per line, in arrival order.
public enum TraceFile {
    public static func write(_ orders: [TraceOrder], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var data = Data()
        for order in orders {
            data.append(try encoder.encode(order))
            data.append(UInt8(ascii: "\n"))
        }
        try data.write(to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String, ordersMax: Int) throws -> [TraceOrder] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let decoder = JSONDecoder()
        var orders: [TraceOrder] = []
        for (number, line) in text.split(separator: "\n").enumerated() where !line.isEmpty {
            guard orders.count < ordersMax else { throw LoadError("trace has more than \(ordersMax) orders") }
            do {
                orders.append(try decoder.decode(TraceOrder.self, from: Data(line.utf8)))
            } catch {
                throw LoadError("trace line \(number + 1): \(error)")
            }
        }
        return orders.sorted { $0.atMs < $1.atMs }
    }
}

/// Draws ranks 0..<count with probability ∝ 1/(rank+1)^exponent.
struct ZipfSampler {
    let cumulative: [Double]

    init(count: Int, exponent: Double) {
        var running = 0.0
        var cumulative: [Double] = []
        for rank in 0..<max(1, count) {
            running += 1 / pow(Double(rank + 1), exponent)
            cumulative.append(running)
        }
        self.cumulative = cumulative.map { $0 / running }
    }

    func sample(using random: inout SplitMix64) -> Int {
        let target = Double.random(in: 0..<1, using: &random)
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
