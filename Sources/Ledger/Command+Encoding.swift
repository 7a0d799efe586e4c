import StockadeCore

/// The log's binary form of commands. Tags are stable: never renumber one, only add.
extension TimedCommand {
    static let formatVersion: UInt8 = 1

    /// Encodes the command deterministically.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        writer.write(Self.formatVersion)
        writer.write(timeMs)
        switch command {
        case .configureWarehouses(let layout):
            writer.write(UInt8(1))
            writer.write(UInt32(layout.count))
            for warehouse in layout { writer.write(warehouse) }
        case .setStock(let sku, let warehouse, let total):
            writer.write(UInt8(2))
            writer.write(sku.rawValue)
            writer.write(warehouse.rawValue)
            writer.write(total)
        case .adjustStock(let sku, let warehouse, let delta, let reason):
            writer.write(UInt8(3))
            writer.write(sku.rawValue)
            writer.write(warehouse.rawValue)
            writer.write(delta)
            writer.write(reason)
        case .reserve(let request):
            writer.write(UInt8(4))
            writer.write(request.reservationId.rawValue)
            writer.write(request.orderId)
            writer.write(request.region)
            writer.write(request.ttlMs)
            writer.write(request.allowSplit)
            writer.write(UInt32(request.lines.count))
            for line in request.lines {
                writer.write(line.sku.rawValue)
                writer.write(line.quantity)
            }
        case .confirm(let id):
            writer.write(UInt8(5))
            writer.write(id.rawValue)
        case .release(let id):
            writer.write(UInt8(6))
            writer.write(id.rawValue)
        case .extend(let id, let ttlMs):
            writer.write(UInt8(7))
            writer.write(id.rawValue)
            writer.write(ttlMs)
        case .expireDue:
            writer.write(UInt8(8))
        case .setHot(let sku, let hot):
            writer.write(UInt8(9))
            writer.write(sku.rawValue)
            writer.write(hot)
        case .grantAllotment(let key, let quantity):
            writer.write(UInt8(10))
            writer.write(key)
            writer.write(quantity)
        case .returnAllotment(let key, let quantity):
            writer.write(UInt8(11))
            writer.write(key)
            writer.write(quantity)
        case .applyAllotmentHolds(let cacheHolds):
            writer.write(UInt8(12))
            writer.write(UInt32(cacheHolds.count))
            for cacheHold in cacheHolds { writer.write(cacheHold) }
        }
        return writer.bytes
    }

    /// Decodes what `encoded()` wrote, rejecting trailing bytes and oversized counts.
    public init(decoding bytes: [UInt8], limits: Limits = .default) throws {
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8()
        guard version == Self.formatVersion else {
            throw ByteReader.Failure(description: "unknown command format \(version)")
        }
        let timeMs = try reader.readInt64()
        let command: Command
        switch try reader.readUInt8() {
        case 1:
            let count = try reader.readCount(max: limits.warehousesMax)
            var layout: [Warehouse] = []
            for _ in 0..<count { layout.append(try reader.readWarehouse(limits: limits)) }
            command = .configureWarehouses(layout)
        case 2:
            command = .setStock(
                sku: SKU(try reader.readString()), warehouse: WarehouseID(try reader.readString()),
                total: try reader.readInt64())
        case 3:
            command = .adjustStock(
                sku: SKU(try reader.readString()), warehouse: WarehouseID(try reader.readString()),
                delta: try reader.readInt64(), reason: try reader.readString())
        case 4:
            let id = ReservationID(try reader.readString())
            let orderId = try reader.readString()
            let region = try reader.readString()
            let ttlMs = try reader.readInt64()
            let allowSplit = try reader.readBool()
            let count = try reader.readCount(max: limits.reservationLinesMax)
            var lines: [ReservationLine] = []
            lines.reserveCapacity(count)
            for _ in 0..<count {
                lines.append(ReservationLine(sku: SKU(try reader.readString()), quantity: try reader.readInt64()))
            }
            command = .reserve(
                ReserveRequest(
                    reservationId: id, orderId: orderId, region: region, lines: lines, ttlMs: ttlMs,
                    allowSplit: allowSplit))
        case 5: command = .confirm(ReservationID(try reader.readString()))
        case 6: command = .release(ReservationID(try reader.readString()))
        case 7: command = .extend(ReservationID(try reader.readString()), ttlMs: try reader.readInt64())
        case 8: command = .expireDue
        case 9: command = .setHot(SKU(try reader.readString()), try reader.readBool())
        case 10: command = .grantAllotment(try reader.readAllotmentKey(), quantity: try reader.readInt64())
        case 11: command = .returnAllotment(try reader.readAllotmentKey(), quantity: try reader.readInt64())
        case 12:
            let count = try reader.readCount(max: limits.cacheHoldsBatchMax)
            var cacheHolds: [CacheHold] = []
            cacheHolds.reserveCapacity(count)
            for _ in 0..<count { cacheHolds.append(try reader.readCacheHold(limits: limits)) }
            command = .applyAllotmentHolds(cacheHolds)
        case let tag: throw ByteReader.Failure(description: "unknown command tag \(tag)")
        }
        guard reader.isAtEnd else { throw ByteReader.Failure(description: "\(reader.remaining) trailing bytes") }
        self.init(command, timeMs: timeMs)
    }
}

extension ByteWriter {
    mutating func write(_ warehouse: Warehouse) {
        write(warehouse.id.rawValue)
        write(warehouse.priority)
        write(UInt32(warehouse.regions.count))
        for region in warehouse.regions { write(region) }
    }
}

extension ByteReader {
    mutating func readWarehouse(limits: Limits) throws -> Warehouse {
        let id = WarehouseID(try readString())
        let priority = try readInt64()
        let count = try readCount(max: 1024)
        var regions: [String] = []
        for _ in 0..<count { regions.append(try readString()) }
        return Warehouse(id: id, regions: regions, priority: priority)
    }
}

extension ByteWriter {
    public mutating func write(_ key: AllotmentKey) {
        write(key.sku.rawValue)
        write(key.warehouse.rawValue)
        write(key.holder.rawValue)
    }

    public mutating func write(_ allocations: [Allocation]) {
        write(UInt32(allocations.count))
        for allocation in allocations {
            write(allocation.sku.rawValue)
            write(allocation.warehouse.rawValue)
            write(allocation.quantity)
        }
    }

    public mutating func write(_ cacheHold: CacheHold) {
        write(cacheHold.reservationId.rawValue)
        write(cacheHold.orderId)
        write(cacheHold.region)
        write(cacheHold.ttlMs)
        write(cacheHold.allowSplit)
        write(cacheHold.token.rawValue)
        write(cacheHold.createdAtMs)
        write(cacheHold.allocations)
    }
}

extension ByteReader {
    public mutating func readAllotmentKey() throws -> AllotmentKey {
        let sku = SKU(try readString())
        let warehouse = WarehouseID(try readString())
        guard let holder = AllotmentHolder(rawValue: try readUInt8()) else {
            throw ByteReader.Failure(description: "unknown allotment holder")
        }
        return AllotmentKey(sku: sku, warehouse: warehouse, holder: holder)
    }

    public mutating func readAllocations(limits: Limits) throws -> [Allocation] {
        let count = try readCount(max: limits.reservationLinesMax * limits.warehousesMax)
        var allocations: [Allocation] = []
        allocations.reserveCapacity(count)
        for _ in 0..<count {
            allocations.append(Allocation(sku: SKU(try readString()), warehouse: WarehouseID(try readString()), quantity: try readInt64()))
        }
        return allocations
    }

    public mutating func readCacheHold(limits: Limits) throws -> CacheHold {
        CacheHold(
            reservationId: ReservationID(try readString()), orderId: try readString(), region: try readString(),
            allocations: [], ttlMs: try readInt64(), allowSplit: try readBool(), token: FencingToken(try readUInt64()),
            createdAtMs: try readInt64()
        ).with(allocations: try readAllocations(limits: limits))
    }
}

extension CacheHold {
    fileprivate func with(allocations: [Allocation]) -> CacheHold {
        var copy = self
        copy.allocations = allocations
        return copy
    }
}
