import Crypto
import Hummingbird
import StockadeCore

/// Maps bearer tokens to roles. The config holds tokens as SHA-256 digests (`sha256:<64 hex>`,
/// printed by `stockade-node hash-token`); plain tokens (from the environment, for development)
/// are digested when loaded. A presented token is digested and compared with every configured
/// digest in constant time, so neither the tokens nor their digests sit in memory in the clear
/// longer than a request, and the comparison says nothing about how close a guess came.
public struct TokenAuthenticator: Sendable {
    struct Entry: Sendable {
        var digest: [UInt8]
        var role: Role
    }
    let entries: [Entry]

    public static let digestPrefix = "sha256:"

    /// `adminTokens` and `checkoutTokens` are plain tokens or `sha256:` digests. Entries that are
    /// neither are skipped; `problems(in:)` reports them so a node refuses such a config.
    public init(adminTokens: [String], checkoutTokens: [String]) {
        var entries: [Entry] = []
        for (tokens, role) in [(adminTokens, Role.admin), (checkoutTokens, .checkout)] {
            for token in tokens where !token.isEmpty {
                if let digest = Self.digest(ofEntry: token) { entries.append(Entry(digest: digest, role: role)) }
            }
        }
        self.entries = entries
    }

    /// The digest a config entry stands for: its hex for `sha256:…`, else the digest of the token.
    static func digest(ofEntry entry: String) -> [UInt8]? {
        guard entry.hasPrefix(digestPrefix) else { return hash(entry) }
        let hex = Array(entry.utf8.dropFirst(digestPrefix.utf8.count))
        guard hex.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = nibble(hex[index]), let low = nibble(hex[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func hash(_ token: String) -> [UInt8] { Array(SHA256.hash(data: Array(token.utf8))) }

    /// A token's config entry: `sha256:` and the hex of its SHA-256.
    public static func configEntry(for token: String) -> String {
        digestPrefix + hash(token).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    /// Config entries that are neither a plain token nor a well-formed `sha256:` digest.
    public static func problems(in entries: [String]) -> [String] {
        entries.filter { $0.hasPrefix(digestPrefix) && digest(ofEntry: $0) == nil }
            .map { "\($0.prefix(16))…: a digest is sha256: and 64 hex digits" }
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
        return role(forToken: token)
    }

    /// The role of a bare token (RESP's `AUTH`): every configured digest is compared, in constant
    /// time, and admin wins over checkout if a token is both.
    func role(forToken token: String) -> Role? {
        guard !token.isEmpty else { return nil }
        let digest = Self.hash(token)
        var found: Role?
        for entry in entries where ConstantTime.equal(entry.digest, digest) {
            if found != .admin { found = entry.role }
        }
        return found
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
