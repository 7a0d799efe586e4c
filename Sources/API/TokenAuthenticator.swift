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

    func role(forAuthorization header: String?) -> Role? {
        guard let header, header.hasPrefix("Bearer ") else { return nil }
        let token = header.dropFirst("Bearer ".count).trimmingCharacters(in: .whitespaces)
        return roles[token]
    }
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
