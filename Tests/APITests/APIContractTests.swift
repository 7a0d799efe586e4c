import Foundation
import Hummingbird
import HummingbirdTesting
import HTTPTypes
import Ledger
import StockadeCore
import Testing

@testable import API

@Suite struct APIContractTests {
    static let reserveBody = #"{"reservationId":"r1","orderId":"o1","region":"east","lines":[{"sku":"tee","quantity":2}]}"#

    @Test(arguments: Transport.allCases) func setStockReserveConfirmRoundTrip(transport: Transport) async throws {
        try await APITestHarness.withApp(transport: transport) { client, _ in
            #expect(try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#).status == 200)
            let granted = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: Self.reserveBody)
            #expect(granted.status == 201)
            #expect(granted.json["status"] as? String == "held")
            #expect(granted.json["path"] as? String == "quorum")
            #expect((granted.json["allocations"] as? [[String: Any]])?.first?["warehouse"] as? String == "yiwu")
            let replay = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: Self.reserveBody)
            #expect(replay.status == 200)
            #expect(NSDictionary(dictionary: replay.json).isEqual(to: granted.json))
            let confirmed = try await client.call(.post, "/v1/reservations/r1/confirm", token: APITestHarness.checkout)
            #expect(confirmed.json["status"] as? String == "confirmed")
            #expect(try await client.rows("tee") == [
                ["total": 5, "held": 0, "sold": 2, "allotted": 0, "available": 3]
            ])
            let holds = try await client.call(.get, "/v1/holds?status=confirmed&limit=10")
            #expect((holds.json["holds"] as? [Any])?.count == 1)
            let warehouses = try await client.execute(uri: "/v1/warehouses", method: .get, headers: APITestHarness.headers(APITestHarness.checkout)) {
                try JSONSerialization.jsonObject(with: Data($0.body.readableBytesView)) as? [[String: Any]]
            }
            #expect(warehouses?.map { $0["id"] as? String } == ["yiwu", "guangzhou"])
        }
    }

    @Test(arguments: Transport.allCases) func extendAndReleaseAreIdempotent(transport: Transport) async throws {
        try await APITestHarness.withApp(transport: transport) { client, _ in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            _ = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: Self.reserveBody)
            let extended = try await client.call(.post, "/v1/reservations/r1/extend", token: APITestHarness.checkout, body: #"{"ttlSeconds":3600}"#)
            #expect(extended.status == 200)
            let again = try await client.call(.post, "/v1/reservations/r1/extend", token: APITestHarness.checkout, body: #"{"ttlSeconds":3600}"#)
            #expect(again.status == 200)
            #expect((again.json["expiresAt"] as? Int ?? 0) >= (extended.json["expiresAt"] as? Int ?? .max))
            for _ in 0..<2 {
                let released = try await client.call(.post, "/v1/reservations/r1/release", token: APITestHarness.checkout)
                #expect(released.json["status"] as? String == "released")
            }
            #expect(try await client.rows("tee").first?["available"] == 5)
        }
    }

    /// Every bad input gets its code and status, and the stock stays exactly as it was.
    @Test(arguments: Transport.allCases) func everyBadInputGetsItsCodeAndLeavesStockUnchanged(transport: Transport) async throws {
        var limits = Limits()
        limits.requestBodyBytesMax = 2048
        try await APITestHarness.withApp(limits: limits, transport: transport) { client, _ in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            _ = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: Self.reserveBody)
            _ = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout,
                body: #"{"reservationId":"done","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1}]}"#)
            _ = try await client.call(.post, "/v1/reservations/done/release", token: APITestHarness.checkout)
            let before = try await client.rows("tee")
            func reserve(_ lines: String, id: String = "bad", extra: String = "") -> String {
                #"{"reservationId":"\#(id)","orderId":"o","region":"east","lines":\#(lines)\#(extra)}"#
            }
            let padding = ",\"pad\":\"" + String(repeating: "x", count: 4096) + "\""
            let manyLines = "[" + (0..<65).map { #"{"sku":"s\#($0)","quantity":1}"# }.joined(separator: ",") + "]"
            let cases: [(HTTPRequest.Method, String, String?, String?, Int, String)] = [
                (.post, "/v1/reservations", APITestHarness.checkout, "{not json", 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, #"{"orderId":"o","region":"east","lines":[]}"#, 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":0}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":-3}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":100001}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1.5}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve("[]"), 400, "invalid_request"),
                // Lines naming the same SKU are added together, but each is checked as sent.
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1},{"sku":"tee","quantity":0}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":2},{"sku":"tee","quantity":2}]"#), 409, "insufficient_stock"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee\u0085","quantity":1}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"\#(String(repeating: "货", count: 129))","quantity":1}]"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1}]"#, extra: #","ttlSeconds":0"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1}]"#, extra: #","ttlSeconds":9223372036854775807"#), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1}]"#, id: ""), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(manyLines), 400, "invalid_request"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1}]"#, extra: padding), 413, "payload_too_large"),
                (.post, "/v1/reservations", nil, Self.reserveBody, 401, "unauthorized"),
                (.post, "/v1/reservations", "wrong-token", Self.reserveBody, 401, "unauthorized"),
                (.put, "/v1/skus/tee/stock", APITestHarness.checkout, #"{"warehouse":"yiwu","total":1}"#, 403, "forbidden"),
                (.get, "/v1/holds", APITestHarness.checkout, nil, 403, "forbidden"),
                (.get, "/v1/holds?limit=0", APITestHarness.admin, nil, 400, "invalid_request"),
                (.get, "/v1/holds?status=maybe", APITestHarness.admin, nil, 400, "invalid_request"),
                (.get, "/v1/holds?cursor=%2B5", APITestHarness.admin, nil, 400, "invalid_request"),
                (.get, "/v1/holds?cursor=12345678901234567890", APITestHarness.admin, nil, 400, "invalid_request"),
                (.get, "/v1/reservations/ghost", APITestHarness.checkout, nil, 404, "not_found"),
                (.post, "/v1/reservations/ghost/confirm", APITestHarness.checkout, nil, 404, "not_found"),
                (.get, "/v1/nothing-here", APITestHarness.checkout, nil, 404, "not_found"),
                (.get, "/v1/skus/ghost", APITestHarness.checkout, nil, 404, "unknown_sku"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1},{"sku":"ghost","quantity":1}]"#), 404, "unknown_sku"),
                (.post, "/v1/skus/ghost/stock/adjust", APITestHarness.admin, #"{"warehouse":"yiwu","delta":1,"reason":"x"}"#, 404, "unknown_sku"),
                (.put, "/v1/skus/tee/stock", APITestHarness.admin, #"{"warehouse":"mars","total":1}"#, 404, "unknown_warehouse"),
                (.put, "/v1/skus/tee/stock", APITestHarness.admin, #"{"warehouse":"yiwu","total":-1}"#, 400, "invalid_request"),
                (.put, "/v1/skus/tee/stock", APITestHarness.admin, #"{"warehouse":"yiwu","total":1}"#, 409, "stock_below_committed"),
                (.post, "/v1/skus/tee/stock/adjust", APITestHarness.admin, #"{"warehouse":"yiwu","delta":-4,"reason":"damaged"}"#, 409, "stock_below_committed"),
                (.post, "/v1/skus/tee/stock/adjust", APITestHarness.admin, #"{"warehouse":"yiwu","delta":0,"reason":"noop"}"#, 400, "invalid_request"),
                (.post, "/v1/skus/tee/stock/adjust", APITestHarness.admin, #"{"warehouse":"yiwu","delta":1000000000001,"reason":"x"}"#, 400, "invalid_request"),
                // A well-formed delta that takes this row past the most a row may hold: a conflict with its state.
                (.post, "/v1/skus/tee/stock/adjust", APITestHarness.admin, #"{"warehouse":"yiwu","delta":1000000000000,"reason":"x"}"#, 409, "invalid_state"),
                (.post, "/v1/skus/tee/stock/adjust", APITestHarness.admin, #"{"warehouse":"yiwu","delta":-1000000000000,"reason":"x"}"#, 409, "stock_below_committed"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":4}]"#), 409, "insufficient_stock"),
                (.post, "/v1/reservations", APITestHarness.checkout, reserve(#"[{"sku":"tee","quantity":1}]"#, id: "r1"), 409, "idempotency_conflict"),
                (.post, "/v1/reservations/done/confirm", APITestHarness.checkout, nil, 409, "invalid_state"),
                (.post, "/v1/reservations/done/extend", APITestHarness.checkout, #"{"ttlSeconds":60}"#, 409, "invalid_state"),
                (.post, "/v1/reservations/r1/extend", APITestHarness.checkout, #"{"ttlSeconds":"long"}"#, 400, "invalid_request"),
            ]
            for (method, uri, token, body, status, code) in cases {
                let reply = try await client.call(method, uri, token: token, body: body)
                #expect(reply.status == status, "\(method) \(uri) \(body ?? "")")
                #expect(reply.errorCode == code, "\(method) \(uri) \(body ?? "")")
                #expect((reply.json["error"] as? [String: Any])?["message"] as? String != nil)
            }
            let insufficient = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: reserve(#"[{"sku":"tee","quantity":4}]"#))
            #expect((insufficient.json["error"] as? [String: Any])?["available"] as? Int == 3)
            #expect(try await client.rows("tee") == before)
        }
    }

    /// Lines that name the same SKU become one line with their sum, so a reservation never holds a
    /// SKU twice; identifiers count characters, not bytes, as docs/openapi.yaml's maxLength does.
    @Test(arguments: Transport.allCases) func linesOfOneSKUAreAddedTogether(transport: Transport) async throws {
        try await APITestHarness.withApp(transport: transport) { client, _ in
            let sku = String(repeating: "货", count: 128)  // 384 bytes, 128 characters
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":10}"#)
            let path = "/v1/skus/\(sku.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed)!)/stock"
            #expect(try await client.call(.put, path, body: #"{"warehouse":"yiwu","total":10}"#).status == 200)
            let body = #"{"reservationId":"m1","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":2},{"sku":"\#(sku)","quantity":1},{"sku":"tee","quantity":3}]}"#
            let granted = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: body)
            #expect(granted.status == 201, "\(granted.json)")
            let lines = (granted.json["lines"] as? [[String: Any]])?.map { "\($0["sku"] ?? ""):\($0["quantity"] ?? "")" }
            #expect(lines == ["tee:5", "\(sku):1"])
            #expect(try await client.rows("tee").first?["held"] == 5)
            // The same lines again are a replay of the same reservation.
            #expect(try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: body).status == 200)
        }
    }

    @Test(arguments: Transport.allCases) func unavailableOnceShutdownBegins(transport: Transport) async throws {
        try await APITestHarness.withApp(transport: transport) { client, replica in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            replica.stop()
            let reply = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: Self.reserveBody)
            #expect(reply.status == 503)
            #expect(reply.errorCode == "unavailable")
            #expect(try await client.call(.get, "/readyz", token: nil).status == 503)
            #expect(try await client.rows("tee").first?["held"] == 0)
        }
    }

    @Test func aLocalReadSaysHowStaleItMayBe() async throws {
        try await APITestHarness.withApp { client, _ in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            let headers = try await client.execute(
                uri: "/v1/skus/tee?consistency=local", method: .get, headers: APITestHarness.headers(APITestHarness.checkout)
            ) { $0.headers }
            // The single node answers from state that is always current.
            #expect(headers[HTTPField.Name("Stockade-Stale")!] == "false")
            #expect(headers[HTTPField.Name("Stockade-Applied-Index")!].flatMap { Int($0) }.map { $0 >= 2 } == true)
            let linearizable = try await client.execute(
                uri: "/v1/skus/tee", method: .get, headers: APITestHarness.headers(APITestHarness.checkout)
            ) { $0.headers }
            #expect(linearizable[HTTPField.Name("Stockade-Stale")!] == nil)
        }
    }

    @Test func aLocalReserveNeedsAnOwnedWarehouseAndOnePolicy() async throws {
        try await APITestHarness.withApp { client, _ in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            let both = try await client.call(.put, "/v1/skus/tee/local-reserve", body: #"{"warehouse":"yiwu","units":2,"percent":5}"#)
            #expect(both.status == 400 && both.errorCode == "invalid_request")
            let unowned = try await client.call(.put, "/v1/skus/tee/local-reserve", body: #"{"warehouse":"yiwu","units":2}"#)
            #expect(unowned.status == 409 && unowned.errorCode == "invalid_state", "\(unowned.json)")
            let checkout = try await client.call(
                .put, "/v1/skus/tee/local-reserve", token: APITestHarness.checkout, body: #"{"warehouse":"yiwu","units":2}"#)
            #expect(checkout.status == 403)
            let read = try await client.call(.get, "/v1/skus/tee/local-reserve")
            #expect(read.status == 200 && (read.json["reserves"] as? [Any])?.isEmpty == true)
        }
    }

    /// The operator's calls: an audit of a sound node is clean; stats count reserve answers by
    /// outcome and list the busiest SKUs and what expires next; holds filter by order.
    @Test(arguments: Transport.allCases) func auditStatsAndHoldsByOrder(transport: Transport) async throws {
        try await APITestHarness.withApp(transport: transport) { client, _ in
            _ = try await client.call(.put, "/v1/skus/tee/stock", body: #"{"warehouse":"yiwu","total":5}"#)
            _ = try await client.call(.post, "/v1/reservations", token: APITestHarness.checkout, body: Self.reserveBody)
            let short = try await client.call(
                .post, "/v1/reservations", token: APITestHarness.checkout,
                body: #"{"reservationId":"r2","orderId":"o2","region":"east","lines":[{"sku":"tee","quantity":9}]}"#)
            #expect(short.status == 409)
            let audit = try await client.call(.get, "/v1/audit")
            #expect(audit.status == 200)
            #expect(audit.json["clean"] as? Bool == true)
            #expect((audit.json["checked"] as? [String: Any])?["rows"] as? Int == 1)
            #expect(try await client.call(.get, "/v1/audit?sku=nope").status == 404)
            #expect(try await client.call(.get, "/v1/audit", token: APITestHarness.checkout).status == 403)
            let stats = try await client.call(.get, "/v1/stats")
            let counts = stats.json["reservations"] as? [String: Int] ?? [:]
            #expect(counts["granted"] == 1 && counts["insufficient_stock"] == 1, "\(counts)")
            #expect((stats.json["skus"] as? [[String: Any]])?.first?["held"] as? Int == 2)
            #expect((stats.json["nextExpiries"] as? [[String: Any]])?.first?["reservationId"] as? String == "r1")
            let byOrder = try await client.call(.get, "/v1/holds?orderId=o1")
            #expect((byOrder.json["holds"] as? [[String: Any]])?.map { $0["reservationId"] as? String } == ["r1"])
            let none = try await client.call(.get, "/v1/holds?orderId=o9")
            #expect((none.json["holds"] as? [Any])?.isEmpty == true)
            let sku = try await client.call(.get, "/v1/skus/tee")
            #expect(((sku.json["warehouses"] as? [[String: Any]])?.first?["allottedTo"] as? [String: Any])?.isEmpty == true)
        }
    }

    @Test func healthAndMetricsNeedNoToken() async throws {
        try await APITestHarness.withApp { client, _ in
            for path in ["/healthz", "/readyz", "/metrics"] {
                let reply = try await client.call(.get, path, token: nil)
                #expect(reply.status == 200)
            }
        }
    }

    /// The router's routes and `docs/openapi.yaml` describe the same API.
    @Test func openAPIDocumentMatchesTheRouter() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var documented = Set<String>()
        var inPaths = false
        var currentPath: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" { inPaths = true; continue }
            if inPaths, let first = line.first, first != " " { break }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), !line.hasPrefix("   ") {
                currentPath = String(line.dropFirst(2).dropLast())
            } else if line.hasPrefix("    "), !line.hasPrefix("     "), let currentPath {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "delete", "patch"].contains(String(method)) {
                    documented.insert("\(method.uppercased()) \(currentPath)")
                }
            }
        }
        let served = Set(StockadeAPI.routes.map { "\($0.method) \($0.path)" })
        #expect(documented == served)
        // And every listed route is really served: none of them answers "no such route".
        try await APITestHarness.withApp { client, _ in
            for route in StockadeAPI.routes {
                let uri = route.path.replacingOccurrences(of: "{sku}", with: "tee").replacingOccurrences(of: "{id}", with: "r1")
                let reply = try await client.call(HTTPRequest.Method(route.method)!, uri, body: "{}")
                #expect(reply.json["error"].map { ($0 as? [String: Any])?["message"] as? String } != "no such route", "\(route)")
            }
        }
    }
}
