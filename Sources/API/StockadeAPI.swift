import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
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
    /// Open connections per client address, HTTP and RESP apart (`Limits.connectionsPerClientMax`).
    let httpClients: ClientConnections
    let respClients: ClientConnections
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
        httpClients = ClientConnections(max: replica.limits.connectionsPerClientMax)
        respClients = ClientConnections(max: replica.limits.connectionsPerClientMax)
    }

    /// Every route this API serves, as (method, path template). The OpenAPI test compares it with `docs/openapi.yaml`.
    public static let routes: [(method: String, path: String)] = [
        ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
        ("GET", "/v1/warehouses"),
        ("PUT", "/v1/skus/{sku}/stock"), ("POST", "/v1/skus/{sku}/stock/adjust"), ("GET", "/v1/skus/{sku}"),
        ("POST", "/v1/skus/{sku}/hot"), ("DELETE", "/v1/skus/{sku}/hot"),
        ("GET", "/v1/skus/{sku}/local-reserve"), ("PUT", "/v1/skus/{sku}/local-reserve"), ("DELETE", "/v1/skus/{sku}/local-reserve"),
        ("POST", "/v1/reservations"), ("GET", "/v1/reservations/{id}"),
        ("POST", "/v1/reservations/{id}/confirm"), ("POST", "/v1/reservations/{id}/release"),
        ("POST", "/v1/reservations/{id}/extend"),
        ("GET", "/v1/holds"),
        ("GET", "/v1/cluster"),
        ("GET", "/v1/audit"), ("GET", "/v1/stats"),
    ]

    /// The methods `routes` has for a concrete path (`{sku}` and `{id}` match one segment), sorted.
    public static func methods(forPath path: String) -> [String] {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let methods = routes.filter { route in
            let template = route.path.split(separator: "/", omittingEmptySubsequences: false)
            guard template.count == segments.count else { return false }
            return zip(template, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.map(\.method)
        return Array(Set(methods)).sorted()
    }

    public func buildRouter() -> Router<StockadeRequestContext> {
        let router = Router(context: StockadeRequestContext.self)
        router.middlewares.add(ErrorMiddleware())
        router.middlewares.add(AuthMiddleware(authenticator: authenticator))
        if let cluster {
            router.middlewares.add(ForwardingMiddleware(cluster: cluster))
        }
        router.middlewares.add(LocalReadMiddleware(replica: replica, cluster: cluster))

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
            return JSON.response(clusterAnswer())
        }

        #if DEBUG
        // Debug builds only: moves this node's wall clock (see `DebugClock`).
        router.put("/v1/debug/clock-offset") { request, context in
            try context.require(.admin)
            guard let text = request.uri.queryParameters["ms"], let ms = Int64(String(text)) else {
                throw StockadeError(.invalidRequest, "give the offset as ?ms=<integer milliseconds>")
            }
            DebugClock.offsetMs.store(ms, ordering: .relaxed)
            return JSON.response(status: .ok, StatusPayload(status: "clock offset \(ms) ms"))
        }
        #endif

        router.get("/v1/warehouses") { _, context in
            try context.require(.checkout)
            return JSON.response(warehousesAnswer())
        }

        router.put("/v1/skus/{sku}/stock") { request, context in
            try context.require(.admin)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            let body = try await JSON.decode(SetStockBody.self, from: request, limit: limits.requestBodyBytesMax)
            return JSON.response(try await setStock(sku, warehouse: body.warehouse, total: body.total))
        }

        router.post("/v1/skus/{sku}/stock/adjust") { request, context in
            try context.require(.admin)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            let body = try await JSON.decode(AdjustStockBody.self, from: request, limit: limits.requestBodyBytesMax)
            return JSON.response(try await adjustStock(sku, warehouse: body.warehouse, delta: body.delta, reason: body.reason))
        }

        for (method, hot) in [(HTTPRequest.Method.post, true), (.delete, false)] {
            router.on("/v1/skus/{sku}/hot", method: method) { _, context in
                try context.require(.admin)
                let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
                return JSON.response(try await setHot(sku, hot))
            }
        }

        router.put("/v1/skus/{sku}/local-reserve") { request, context in
            try context.require(.admin)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            let body = try await JSON.decode(LocalReserveBody.self, from: request, limit: limits.requestBodyBytesMax)
            return JSON.response(try await setLocalReserve(sku, warehouse: body.warehouse, try body.policy()))
        }

        router.delete("/v1/skus/{sku}/local-reserve") { request, context in
            try context.require(.admin)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            guard let warehouse = request.uri.queryParameters["warehouse"] else {
                throw StockadeError(.invalidRequest, "name the warehouse: ?warehouse=<id>")
            }
            return JSON.response(try await setLocalReserve(sku, warehouse: String(warehouse), nil))
        }

        router.get("/v1/skus/{sku}/local-reserve") { request, context in
            try context.require(.admin)
            try await readPoint(request)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            return JSON.response(try localReservesAnswer(sku))
        }

        router.get("/v1/skus/{sku}") { request, context in
            try context.require(.checkout)
            try await readPoint(request)
            let sku = SKU(try Self.pathParameter("sku", context, limits: limits))
            return JSON.response(try skuAnswer(sku))
        }

        let reserve = reserveEndpoint
        router.post("/v1/reservations") { request, context in
            try context.require(.checkout)
            let start = ContinuousClock.now
            let reserveRequest: ReserveRequest
            do {
                reserveRequest = try await JSON.decodeReserve(from: request, limit: limits.requestBodyBytesMax)
                    .request(limits: limits)
            } catch let error as StockadeError {
                metrics.count(outcome: error.code.rawValue)
                throw error
            }
            let answer = reserve.answer(await reserve.reserve(reserveRequest), for: reserveRequest, start: start)
            return JSON.response(status: answer.status, buffer: answer.body)
        }

        router.get("/v1/reservations/{id}") { request, context in
            try context.require(.checkout)
            try await readPoint(request)
            let id = ReservationID(try Self.pathParameter("id", context, limits: limits))
            return JSON.response(try reservationAnswer(id))
        }

        router.post("/v1/reservations/{id}/confirm") { _, context in
            try context.require(.checkout)
            return JSON.response(await confirm(ReservationID(try Self.pathParameter("id", context, limits: limits))))
        }

        router.post("/v1/reservations/{id}/release") { _, context in
            try context.require(.checkout)
            return JSON.response(await release(ReservationID(try Self.pathParameter("id", context, limits: limits))))
        }

        router.post("/v1/reservations/{id}/extend") { request, context in
            try context.require(.checkout)
            let id = ReservationID(try Self.pathParameter("id", context, limits: limits))
            let body = try await JSON.decode(ExtendBody.self, from: request, limit: limits.requestBodyBytesMax)
            return JSON.response(try await extend(id, ttlSeconds: body.ttlSeconds))
        }

        router.get("/v1/audit") { request, context in
            try context.require(.admin)
            return JSON.response(try await auditAnswer(sku: request.uri.queryParameters["sku"].map(String.init)))
        }

        router.get("/v1/stats") { _, context in
            try context.require(.admin)
            return JSON.response(statsAnswer())
        }

        router.get("/v1/holds") { request, context in
            try context.require(.admin)
            let parameters = request.uri.queryParameters
            let query = try holdQuery { parameters[Substring($0)].map(String.init) }
            try await readPoint(request)
            return JSON.response(holdsAnswer(query))
        }
        return router
    }

    /// The HTTP/1.1 server, with reserves answered on the event loop (`ReserveChannelHandler`)
    /// and every other request by the router; over TLS when given a configuration.
    public func server(serverName: String?, tls: TLSConfiguration? = nil) throws -> HTTPServerBuilder {
        let endpoint = reserveEndpoint
        let authenticator = authenticator
        let clients = httpClients
        let http: HTTPServerBuilder = .http1(
            configuration: .init(additionalChannelHandlers: [
                ClientLimitHandler(connections: clients),
                ReserveChannelHandler(endpoint: endpoint, authenticator: authenticator, serverName: serverName),
            ]))
        guard let tls else { return http }
        return try .tls(http, tlsConfiguration: tls)
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
            let status = cluster.replica.memberStatus
            payload = ClusterPayload(
                nodeId: "n\(status.nodeID)", role: status.role, term: status.term,
                leaderId: status.leaderID.map { "n\($0)" }, commitIndex: status.commitIndex, appliedIndex: status.appliedIndex,
                peers: status.peers.map {
                    ClusterPayload.Peer(
                        nodeId: "n\($0.nodeID)", matchIndex: $0.matchIndex, lastContactMs: $0.lastContactMs,
                        clockOffsetMs: $0.clockOffsetMs)
                },
                clock: status.clock.map {
                    ClusterPayload.Clock(agreed: $0.agreed, distanceMs: $0.distanceMs, offClock: $0.offClock.map { "n\($0)" })
                },
                local: status.local.map {
                    ClusterPayload.Local(
                        epoch: $0.epoch, provisionalHolds: $0.provisionalHolds, oldestAgeMs: $0.oldestAgeMs, fallbacks: $0.fallbacks,
                        reconciledHolds: $0.reconciledHolds, reconcileErrors: $0.reconcileErrors)
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
        try await readPoint(consistency: Self.readConsistency(request).map(String.init))
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

}
