import Foundation
import StockadeClient
import StockadeTesting
import Testing

/// Tests against three real `stockade-node` processes on loopback, started by `deploy/local/cluster.sh`.
@Suite(.serialized, .timeLimit(.minutes(6))) struct ClusterIntegrationTests {
    /// What one client learned about its reservations.
    struct Ledgerbook: Sendable {
        var granted: [String: [AllocationKey]] = [:]
        var refused = 0
        /// Asked, never answered definitely (the load stopped while it was being retried).
        var undecided: Set<String> = []
        var unknownAnswers = 0
        var quorumUnavailable = 0

        mutating func merge(_ other: Ledgerbook) {
            granted.merge(other.granted) { first, _ in first }
            refused += other.refused
            undecided.formUnion(other.undecided)
            unknownAnswers += other.unknownAnswers
            quorumUnavailable += other.quorumUnavailable
        }
    }

    static func clusterView(_ cluster: LocalCluster, _ node: Int) async -> [String: Any]? {
        guard let connection = try? await cluster.connect(node) else { return nil }
        defer { Task { await connection.close() } }
        let client = NodeClient(connection: connection, token: cluster.checkoutToken)
        guard let (status, json) = try? await client.call("GET", "/v1/cluster"), status == 200 else { return nil }
        return json
    }

    static func leader(_ cluster: LocalCluster, among nodes: [Int]) async -> Int? {
        for node in nodes {
            if let view = await clusterView(cluster, node), view["role"] as? String == "leader" { return node }
        }
        return nil
    }

    /// One client: reserves one unit at a time through `home`, moving to the next node when its
    /// node is down; answers 503/504 are retried with the same id until they are definite.
    static func client(
        _ cluster: LocalCluster, index: Int, home: Int, stop: SendableBox<Bool>, grants: SendableBox<Int>
    ) async -> Ledgerbook {
        var book = Ledgerbook()
        var node = home
        var connection: HTTPConnection?
        var sequence = 0
        var pending: String?
        while !stop.value {
            if connection == nil || connection?.isActive == false {
                connection = try? await cluster.connect(node)
                if connection == nil {
                    node = node % cluster.nodes + 1
                    try? await Task.sleep(for: .milliseconds(50))
                    continue
                }
            }
            let id = pending ?? "c\(index)-\(sequence)"
            if pending == nil { sequence += 1 }
            pending = id
            book.undecided.insert(id)
            let sku = sequence % 4 == 0 ? "last" : "tee"
            let api = NodeClient(connection: connection!, token: cluster.checkoutToken)
            guard let (status, json) = try? await api.reserve(id: id, sku: sku, region: index % 2 == 0 ? "east" : "south")
            else {
                connection = nil
                node = node % cluster.nodes + 1
                continue
            }
            switch status {
            case 201, 200:
                book.granted[id] = allocationKeys(json)
                book.undecided.remove(id)
                pending = nil
                grants.mutate { $0 += 1 }
            case 409:
                book.refused += 1
                book.undecided.remove(id)
                pending = nil
            case 504:
                book.unknownAnswers += 1
            case 503:
                book.quorumUnavailable += 1
                try? await Task.sleep(for: .milliseconds(20))
            default:
                Issue.record("unexpected answer \(status) \(json) for \(id)")
                pending = nil
                book.undecided.remove(id)
            }
        }
        await connection?.close()
        return book
    }

    static func waitForGrants(_ grants: SendableBox<Int>, atLeast target: Int, within: Duration) async {
        let deadline = ContinuousClock.now + within
        while grants.value < target && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(50)) }
    }

    /// Kill -9 the leader mid-load, then a follower (leaving no majority for a while), restart both;
    /// at the end every node has the same applied index and rows, every 201 is present, nothing oversold.
    @Test func killingTheLeaderThenAFollowerLosesNoAcknowledgedReservation() async throws {
        let cluster = LocalCluster(httpBase: 17_100, peerBase: 17_200)
        do {
            try await cluster.up()
            let admin = NodeClient(connection: try await cluster.connect(1), token: cluster.adminToken)
            try await admin.setStock("tee", "yiwu", 1_000_000, admin: cluster.adminToken)
            try await admin.setStock("last", "yiwu", 150, admin: cluster.adminToken)
            try await admin.setStock("last", "guangzhou", 150, admin: cluster.adminToken)
            await admin.connection.close()

            let stop = SendableBox(false)
            let grants = SendableBox(0)
            let load = Task {
                await withTaskGroup(of: Ledgerbook.self) { group in
                    for index in 0..<24 {
                        group.addTask {
                            await Self.client(cluster, index: index, home: index % 3 + 1, stop: stop, grants: grants)
                        }
                    }
                    var all = Ledgerbook()
                    for await book in group { all.merge(book) }
                    return all
                }
            }

            await Self.waitForGrants(grants, atLeast: 400, within: .seconds(60))
            let firstLeader = try #require(await Self.leader(cluster, among: [1, 2, 3]))
            try await cluster.kill(firstLeader)
            let killedAt = grants.value
            await Self.waitForGrants(grants, atLeast: killedAt + 400, within: .seconds(60))
            let survivors = [1, 2, 3].filter { $0 != firstLeader }
            let secondLeader = await Self.leader(cluster, among: survivors)
            let follower = survivors.first { $0 != secondLeader }!
            try await cluster.kill(follower)
            try await Task.sleep(for: .seconds(1))  // one node of three: no majority
            try await cluster.start(firstLeader)
            try await cluster.start(follower)
            let restartedAt = grants.value
            await Self.waitForGrants(grants, atLeast: restartedAt + 400, within: .seconds(90))
            stop.mutate { $0 = true }
            let book = await load.value
            #expect(grants.value >= restartedAt + 400, "the cluster kept granting after both restarts")

            // Converge: the same applied index everywhere, and a leader.
            var views: [[String: Any]] = []
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                views = []
                for node in 1...3 { if let view = await Self.clusterView(cluster, node) { views.append(view) } }
                let applied = Set(views.compactMap { $0["appliedIndex"] as? Int })
                if views.count == 3 && applied.count == 1 && views.contains(where: { $0["role"] as? String == "leader" }) { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            let applied = Set(views.compactMap { $0["appliedIndex"] as? Int })
            #expect(views.count == 3 && applied.count == 1, "nodes did not converge: \(views)")

            // Same rows on every node, read locally; no row above its total.
            var rowsByNode: [[String: [String: [String: Int]]]] = []
            for node in 1...3 {
                let client = NodeClient(connection: try await cluster.connect(node), token: cluster.checkoutToken)
                var rows: [String: [String: [String: Int]]] = [:]
                for sku in ["tee", "last"] {
                    let (_, json) = try await client.call("GET", "/v1/skus/\(sku)?consistency=local")
                    var bySKU: [String: [String: Int]] = [:]
                    for row in json["warehouses"] as? [[String: Any]] ?? [] {
                        bySKU[row["warehouse"] as! String] = row.compactMapValues { $0 as? Int }
                    }
                    rows[sku] = bySKU
                }
                rowsByNode.append(rows)
                // Every acknowledged reservation, on every node, with the allocation it was answered with.
                var missing: [String] = []
                for (id, allocation) in book.granted {
                    let (status, json) = try await client.call("GET", "/v1/reservations/\(id)?consistency=local")
                    if status != 200 || allocationKeys(json) != allocation { missing.append(id) }
                }
                #expect(missing.isEmpty, "node \(node) lacks \(missing.count) acknowledged reservations, e.g. \(missing.prefix(5))")
                await client.connection.close()
            }
            #expect(rowsByNode[0] == rowsByNode[1] && rowsByNode[1] == rowsByNode[2], "rows differ: \(rowsByNode)")
            for (_, rows) in rowsByNode[0] {
                for (_, row) in rows { #expect(row["held"]! + row["sold"]! <= row["total"]!, "oversold: \(row)") }
            }
            // Held units are exactly the grants, plus any undecided attempt that did take effect.
            let reader = NodeClient(connection: try await cluster.connect(1), token: cluster.checkoutToken)
            var undecidedThatExist = 0
            for id in book.undecided {
                let (status, _) = try await reader.call("GET", "/v1/reservations/\(id)")
                if status == 200 { undecidedThatExist += 1 }
            }
            await reader.connection.close()
            let held = rowsByNode[0].values.flatMap(\.values).map { $0["held"]! }.reduce(0, +)
            #expect(held == book.granted.count + undecidedThatExist)
            let last = rowsByNode[0]["last"]!.values.map { $0["held"]! }.reduce(0, +)
            #expect(last == 300, "the contended SKU sold out exactly")
            print(
                "cluster kill test: \(book.granted.count) granted, \(book.refused) refused, \(book.unknownAnswers) outcome_unknown answers, \(book.quorumUnavailable) quorum_unavailable answers, \(book.undecided.count) undecided (\(undecidedThatExist) took effect); leader n\(firstLeader) then follower n\(follower) killed"
            )
        } catch {
            for node in 1...3 { print("n\(node) log:\n\(cluster.logTail(node))") }
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
    }

    /// The leader's wall clock jumps two hours ahead (a debug-build clock offset). It must not
    /// expire 15-minute holds early, or stamp new ones with its own time: commands are stamped only
    /// with a time a majority of the clocks agree on. It stops leading, another node leads, and
    /// `/v1/cluster` (and `/metrics`) name the node whose clock is off.
    @Test func aLeaderWhoseClockJumpsTwoHoursAheadExpiresNothingEarly() async throws {
        let cluster = LocalCluster(httpBase: 17_150, peerBase: 17_250)
        do {
            try await cluster.up()
            let leader = try #require(await Self.leader(cluster, among: [1, 2, 3]))
            let api = NodeClient(connection: try await cluster.connect(leader), token: cluster.checkoutToken)
            try await api.setStock("lamp", "yiwu", 1_000, admin: cluster.adminToken)
            var ids: [String] = []
            for index in 0..<10 {
                let (status, json) = try await api.reserve(id: "before-\(index)", sku: "lamp")
                #expect(status == 201, "\(json)")
                ids.append("before-\(index)")
            }
            let twoHoursMs = 2 * 3_600_000
            let (jumped, answer) = try await api.call("PUT", "/v1/debug/clock-offset?ms=\(twoHoursMs)", token: cluster.adminToken)
            #expect(jumped == 200, "\(answer)")

            // Every node names the jumped node, and another node leads.
            let others = [1, 2, 3].filter { $0 != leader }
            var named = false
            var newLeader: Int?
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                var everyone = true
                for node in [1, 2, 3] {
                    let off = (await Self.clusterView(cluster, node)?["clock"] as? [String: Any])?["offClock"] as? [String]
                    if off != ["n\(leader)"] { everyone = false }
                }
                named = everyone
                newLeader = await Self.leader(cluster, among: others)
                if named && newLeader != nil { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(named, "every node must name n\(leader) as off the cluster's clock")
            #expect(newLeader != nil, "another node must lead")
            let successor = newLeader ?? others[0]
            let metrics = try await api.connection.send(method: .GET, path: "/metrics", headers: [], body: nil, timeout: .seconds(10))
                .bodyString
            #expect(metrics.contains("stockade_clock_agreed 0"), "the jumped node reports its clock as off")

            // New holds, through the successor and through the jumped node, are stamped with the
            // majority's time.
            let writer = NodeClient(connection: try await cluster.connect(successor), token: cluster.checkoutToken)
            for (index, client) in [writer, api, writer, api].enumerated() {
                let id = "after-\(index)"
                let asked = Int64(Date().timeIntervalSince1970 * 1000)
                let (status, json) = try await client.reserve(id: id, sku: "lamp")
                #expect(status == 201, "\(json)")
                let expiresAt = json["expiresAt"] as? Int64 ?? Int64(json["expiresAt"] as? Int ?? 0)
                #expect(abs(expiresAt - (asked + 900_000)) < 60_000, "\(id) expires at \(expiresAt), asked at \(asked)")
                ids.append(id)
            }
            // Expiry runs every 250 ms: with the jumped clock deciding, every hold would now be gone.
            try await Task.sleep(for: .seconds(3))
            #expect(await Self.leader(cluster, among: [leader]) == nil, "the jumped node must not lead again")
            for id in ids {
                let (status, json) = try await writer.call("GET", "/v1/reservations/\(id)")
                #expect(status == 200 && json["status"] as? String == "held", "\(id): \(status) \(json)")
            }

            // Set right again, the node agrees with the others once more.
            _ = try await api.call("PUT", "/v1/debug/clock-offset?ms=0", token: cluster.adminToken)
            var agreed = false
            let back = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < back && !agreed {
                let view = await Self.clusterView(cluster, leader)
                agreed = ((view?["clock"] as? [String: Any])?["offClock"] as? [String]) == []
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(agreed, "n\(leader) agrees with the cluster's clock again")
            await api.connection.close()
            await writer.connection.close()
        } catch {
            for node in 1...3 { print("n\(node) log:\n\(cluster.logTail(node))") }
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
    }

    /// One node of three down: still granting, through every live node. Two down: refused with
    /// `quorum_unavailable`, never a hang (the client's own timeout would catch one).
    @Test func oneDownKeepsGrantingTwoDownRefuses() async throws {
        let cluster = LocalCluster(httpBase: 17_110, peerBase: 17_210)
        do {
            try await cluster.up()
            let admin = NodeClient(connection: try await cluster.connect(1), token: cluster.adminToken)
            try await admin.setStock("mug", "yiwu", 1_000, admin: cluster.adminToken)
            await admin.connection.close()
            let leader = try #require(await Self.leader(cluster, among: [1, 2, 3]))
            let follower = [1, 2, 3].first { $0 != leader }!
            try await cluster.kill(follower)
            for (offset, node) in [1, 2, 3].filter({ $0 != follower }).enumerated() {
                let client = NodeClient(connection: try await cluster.connect(node), token: cluster.checkoutToken)
                for attempt in 0..<20 {
                    let (status, json) = try await client.reserve(id: "one-down-\(offset)-\(attempt)", sku: "mug")
                    #expect(status == 201, "one node down, via n\(node): \(status) \(json)")
                }
                await client.connection.close()
            }

            try await cluster.kill(leader)
            let last = [1, 2, 3].first { $0 != leader && $0 != follower }!
            // A write in flight to the leader at the moment it dies is honestly `outcome_unknown`;
            // the steady state of two down starts once the survivor has noticed its leader is gone.
            let noticed = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < noticed {
                if let view = await Self.clusterView(cluster, last), view["leaderId"] as? String == nil { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            let connection = try await cluster.connect(last)
            for attempt in 0..<3 {
                let start = ContinuousClock.now
                let response = try await connection.send(
                    method: .POST, path: "/v1/reservations", headers: [("Authorization", "Bearer \(cluster.checkoutToken)")],
                    body: Array(
                        #"{"reservationId":"two-down-\#(attempt)","orderId":"o","region":"east","lines":[{"sku":"mug","quantity":1}]}"#
                            .utf8),
                    timeout: .seconds(10))
                let json = (try? JSONSerialization.jsonObject(with: Data(response.body))) as? [String: Any]
                let code = (json?["error"] as? [String: Any])?["code"] as? String
                #expect(response.status == 503 && code == "quorum_unavailable", "two down: \(response.status) \(response.bodyString)")
                print("two nodes down: answered \(response.status) \(code ?? "-") after \(ContinuousClock.now - start)")
            }
            // Local reads still answer from the survivor's applied state.
            let client = NodeClient(connection: connection, token: cluster.checkoutToken)
            let (status, json) = try await client.call("GET", "/v1/skus/mug?consistency=local")
            #expect(status == 200, "\(json)")
            await connection.close()
            // The refused reservations were not applied anywhere once the cluster is whole again.
            try await cluster.start(leader)
            try await cluster.start(follower)
            let deadline = ContinuousClock.now + .seconds(60)
            var found: Int?
            while ContinuousClock.now < deadline {
                if let reader = try? await cluster.connect(last) {
                    let api = NodeClient(connection: reader, token: cluster.checkoutToken)
                    if let (status, _) = try? await api.call("GET", "/v1/reservations/two-down-0"), status != 503 {
                        found = status
                    }
                    await reader.close()
                }
                if found != nil { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(found == 404, "a refused reservation must not exist")
        } catch {
            for node in 1...3 { print("n\(node) log:\n\(cluster.logTail(node))") }
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
    }

    /// A follower down while the leader snapshots and compacts past it catches up by installing
    /// the leader's snapshot, and ends with the same state as the others.
    @Test func aFollowerBehindTheCompactedLogCatchesUpFromASnapshot() async throws {
        let cluster = LocalCluster(httpBase: 17_120, peerBase: 17_220, snapshotInterval: 1_024, logLevel: "info")
        do {
            try await cluster.up()
            let leader = try #require(await Self.leader(cluster, among: [1, 2, 3]))
            let admin = NodeClient(connection: try await cluster.connect(leader), token: cluster.adminToken)
            try await admin.setStock("cap", "yiwu", 1_000_000, admin: cluster.adminToken)
            await admin.connection.close()
            let follower = [1, 2, 3].first { $0 != leader }!
            try await cluster.kill(follower)

            // Well past two snapshot intervals (an interval is at least the number of holds).
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        let api = NodeClient(connection: try await cluster.connect(leader), token: cluster.checkoutToken)
                        for attempt in stride(from: client, to: 3_200, by: 8) {
                            let (status, json) = try await api.reserve(id: "snap-\(attempt)", sku: "cap")
                            #expect(status == 201, "\(json)")
                        }
                        await api.connection.close()
                    }
                }
                try await group.waitForAll()
            }
            try await cluster.start(follower)

            var views: [[String: Any]] = []
            let deadline = ContinuousClock.now + .seconds(90)
            while ContinuousClock.now < deadline {
                views = []
                for node in 1...3 { if let view = await Self.clusterView(cluster, node) { views.append(view) } }
                if views.count == 3 && Set(views.compactMap { $0["appliedIndex"] as? Int }).count == 1 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(views.count == 3 && Set(views.compactMap { $0["appliedIndex"] as? Int }).count == 1, "\(views)")
            let snapshots = (try? FileManager.default.contentsOfDirectory(atPath: "\(cluster.directory)/n\(follower)/data/snapshots")) ?? []
            #expect(snapshots.contains { $0.hasSuffix(".snap") }, "the follower holds a snapshot: \(snapshots)")
            #expect(cluster.log(follower).contains("installed snapshot"), "the follower caught up from the leader's snapshot")

            var rows: [String] = []
            for node in 1...3 {
                let client = NodeClient(connection: try await cluster.connect(node), token: cluster.checkoutToken)
                let (_, json) = try await client.call("GET", "/v1/skus/cap?consistency=local")
                let warehouses = json["warehouses"] as? [[String: Any]] ?? []
                rows.append("\(warehouses.map { "\($0["warehouse"]!):\($0["held"]!)/\($0["total"]!)" }.sorted())")
                if node == follower {
                    for attempt in stride(from: 0, to: 3_200, by: 97) {
                        let (status, _) = try await client.call("GET", "/v1/reservations/snap-\(attempt)?consistency=local")
                        #expect(status == 200, "snap-\(attempt) missing on the follower")
                    }
                }
                await client.connection.close()
            }
            #expect(Set(rows).count == 1, "rows differ: \(rows)")
            #expect(rows[0].contains("yiwu:3200/1000000"), "\(rows[0])")
        } catch {
            for node in 1...3 { print("n\(node) log:\n\(cluster.logTail(node))") }
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
    }
}
