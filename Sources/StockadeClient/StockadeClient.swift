import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import RESP
import StockadeCore
import StockadeTLS

/// The Swift client of Stockade: typed calls over RESP (`resp://host:port`, pipelined on a pool
/// of connections) or HTTP (`http://host:port`, keep-alive), with the same API and answers.
/// `resps://` and `https://` are the same over TLS (`TLSOptions`).
///
/// A refusal throws `StockadeError` with the service's code (`insufficient_stock`,
/// `idempotency_conflict`, `quorum_unavailable`, `outcome_unknown`, …); a failure of the
/// connection throws `TransportError`. Nothing is retried here: a caller retrying a reserve
/// after `outcome_unknown` or a `TransportError` must reuse the same reservation id.
///
/// ```swift
/// let client = try StockadeClient(url: "resp://127.0.0.1:7401", token: checkoutToken)
/// let hold = try await client.reserve(.init(reservationId: "r-1001", orderId: "o-1001", region: "east",
///                                           lines: [.init(sku: "tshirt", quantity: 2)]))
/// _ = try await client.confirm(hold.reservationId)
/// ```
public final class StockadeClient: Sendable {
    public enum Scheme: String, Sendable {
        case resp
        case http
    }

    /// How a `resps://` or `https://` client checks the server, and what it presents.
    public struct TLSOptions: Sendable {
        /// PEM file of the authorities the server's certificate must chain to (nil: the system's).
        public var caFile: String?
        /// A certificate and key of the client's own, for servers that ask for one.
        public var certificateFile: String?
        public var keyFile: String?

        public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) {
            self.caFile = caFile
            self.certificateFile = certificateFile
            self.keyFile = keyFile
        }
    }

    public let scheme: Scheme
    public let host: String
    public let port: Int
    /// Whether connections use TLS (`resps://`, `https://`).
    public let usesTLS: Bool
    /// The server's URL, as `scheme://host:port`.
    public var url: String { "\(scheme.rawValue)\(usesTLS ? "s" : "")://\(host):\(port)" }
    let token: String
    let timeout: Duration
    private let tls: NIOSSLContext?
    private let pool: ConnectionPool

    /// `url` is `resp://host:port` or `http://host:port`, or `resps://` / `https://` for TLS
    /// (checked against `tls`, or the system's roots; `tls` is ignored for the plaintext schemes,
    /// so a tool may pass what it was configured with either way); `connections` are opened
    /// lazily and reopened after a failure; `timeout` bounds each call.
    public init(
        url: String, token: String, connections: Int = 4, timeout: Duration = .seconds(10), tls: TLSOptions? = nil
    ) throws {
        guard let parsed = URLComponents(string: url), let schemeName = parsed.scheme, let host = parsed.host, let port = parsed.port,
            let scheme = Scheme(rawValue: schemeName.hasSuffix("s") ? String(schemeName.dropLast()) : schemeName)
        else {
            throw StockadeError(.invalidRequest, "url must be resp://, resps://, http:// or https:// with host:port, not \(url)")
        }
        guard (1...1_024).contains(connections) else { throw StockadeError(.invalidRequest, "connections must be in 1...1024") }
        usesTLS = schemeName.hasSuffix("s")
        if usesTLS {
            let options = tls ?? TLSOptions()
            self.tls = try StockadeTLS.clientContext(
                caFile: options.caFile, certificateFile: options.certificateFile, keyFile: options.keyFile)
        } else {
            self.tls = nil
        }
        self.scheme = scheme
        self.host = host
        self.port = port
        self.token = token
        self.timeout = timeout
        pool = ConnectionPool(size: connections)
    }

    // MARK: - Reservations

    public func reserve(_ request: ReservationRequest) async throws -> Reservation {
        try await call(.reserve(request))
    }

    public func confirm(_ reservationId: String) async throws -> Reservation {
        try await call(.lifecycle("confirm", reservationId))
    }

    public func release(_ reservationId: String) async throws -> Reservation {
        try await call(.lifecycle("release", reservationId))
    }

    public func extend(_ reservationId: String, ttlSeconds: Int64) async throws -> Reservation {
        try await call(.extend(reservationId, ttlSeconds: ttlSeconds))
    }

    public func reservation(_ reservationId: String, consistency: ReadConsistency = .linearizable) async throws -> Reservation {
        try await call(.reservation(reservationId, consistency))
    }

    /// One page of holds (admin).
    public func holds(_ query: HoldsQuery = HoldsQuery(), consistency: ReadConsistency = .linearizable) async throws -> HoldsPage {
        try await call(.holds(query, consistency))
    }

    // MARK: - Stock

    public func sku(_ sku: String, consistency: ReadConsistency = .linearizable) async throws -> SKUStock {
        try await call(.sku(sku, consistency))
    }

    /// Sets a row's physical total (admin).
    public func setStock(sku: String, warehouse: String, total: Int64) async throws -> SKUStock {
        try await call(.setStock(sku: sku, warehouse: warehouse, total: total))
    }

    /// Adds `delta` (which may be negative) to a row's total (admin).
    public func adjustStock(sku: String, warehouse: String, delta: Int64, reason: String) async throws -> SKUStock {
        try await call(.adjustStock(sku: sku, warehouse: warehouse, delta: delta, reason: reason))
    }

    /// Promotes a SKU to the Redis cache, or demotes it (admin).
    public func setHot(_ sku: String, _ hot: Bool) async throws -> SKUStock {
        try await call(.setHot(sku, hot))
    }

    // MARK: - Cluster

    public func cluster() async throws -> ClusterStatus { try await call(.cluster) }

    public func warehouses() async throws -> [WarehouseInfo] { try await call(.warehouses) }

    /// Cross-checks on the node answering (admin): see `AuditReport`.
    public func audit(sku: String? = nil) async throws -> AuditReport { try await call(.audit(sku)) }

    /// The node's counters and ledger summary (admin).
    public func stats() async throws -> NodeStats { try await call(.stats) }

    // MARK: - Answers as sent

    /// A call whose answer a tool wants as the service's JSON, unchanged (`data(_:)`).
    public struct Request: Sendable {
        let operation: ClientOperation

        public static func reservation(_ id: String, consistency: ReadConsistency = .linearizable) -> Request {
            Request(operation: .reservation(id, consistency))
        }
        public static func holds(_ query: HoldsQuery, consistency: ReadConsistency = .linearizable) -> Request {
            Request(operation: .holds(query, consistency))
        }
        public static func sku(_ sku: String, consistency: ReadConsistency = .linearizable) -> Request {
            Request(operation: .sku(sku, consistency))
        }
        public static let cluster = Request(operation: .cluster)
        public static let warehouses = Request(operation: .warehouses)
        public static let stats = Request(operation: .stats)
        public static func audit(sku: String?) -> Request { Request(operation: .audit(sku)) }
        public static func confirm(_ id: String) -> Request { Request(operation: .lifecycle("confirm", id)) }
        public static func release(_ id: String) -> Request { Request(operation: .lifecycle("release", id)) }
        public static func extend(_ id: String, ttlSeconds: Int64) -> Request { Request(operation: .extend(id, ttlSeconds: ttlSeconds)) }
        public static func setStock(sku: String, warehouse: String, total: Int64) -> Request {
            Request(operation: .setStock(sku: sku, warehouse: warehouse, total: total))
        }
        public static func adjustStock(sku: String, warehouse: String, delta: Int64, reason: String) -> Request {
            Request(operation: .adjustStock(sku: sku, warehouse: warehouse, delta: delta, reason: reason))
        }
        public static func setHot(_ sku: String, _ hot: Bool) -> Request { Request(operation: .setHot(sku, hot)) }
    }

    /// The answer's JSON as the service sent it (a RESP reply in the HTTP API's JSON shape), for
    /// tools that print it unchanged; throws the refusal like the typed calls.
    public func data(_ request: Request) async throws -> Data {
        try await perform(request.operation)
    }

    /// Closes every connection.
    public func close() async {
        for connection in pool.drain() {
            switch connection {
            case .resp(let resp): await resp.close()
            case .http(let http): await http.close()
            }
        }
    }

    // MARK: - Transport

    func call<T: Decodable>(_ operation: ClientOperation) async throws -> T {
        let json = try await perform(operation)
        do {
            return try ClientJSON.decoder.decode(T.self, from: json)
        } catch {
            throw TransportError(description: "unreadable answer to \(operation.words[0]): \(error)", mayHaveBeenSent: true)
        }
    }

    /// The JSON of a successful answer; throws the refusal otherwise.
    func perform(_ operation: ClientOperation) async throws -> Data {
        let slot = pool.nextSlot()
        let connection = try await connection(slot)
        do {
            switch connection {
            case .resp(let resp):
                let reply = try await resp.send(operation.words, timeout: timeout)
                if case .error(let text) = reply { throw ClientJSON.refusal(fromRESP: text) }
                return ClientJSON.data(reply)
            case .http(let http):
                var headers = [("Authorization", "Bearer \(token)")]
                if operation.body != nil { headers.append(("Content-Type", "application/json")) }
                let answer = try await http.send(
                    method: operation.method, path: operation.path, headers: headers, body: operation.body, timeout: timeout)
                if answer.status >= 400 { throw ClientJSON.refusal(fromHTTP: answer.status, body: answer.body) }
                return Data(answer.body)
            }
        } catch let error as HTTPConnectionError {
            throw TransportError(description: error.description, mayHaveBeenSent: error.mayHaveBeenSent)
        } catch let error as NIOSSLError {
            // A failed handshake sent nothing: nothing can have been applied.
            var handshake = false
            if case .handshakeFailed = error { handshake = true }
            throw TransportError(description: "TLS with \(url) failed: \(error)", mayHaveBeenSent: !handshake)
        }
    }

    private func connection(_ slot: Int) async throws -> PooledConnection {
        if let existing = pool.connection(at: slot), existing.isActive { return existing }
        let opened: PooledConnection
        do {
            switch scheme {
            case .resp:
                opened = .resp(try await RESPConnection.connect(host: host, port: port, token: token, tls: tls, timeout: .seconds(5)))
            case .http:
                opened = .http(try await HTTPConnection.connect(host: host, port: port, tls: tls, timeout: .seconds(5)))
            }
        } catch let error as TransportError {
            throw error
        } catch {
            throw TransportError(description: "cannot reach \(url): \(error)", mayHaveBeenSent: false)
        }
        // Calls made together may each have opened one: the first stored is used, the others closed.
        let (chosen, extra) = pool.store(opened, at: slot)
        if let extra {
            Task {
                switch extra {
                case .resp(let resp): await resp.close()
                case .http(let http): await http.close()
                }
            }
        }
        return chosen
    }
}

enum PooledConnection: Sendable {
    case resp(RESPConnection)
    case http(HTTPConnection)

    var isActive: Bool {
        switch self {
        case .resp(let resp): resp.isActive
        case .http(let http): http.isActive
        }
    }
}

/// A fixed number of connection slots, taken round-robin; a slot is filled on first use and
/// refilled when its connection has closed.
final class ConnectionPool: Sendable {
    private struct State {
        var slots: [PooledConnection?]
        var next = 0
    }
    private let state: NIOLockedValueBox<State>

    init(size: Int) { state = NIOLockedValueBox(State(slots: Array(repeating: nil, count: size))) }

    func nextSlot() -> Int {
        state.withLockedValue { state in
            defer { state.next = (state.next + 1) % state.slots.count }
            return state.next
        }
    }

    func connection(at slot: Int) -> PooledConnection? { state.withLockedValue { $0.slots[slot] } }

    /// Stores `connection` in `slot` unless an open one is there already (opened by a call made at
    /// the same time); returns the connection to use, and the one to close if any.
    func store(_ connection: PooledConnection, at slot: Int) -> (use: PooledConnection, close: PooledConnection?) {
        state.withLockedValue { state in
            if let existing = state.slots[slot], existing.isActive { return (existing, connection) }
            state.slots[slot] = connection
            return (connection, nil)
        }
    }

    func drain() -> [PooledConnection] {
        state.withLockedValue { state in
            defer { state.slots = Array(repeating: nil, count: state.slots.count) }
            return state.slots.compactMap { $0 }
        }
    }
}

/// A string as a JSON string literal (quotes and escapes), for tools that write JSON.
public func jsonQuoted(_ text: String) -> String {
    var out: [UInt8] = []
    ClientJSON.string(text, into: &out)
    return String(decoding: out, as: UTF8.self)
}

/// JSON both ways, and refusals from either transport.
enum ClientJSON {
    static let encoder = JSONEncoder()
    static let decoder = JSONDecoder()

    /// A RESP reply as the JSON the HTTP API would have sent (maps are objects).
    static func data(_ value: RESPValue) -> Data {
        var out: [UInt8] = []
        write(value, into: &out)
        return Data(out)
    }

    static func write(_ value: RESPValue, into out: inout [UInt8]) {
        switch value {
        case .map(let pairs):
            out.append(UInt8(ascii: "{"))
            for (index, pair) in pairs.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                string(pair.key.string ?? "\(pair.key)", into: &out)
                out.append(UInt8(ascii: ":"))
                write(pair.value, into: &out)
            }
            out.append(UInt8(ascii: "}"))
        case .array(let elements?), .set(let elements), .push(let elements):
            out.append(UInt8(ascii: "["))
            for (index, element) in elements.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                write(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .integer(let number): out += Array(String(number).utf8)
        case .double(let number): out += Array((number.isFinite ? "\(number)" : "null").utf8)
        case .bigNumber(let digits): out += Array(digits.utf8)
        case .boolean(let flag): out += Array((flag ? "true" : "false").utf8)
        case .null, .bulkString(nil), .array(nil): out += Array("null".utf8)
        case .simpleString(let text), .error(let text), .verbatim(_, let text): string(text, into: &out)
        case .bulkString(let buffer?): string(String(buffer: buffer), into: &out)
        }
    }

    static func string(_ text: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20: out += Array(String(format: "\\u%04x", byte).utf8)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `-CODE detail… message`: Stockade's codes in upper case; Redis's own words for the handshake.
    static func refusal(fromRESP text: String) -> StockadeError {
        let first = text.prefix { $0 != " " }
        let rest = text.dropFirst(first.count).drop { $0 == " " }
        if let code = ErrorCode(rawValue: first.lowercased()) { return StockadeError(code, String(rest)) }
        switch first {
        case "NOAUTH", "WRONGPASS": return StockadeError(.unauthorized, text)
        default: return StockadeError(.invalidRequest, text)
        }
    }

    static func refusal(fromHTTP status: Int, body: [UInt8]) -> StockadeError {
        struct Body: Decodable {
            struct Detail: Decodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        if let parsed = try? decoder.decode(Body.self, from: Data(body)), let code = ErrorCode(rawValue: parsed.error.code) {
            return StockadeError(code, parsed.error.message)
        }
        return StockadeError(status >= 500 ? .internalError : .invalidRequest, "HTTP \(status): \(String(decoding: body, as: UTF8.self))")
    }
}
