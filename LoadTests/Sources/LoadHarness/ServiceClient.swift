import StockadeTesting
import Foundation
import StockadeClient

/// One line of an order.
public struct OrderLine: Codable, Hashable, Sendable {
    public var sku: String
    public var quantity: Int
    public init(sku: String, quantity: Int) {
        self.sku = sku
        self.quantity = quantity
    }
}

/// An allocation as the service answered it.
public struct GrantedAllocation: Codable, Hashable, Sendable {
    public var sku: String
    public var warehouse: String
    public var quantity: Int
}

/// The answer to a reserve, as the harness classifies it.
public struct ReserveAnswer: Sendable {
    /// "granted", "replayed", an error code, or "transport_error" when no answer came back.
    public var outcome: String
    public var path: String?
    public var allocations: [GrantedAllocation]
    public var status: Int
    /// The answer's body (the HTTP shape, also over RESP), for the history.
    public var body: [UInt8] = []
}

/// A reservation read back from the service.
public struct FetchedReservation: Decodable, Sendable {
    public var reservationId: String
    public var status: String
    public var allocations: [GrantedAllocation]
}

/// A stock row read back from the service.
public struct FetchedRow: Decodable, Sendable {
    public var warehouse: String
    public var total: Int
    public var held: Int
    public var sold: Int
    public var allotted: Int?
}

struct FetchedSKU: Decodable {
    var sku: String
    var warehouses: [FetchedRow]
}

struct ReserveReply: Decodable, Equatable {
    var path: String?
    var allocations: [GrantedAllocation]?
    var error: ErrorReply?
}

struct ErrorReply: Decodable, Equatable {
    var code: String
    var message: String?
}

/// One connection to a node: HTTP/1.1 keep-alive, or RESP (authenticated with one token).
public enum ServiceLink: Sendable {
    case http(HTTPConnection)
    case resp(RESPConnection)

    public func close() async {
        switch self {
        case .http(let connection): await connection.close()
        case .resp(let connection): await connection.close()
        }
    }
}

/// Typed calls to a Stockade node over one connection. Over RESP each call is the HTTP route's
/// command, and its answer is read in the HTTP API's shape (`RESPConnection.exchange`), so both
/// transports are judged by the same code.
public struct ServiceClient: Sendable {
    public let connection: ServiceLink
    let checkoutToken: String
    let adminToken: String
    let timeout: Duration
    /// The node this connection reaches (`host:port`), as histories name it.
    public var endpoint = ""

    public init(connection: ServiceLink, checkoutToken: String, adminToken: String, timeout: Duration) {
        self.connection = connection
        self.checkoutToken = checkoutToken
        self.adminToken = adminToken
        self.timeout = timeout
    }

    static let decoder = JSONDecoder()

    /// `words` is the RESP spelling of the same call (a RESP link carries its token itself).
    func send(_ method: String, _ path: String, body: [UInt8]? = nil, admin: Bool = false, words: [String]) async throws
        -> HTTPClientResponse
    {
        switch connection {
        case .http(let http):
            return try await http.send(
                method: .init(rawValue: method), path: path,
                headers: [("Authorization", "Bearer \(admin ? adminToken : checkoutToken)")], body: body, timeout: timeout)
        case .resp(let resp):
            var (status, body) = try await resp.exchange(words, timeout: timeout)
            // A RESP answer does not say whether it created the reservation: every success counts as granted.
            if status == 200 && words.first == "RESERVE" { status = 201 }
            return HTTPClientResponse(status: status, body: body)
        }
    }

    public func reserve(
        reservationId: String, orderId: String, region: String, lines: [OrderLine], ttlSeconds: Int, allowSplit: Bool
    ) async -> ReserveAnswer {
        var body = #"{"reservationId":"\#(reservationId)","orderId":"\#(orderId)","region":"\#(region)","lines":["#
        body += lines.map { #"{"sku":"\#($0.sku)","quantity":\#($0.quantity)}"# }.joined(separator: ",")
        body += #"],"ttlSeconds":\#(ttlSeconds),"allowSplit":\#(allowSplit)}"#
        do {
            var words = ["RESERVE", reservationId, orderId, region, String(ttlSeconds), allowSplit ? "1" : "0"]
            for line in lines { words += [line.sku, String(line.quantity)] }
            let response = try await send("POST", "/v1/reservations", body: Array(body.utf8), words: words)
            let reply =
                response.body.withUnsafeBytes { ReplyScanner.reserveReply($0) }
                ?? (try? Self.decoder.decode(ReserveReply.self, from: Data(response.body)))
            switch response.status {
            case 201, 200:
                return ReserveAnswer(
                    outcome: response.status == 201 ? "granted" : "replayed", path: reply?.path,
                    allocations: reply?.allocations ?? [], status: response.status, body: response.body)
            default:
                return ReserveAnswer(
                    outcome: reply?.error?.code ?? "http_\(response.status)", path: nil, allocations: [],
                    status: response.status, body: response.body)
            }
        } catch {
            return ReserveAnswer(outcome: "transport_error", path: nil, allocations: [], status: 0)
        }
    }

    /// Confirms or releases; returns the HTTP status (0 when no answer came back) and the body.
    public func finish(_ reservationId: String, action: String) async -> (status: Int, body: [UInt8]) {
        guard let response = try? await send("POST", "/v1/reservations/\(reservationId)/\(action)", words: [action.uppercased(), reservationId])
        else { return (0, []) }
        return (response.status, response.body)
    }

    /// The reservation as `HoldView` with the tokens of its recorded conflicts (nil hold: 404).
    public func reservationView(_ reservationId: String) async throws -> (hold: HoldView?, conflicts: Set<UInt64>) {
        let response = try await send("GET", "/v1/reservations/\(reservationId)", words: ["RESERVATION", reservationId])
        if response.status == 404 { return (nil, []) }
        guard response.status == 200, let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any],
            let hold = HoldView(json: json)
        else { throw LoadError("GET reservation \(reservationId): \(response.status)") }
        return (hold, HoldView.conflictTokens(json: json))
    }

    /// The reservation, or nil on 404. Throws when the service cannot be asked.
    public func reservation(_ reservationId: String) async throws -> FetchedReservation? {
        let response = try await send("GET", "/v1/reservations/\(reservationId)", words: ["RESERVATION", reservationId])
        if response.status == 404 { return nil }
        guard response.status == 200 else { throw LoadError("GET reservation \(reservationId): \(response.status)") }
        return try Self.decoder.decode(FetchedReservation.self, from: Data(response.body))
    }

    public func rows(_ sku: String) async throws -> [FetchedRow] {
        let response = try await send("GET", "/v1/skus/\(sku)", admin: true, words: ["SKU", sku])
        guard response.status == 200 else { throw LoadError("GET sku \(sku): \(response.status) \(response.bodyString)") }
        return try Self.decoder.decode(FetchedSKU.self, from: Data(response.body)).warehouses
    }

    public func setStock(_ sku: String, warehouse: String, total: Int) async throws {
        let body = #"{"warehouse":"\#(warehouse)","total":\#(total)}"#
        let response = try await send(
            "PUT", "/v1/skus/\(sku)/stock", body: Array(body.utf8), admin: true, words: ["STOCK.SET", sku, warehouse, String(total)])
        guard response.status == 200 else { throw LoadError("set stock \(sku)@\(warehouse): \(response.status) \(response.bodyString)") }
    }

    /// Promotes a SKU to hot (admin).
    public func promote(_ sku: String) async throws {
        let response = try await send("POST", "/v1/skus/\(sku)/hot", admin: true, words: ["SKU.HOT", sku])
        guard response.status == 200 else { throw LoadError("promote \(sku): \(response.status) \(response.bodyString)") }
    }

    /// Decrement records not yet in the ledger, from `/v1/cluster` (nil without a cache).
    public func cacheBacklog() async throws -> Int? {
        let response = try await send("GET", "/v1/cluster", admin: true, words: ["CLUSTERINFO"])
        guard response.status == 200, let body = try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            let cache = body["cache"] as? [String: Any]
        else { return nil }
        return cache["queuePending"] as? Int
    }

    public func warehouses() async throws -> [(id: String, regions: [String])] {
        let response = try await send("GET", "/v1/warehouses", admin: true, words: ["WAREHOUSES"])
        guard response.status == 200,
            let list = try JSONSerialization.jsonObject(with: Data(response.body)) as? [[String: Any]]
        else { throw LoadError("GET /v1/warehouses: \(response.status) \(response.bodyString)") }
        return list.map { (id: $0["id"] as? String ?? "", regions: $0["regions"] as? [String] ?? []) }
    }
}

/// A harness failure that stops the run (not a verdict).
public struct LoadError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
