import StockadeCore

/// Binary forms of holds and outcomes: holds in snapshots, outcomes in answers a leader sends back
/// to the node that forwarded the command.
extension ByteWriter {
    public mutating func write(_ hold: Hold) {
        write(hold.reservationId.rawValue)
        write(hold.orderId)
        write(hold.region)
        write(hold.ttlMs)
        write(hold.allowSplit)
        write(hold.path.rawValue)
        write(hold.token.rawValue)
        write(hold.createdAtMs)
        write(hold.expiresAtMs)
        write(hold.status.rawValue)
        write(hold.finishedAtMs)
        write(hold.allocations)
        // Only local holds carry their origin, so older encodings of other holds are unchanged.
        if hold.path == .local {
            let local = hold.local ?? LocalGrant(node: 0, epoch: 0, sequence: 0, term: 0)
            write(local.node)
            write(local.epoch)
            write(local.sequence)
            write(local.term)
        }
    }
}

extension ByteReader {
    public mutating func readHold(limits: Limits) throws -> Hold {
        let id = ReservationID(try readString())
        let orderId = try readString()
        let region = try readString()
        let ttlMs = try readInt64()
        let allowSplit = try readBool()
        guard let path = GrantPath(rawValue: try readUInt8()) else { throw ByteReader.Failure(description: "bad grant path") }
        let token = FencingToken(try readUInt64())
        let createdAtMs = try readInt64()
        let expiresAtMs = try readInt64()
        guard let status = HoldStatus(rawValue: try readUInt8()) else {
            throw ByteReader.Failure(description: "bad hold status")
        }
        let finishedAtMs = try readInt64()
        let allocations = try readAllocations(limits: limits)
        var local: LocalGrant?
        if path == .local {
            local = LocalGrant(node: try readUInt64(), epoch: try readUInt64(), sequence: try readUInt64(), term: try readUInt64())
        }
        return Hold(
            reservationId: id, orderId: orderId, region: region, allocations: allocations, ttlMs: ttlMs,
            allowSplit: allowSplit, path: path, token: token, createdAtMs: createdAtMs, expiresAtMs: expiresAtMs,
            status: status, finishedAtMs: finishedAtMs, local: local)
    }
}

extension Outcome {
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 192)
        switch self {
        case .reservation(let hold, let created):
            writer.write(UInt8(1))
            writer.write(hold)
            writer.write(created)
        case .stockRow(let sku, let warehouse, let row):
            writer.write(UInt8(2))
            writer.write(sku.rawValue)
            writer.write(warehouse.rawValue)
            writer.write(row.total)
            writer.write(row.held)
            writer.write(row.sold)
            writer.write(row.allotted)
        case .warehousesConfigured(let count):
            writer.write(UInt8(3))
            writer.write(UInt64(count))
        case .expired(let count, let purged):
            writer.write(UInt8(4))
            writer.write(UInt64(count))
            writer.write(UInt64(purged))
        case .hotStatus(let sku, let hot):
            writer.write(UInt8(6))
            writer.write(sku.rawValue)
            writer.write(hot)
        case .allotment(let key, let moved, let allotment):
            writer.write(UInt8(7))
            writer.write(key)
            writer.write(moved)
            writer.write(allotment)
        case .cacheHoldsApplied(let results):
            writer.write(UInt8(8))
            writer.write(UInt32(results.count))
            for result in results { writer.write(result.rawValue) }
        case .localReserve(let key, let policy):
            writer.write(UInt8(9))
            writer.write(key.sku.rawValue)
            writer.write(key.warehouse.rawValue)
            writer.write(policy)
        case .localEpoch(let node, let progress):
            writer.write(UInt8(10))
            writer.write(node)
            writer.write(progress)
        case .localReconciled(let duplicate, let results):
            writer.write(UInt8(11))
            writer.write(duplicate)
            writer.write(UInt32(results.count))
            for result in results { writer.write(result.rawValue) }
        case .rejected(let error, let detail):
            writer.write(UInt8(5))
            writer.write(error.code.rawValue)
            writer.write(error.message)
            writer.write(detail != nil)
            if let detail {
                writer.write(detail.sku.rawValue)
                writer.write(detail.requested)
                writer.write(detail.available)
            }
        }
        return writer.bytes
    }

    public init(decoding bytes: [UInt8], limits: Limits) throws {
        var reader = ByteReader(bytes)
        switch try reader.readUInt8() {
        case 1:
            let hold = try reader.readHold(limits: limits)
            self = .reservation(hold, created: try reader.readBool())
        case 2:
            let sku = SKU(try reader.readString())
            let warehouse = WarehouseID(try reader.readString())
            self = .stockRow(
                sku, warehouse,
                StockRow(total: try reader.readInt64(), held: try reader.readInt64(), sold: try reader.readInt64(), allotted: try reader.readInt64()))
        case 3:
            self = .warehousesConfigured(count: Int(try reader.readUInt64()))
        case 4:
            self = .expired(count: Int(try reader.readUInt64()), purged: Int(try reader.readUInt64()))
        case 5:
            guard let code = ErrorCode(rawValue: try reader.readString()) else {
                throw ByteReader.Failure(description: "unknown error code")
            }
            let error = StockadeError(code, try reader.readString())
            var detail: RejectionDetail?
            if try reader.readBool() {
                detail = RejectionDetail(sku: SKU(try reader.readString()), requested: try reader.readInt64(), available: try reader.readInt64())
            }
            self = .rejected(error, detail: detail)
        case 6:
            self = .hotStatus(SKU(try reader.readString()), hot: try reader.readBool())
        case 7:
            self = .allotment(try reader.readAllotmentKey(), moved: try reader.readInt64(), try reader.readAllotment())
        case 8:
            let count = try reader.readCount(max: limits.cacheHoldsBatchMax)
            var results: [CacheHoldResult] = []
            for _ in 0..<count {
                guard let result = CacheHoldResult(rawValue: try reader.readUInt8()) else {
                    throw ByteReader.Failure(description: "unknown cache hold result")
                }
                results.append(result)
            }
            self = .cacheHoldsApplied(results)
        case 9:
            let key = RowKey(sku: SKU(try reader.readString()), warehouse: WarehouseID(try reader.readString()))
            self = .localReserve(key, try reader.readLocalReservePolicy())
        case 10:
            self = .localEpoch(node: try reader.readUInt64(), try reader.readLocalProgress())
        case 11:
            let duplicate = try reader.readBool()
            let count = try reader.readCount(max: limits.localReconcileHoldsMax)
            var results: [HoldReplayResult] = []
            for _ in 0..<count {
                guard let result = HoldReplayResult(rawValue: try reader.readUInt8()) else {
                    throw ByteReader.Failure(description: "unknown hold replay result")
                }
                results.append(result)
            }
            self = .localReconciled(duplicate: duplicate, results)
        case let tag:
            throw ByteReader.Failure(description: "unknown outcome tag \(tag)")
        }
        guard reader.isAtEnd else { throw ByteReader.Failure(description: "trailing bytes after an outcome") }
    }
}

extension ByteWriter {
    public mutating func write(_ allotment: Allotment) {
        write(allotment.quantity)
        write(allotment.lastGrantIndex)
        write(allotment.lastGrantQuantity)
    }
}

extension ByteReader {
    public mutating func readAllotment() throws -> Allotment {
        Allotment(quantity: try readInt64(), lastGrantIndex: try readUInt64(), lastGrantQuantity: try readInt64())
    }
}

extension ByteWriter {
    mutating func write(_ progress: LocalProgress) {
        write(progress.epoch)
        write(progress.nonce)
        write(progress.sequence)
    }
}

extension ByteReader {
    mutating func readLocalProgress() throws -> LocalProgress {
        LocalProgress(epoch: try readUInt64(), nonce: try readUInt64(), sequence: try readUInt64())
    }
}
