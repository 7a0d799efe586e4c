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
