import Testing

@testable import API

/// The bearer header is read byte by byte; these are the shapes it must accept and refuse.
@Suite struct TokenAuthenticatorTests {
    let authenticator = TokenAuthenticator(adminTokens: ["adm"], checkoutTokens: ["chk", "tok with space"])

    @Test func bearerTokensMapToTheirRoles() {
        #expect(authenticator.role(forAuthorization: "Bearer adm") == .admin)
        #expect(authenticator.role(forAuthorization: "Bearer chk") == .checkout)
        #expect(authenticator.role(forAuthorization: "Bearer  chk \t") == .checkout)
        #expect(authenticator.role(forAuthorization: "Bearer tok with space") == .checkout)
    }

    @Test func anythingElseHasNoRole() {
        for header in [nil, "", "Bearer", "Bearer ", "Bearer  \t ", "bearer chk", "Basic chk", "Bearer chk2", "Bearer ch",
            "Bearerchk", "Bearer \u{00A0}chk"] as [String?]
        {
            #expect(authenticator.role(forAuthorization: header) == nil, "\(String(describing: header))")
        }
    }
}
