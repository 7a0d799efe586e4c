import Hummingbird
import StockadeCore

/// Maps bearer tokens to roles. Tokens come from the config file or the environment.
public struct TokenAuthenticator: Sendable {
    let roles: [String: Role]

    public init(adminTokens: [String], checkoutTokens: [String]) {
        var roles: [String: Role] = [:]
        for token in checkoutTokens where !token.isEmpty { roles[token] = .checkout }
        for token in adminTokens where !token.isEmpty { roles[token] = .admin }
        self.roles = roles
    }

    /// The role of `Authorization: Bearer <token>`; spaces and tabs around the token are ignored.
    /// Works on the UTF-8 bytes: this runs on every request, and Foundation's trimming bridged
    /// each header through UTF-16.
    func role(forAuthorization header: String?) -> Role? {
        guard let header else { return nil }
        let bytes = header.utf8
        let scheme = "Bearer ".utf8
        guard bytes.starts(with: scheme) else { return nil }
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var rest = bytes.dropFirst(scheme.count)
        while let first = rest.first, isBlank(first) { rest = rest.dropFirst() }
        while let last = rest.last, isBlank(last) { rest = rest.dropLast() }
        guard let token = String(rest) else { return nil }
        return roles[token]
    }

    /// The role of a bare token (RESP's `AUTH`).
    func role(forToken token: String) -> Role? { roles[token] }
}

/// Authenticates every `/v1` request; health and metrics routes stay open.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = StockadeRequestContext
    let authenticator: TokenAuthenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        guard let role = authenticator.role(forAuthorization: request.headers[.authorization]) else {
            throw APIError.unauthorized
        }
        var context = context
        context.role = role
        return try await next(request, context)
    }
}
