import StockadeCore

/// Builds workloads for the named scenarios. SKU names carry the run id, so runs never collide.
public enum Scenarios {
    static let regions = ["east", "south", "north", "west"]

    /// One or a few SKUs with fixed stock and a burst of attempts far above it.
    public static func flashSale(
        runID: String, stock: Int, attempts: Int, skus: Int, quantity: Int, warehouses: Int, model: LoadModel,
        ratePerSecond: Double?, confirmPercent: Int, seed: UInt64
    ) -> Workload {
        var random = SplitMix64(seed: seed)
        let names = (0..<max(1, skus)).map { "\(runID)-flash-\($0)" }
        let orders = (0..<attempts).map { number -> PlannedOrder in
            let atMs = ratePerSecond.map { Int64(Double(number) * 1000 / $0) } ?? 0
            let confirm = Int.random(in: 0..<100, using: &random) < confirmPercent
            return PlannedOrder(
                atMs: atMs, reservationId: "\(runID)-\(number)", orderId: "\(runID)-order-\(number)",
                region: regions.randomElement(using: &random)!,
                lines: [OrderLine(sku: names.randomElement(using: &random)!, quantity: quantity)],
                followUp: confirm ? .confirm(afterMs: 0) : .none)
        }
        return Workload(
            scenario: "flash-sale", stock: Dictionary(uniqueKeysWithValues: names.map { ($0, stock) }),
            stockWarehouses: warehouses, orders: orders, model: model, allowSplit: true)
    }

    /// Replays a trace, compressing time by `compress`: pays confirm, cancels release, timeouts stay held.
    public static func promotionReplay(
        runID: String, trace: [TraceOrder], compress: Double, stockPerSKU: Int, model: LoadModel
    ) -> Workload {
        var skus = Set<String>()
        let orders = trace.enumerated().map { number, order -> PlannedOrder in
            let lines = order.lines.map { OrderLine(sku: "\(runID)-\($0.sku)", quantity: $0.quantity) }
            for line in lines { skus.insert(line.sku) }
            let delay = Int64(Double(order.actionDelayMs) / compress)
            let followUp: FollowUp
            switch order.outcome {
            case .pay: followUp = .confirm(afterMs: delay)
            case .cancel: followUp = .release(afterMs: delay)
            case .timeout: followUp = .none
            }
            return PlannedOrder(
                atMs: Int64(Double(order.atMs) / compress), reservationId: "\(runID)-\(number)",
                orderId: "\(runID)-\(order.orderId)", region: order.region, lines: lines, followUp: followUp)
        }
        return Workload(
            scenario: "promotion-replay", stock: Dictionary(uniqueKeysWithValues: skus.map { ($0, stockPerSKU) }),
            stockWarehouses: Int.max, orders: orders, model: model, allowSplit: true)
    }

    /// A constant arrival rate on plentiful stock; most holds are confirmed, some released.
    /// `stockPerSKU` nil: more than the run can take (three units per order); smaller, SKUs sell out.
    public static func steady(
        runID: String, ratePerSecond: Double, seconds: Double, skus: Int, seed: UInt64, stockPerSKU: Int? = nil
    ) -> Workload {
        var random = SplitMix64(seed: seed)
        let names = (0..<max(1, skus)).map { "\(runID)-steady-\($0)" }
        let count = Int(ratePerSecond * seconds)
        let orders = (0..<count).map { number -> PlannedOrder in
            PlannedOrder(
                atMs: Int64(Double(number) * 1000 / ratePerSecond), reservationId: "\(runID)-\(number)",
                orderId: "\(runID)-order-\(number)", region: regions.randomElement(using: &random)!,
                lines: [OrderLine(sku: names.randomElement(using: &random)!, quantity: Int.random(in: 1...3, using: &random))],
                followUp: Int.random(in: 0..<10, using: &random) < 8 ? .confirm(afterMs: 200) : .release(afterMs: 200))
        }
        return Workload(
            scenario: "steady", stock: Dictionary(uniqueKeysWithValues: names.map { ($0, stockPerSKU ?? count * 3 + 1) }),
            stockWarehouses: Int.max, orders: orders, model: .openLoop, allowSplit: true)
    }
}
