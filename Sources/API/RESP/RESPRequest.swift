import Ledger
import NIOCore
import StockadeCore

/// A Stockade command read from a RESP connection, parsed and checked like its HTTP route.
enum RESPRequest: Sendable, Equatable {
    case reserve(ReserveRequest)
    case confirm(ReservationID)
    case release(ReservationID)
    case extend(ReservationID, ttlSeconds: Int64)
    case reservation(ReservationID, consistency: String?)
    case sku(SKU, consistency: String?)
    case warehouses
    case clusterInfo
    case setStock(SKU, warehouse: String, total: Int64)
    case adjustStock(SKU, warehouse: String, delta: Int64, reason: String)
    case setHot(SKU, Bool)
    /// `GET /v1/holds` with these query parameters (same names, same checks).
    case holds([String: String], consistency: String?)
    case info(section: String?)
    case audit(sku: String?)
    case stats

    /// The HTTP path a follower relays a linearizable read to, or nil for commands that are not such reads.
    var leaderReadPath: String? {
        switch self {
        case .reservation(let id, let consistency) where consistency != "local":
            "/v1/reservations/\(PercentEncoding.encode(id.rawValue))"
        case .sku(let sku, let consistency) where consistency != "local":
            "/v1/skus/\(PercentEncoding.encode(sku.rawValue))"
        case .holds(let parameters, let consistency) where consistency != "local":
            "/v1/holds?" + parameters.sorted { $0.key < $1.key }
                .map { "\($0.key)=\(PercentEncoding.encode($0.value))" }.joined(separator: "&")
        default: nil
        }
    }

    /// Parses the arguments after the command name. Arity was checked already.
    static func parse(_ name: String, _ arguments: [String], limits: Limits) throws(StockadeError) -> RESPRequest {
        switch name {
        case "RESERVE":
            guard (arguments.count - 5) % 2 == 0 else { throw wrongArity(name) }
            let allowSplit: Bool
            switch arguments[4] {
            case "0": allowSplit = false
            case "1": allowSplit = true
            default: throw StockadeError(.invalidRequest, "allowSplit must be 0 or 1")
            }
            let ttlSeconds = try integer(arguments[3], "ttlSeconds")
            var lines: [ReservationLine] = []
            lines.reserveCapacity((arguments.count - 5) / 2)
            for index in stride(from: 5, to: arguments.count, by: 2) {
                lines.append(ReservationLine(sku: SKU(arguments[index]), quantity: try integer(arguments[index + 1], "quantity")))
            }
            let (ttlMs, overflow) = ttlSeconds.multipliedReportingOverflow(by: 1000)
            let request = ReserveRequest(
                reservationId: ReservationID(arguments[0]), orderId: arguments[1], region: arguments[2],
                lines: try Validation.mergingLines(lines, limits: limits),
                ttlMs: overflow ? Int64.max : ttlMs, allowSplit: allowSplit)
            return .reserve(request)
        case "CONFIRM": return .confirm(ReservationID(try identifier(arguments[0], "id", limits)))
        case "RELEASE": return .release(ReservationID(try identifier(arguments[0], "id", limits)))
        case "EXTEND":
            return .extend(ReservationID(try identifier(arguments[0], "id", limits)), ttlSeconds: try integer(arguments[1], "ttlSeconds"))
        case "RESERVATION":
            let consistency = try options(Array(arguments.dropFirst()), allowed: ["CONSISTENCY"], name)["consistency"]
            return .reservation(ReservationID(try identifier(arguments[0], "id", limits)), consistency: consistency)
        case "SKU":
            let consistency = try options(Array(arguments.dropFirst()), allowed: ["CONSISTENCY"], name)["consistency"]
            return .sku(SKU(try identifier(arguments[0], "sku", limits)), consistency: consistency)
        case "WAREHOUSES": return .warehouses
        case "CLUSTERINFO": return .clusterInfo
        case "STOCK.SET":
            return .setStock(
                SKU(try identifier(arguments[0], "sku", limits)), warehouse: try identifier(arguments[1], "warehouse", limits),
                total: try integer(arguments[2], "total"))
        case "STOCK.ADJUST":
            return .adjustStock(
                SKU(try identifier(arguments[0], "sku", limits)), warehouse: try identifier(arguments[1], "warehouse", limits),
                delta: try integer(arguments[2], "delta"), reason: try identifier(arguments[3], "reason", limits))
        case "SKU.HOT": return .setHot(SKU(try identifier(arguments[0], "sku", limits)), true)
        case "SKU.COOL": return .setHot(SKU(try identifier(arguments[0], "sku", limits)), false)
        case "HOLDS":
            var parameters = try options(
                Array(arguments.dropFirst()), allowed: ["ORDER", "STATUS", "LIMIT", "CURSOR", "EXPIRING", "CONSISTENCY"], name)
            let consistency = parameters.removeValue(forKey: "consistency")
            if let order = parameters.removeValue(forKey: "order") { parameters["orderId"] = order }
            if let within = parameters.removeValue(forKey: "expiring") { parameters["expiringWithinSeconds"] = within }
            if arguments[0] != "*" { parameters["sku"] = try identifier(arguments[0], "sku", limits) }
            return .holds(parameters, consistency: consistency)
        case "INFO":
            return .info(section: arguments.first?.lowercased())
        case "AUDIT":
            guard arguments.count <= 1 else { throw wrongArity(name) }
            if let sku = arguments.first { return .audit(sku: try identifier(sku, "sku", limits)) }
            return .audit(sku: nil)
        case "STATS":
            return .stats
        default:
            preconditionFailure("no parser for \(name)")
        }
    }

    static func wrongArity(_ name: String) -> StockadeError {
        StockadeError(.invalidRequest, "wrong number of arguments for '\(name.lowercased())' command")
    }

    static func identifier(_ value: String, _ field: String, _ limits: Limits) throws(StockadeError) -> String {
        if let error = Validation.identifier(value, field: field, limits: limits) { throw error }
        return value
    }

    static func integer(_ value: String, _ field: String) throws(StockadeError) -> Int64 {
        guard let number = Int64(value) else { throw StockadeError(.invalidRequest, "\(field) must be an integer") }
        return number
    }

    /// `NAME value` pairs after the fixed arguments, keyed by the lower-cased name.
    static func options(_ arguments: [String], allowed: Set<String>, _ command: String) throws(StockadeError) -> [String: String] {
        guard arguments.count % 2 == 0 else {
            throw StockadeError(.invalidRequest, "\(command) options come in pairs: NAME value")
        }
        var result: [String: String] = [:]
        for index in stride(from: 0, to: arguments.count, by: 2) {
            let option = arguments[index].uppercased()
            guard allowed.contains(option) else {
                throw StockadeError(
                    .invalidRequest, "unknown \(command) option \(arguments[index]); known: \(allowed.sorted().joined(separator: ", "))")
            }
            result[option.lowercased()] = arguments[index + 1]
        }
        return result
    }
}
