import Foundation
import Hummingbird
import Ledger
import NIOCore
import StockadeCore

/// An answer as the HTTP API gives it: a status and a JSON body. The RESP server translates the
/// same answers (`RESPReply`), so both APIs decide and say the same things.
struct APIAnswer: Sendable {
    var status: HTTPResponse.Status
    var body: ByteBuffer
}

/// The operations behind the routes, on parsed arguments. Both the HTTP router and the RESP
/// server call these; neither decides anything of its own past parsing.
extension StockadeAPI {
    func setStock(_ sku: SKU, warehouse: String, total: Int64) async throws -> APIAnswer {
        try Self.check(Validation.identifier(warehouse, field: "warehouse", limits: limits))
        try Self.check(Validation.stockTotal(total, limits: limits))
        let outcome = await replica.propose(.setStock(sku: sku, warehouse: WarehouseID(warehouse), total: total))
        return try skuAnswer(after: outcome, sku: sku)
    }

    func adjustStock(_ sku: SKU, warehouse: String, delta: Int64, reason: String) async throws -> APIAnswer {
        try Self.check(Validation.identifier(warehouse, field: "warehouse", limits: limits))
        try Self.check(Validation.identifier(reason, field: "reason", limits: limits))
        if delta == 0 || delta.magnitude > UInt64(limits.stockTotalMax) {
            throw APIError.invalid("delta must be non-zero and between -\(limits.stockTotalMax) and \(limits.stockTotalMax)")
        }
        let outcome = await replica.propose(
            .adjustStock(sku: sku, warehouse: WarehouseID(warehouse), delta: delta, reason: reason))
        return try skuAnswer(after: outcome, sku: sku)
    }

    /// Sets (or, with nil, clears) a row's local reserve policy and answers the SKU's reserves.
    func setLocalReserve(_ sku: SKU, warehouse: String, _ policy: LocalReservePolicy?) async throws -> APIAnswer {
        try Self.check(Validation.identifier(warehouse, field: "warehouse", limits: limits))
        try Self.check(policy?.problem(limits: limits))
        let outcome = await replica.propose(.setLocalReserve(RowKey(sku: sku, warehouse: WarehouseID(warehouse)), policy))
        if case .rejected(let error, _) = outcome { throw error }
        return try localReservesAnswer(sku)
    }

    /// A SKU's local reserves from the applied state (the caller has passed its read point).
    func localReservesAnswer(_ sku: SKU) throws -> APIAnswer {
        let payload: LocalReservesPayload? = replica.read { ledger in
            guard let rows = ledger.stock[sku] else { return nil }
            let reserves = ledger.warehouses.compactMap { warehouse -> LocalReservesPayload.Reserve? in
                guard let owner = warehouse.owner, rows[warehouse.id] != nil else { return nil }
                let key = RowKey(sku: sku, warehouse: warehouse.id)
                let policy = ledger.localReservePolicy(key)
                let state = ledger.localReserveTarget(key)
                return LocalReservesPayload.Reserve(
                    warehouse: warehouse.id.rawValue, owner: "n\(owner)",
                    policy: policy.map {
                        switch $0 {
                        case .units(let units): ["units": units]
                        case .percent(let percent): ["percent": percent]
                        }
                    },
                    source: policy == nil ? nil : (ledger.localReserves[key] != nil ? "sku" : "warehouse"),
                    target: state?.target ?? 0, reserved: state?.current ?? 0)
            }
            return LocalReservesPayload(sku: sku.rawValue, reserves: reserves)
        }
        guard let payload else { throw StockadeError(.unknownSKU, "unknown sku \(sku)") }
        return APIAnswer(status: .ok, body: JSON.encoded(payload))
    }

    func setHot(_ sku: SKU, _ hot: Bool) async throws -> APIAnswer {
        try skuAnswer(after: await replica.propose(.setHot(sku, hot)), sku: sku)
    }

    /// The SKU's rows from the applied state (the caller has passed its read point).
    func skuAnswer(_ sku: SKU) throws -> APIAnswer {
        guard let rows = replica.read({ $0.rows(of: sku) }) else {
            throw StockadeError(.unknownSKU, "unknown sku \(sku)")
        }
        // Each row's allotments are the cache's and its warehouse owner's reserve: looked up, not scanned.
        let (hot, allotted) = replica.read { ledger in
            let owners = Dictionary(uniqueKeysWithValues: ledger.warehouses.map { ($0.id, $0.owner) })
            var found: [AllotmentKey: Allotment] = [:]
            for (warehouse, _) in rows {
                let holders: [AllotmentHolder] = [.cache] + (owners[warehouse].flatMap { $0 }.map { [.node($0)] } ?? [])
                for holder in holders {
                    let key = AllotmentKey(sku: sku, warehouse: warehouse, holder: holder)
                    if let allotment = ledger.allotments[key], allotment.quantity != 0 { found[key] = allotment }
                }
            }
            return (ledger.hotSKUs.contains(sku), found)
        }
        return APIAnswer(
            status: .ok,
            body: JSON.encoded(
                SKUPayload(
                    sku: sku.rawValue, hot: hot,
                    warehouses: rows.map { entry in
                        var payload = StockRowPayload(warehouse: entry.warehouse, row: entry.row)
                        for (key, allotment) in allotted where key.warehouse == entry.warehouse {
                            payload.allottedTo[key.holder.node.map { "n\($0)" } ?? "cache"] = allotment.quantity
                        }
                        return payload
                    })))
    }

    func skuAnswer(after outcome: Outcome, sku: SKU) throws -> APIAnswer {
        if case .rejected(let error, _) = outcome { throw error }
        return try skuAnswer(sku)
    }

    /// A reservation: a provisional hold this node granted from its local reserve, not yet in
    /// the ledger, or the ledger's.
    func reservationAnswer(_ id: ReservationID) throws -> APIAnswer {
        var payload: ReservationPayload
        if let provisional = replica.provisionalHold(id) {
            payload = ReservationPayload(provisional, provisional: true)
        } else if let (hold, conflicts) = replica.read({ ledger in ledger.hold(id).map { ($0, ledger.conflicts(of: id)) } }) {
            payload = ReservationPayload(hold, provisional: false)
            payload.conflicts = conflicts
        } else {
            throw StockadeError(.notFound, "no reservation \(id)")
        }
        var writer = JSONWriter()
        payload.write(into: &writer)
        return APIAnswer(status: .ok, body: writer.buffer)
    }

    func confirm(_ id: ReservationID) async -> APIAnswer { Self.lifecycleAnswer(await lifecycle(.confirm(id), id)) }

    func release(_ id: ReservationID) async -> APIAnswer { Self.lifecycleAnswer(await lifecycle(.release(id), id)) }

    func extend(_ id: ReservationID, ttlSeconds: Int64) async throws -> APIAnswer {
        let (ttlMs, overflow) = ttlSeconds.multipliedReportingOverflow(by: 1000)
        try Self.check(Validation.ttl(milliseconds: overflow ? Int64.max : ttlMs, limits: limits))
        return Self.lifecycleAnswer(await lifecycle(.extend(id, ttlMs: ttlMs), id))
    }

    /// Confirm, release and extend answer the reservation with 200, or the refusal.
    static func lifecycleAnswer(_ outcome: Outcome) -> APIAnswer {
        let answer = ReserveEndpoint.rendered(outcome, createdStatus: .ok)
        return APIAnswer(status: answer.status, body: answer.body)
    }

    func holdsAnswer(_ query: HoldQuery) -> APIAnswer {
        let page = replica.read { $0.holds(matching: query) }
        let payload = HoldsPagePayload(
            holds: page.holds.map(ReservationPayload.init), nextCursor: page.nextAfterSequence.map(String.init))
        var writer = JSONWriter(capacity: 256 * max(1, payload.holds.count))
        payload.write(into: &writer)
        return APIAnswer(status: .ok, body: writer.buffer)
    }

    func warehousesAnswer() -> APIAnswer {
        let layout = replica.read { ledger in
            ledger.warehousesByPriority.map {
                WarehousePayload(id: $0.id.rawValue, regions: $0.regions, priority: $0.priority, owner: $0.owner.map { "n\($0)" })
            }
        }
        return APIAnswer(status: .ok, body: JSON.encoded(layout))
    }

    func clusterAnswer() -> APIAnswer {
        APIAnswer(status: .ok, body: JSON.encoded(clusterPayload()))
    }

    /// `GET /v1/holds`'s query parameters, checked; `parameter` looks one up by name.
    func holdQuery(_ parameter: (String) -> String?) throws -> HoldQuery {
        var query = HoldQuery(nowMs: replica.clock(), limit: 100)
        if let sku = parameter("sku") {
            try Self.check(Validation.identifier(sku, field: "sku", limits: limits))
            query.sku = SKU(sku)
        }
        if let orderId = parameter("orderId") {
            try Self.check(Validation.identifier(orderId, field: "orderId", limits: limits))
            query.orderId = orderId
        }
        if let status = parameter("status") {
            guard let parsed = HoldStatus(name: status) else {
                throw APIError.invalid("status must be one of held, confirmed, released, expired")
            }
            query.status = parsed
        }
        if let within = parameter("expiringWithinSeconds") {
            guard let seconds = Int64(within), seconds >= 0, seconds <= limits.holdTTLSecondsMax else {
                throw APIError.invalid("expiringWithinSeconds must be between 0 and \(limits.holdTTLSecondsMax)")
            }
            query.expiringWithinMs = seconds * 1000
        }
        if let limit = parameter("limit") {
            guard let parsed = Int(limit), (1...limits.holdsPageMax).contains(parsed) else {
                throw APIError.invalid("limit must be between 1 and \(limits.holdsPageMax)")
            }
            query.limit = parsed
        }
        if let cursor = parameter("cursor") {
            // Digits only (UInt64 alone would take "+5"), and at most 19, as docs/openapi.yaml says.
            guard (1...19).contains(cursor.utf8.count), cursor.utf8.allSatisfy({ (48...57).contains($0) }),
                let parsed = UInt64(cursor)
            else { throw APIError.invalid("cursor is not valid") }
            query.afterSequence = parsed
        }
        return query
    }

    /// Waits for a linearizable read point unless `consistency` is `local`.
    func readPoint(consistency: String?) async throws {
        switch consistency {
        case "local": return
        case nil, "linearizable": try await replica.readBarrier()
        default: throw APIError.invalid("consistency must be linearizable or local")
        }
    }
}

extension JSON {
    /// `value` encoded with sorted keys.
    static func encoded(_ value: some Encodable) -> ByteBuffer {
        ByteBuffer(bytes: (try? encoder.encode(value)) ?? Data("{}".utf8))
    }

    static func response(_ answer: APIAnswer) -> Response {
        response(status: answer.status, buffer: answer.body)
    }
}
