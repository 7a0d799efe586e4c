/// What happens to a hold after it is granted.
public enum FollowUp: Sendable, Hashable {
    case none
    case confirm(afterMs: Int64)
    case release(afterMs: Int64)

    /// The API action ("confirm" or "release") and its delay; nil for none.
    var action: (name: String, afterMs: Int64)? {
        switch self {
        case .none: nil
        case .confirm(let afterMs): ("confirm", afterMs)
        case .release(let afterMs): ("release", afterMs)
        }
    }
}

/// One reservation a run will attempt.
public struct PlannedOrder: Sendable {
    /// Offset from the run's start at which to send it (open loop); ignored in closed loop.
    public var atMs: Int64
    public var reservationId: String
    public var orderId: String
    public var region: String
    public var lines: [OrderLine]
    public var followUp: FollowUp

    public init(atMs: Int64, reservationId: String, orderId: String, region: String, lines: [OrderLine], followUp: FollowUp) {
        self.atMs = atMs
        self.reservationId = reservationId
        self.orderId = orderId
        self.region = region
        self.lines = lines
        self.followUp = followUp
    }
}

/// How arrivals are driven.
public enum LoadModel: Sendable {
    /// Arrivals follow the schedule whatever the response times; latency counts from the scheduled time.
    case openLoop
    /// `concurrency` workers, each sending its next request when the last one is answered.
    case closedLoop(concurrency: Int)
}

/// A scenario made concrete: the SKUs to stock and the orders to send.
public struct Workload: Sendable {
    public var scenario: String
    /// Units per SKU (names as in the orders), spread over `stockWarehouses` warehouses.
    public var stock: [String: Int]
    public var stockWarehouses: Int
    public var orders: [PlannedOrder]
    public var model: LoadModel
    public var allowSplit: Bool
    /// Promote every SKU to hot (the Redis cache sells it) before the run, and wait for the
    /// decrement queue to drain before the verdict.
    public var hot = false

    public init(
        scenario: String, stock: [String: Int], stockWarehouses: Int, orders: [PlannedOrder], model: LoadModel,
        allowSplit: Bool
    ) {
        self.scenario = scenario
        self.stock = stock
        self.stockWarehouses = stockWarehouses
        self.orders = orders
        self.model = model
        self.allowSplit = allowSplit
    }
}
