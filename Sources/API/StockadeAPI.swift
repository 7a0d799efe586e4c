import Cluster
import Foundation
import Hummingbird
import HummingbirdCore
import Ledger
import Node
import StockadeCore

/// The HTTP/JSON API: builds the router over a replica.
public struct StockadeAPI: Sendable {
    let replica: any ReplicatedLedger
    let authenticator: TokenAuthenticator
    let metrics: APIMetrics
    /// Renders the Prometheus exposition text for `/metrics`.
    let renderMetrics: @Sendable () -> String
    /// Set when this node is one of a cluster: writes and linearizable reads go to the leader.
    let cluster: ClusterRouting?
    /// This node's name in `/v1/cluster` when it runs alone.
    let nodeName: String
    /// The Redis hot path, when configured.
    let cache: (any CacheGate)?
    var limits: Limits { replica.limits }

    public init(
        replica: any ReplicatedLedger, authenticator: TokenAuthenticator, metrics: APIMetrics,
        renderMetrics: @escaping @Sendable () -> String, cluster: ClusterRouting? = nil, nodeName: String = "n1",
        cache: (any CacheGate)? = nil
    ) {
        self.replica = replica
        self.cache = cache
        self.cluster = cluster
        self.nodeName = nodeName
        self.authenticator = authenticator
        self.metrics = metrics
        self.renderMetrics = renderMetrics
    }

    /// Every route this API serves, as (method, path template). The OpenAPI test compares it with `docs/openapi.yaml`.
    public static let routes: [(method: String, path: String)] = [
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
        ("GET", "/v1/warehouses"),
        ("PUT", "/v1/skus/{sku}/stock"), ("POST", "/v1/skus/{sku}/stock/adjust"), ("GET", "/v1/skus/{sku}"),
        ("POST", "/v1/skus/{sku}/hot"), ("DELETE", "/v1/skus/{sku}/hot"),
        ("POST", "/v1/reservations"), ("GET", "/v1/reservations/{id}"),
        ("POST", "/v1/reservations/{id}/confirm"), ("POST", "/v1/reservations/{id}/release"),
        ("POST", "/v1/reservations/{id}/extend"),
        ("GET", "/v1/holds"),
        ("GET", "/v1/cluster"),
    ]

    public func buildRouter() -> Router<StockadeRequestContext> {
        let router = Router(context: StockadeRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(AuthMiddleware(authenticator: authenticator))
        if let cluster {
            router.middlewares.add(ForwardingMiddleware(cluster: cluster))
        }

        // Liveness is answered from a pre-encoded body: as cheap as the server can answer anything.
        let healthy = ByteBuffer(string: #"{"status":"ok"}"#)
        router.get("/healthz") { _, _ in JSON.response(status: .ok, buffer: healthy) }
        router.get("/readyz") { _, _ in
            replica.isAccepting
                ? JSON.response(status: .ok, StatusPayload(status: "ready"))
                : ErrorBody.response(StockadeError(.unavailable, "the node is shutting down"))
        }
        router.get("/metrics") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: renderMetrics())))
        }

        router.get("/v1/cluster") { _, context in
            try context.require(.checkout)
            return JSON.response(status: .ok, clusterPayload())
        }

        router.get("/v1/warehouses") { _, context in
            try context.require(.checkout)
            let layout = replica.read { ledger in
                ledger.warehousesByPriority.map { WarehousePayload(id: $0.id.rawValue, regions: $0.regions, priority: $0.priority) }
            }
            return JSON.response(status: .ok, layout)
        }

        router.put("/v1/skus/{sku}/stock") { request, context in
            try context.require(.admin)
            let sku = try Self.pathParameter("sku", context, limits: limits)
            let body = try await JSON.decode(SetStockBody.self, from: request, limit: limits.requestBodyBytesMax)
            try Self.check(Validation.identifier(body.warehouse, field: "warehouse", limits: limits))
            try Self.check(Validation.stockTotal(body.total, limits: limits))
            let outcome = await replica.propose(
                .setStock(sku: SKU(sku), warehouse: WarehouseID(body.warehouse), total: body.total))
            return try skuResponse(after: outcome, sku: SKU(sku))
        }

        router.post("/v1/skus/{sku}/stock/adjust") { request, context in
            try context.require(.admin)
            let sku = try Self.pathParameter("sku", context, limits: limits)
            let body = try await JSON.decode(AdjustStockBody.self, from: request, limit: limits.requestBodyBytesMax)
            try Self.check(Validation.identifier(body.warehouse, field: "warehouse", limits: limits))
            try Self.check(Validation.identifier(body.reason, field: "reason", limits: limits))
            if body.delta == 0 { throw APIError.invalid("delta must not be 0") }
            let outcome = await replica.propose(
                .adjustStock(sku: SKU(sku), warehouse: WarehouseID(body.warehouse), delta: body.delta, reason: body.reason))
            return try skuResponse(after: outcome, sku: SKU(sku))
        }

        for (method, hot) in [(HTTPRequest.Method.post, true), (.delete, false)] {
            router.on("/v1/skus/{sku}/hot", method: method) { _, context in
                try context.require(.admin)
                let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
                return try skuResponse(after: await replica.propose(.setHot(sku, hot)), sku: sku)
            }
        }

        router.get("/v1/skus/{sku}") { request, context in
            try context.require(.checkout)
            try await readPoint(request)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            return try skuResponse(sku: sku, status: .ok)
        }

        let reserve = reserveEndpoint
        router.post("/v1/reservations") { request, context in
            try context.require(.checkout)
            let start = ContinuousClock.now
            let body: ReserveBody
            do {
                body = try await JSON.decodeReserve(from: request, limit: limits.requestBodyBytesMax)
            } catch let error as StockadeError {
                metrics.count(outcome: error.code.rawValue)
                throw error
            }
            let reserveRequest = body.request(limits: limits)
            let answer = reserve.answer(await reserve.reserve(reserveRequest), for: reserveRequest, start: start)
            return JSON.response(status: answer.status, buffer: answer.body)
        }

        router.get("/v1/reservations/{id}") { request, context in
            try context.require(.checkout)
            try await readPoint(request)
            let id = ReservationID(try Self.pathParameter("id", context, limits: limits))
            guard let hold = replica.read({ $0.hold(id) }) else {
                throw StockadeError(.notFound, "no reservation \(id)")
            }
            return JSON.response(status: .ok, ReservationPayload(hold))
        }

        router.post("/v1/reservations/{id}/confirm") { _, context in
            try context.require(.checkout)
            let id = ReservationID(try Self.pathParameter("id", context, limits: limits))
            return reservationResponse(await lifecycle(.confirm(id), id))
        }

        router.post("/v1/reservations/{id}/release") { _, context in
            try context.require(.checkout)
            let id = ReservationID(try Self.pathParameter("id", context, limits: limits))
            return reservationResponse(await lifecycle(.release(id), id))
        }

        router.post("/v1/reservations/{id}/extend") { request, context in
            try context.require(.checkout)
            let id = ReservationID(try Self.pathParameter("id", context, limits: limits))
            let body = try await JSON.decode(ExtendBody.self, from: request, limit: limits.requestBodyBytesMax)
            let (ttlMs, overflow) = body.ttlSeconds.multipliedReportingOverflow(by: 1000)
            try Self.check(Validation.ttl(milliseconds: overflow ? Int64.max : ttlMs, limits: limits))
            return reservationResponse(await lifecycle(.extend(id, ttlMs: ttlMs), id))
        }

        router.get("/v1/holds") { request, context in
            try context.require(.admin)
            let query = try holdQuery(request.uri.queryParameters)
            try await readPoint(request)
            let page = replica.read { $0.holds(matching: query) }
            return JSON.response(
                status: .ok,
                HoldsPagePayload(holds: page.holds.map(ReservationPayload.init), nextCursor: page.nextAfterSequence.map(String.init)))
        }
        return router
    }

    /// The HTTP/1.1 server, with reserves answered on the event loop (`ReserveChannelHandler`)
    /// and every other request by the router.
    public func server(serverName: String?) -> HTTPServerBuilder {
        let endpoint = reserveEndpoint
        let authenticator = authenticator
        return .http1(
            configuration: .init(additionalChannelHandlers: [
                ReserveChannelHandler(endpoint: endpoint, authenticator: authenticator, serverName: serverName)
            ]))
    }

    // MARK: - Helpers

    var reserveEndpoint: ReserveEndpoint { ReserveEndpoint(replica: replica, cache: cache, metrics: metrics) }

    /// Confirm, release or extend. An id the ledger does not know may be a cache hold still in the
    /// decrement queue: wait for it to arrive, then try once more.
    func lifecycle(_ command: Command, _ id: ReservationID) async -> Outcome {
        let outcome = await replica.propose(command)
        guard let cache, case .rejected(let error, _) = outcome, error.code == .notFound else { return outcome }
        await cache.settle(id)
        return await replica.propose(command)
    }

    func clusterPayload() -> ClusterPayload {
        var payload: ClusterPayload
        if let cluster {
            let status = cluster.replica.currentStatus
            payload = ClusterPayload(
                nodeId: "n\(status.nodeID)", role: status.role.rawValue, term: status.term,
                leaderId: status.leaderID.map { "n\($0)" }, commitIndex: status.commitIndex, appliedIndex: status.appliedIndex,
                peers: status.peers.map {
                    ClusterPayload.Peer(nodeId: "n\($0.nodeID)", matchIndex: $0.matchIndex, lastContactMs: $0.lastContactMs)
                })
        } else {
            let applied = replica.read { $0.appliedIndex }
            payload = ClusterPayload(
                nodeId: nodeName, role: "leader", term: 0, leaderId: nodeName, commitIndex: applied, appliedIndex: applied,
                peers: [])
        }
        payload.cache = cache.map { CachePayload($0.status()) }
        return payload
    }

    /// Reads are linearizable unless the caller asks for `?consistency=local`, which answers from
    /// this node's applied state at once, possibly stale.
    func readPoint(_ request: Request) async throws {
        switch Self.readConsistency(request) {
        case "local": return
        case nil, "linearizable": try await replica.readBarrier()
        default: throw APIError.invalid("consistency must be linearizable or local")
        }
    }

    static func readConsistency(_ request: Request) -> Substring? {
        request.uri.queryParameters["consistency"]
    }

    static func check(_ error: StockadeError?) throws {
        if let error { throw error }
    }

    static func pathParameter(_ name: String, _ context: StockadeRequestContext, limits: Limits) throws -> String {
        let raw = try context.parameters.require(name)
        let value = raw.removingPercentEncoding ?? raw
        try check(Validation.identifier(value, field: name, limits: limits))
        return value
    }

    /// Confirm, release and extend answer the reservation with 200, or the refusal.
    func reservationResponse(_ outcome: Outcome) -> Response {
        let answer = ReserveEndpoint.rendered(outcome, createdStatus: .ok)
        return JSON.response(status: answer.status, buffer: answer.body)
    }

    func skuResponse(after outcome: Outcome, sku: SKU) throws -> Response {
        if case .rejected(let error, _) = outcome { throw error }
        return try skuResponse(sku: sku, status: .ok)
    }

    func skuResponse(sku: SKU, status: HTTPResponse.Status) throws -> Response {
        guard let rows = replica.read({ $0.rows(of: sku) }) else {
            throw StockadeError(.unknownSKU, "unknown sku \(sku)")
        }
        let hot = replica.read { $0.hotSKUs.contains(sku) }
        return JSON.response(
            status: status,
            SKUPayload(sku: sku.rawValue, hot: hot, warehouses: rows.map { StockRowPayload(warehouse: $0.warehouse, row: $0.row) }))
    }

    func holdQuery(_ parameters: Parameters) throws -> HoldQuery {
        var query = HoldQuery(nowMs: replica.clock(), limit: 100)
        if let sku = parameters["sku"].map(String.init) {
            try Self.check(Validation.identifier(sku, field: "sku", limits: limits))
            query.sku = SKU(sku)
        }
        if let status = parameters["status"].map(String.init) {
            guard let parsed = HoldStatus(name: status) else {
                throw APIError.invalid("status must be one of held, confirmed, released, expired")
            }
            query.status = parsed
        }
        if let within = parameters["expiringWithinSeconds"] {
            guard let seconds = Int64(within), seconds >= 0, seconds <= limits.holdTTLSecondsMax else {
                throw APIError.invalid("expiringWithinSeconds must be between 0 and \(limits.holdTTLSecondsMax)")
            }
            query.expiringWithinMs = seconds * 1000
        }
        if let limit = parameters["limit"] {
            guard let parsed = Int(limit), (1...limits.holdsPageMax).contains(parsed) else {
                throw APIError.invalid("limit must be between 1 and \(limits.holdsPageMax)")
            }
            query.limit = parsed
        }
        if let cursor = parameters["cursor"] {
            guard let parsed = UInt64(cursor) else { throw APIError.invalid("cursor is not valid") }
            query.afterSequence = parsed
        }
        return query
    }
}
