import StockadeCore

/// Snapshots: the whole ledger as deterministic bytes. Equal states encode to equal bytes.
extension Ledger {
    /// 2 added hot SKUs, allotments and each hold's sequence; 3 warehouse owners, local reserve
    /// policies and local progress; 4 replay conflicts. Older versions are still read.
    static let snapshotFormatVersion: UInt8 = 4

    /// Encodes the state: layout, rows sorted by SKU and warehouse, hot SKUs sorted, allotments
    /// sorted by key, holds in sequence order with their sequences.
    /// Queues are not written; they are derived from the holds on decode.
    public func encodeSnapshot() -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(64 + holds.count * 160)
        encodeSnapshot(chunkBytes: 1 << 20) { result.append(contentsOf: $0) }
        return result
    }

    /// The same bytes as `encodeSnapshot()`, handed to `sink` in order in chunks of about
    /// `chunkBytes`, so that a snapshot can be written without holding all of it in memory (at a
    /// million holds it is over 100 MB).
    public func encodeSnapshot(chunkBytes: Int, _ sink: ([UInt8]) throws -> Void) rethrows {
        var writer = ByteWriter(capacity: chunkBytes + 4096)
        func flushIfFull() throws {
            guard writer.bytes.count >= chunkBytes else { return }
            try sink(writer.bytes)
            writer.removeAll()
        }
        writer.write(Self.snapshotFormatVersion)
        writer.write(appliedIndex)
        writer.write(UInt32(warehouses.count))
        for warehouse in warehouses { writer.write(warehouse, withOwner: true) }
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
        writer.write(UInt32(hotSKUs.count))
        for sku in hotSKUs.sorted() { writer.write(sku.rawValue) }
        writer.write(UInt32(allotments.count))
        for (key, allotment) in allotments.sorted(by: { $0.key < $1.key }) {
            writer.write(key)
            writer.write(allotment)
        }
        writer.write(UInt32(localReserves.count))
        for (key, policy) in localReserves.sorted(by: { $0.key < $1.key }) {
            writer.write(key.sku.rawValue)
            writer.write(key.warehouse.rawValue)
            writer.write(policy)
        }
        writer.write(UInt32(localProgress.count))
        for (node, progress) in localProgress.sorted(by: { $0.key < $1.key }) {
            writer.write(node)
            writer.write(progress)
        }
        writer.write(UInt32(replayConflicts.count))
        for conflict in replayConflicts { writer.write(conflict) }
        writer.write(UInt32(holds.count))
        try holds.forEach { hold, sequence in
            writer.write(sequence)
            writer.write(hold)
            try flushIfFull()
            return true
        }
        if !writer.bytes.isEmpty { try sink(writer.bytes) }
    }

    /// Rebuilds a ledger from `encodeSnapshot()` bytes.
    public init(snapshot bytes: [UInt8], limits: Limits = .default) throws {
        self.init(limits: limits)
        var reader = ByteReader(bytes)
        let version = try reader.readUInt8()
        guard (1...Self.snapshotFormatVersion).contains(version) else {
            throw ByteReader.Failure(description: "unknown snapshot format \(version)")
        }
        appliedIndex = try reader.readUInt64()
        let warehouseCount = try reader.readCount(max: limits.warehousesMax)
        var layout: [Warehouse] = []
        for _ in 0..<warehouseCount { layout.append(try reader.readWarehouse(limits: limits, withOwner: version >= 3)) }
        setLayout(layout)
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
        if version >= 2 {
            let hotCount = try reader.readCount(max: skuCount)
            for _ in 0..<hotCount { hotSKUs.insert(SKU(try reader.readString())) }
            let allotmentCount = try reader.readCount(max: Int(UInt32.max))
            for _ in 0..<allotmentCount {
                let key = try reader.readAllotmentKey()
                allotments[key] = try reader.readAllotment()
            }
        }
        if version >= 3 {
            let policyCount = try reader.readCount(max: Int(UInt32.max))
            for _ in 0..<policyCount {
                let key = RowKey(sku: SKU(try reader.readString()), warehouse: WarehouseID(try reader.readString()))
                guard let policy = try reader.readLocalReservePolicy() else {
                    throw ByteReader.Failure(description: "empty local reserve policy in a snapshot")
                }
                localReserves[key] = policy
            }
            let progressCount = try reader.readCount(max: Int(UInt32.max))
            for _ in 0..<progressCount {
                let node = try reader.readUInt64()
                localProgress[node] = try reader.readLocalProgress()
            }
        }
        if version >= 4 {
            let conflictCount = try reader.readCount(max: limits.replayConflictsKept)
            for _ in 0..<conflictCount { replayConflicts.append(try reader.readReplayConflict(limits: limits)) }
        }
        let holdCount = try reader.readCount(max: Int(UInt32.max))
        var previousSequence: UInt64 = 0
        for _ in 0..<holdCount {
            // Version 1 stored quorum holds only, whose sequence follows from their token.
            let sequence = version >= 2 ? try reader.readUInt64() : 0
            let hold = try reader.readHold(limits: limits)
            let resolved = version >= 2 ? sequence : Self.sequence(index: hold.token.rawValue, position: 0)
            guard holds[hold.reservationId] == nil, resolved > previousSequence else {
                throw ByteReader.Failure(description: "snapshot holds out of sequence order or repeated")
            }
            previousSequence = resolved
            holds.append(hold, sequence: resolved)
            if hold.status == .held {
                activeHoldCount += 1
                expiryQueue.insert(TimedEntry(timeMs: hold.expiresAtMs, sequence: resolved))
            } else {
                finishedQueue.insert(TimedEntry(timeMs: hold.finishedAtMs, sequence: resolved))
            }
        }
        guard reader.isAtEnd else { throw ByteReader.Failure(description: "\(reader.remaining) trailing bytes") }
        let violations = invariantViolations()
        guard violations.isEmpty else {
            throw ByteReader.Failure(description: "snapshot breaks invariants: \(violations.prefix(3))")
        }
    }
}

extension Ledger {
    /// Whether a replica is due a snapshot: `interval` entries after the last one at least, and at
    /// least as many entries as that snapshot held holds. A snapshot costs O(holds), and the holds
    /// of the next one are at most the last one's plus what the entries since added, so the cost
    /// stays O(1) per entry. (Comparing with the holds *now* never fires again while every entry
    /// adds a hold: the threshold grows as fast as the distance to it, and the log grew without
    /// a snapshot for as long as holds kept growing.)
    public static func snapshotDue(applied: LogIndex, lastIndex: LogIndex, lastHolds: Int, interval: Int) -> Bool {
        applied >= lastIndex && applied - lastIndex >= LogIndex(max(interval, lastHolds))
    }
}
