import Foundation
import StockadeClient
import StockadeTesting
import Testing

/// Tests against a real `stockade-node` process on loopback.
@Suite(.serialized, .timeLimit(.minutes(5))) struct SingleNodeIntegrationTests {
    /// 10,000 concurrent attempts from 64 keep-alive clients on 1,000 units across two warehouses.
    @Test func concurrentAttemptsGrantExactlyTheStock() async throws {
        let node = NodeProcess()
        defer { node.destroy() }
        try await node.start()
        let admin = NodeClient(connection: try await node.connect(), token: node.adminToken)
        try await admin.setStock("flash", "yiwu", 600, admin: node.adminToken)
        try await admin.setStock("flash", "guangzhou", 400, admin: node.adminToken)

        let clients = 64
        let attempts = 10_000
        let results = try await withThrowingTaskGroup(of: [Int: Int].self) { group in
            for client in 0..<clients {
                group.addTask {
                    let connection = try await node.connect()
                    defer { Task { await connection.close() } }
                    let api = NodeClient(connection: connection, token: node.checkoutToken)
                    var counts: [Int: Int] = [:]
                    for attempt in stride(from: client, to: attempts, by: clients) {
                        let (status, _) = try await api.reserve(id: "flash-\(attempt)", sku: "flash", region: attempt % 2 == 0 ? "east" : "south")
                        counts[status, default: 0] += 1
                    }
                    return counts
                }
            }
            return try await group.reduce(into: [Int: Int]()) { total, counts in total.merge(counts, uniquingKeysWith: +) }
        }
        #expect(results[201] == 1_000)
        #expect(results[409] == attempts - 1_000)
        #expect(results.values.reduce(0, +) == attempts)
        let rows = try await admin.rows("flash")
        #expect(rows.values.map { $0["held"]! }.reduce(0, +) == 1_000)
        #expect(rows.values.allSatisfy { $0["available"] == 0 && $0["held"]! <= $0["total"]! })
        await admin.connection.close()
    }

    /// Kill -9 during a load of reservations, restart on the same data directory: every reservation
    /// answered 201 is there with the same allocation, and nothing is held twice.
    @Test func killDashNineLosesNoAcknowledgedReservation() async throws {
        // Frequent snapshots, so the kill can land while one is being written.
        let node = NodeProcess(extraArguments: ["--snapshot-interval", "1024"])
        defer { node.destroy() }
        try await node.start()
        var admin = NodeClient(connection: try await node.connect(), token: node.adminToken)
        for warehouse in ["yiwu", "guangzhou", "beijing"] {
            try await admin.setStock("tee", warehouse, 1_000_000, admin: node.adminToken)
        }

        let acknowledged = SendableBox<[String: [AllocationKey]]>([:])
        let load = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<32 {
                    group.addTask {
                        var number = 0
                        // Until the node dies: reconnect after a transport error; stop once connecting fails.
                        while let connection = try? await node.connect() {
                            let api = NodeClient(connection: connection, token: node.checkoutToken)
                            while true {
                                number += 1
                                let id = "k\(client)-\(number)"
                                guard let (status, json) = try? await api.reserve(id: id, sku: "tee", quantity: 1 + number % 3, region: ["east", "south", "north"][number % 3]) else { break }
                                if status == 201 { acknowledged.mutate { $0[id] = allocationKeys(json) } }
                            }
                            await connection.close()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        // Let the load build up, then kill the node mid-flight.
        let deadline = ContinuousClock.now + .seconds(120)
        while acknowledged.value.count < 2_000 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        node.kill()
        _ = await load.result
        let granted = acknowledged.value
        #expect(granted.count >= 2_000)

        try await node.start()
        admin = NodeClient(connection: try await node.connect(), token: node.adminToken)
        for (id, allocations) in granted {
            let (status, json) = try await admin.call("GET", "/v1/reservations/\(id)")
            #expect(status == 200, "reservation \(id) lost")
            #expect(json["status"] as? String == "held")
            #expect(allocationKeys(json) == allocations, "reservation \(id) changed allocation")
        }
        // Nothing held twice: the rows' held counts equal the sum over every held reservation.
        var heldByWarehouse: [String: Int] = [:]
        var cursor: String?
        var holdCount = 0
        repeat {
            let (status, json) = try await admin.call("GET", "/v1/holds?status=held&limit=1000" + (cursor.map { "&cursor=\($0)" } ?? ""))
            #expect(status == 200)
            for hold in json["holds"] as? [[String: Any]] ?? [] {
                holdCount += 1
                for allocation in hold["allocations"] as? [[String: Any]] ?? [] {
                    heldByWarehouse[allocation["warehouse"] as! String, default: 0] += allocation["quantity"] as! Int
                }
            }
            cursor = json["nextCursor"] as? String
        } while cursor != nil
        #expect(holdCount >= granted.count)
        let rows = try await admin.rows("tee")
        for (warehouse, row) in rows {
            #expect(row["held"] == heldByWarehouse[warehouse, default: 0], "\(warehouse)")
            #expect(row["held"]! + row["sold"]! <= row["total"]!)
        }
        await admin.connection.close()
    }

    /// SIGTERM drains in-flight work and exits cleanly; a restart sees everything.
    @Test func sigtermShutsDownGracefully() async throws {
        let node = NodeProcess()
        defer { node.destroy() }
        try await node.start()
        let admin = NodeClient(connection: try await node.connect(), token: node.adminToken)
        try await admin.setStock("cap", "beijing", 10, admin: node.adminToken)
        let (status, _) = try await NodeClient(connection: admin.connection, token: node.checkoutToken).reserve(id: "c1", sku: "cap", region: "north")
        #expect(status == 201)
        node.terminate()
        #expect(node.exitStatus == 0)
        try await node.start()
        let again = NodeClient(connection: try await node.connect(), token: node.adminToken)
        let (fetched, json) = try await again.call("GET", "/v1/reservations/c1")
        #expect(fetched == 200)
        #expect(allocationKeys(json) == ["cap@beijingx1"])
        await again.connection.close()
    }
}

/// A lock-protected value shared between tasks.
final class SendableBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Value
    init(_ value: Value) { stored = value }
    var value: Value { lock.withLock { stored } }
    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}

/// The client never leaves a request waiting forever on a dead connection.
@Suite(.timeLimit(.minutes(2))) struct HTTPConnectionTests {
    @Test func sendingOnAClosedConnectionFailsPromptly() async throws {
        let node = NodeProcess()
        defer { node.destroy() }
        try await node.start()
        let connection = try await node.connect()
        node.kill()
        // Whether or not the close has been noticed yet, every send ends with an error.
        for _ in 0..<3 {
            await #expect(throws: (any Error).self) {
                _ = try await connection.send(method: .GET, path: "/healthz", timeout: .seconds(5))
            }
        }
        await connection.close()
        await #expect(throws: (any Error).self) {
            _ = try await connection.send(method: .GET, path: "/healthz")
        }
    }
}
