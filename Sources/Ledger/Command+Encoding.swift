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
            // A layout without owners keeps the first encoding, so older logs read back unchanged.
            let owned = layout.contains { $0.owner != nil || $0.localReserve != nil }
            writer.write(UInt8(owned ? 13 : 1))
            writer.write(UInt32(layout.count))
            for warehouse in layout { writer.write(warehouse, withOwner: owned) }
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
        case .setLocalReserve(let key, let policy):
            writer.write(UInt8(14))
            writer.write(key.sku.rawValue)
            writer.write(key.warehouse.rawValue)
            writer.write(policy)
        case .beginLocalEpoch(let node, let nonce):
            writer.write(UInt8(15))
            writer.write(node)
            writer.write(nonce)
        case .reconcileLocal(let batch):
            writer.write(UInt8(16))
            writer.write(batch)
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
        case let tag where tag == 1 || tag == 13:
            let count = try reader.readCount(max: limits.warehousesMax)
            var layout: [Warehouse] = []
            for _ in 0..<count { layout.append(try reader.readWarehouse(limits: limits, withOwner: tag == 13)) }
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
        case 14:
            let key = RowKey(sku: SKU(try reader.readString()), warehouse: WarehouseID(try reader.readString()))
            command = .setLocalReserve(key, try reader.readLocalReservePolicy())
        case 15:
            command = .beginLocalEpoch(node: try reader.readUInt64(), nonce: try reader.readUInt64())
        case 16:
            command = .reconcileLocal(try reader.readLocalReconcile(limits: limits))
        case let tag: throw ByteReader.Failure(description: "unknown command tag \(tag)")
        }
        guard reader.isAtEnd else { throw ByteReader.Failure(description: "\(reader.remaining) trailing bytes") }
        self.init(command, timeMs: timeMs)
    }
}

extension ByteWriter {
    mutating func write(_ warehouse: Warehouse, withOwner: Bool) {
        write(warehouse.id.rawValue)
        write(warehouse.priority)
        write(UInt32(warehouse.regions.count))
        for region in warehouse.regions { write(region) }
        guard withOwner else { return }
        write(warehouse.owner ?? 0)
        write(warehouse.localReserve)
    }

    mutating func write(_ policy: LocalReservePolicy?) {
        write(policy?.kind ?? 0)
        if let policy { write(policy.amount) }
    }

    mutating func write(_ batch: LocalReconcile) {
        write(batch.node)
        write(batch.epoch)
        write(batch.throughSequence)
        write(UInt32(batch.holds.count))
        for hold in batch.holds { write(hold) }
        write(UInt32(batch.returns.count))
        for returned in batch.returns {
            write(returned.sequence)
            write(returned.allocation.sku.rawValue)
            write(returned.allocation.warehouse.rawValue)
            write(returned.allocation.quantity)
        }
    }
}

extension ByteReader {
    mutating func readWarehouse(limits: Limits, withOwner: Bool) throws -> Warehouse {
        let id = WarehouseID(try readString())
        let priority = try readInt64()
        let count = try readCount(max: 1024)
        var regions: [String] = []
        for _ in 0..<count { regions.append(try readString()) }
        var warehouse = Warehouse(id: id, regions: regions, priority: priority)
        if withOwner {
            let owner = try readUInt64()
            warehouse.owner = owner == 0 ? nil : owner
            warehouse.localReserve = try readLocalReservePolicy()
        }
        return warehouse
    }

    mutating func readLocalReservePolicy() throws -> LocalReservePolicy? {
        let kind = try readUInt8()
        guard kind != 0 else { return nil }
        guard let policy = LocalReservePolicy(kind: kind, amount: try readInt64()) else {
            throw ByteReader.Failure(description: "unknown local reserve policy \(kind)")
        }
        return policy
    }

    mutating func readLocalReconcile(limits: Limits) throws -> LocalReconcile {
        let node = try readUInt64()
        let epoch = try readUInt64()
        let through = try readUInt64()
        let count = try readCount(max: limits.localReconcileHoldsMax)
        var holds: [Hold] = []
        holds.reserveCapacity(count)
        for _ in 0..<count { holds.append(try readHold(limits: limits)) }
        let returnCount = try readCount(max: limits.localReconcileHoldsMax)
        var returns: [LocalReturn] = []
        for _ in 0..<returnCount {
            returns.append(
                LocalReturn(
                    sequence: try readUInt64(),
                    allocation: Allocation(sku: SKU(try readString()), warehouse: WarehouseID(try readString()), quantity: try readInt64())))
        }
        return LocalReconcile(node: node, epoch: epoch, throughSequence: through, holds: holds, returns: returns)
    }
}

extension ByteWriter {
    public mutating func write(_ key: AllotmentKey) {
        write(key.sku.rawValue)
        write(key.warehouse.rawValue)
        write(key.holder.kind)
        if let node = key.holder.node { write(node) }
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
        let holder: AllotmentHolder
        switch try readUInt8() {
        case 1: holder = .cache
        case 2: holder = .node(try readUInt64())
        case let kind: throw ByteReader.Failure(description: "unknown allotment holder \(kind)")
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
