import StockadeCore

/// Input checks shared by the API edge and `Ledger.apply`, so that both refuse the same things the same way.
public enum Validation {
    /// Checks an identifier: non-empty, at most `identifierLengthMax` Unicode scalar values, no
    /// control characters.
    public static func identifier(_ value: String, field: String, limits: Limits) -> StockadeError? {
        if value.isEmpty { return StockadeError(.invalidRequest, "\(field) must not be empty") }
        // Scalars are counted only when the bytes could exceed the bound (ASCII: one byte each).
        if value.utf8.count > limits.identifierLengthMax && value.unicodeScalars.count > limits.identifierLengthMax {
            return StockadeError(.invalidRequest, "\(field) is longer than \(limits.identifierLengthMax) characters")
        }
        if containsControlCharacter(value) {
            return StockadeError(.invalidRequest, "\(field) contains control characters")
        }
        return nil
    }

    /// Whether `value` has a control character (Unicode category Cc: U+0000–U+001F, U+007F–U+009F).
    /// Works on UTF-8 bytes: U+0080–U+009F are encoded as 0xC2 0x80…0x9F.
    public static func containsControlCharacter(_ value: String) -> Bool {
        var previous: UInt8 = 0
        for byte in value.utf8 {
            if byte < 0x20 || byte == 0x7F || (previous == 0xC2 && (0x80...0x9F).contains(byte)) { return true }
            previous = byte
        }
        return false
    }

    /// A request's lines as sent, checked line by line (count, quantity), with the lines that
    /// name the same SKU then added together at the first one's place. The edges (HTTP, RESP) call
    /// it before anything else sees the request, so the ledger only ever gets one line per SKU
    /// (`reserve` refuses two), each within `skuQuantityMax`.
    public static func mergingLines(_ lines: [ReservationLine], limits: Limits) throws(StockadeError) -> [ReservationLine] {
        if lines.count > limits.reservationLinesMax {
            throw StockadeError(.invalidRequest, "at most \(limits.reservationLinesMax) lines per reservation")
        }
        for line in lines where !(1...limits.lineQuantityMax).contains(line.quantity) {
            throw StockadeError(.invalidRequest, "quantity of \(line.sku) must be between 1 and \(limits.lineQuantityMax)")
        }
        guard lines.count > 1 else { return lines }
        var merged: [ReservationLine] = []
        merged.reserveCapacity(lines.count)
        var position: [SKU: Int] = [:]
        for line in lines {
            if let index = position[line.sku] {
                merged[index].quantity += line.quantity  // at most skuQuantityMax: no overflow (Limits)
            } else {
                position[line.sku] = merged.count
                merged.append(line)
            }
        }
        return merged
    }

    /// Checks a reservation request against the limits. Returns the first problem found.
    public static func reserve(_ request: ReserveRequest, limits: Limits) -> StockadeError? {
        if let error = identifier(request.reservationId.rawValue, field: "reservationId", limits: limits) { return error }
        if let error = identifier(request.orderId, field: "orderId", limits: limits) { return error }
        if let error = identifier(request.region, field: "region", limits: limits) { return error }
        if request.lines.isEmpty { return StockadeError(.invalidRequest, "lines must not be empty") }
        if request.lines.count > limits.reservationLinesMax {
            return StockadeError(.invalidRequest, "at most \(limits.reservationLinesMax) lines per reservation")
        }
        var seen = Set<SKU>()
        for line in request.lines {
            if let error = identifier(line.sku.rawValue, field: "lines.sku", limits: limits) { return error }
            if line.quantity < 1 || line.quantity > limits.skuQuantityMax {
                return StockadeError(
                    .invalidRequest, "quantity of \(line.sku) must be between 1 and \(limits.skuQuantityMax)")
            }
            if !seen.insert(line.sku).inserted {
                return StockadeError(.invalidRequest, "sku \(line.sku) appears on more than one line")
            }
        }
        if let error = ttl(milliseconds: request.ttlMs, limits: limits) { return error }
        return nil
    }

    /// Checks a time-to-live in milliseconds.
    public static func ttl(milliseconds: Int64, limits: Limits) -> StockadeError? {
        let range = (limits.holdTTLSecondsMin * 1000)...(limits.holdTTLSecondsMax * 1000)
        if !range.contains(milliseconds) {
            return StockadeError(
                .invalidRequest,
                "ttlSeconds must be between \(limits.holdTTLSecondsMin) and \(limits.holdTTLSecondsMax)")
        }
        return nil
    }

    /// Checks a stock total.
    public static func stockTotal(_ total: Int64, limits: Limits) -> StockadeError? {
        if total < 0 || total > limits.stockTotalMax {
            return StockadeError(.invalidRequest, "total must be between 0 and \(limits.stockTotalMax)")
        }
        return nil
    }

    /// Checks a warehouse layout: non-empty, bounded, unique ids, valid names.
    public static func warehouses(_ warehouses: [Warehouse], limits: Limits) -> StockadeError? {
        if warehouses.isEmpty { return StockadeError(.invalidRequest, "at least one warehouse is needed") }
        if warehouses.count > limits.warehousesMax {
            return StockadeError(.invalidRequest, "at most \(limits.warehousesMax) warehouses")
        }
        var seen = Set<WarehouseID>()
        for warehouse in warehouses {
            if let error = identifier(warehouse.id.rawValue, field: "warehouse.id", limits: limits) { return error }
            if !seen.insert(warehouse.id).inserted {
                return StockadeError(.invalidRequest, "warehouse \(warehouse.id) appears twice")
            }
            for region in warehouse.regions {
                if let error = identifier(region, field: "warehouse.regions", limits: limits) { return error }
            }
            if let owner = warehouse.owner, !(1...Ledger.localNodeMax).contains(owner) {
                return StockadeError(.invalidRequest, "warehouse \(warehouse.id): owner must be a node id in 1...\(Ledger.localNodeMax)")
            }
            if let policy = warehouse.localReserve {
                if warehouse.owner == nil {
                    return StockadeError(.invalidRequest, "warehouse \(warehouse.id): a local reserve needs an owner")
                }
                if let problem = policy.problem(limits: limits) { return problem }
            }
        }
        return nil
    }
}
