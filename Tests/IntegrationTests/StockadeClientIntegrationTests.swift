import Foundation
import StockadeClient
import StockadeCore
import StockadeTesting
import Testing

/// The client library against a real node, over RESP and over HTTP: the same calls give the
/// same typed answers and the same typed refusals.
@Suite(.serialized, .timeLimit(.minutes(5))) struct StockadeClientIntegrationTests {
    /// Calls made together on a fresh client may each open the slot's connection; every one must
    /// be answered (one connection was once closed under a call using it: "connection closed").
    @Test func callsMadeTogetherOnAFreshClientAreAllAnswered() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        for url in ["resp://127.0.0.1:\(node.respPort)", "http://127.0.0.1:\(node.port)"] {
            for _ in 0..<20 {
                let client = try StockadeClient(url: url, token: node.adminToken, connections: 1)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<4 {
                        group.addTask {
                            do { _ = try await client.cluster() } catch { Issue.record("\(url): \(error)"); throw error }
                        }
                    }
                    try await group.waitForAll()
                }
                await client.close()
            }
        }
    }

    @Test func bothTransportsGiveTheSameAnswers() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        let urls = ["resp://127.0.0.1:\(node.respPort)", "http://127.0.0.1:\(node.port)"]
        var reads: [Reservation] = []
        for url in urls {
            let admin = try StockadeClient(url: url, token: node.adminToken, connections: 2)
            let checkout = try StockadeClient(url: url, token: node.checkoutToken, connections: 4)
            let sku = "tee-\(url.prefix(4))"
            let stock = try await admin.setStock(sku: sku, warehouse: "yiwu", total: 10)
            #expect(stock.warehouses.first?.available == 10)
            _ = try await admin.adjustStock(sku: sku, warehouse: "guangzhou", delta: 5, reason: "restock")

            let request = ReservationRequest(
                reservationId: "c-\(sku)", orderId: "o-1", region: "east", lines: [.init(sku: sku, quantity: 12)], ttlSeconds: 60,
                allowSplit: true)
            let held = try await checkout.reserve(request)
            #expect(held.status == "held" && held.path == "quorum")
            #expect(held.allocations.map(\.quantity).reduce(0, +) == 12)
            #expect(try await checkout.reserve(request) == held, "a replay is answered with the first answer")

            var changed = request
            changed.lines[0].quantity = 1
            await #expect(throws: StockadeError.self) { _ = try await checkout.reserve(changed) }
            do {
                _ = try await checkout.reserve(changed)
            } catch let error as StockadeError {
                #expect(error.code == .idempotencyConflict)
            }
            do {
                _ = try await checkout.reserve(.init(reservationId: "big-\(sku)", orderId: "o", region: "east", lines: [.init(sku: sku, quantity: 9)]))
                Issue.record("\(url): an oversell was granted")
            } catch let error as StockadeError {
                #expect(error.code == .insufficientStock, "\(error)")
            }
            do {
                _ = try await admin.confirm("nobody")
                Issue.record("confirmed an unknown reservation")
            } catch let error as StockadeError {
                #expect(error.code == .notFound)
            }
            do {
                _ = try await checkout.setStock(sku: sku, warehouse: "yiwu", total: 1)
                Issue.record("a checkout token set stock")
            } catch let error as StockadeError {
                #expect(error.code == .forbidden)
            }

            let extended = try await checkout.extend(held.reservationId, ttlSeconds: 600)
            #expect(extended.expiresAt > held.expiresAt)
            let confirmed = try await checkout.confirm(held.reservationId)
            #expect(confirmed.status == "confirmed")
            let second = try await checkout.reserve(.init(reservationId: "rel-\(sku)", orderId: "o-2", region: "south", lines: [.init(sku: sku, quantity: 2)]))
            #expect(try await checkout.release(second.reservationId).status == "released")

            reads.append(try await checkout.reservation(held.reservationId))
            #expect(try await checkout.reservation(held.reservationId, consistency: .local) == reads.last)
            let rows = try await checkout.sku(sku)
            #expect(rows.warehouses.map(\.sold).reduce(0, +) == 12)
            #expect(rows.warehouses.map(\.held).reduce(0, +) == 0)
            let page = try await admin.holds(HoldsQuery(sku: sku, status: "confirmed", limit: 10))
            #expect(page.holds.map(\.reservationId) == [held.reservationId])
            let cluster = try await checkout.cluster()
            #expect(cluster.role == "leader")
            #expect(try await checkout.warehouses().map(\.id).first == "yiwu")
            await admin.close()
            await checkout.close()
        }
        // The same reservation read over both transports decodes to the same value, bar its SKU name.
        #expect(reads.count == 2 && reads[0].status == reads[1].status && reads[0].allocations.count == reads[1].allocations.count)
    }

    @Test func anUnreachableNodeIsATransportErrorAndABadTokenIsUnauthorized() async throws {
        let node = NodeProcess(resp: true)
        defer { node.destroy() }
        try await node.start()
        for url in ["resp://127.0.0.1:\(node.respPort)", "http://127.0.0.1:\(node.port)"] {
            let stranger = try StockadeClient(url: url, token: "not-a-token")
            do {
                _ = try await stranger.sku("tee")
                Issue.record("\(url): a bad token was served")
            } catch let error as TransportError {
                #expect(url.hasPrefix("resp"), "the RESP handshake refuses the token: \(error)")
            } catch let error as StockadeError {
                #expect(error.code == .unauthorized)
            }
            await stranger.close()
        }
        let dead = try StockadeClient(url: "resp://127.0.0.1:1", token: node.checkoutToken)
        await #expect(throws: TransportError.self) { _ = try await dead.cluster() }
        #expect(throws: StockadeError.self) { _ = try StockadeClient(url: "ftp://x:1", token: "t") }
    }
}
