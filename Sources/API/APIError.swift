import Hummingbird
import StockadeCore

/// Shorthands for the errors the HTTP edge raises itself.
enum APIError {
    static let unauthorized = StockadeError(.unauthorized, "a valid bearer token is required")

    static func invalid(_ message: String) -> StockadeError { StockadeError(.invalidRequest, message) }
}
