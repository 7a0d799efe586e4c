import StockadeCore

/// Snapshots: the whole ledger as deterministic bytes. Equal states encode to equal bytes.
extension Ledger {
    static let snapshotFormatVersion: UInt8 = 1

    /// Encodes the state: layout, rows sorted by SKU and warehouse, holds sorted by token.
    /// Queues are not written; they are derived from the holds on decode.
    public func encodeSnapshot() -> [UInt8] {
        var writer = ByteWriter(capacity: 64 + holds.count * 160)
        writer.write(Self.snapshotFormatVersion)
        writer.write(appliedIndex)
        writer.write(UInt32(warehouses.count))
        for warehouse in warehouses { writer.write(warehouse) }
        let skus = stock.keys.sorted()
        writer.write(UInt32(skus.count))
        for sku in skus {
            let rows = stock[sku]!.sorted { $0.key < $1.key }
            writer.write(sku.rawValue)
            writer.write(UInt32(rows.count))
            for (warehouse, row) in rows {
                writer.write(warehouse.rawValue)
                writer.write(row.total)
                writer.write(row.held)
                writer.write(row.sold)
                writer.write(row.allotted)
            }
        }
        writer.write(UInt32(holds.count))
        holds.forEach { hold in
            writer.write(hold)
            return true
        }
        return writer.bytes
    }

    /// Rebuilds a ledger from `encodeSnapshot()` bytes.
    public init(snapshot bytes: [UInt8], limits: Limits = .default) throws {
        self.init(limits: limits)
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8()
        guard version == Self.snapshotFormatVersion else {
            throw ByteReader.Failure(description: "unknown snapshot format \(version)")
        }
        appliedIndex = try reader.readUInt64()
        let warehouseCount = try reader.readCount(max: limits.warehousesMax)
        for _ in 0..<warehouseCount { warehouses.append(try reader.readWarehouse(limits: limits)) }
        let skuCount = try reader.readCount(max: Int(UInt32.max))
        stock.reserveCapacity(skuCount)
        for _ in 0..<skuCount {
            let sku = SKU(try reader.readString())
            let rowCount = try reader.readCount(max: limits.warehousesMax)
            var rows: [WarehouseID: StockRow] = [:]
            for _ in 0..<rowCount {
                let warehouse = WarehouseID(try reader.readString())
                rows[warehouse] = StockRow(
                    total: try reader.readInt64(), held: try reader.readInt64(), sold: try reader.readInt64(),
                    allotted: try reader.readInt64())
            }
            stock[sku] = rows
        }
        let holdCount = try reader.readCount(max: Int(UInt32.max))
        var previousToken: UInt64 = 0
        for _ in 0..<holdCount {
            let hold = try reader.readHold(limits: limits)
            let id = hold.reservationId
            let token = hold.token
            guard holds[id] == nil, token.rawValue > previousToken else {
                throw ByteReader.Failure(description: "snapshot holds out of token order or repeated")
            }
            previousToken = token.rawValue
            holds.append(hold)
            if hold.status == .held {
                activeHoldCount += 1
                expiryQueue.insert(TimedEntry(timeMs: hold.expiresAtMs, token: token.rawValue))
            } else {
                finishedQueue.insert(TimedEntry(timeMs: hold.finishedAtMs, token: token.rawValue))
            }
        }
        guard reader.isAtEnd else { throw ByteReader.Failure(description: "\(reader.remaining) trailing bytes") }
        let violations = invariantViolations()
        guard violations.isEmpty else {
            throw ByteReader.Failure(description: "snapshot breaks invariants: \(violations.prefix(3))")
        }
    }
}
