import StockadeCore

/// A stock location: the regions it serves best and its priority (lower is preferred).
public struct Warehouse: Hashable, Sendable {
    public var id: WarehouseID
    public var regions: [String]
    public var priority: Int64

    public init(id: WarehouseID, regions: [String], priority: Int64) {
        self.id = id
        self.regions = regions
        self.priority = priority
    }

    public func serves(region: String) -> Bool { regions.contains(region) }
}
