import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import StockadeCore
import Testing

@testable import API

/// Tokens kept as SHA-256 digests, compared in constant time; and 405 with `Allow` for a method a
/// path does not have.
@Suite struct TokenAndMethodTests {
    @Test func digestsAndPlainTokensAuthenticateAlike() {
        let entry = TokenAuthenticator.configEntry(for: "s3cret")
        #expect(entry == "sha256:" + "1ec1c26b50d5d3c58d9583181af8076655fe00756bf7285940ba3670f99fcba0", "\(entry)")
        let authenticator = TokenAuthenticator(adminTokens: [entry], checkoutTokens: ["plain-checkout", entry.uppercased().replacingOccurrences(of: "SHA256:", with: "sha256:")])
        #expect(authenticator.role(forToken: "s3cret") == .admin, "admin wins over checkout for a token in both")
        #expect(authenticator.role(forAuthorization: "Bearer  plain-checkout ") == .checkout)
        #expect(authenticator.role(forToken: "s3cre") == nil && authenticator.role(forToken: "") == nil)
        #expect(authenticator.role(forToken: entry) == nil, "the digest itself is not a token")
        #expect(TokenAuthenticator.problems(in: [entry, "plain", "sha256:abc", "sha256:" + String(repeating: "z", count: 64)]).count == 2)
    }

    @Test(arguments: Transport.allCases) func aMethodAPathDoesNotHaveGets405WithAllow(transport: Transport) async throws {
        #expect(StockadeAPI.methods(forPath: "/v1/skus/tee") == ["GET"])
        #expect(StockadeAPI.methods(forPath: "/v1/skus/tee/hot") == ["DELETE", "POST"])
        #expect(StockadeAPI.methods(forPath: "/v1/nothing").isEmpty)
        try await APITestHarness.withApp(transport: transport) { client, _ in
            for (method, path, allow) in [
                (HTTPRequest.Method(rawValue: "TRACE")!, "/v1/warehouses", "GET"), (.delete, "/v1/reservations/r1", "GET"),
                (.put, "/v1/skus/tee/hot", "DELETE, POST"),
            ] {
                try await client.execute(uri: path, method: method, headers: APITestHarness.headers(APITestHarness.admin)) { response in
                    #expect(response.status == .methodNotAllowed, "\(method) \(path)")
                    #expect(response.headers[.allow] == allow, "\(method) \(path)")
                    let body = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: [String: String]]
                    #expect(body?["error"]?["code"] == "method_not_allowed")
                }
            }
            #expect(try await client.call(.get, "/v1/nothing").status == 404)
        }
    }

    /// A repeated key is refused (I-JSON), and a number that does not fit says so.
    @Test(arguments: Transport.allCases) func duplicateKeysAndUnfitNumbersAreRefusedPrecisely(transport: Transport) async throws {
        try await APITestHarness.withApp(transport: transport) { client, _ in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            let cases: [(String, String)] = [
                (#"{"reservationId":"a","reservationId":"b","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1}]}"#,
                 "duplicate key \"reservationId\" in body"),
                (#"{"reservationId":"a","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1,"quantity":2}]}"#,
                 "duplicate key \"quantity\" in lines.0"),
                (#"{"reservationId":"a","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1e20}]}"#,
                 "lines.0.quantity must be a whole number"),
                (#"{"reservationId":"a","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1.5}]}"#,
                 "lines.0.quantity must be a whole number"),
            ]
            for (body, message) in cases {
                let reply = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: body)
                #expect(reply.status == 400, "\(body)")
                let error = reply.json["error"] as? [String: Any]
                #expect(error?["code"] as? String == "invalid_request")
                let text = error?["message"] as? String ?? ""
                #expect(text.contains(message), "\(text)")
            }
            #expect(try await client.rows("tee").first?["held"] == 0, "nothing was held")
            // The same key in two different objects is fine.
            let fine = #"{"reservationId":"a","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1}],"allowSplit":true}"#
            #expect(try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: fine).status == 201)
        }
    }
}
