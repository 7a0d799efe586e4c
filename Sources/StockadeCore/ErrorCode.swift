/// A stable error code that users can match on, with the HTTP status it maps to.
public enum ErrorCode: String, Sendable, CaseIterable, Codable {
    case invalidRequest = "invalid_request"
    case unauthorized = "unauthorized"
    case forbidden = "forbidden"
    case notFound = "not_found"
    case unknownSKU = "unknown_sku"
    case unknownWarehouse = "unknown_warehouse"
    case insufficientStock = "insufficient_stock"
    case idempotencyConflict = "idempotency_conflict"
    case invalidState = "invalid_state"
    case stockBelowCommitted = "stock_below_committed"
    case payloadTooLarge = "payload_too_large"
    case overloaded = "overloaded"
    case unavailable = "unavailable"
    /// A majority of the cluster could not be reached in time. Definite: the command was not applied.
    case quorumUnavailable = "quorum_unavailable"
    /// The command reached the log but its commit was not seen in time: it may or may not take
    /// effect. Retry with the same reservation id (or read it back) to learn which.
    case outcomeUnknown = "outcome_unknown"
    /// A node that does not lead was asked to write; the caller should go to the leader.
    case notLeader = "not_leader"
    /// The path exists, but not with this method; `Allow` lists the methods it has.
    case methodNotAllowed = "method_not_allowed"
    case internalError = "internal_error"

    /// The HTTP status this code is answered with.
    public var httpStatus: Int {
        switch self {
        case .invalidRequest: 400
        case .unauthorized: 401
        case .forbidden: 403
        case .notFound, .unknownSKU, .unknownWarehouse: 404
        case .insufficientStock, .idempotencyConflict, .invalidState, .stockBelowCommitted: 409
        case .methodNotAllowed: 405
        case .payloadTooLarge: 413
        case .overloaded: 429
        case .unavailable, .quorumUnavailable, .notLeader: 503
        case .outcomeUnknown: 504
        case .internalError: 500
        }
    }
}

/// An operating condition (bad input, missing stock, a full queue), never a broken invariant.
public struct StockadeError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String

    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
