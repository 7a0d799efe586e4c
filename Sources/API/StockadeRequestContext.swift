import Hummingbird
import StockadeCore

/// Who a bearer token speaks for.
public enum Role: String, Sendable {
    /// Reserve, confirm, release, extend and read reservations.
    case checkout
    /// Everything.
    case admin

    func allows(_ required: Role) -> Bool { self == .admin || self == required }
}

/// The per-request context: Hummingbird's core storage plus the caller's role once authenticated.
public struct StockadeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var role: Role?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        role = nil
    }

    /// Throws `forbidden` unless the caller's role allows `required`.
    public func require(_ required: Role) throws {
        guard let role else { throw APIError.unauthorized }
        guard role.allows(required) else {
            throw StockadeError(.forbidden, "this route needs the \(required.rawValue) role")
        }
    }
}
