import API
import Foundation
import Hummingbird
import HummingbirdTesting
import Ledger
import Logging
import Metrics
import Node
import StockadeCore
import Testing

/// How a test reaches the API.
enum Transport: String, CaseIterable, CustomTestStringConvertible {
    /// Straight into the router, without a server (no channel handlers).
    case router
    /// A real server on loopback, as the node runs it: reserves are answered on the event loop
    /// (`ReserveChannelHandler`), the rest by the router.
    case server

    var testDescription: String { rawValue }
}

/// A replica on a temporary directory behind the real router, driven through Hummingbird's test client.
struct APITestHarness {
    static let admin = "admin-token"
    static let checkout = "checkout-token"
    static let layout = [
        Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1),
        Warehouse(id: WarehouseID("guangzhou"), regions: ["south"], priority: 2),
    ]

    static func withApp(
        limits: Limits = .default, transport: Transport = .router, _ body: @Sendable (any TestClientProtocol, Replica) async throws -> Void
    ) async throws {
        let directory = NSTemporaryDirectory() + "stockade-api-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let replica = try Replica(
            configuration: .init(dataDirectory: directory, warehouses: layout, limits: limits),
            logger: Logger(label: "test"), metrics: ReplicaMetrics(factory: NOOPMetricsHandler.instance))
        replica.startLoop()
        let api = StockadeAPI(
            replica: replica, authenticator: TokenAuthenticator(adminTokens: [admin], checkoutTokens: [checkout]),
            metrics: APIMetrics(factory: NOOPMetricsHandler.instance), renderMetrics: { "" })
        switch transport {
        case .router:
            try await Application(router: api.buildRouter()).test(.router) { client in try await body(client, replica) }
        case .server:
            let app = Application(
                router: api.buildRouter(), server: try api.server(serverName: "stockade"),
                configuration: .init(address: .hostname("127.0.0.1", port: 0)))
            try await app.test(.live) { client in try await body(client, replica) }
        }
        replica.stop()
        await replica.waitForLoop()
    }

    static func headers(_ token: String?) -> HTTPFields {
        var fields = HTTPFields()
        if let token { fields[.authorization] = "Bearer \(token)" }
        fields[.contentType] = "application/json"
        return fields
    }
}

/// A decoded response: status and JSON body.
struct Reply {
    var status: Int
    var json: [String: Any]
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

extension TestClientProtocol {
    func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = APITestHarness.admin, body: String? = nil)
        async throws -> Reply
    {
        try await execute(
            uri: uri, method: method, headers: APITestHarness.headers(token), body: body.map { ByteBuffer(string: $0) }
        ) { response in
            let object = (try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView))) as? [String: Any]
            return Reply(status: Int(response.status.code), json: object ?? [:])
        }
    }

    func rows(_ sku: String) async throws -> [[String: Int]] {
        let reply = try await call(.get, "/v1/skus/\(sku)")
        let rows = reply.json["warehouses"] as? [[String: Any]] ?? []
        return rows.map { row in row.compactMapValues { $0 as? Int } }
    }
}
