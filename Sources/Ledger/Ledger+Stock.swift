import StockadeCore

extension Ledger {
    mutating func configure(_ layout: [Warehouse]) -> Outcome {
        if let error = Validation.warehouses(layout, limits: limits) { return .rejected(error) }
        let kept = Set(layout.map(\.id))
        for (sku, rows) in stock {
            for warehouse in rows.keys where !kept.contains(warehouse) {
                return .rejected(
                    StockadeError(.invalidState, "warehouse \(warehouse) still has stock of \(sku) and cannot be removed"))
            }
        }
        setLayout(layout)
        return .warehousesConfigured(count: layout.count)
    }

    func knows(warehouse: WarehouseID) -> Bool {
        warehouses.contains { $0.id == warehouse }
    }

    mutating func setStock(sku: SKU, warehouse: WarehouseID, total: Int64) -> Outcome {
        if let error = Validation.identifier(sku.rawValue, field: "sku", limits: limits) { return .rejected(error) }
        if let error = Validation.stockTotal(total, limits: limits) { return .rejected(error) }
        guard knows(warehouse: warehouse) else {
            return .rejected(StockadeError(.unknownWarehouse, "unknown warehouse \(warehouse)"))
        }
        var row = stock[sku]?[warehouse] ?? StockRow()
        guard total >= row.committed else {
            return .rejected(
                StockadeError(
                    .stockBelowCommitted,
                    "total \(total) is below the \(row.committed) units held, sold or allotted for \(sku) at \(warehouse)"))
        }
        row.total = total
        storeRow(row, sku: sku, warehouse: warehouse)
        return .stockRow(sku, warehouse, row)
    }

    mutating func adjustStock(sku: SKU, warehouse: WarehouseID, delta: Int64) -> Outcome {
        guard let rows = stock[sku] else { return .rejected(StockadeError(.unknownSKU, "unknown sku \(sku)")) }
        guard knows(warehouse: warehouse) else {
            return .rejected(StockadeError(.unknownWarehouse, "unknown warehouse \(warehouse)"))
        }
        var row = rows[warehouse] ?? StockRow()
        // Whether a well-formed delta fits depends on the row, so a misfit is a conflict (409),
        // not bad input: the new total must stay within 0...stockTotalMax and ≥ committed.
        let (total, overflow) = row.total.addingReportingOverflow(delta)
        if overflow || total > limits.stockTotalMax {
            return .rejected(
                StockadeError(
                    .invalidState,
                    "adjusting by \(delta) takes the total for \(sku) at \(warehouse) past \(limits.stockTotalMax), the most a row may hold"))
        }
        guard total >= row.committed else {
            return .rejected(
                StockadeError(
                    .stockBelowCommitted,
                    "adjusting by \(delta) leaves total \(total) below the \(row.committed) units held, sold or allotted for \(sku) at \(warehouse)"
                ))
        }
        row.total = total
        storeRow(row, sku: sku, warehouse: warehouse)
        return .stockRow(sku, warehouse, row)
    }

    /// Writes a row back after checking the no-oversell invariant on it.
    mutating func storeRow(_ row: StockRow, sku: SKU, warehouse: WarehouseID) {
        precondition(row.isConsistent, "no-oversell broken for \(sku)@\(warehouse): \(row)")
        stock[sku, default: [:]][warehouse] = row
    }

    /// Adds `heldDelta` and `soldDelta` to the rows of `allocations`.
    mutating func move(_ allocations: [Allocation], heldDelta: Int64, soldDelta: Int64) {
        for allocation in allocations {
            guard var row = stock[allocation.sku]?[allocation.warehouse] else {
                preconditionFailure("hold refers to missing row \(allocation.sku)@\(allocation.warehouse)")
            }
            row.held += heldDelta * allocation.quantity
            row.sold += soldDelta * allocation.quantity
            storeRow(row, sku: allocation.sku, warehouse: allocation.warehouse)
        }
    }
}
