import Foundation
import HeapModule
import StockadeClient
import StockadeTesting

/// Settings shared by every scenario.
public struct RunSettings: Sendable {
    /// The nodes to drive; connections are spread over them round-robin. Stock is set and the
    /// verdict read through the first.
    public var endpoints: [(host: String, port: Int)]
    /// Whether the endpoints are RESP ports (`resp://`) rather than HTTP ones.
    public var resp: Bool
    public var host: String { endpoints[0].host }
    public var port: Int { endpoints[0].port }
    public var checkoutToken: String
    public var adminToken: String
    public var connections: Int
    public var timeout: Duration
    public var ttlSeconds: Int
    /// Most jobs waiting for a connection (open loop); beyond it arrivals are dropped and counted.
    public var backlogMax: Int
    public var progress: Bool
    public var runID: String
    /// Where every answer is recorded for the per-reservation history check (nil: not checked).
    public var history: HistoryRecorder?

    public init(
        endpoints: [(host: String, port: Int)], resp: Bool = false, checkoutToken: String, adminToken: String, connections: Int,
        timeout: Duration, ttlSeconds: Int, backlogMax: Int, progress: Bool, runID: String
    ) {
        precondition(!endpoints.isEmpty, "at least one endpoint")
        self.endpoints = endpoints
        self.resp = resp
        self.checkoutToken = checkoutToken
        self.adminToken = adminToken
        self.connections = connections
        self.timeout = timeout
        self.ttlSeconds = ttlSeconds
        self.backlogMax = backlogMax
        self.progress = progress
        self.runID = runID
    }
}

/// The result of a run: its figures and its verdict.
public struct RunResult: Sendable {
    public var summary: RunSummary
    public var verdict: Verdict
}

/// Drives a workload against a node and judges the outcome.
public struct Runner: Sendable {
    public let settings: RunSettings

    public init(settings: RunSettings) { self.settings = settings }

    func client(_ connection: ServiceLink) -> ServiceClient {
        ServiceClient(
            connection: connection, checkoutToken: settings.checkoutToken, adminToken: settings.adminToken,
            timeout: settings.timeout)
    }

    /// A connection to the slot's node; over RESP it speaks for the admin token or the checkout one.
    func connect(slot: Int = 0, admin: Bool = false) async throws -> ServiceClient {
        let endpoint = settings.endpoints[slot % settings.endpoints.count]
        var connected: ServiceClient
        if settings.resp {
            let token = admin ? settings.adminToken : settings.checkoutToken
            connected = client(.resp(try await RESPConnection.connect(host: endpoint.host, port: endpoint.port, token: token)))
        } else {
            connected = client(.http(try await HTTPConnection.connect(host: endpoint.host, port: endpoint.port)))
        }
        connected.endpoint = "\(endpoint.host):\(endpoint.port)"
        return connected
    }

    public func run(_ workload: Workload) async throws -> RunResult {
        let admin = try await connect(admin: true)
        try await stock(workload, admin: admin)
        if workload.hot { try await promote(workload, admin: admin) }
        var clients: [ServiceClient] = []
        let connectionCount: Int
        switch workload.model {
        case .openLoop: connectionCount = settings.connections
        case .closedLoop(let concurrency): connectionCount = concurrency
        }
        for slot in 0..<connectionCount { clients.append(try await connect(slot: slot)) }

        let recorder = Recorder(start: ContinuousClock.now)
        let progress = settings.progress ? Task { await reportProgress(recorder, total: workload.orders.count) } : nil
        switch workload.model {
        case .openLoop: await runOpenLoop(workload, clients: clients, recorder: recorder)
        case .closedLoop: await runClosedLoop(workload, clients: clients, recorder: recorder)
        }
        progress?.cancel()
        if settings.progress { FileHandle.standardError.write(Data("\n".utf8)) }
        let summary = recorder.summary()
        for client in clients { await client.connection.close() }

        // The first admin connection may have died with its node during the run: read back on a new one.
        await admin.connection.close()
        let checker = try await connectPersistently(slot: 0, admin: true)
        if workload.hot { try await waitForDrain(admin: checker) }
        let verdict = try await verify(workload, recorder: recorder, admin: checker)
        await checker.connection.close()
        return RunResult(summary: summary, verdict: verdict)
    }

    /// Promotes every SKU and waits (up to 10 s) until the cache holds an allotment of each.
    func promote(_ workload: Workload, admin: ServiceClient) async throws {
        for sku in workload.stock.keys.sorted() {
            try await admin.promote(sku)
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                if try await admin.rows(sku).contains(where: { ($0.allotted ?? 0) > 0 }) { break }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// Waits (up to 60 s) until every decrement record is in the ledger.
    func waitForDrain(admin: ServiceClient) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        var quiet = 0
        while ContinuousClock.now < deadline {
            // Twice in a row: the queue length is sampled by the node now and then.
            if try await admin.cacheBacklog() ?? 0 == 0 { quiet += 1 } else { quiet = 0 }
            if quiet >= 2 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw LoadError("the decrement queue did not drain within 60 s")
    }

    /// Sets every SKU's stock, spread evenly over the first warehouses by priority.
    func stock(_ workload: Workload, admin: ServiceClient) async throws {
        let warehouses = try await admin.warehouses()
        guard !warehouses.isEmpty else { throw LoadError("the service has no warehouses") }
        let used = Array(warehouses.prefix(max(1, min(workload.stockWarehouses, warehouses.count))))
        for (sku, units) in workload.stock.sorted(by: { $0.key < $1.key }) {
            for (position, warehouse) in used.enumerated() {
                let share = units / used.count + (position < units % used.count ? 1 : 0)
                try await admin.setStock(sku, warehouse: warehouse.id, total: share)
            }
        }
    }

    /// Reserves as a checkout client should: an `outcome_unknown` answer (the service could not
    /// learn whether the hold was made) is asked again with the same reservation id, up to twice;
    /// the idempotent replay tells. Latency counts from the first try.
    func reserve(_ order: PlannedOrder, client: ServiceClient, allowSplit: Bool) async -> ReserveAnswer {
        var tries = 0
        while true {
            let answer = await client.reserve(
                reservationId: order.reservationId, orderId: order.orderId, region: order.region, lines: order.lines,
                ttlSeconds: settings.ttlSeconds, allowSplit: allowSplit)
            tries += 1
            settings.history?.record(
                node: client.endpoint, operation: .reserve, id: order.reservationId, lines: order.lines.map { "\($0.sku)×\($0.quantity)" },
                status: answer.status, body: answer.body)
            if answer.outcome != "outcome_unknown" || tries == 3 { return answer }
        }
    }

    /// Confirms or releases, and records the answer; returns the HTTP status (0: no answer).
    func finish(_ reservationId: String, action: String, client: ServiceClient) async -> Int {
        let (status, body) = await client.finish(reservationId, action: action)
        settings.history?.record(
            node: client.endpoint, operation: action == "confirm" ? .confirm : .release, id: reservationId, lines: nil, status: status,
            body: body)
        return status
    }

    /// A connection in place of `client`'s, which failed (no answer: the node is down, paused or
    /// cut off): the other endpoints first, then the same one. When none takes it, the old
    /// (closed) client comes back after a 100 ms pause, so its next call fails at once and tries
    /// again: a run against a dead node ends with transport errors instead of waiting on it.
    func reconnect(after client: ServiceClient, slot: Int) async -> ServiceClient {
        await client.connection.close()
        for offset in 1...settings.endpoints.count {
            if let fresh = try? await connect(slot: slot + offset) { return fresh }
        }
        try? await Task.sleep(for: .milliseconds(100))
        return client
    }

    /// A connection to the slot's node, or the next that answers, trying for up to about 10 s.
    public func connectPersistently(slot: Int, admin: Bool = false) async throws -> ServiceClient {
        var lastError: Error = LoadError("no endpoint")
        for round in 0..<33 {
            for offset in 0..<settings.endpoints.count {
                do { return try await connect(slot: slot + offset + round, admin: admin) } catch { lastError = error }
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw lastError
    }

    /// `read` on `client`, again on a new connection when it fails (no answer, or a refusal such
    /// as `quorum_unavailable` while a leader is elected), up to 5 times, 300 ms apart. Reads
    /// change nothing, so asking again is safe.
    func persistently<T: Sendable>(
        _ client: inout ServiceClient, slot: Int, _ read: (ServiceClient) async throws -> T
    ) async throws -> T {
        var tries = 0
        while true {
            do {
                return try await read(client)
            } catch {
                tries += 1
                if tries >= 5 { throw error }
                try await Task.sleep(for: .milliseconds(300))
                await client.connection.close()
                client = try await connectPersistently(slot: slot + tries)
            }
        }
    }

    func runClosedLoop(_ workload: Workload, clients: [ServiceClient], recorder: Recorder) async {
        let cursor = Cursor()
        await withTaskGroup(of: Void.self) { group in
            for (slot, first) in clients.enumerated() {
                group.addTask {
                    var client = first
                    while let position = cursor.take(below: workload.orders.count) {
                        let order = workload.orders[position]
                        let sent = ContinuousClock.now
                        recorder.recordOffered()
                        let answer = await reserve(order, client: client, allowSplit: workload.allowSplit)
                        recorder.recordReserve(id: order.reservationId, answer: answer, intended: sent)
                        if answer.outcome == "transport_error" {
                            client = await reconnect(after: client, slot: slot)
                            continue
                        }
                        // Closed loop: the follow-up goes at once, on the same connection.
                        guard answer.outcome == "granted", let action = order.followUp.action else { continue }
                        let status = await finish(order.reservationId, action: action.name, client: client)
                        recorder.recordFinish(id: order.reservationId, action: action.name, status: status)
                        if status == 0 { client = await reconnect(after: client, slot: slot) }
                    }
                }
            }
        }
    }

    func runOpenLoop(_ workload: Workload, clients: [ServiceClient], recorder: Recorder) async {
        let queue = JobQueue(capacity: settings.backlogMax)
        let followUps = FollowUps()
        let start = recorder.start
        await withTaskGroup(of: Void.self) { group in
            for (slot, first) in clients.enumerated() {
                group.addTask {
                    var client = first
                    while let job = await queue.next() {
                        switch job {
                        case .reserve(let order, let intended):
                            let answer = await reserve(order, client: client, allowSplit: workload.allowSplit)
                            recorder.recordReserve(id: order.reservationId, answer: answer, intended: intended)
                            if answer.outcome == "granted", let action = order.followUp.action {
                                followUps.add(at: .now + .milliseconds(action.afterMs), id: order.reservationId, action: action.name)
                            }
                            followUps.reserveDone()
                            if answer.outcome == "transport_error" { client = await reconnect(after: client, slot: slot) }
                        case .finish(let id, let action):
                            let status = await finish(id, action: action, client: client)
                            recorder.recordFinish(id: id, action: action, status: status)
                            if status == 0 { client = await reconnect(after: client, slot: slot) }
                        }
                    }
                }
            }
            // The scheduler: releases each arrival at its time, whatever the responses are doing.
            group.addTask {
                var position = 0
                while true {
                    let now = ContinuousClock.now
                    while position < workload.orders.count, start + .milliseconds(workload.orders[position].atMs) <= now {
                        let order = workload.orders[position]
                        position += 1
                        followUps.reserveStarted()
                        recorder.recordOffered()
                        if !queue.push(.reserve(order, intended: start + .milliseconds(order.atMs))) {
                            recorder.recordDroppedBacklog()
                            followUps.reserveDone()
                        }
                    }
                    for (id, action) in followUps.due(at: now) {
                        while !queue.push(.finish(reservationId: id, action: action)) {
                            try? await Task.sleep(for: .milliseconds(1))
                        }
                    }
                    if position == workload.orders.count && followUps.isIdle { break }
                    var wake = now + .milliseconds(5)
                    if position < workload.orders.count { wake = min(wake, start + .milliseconds(workload.orders[position].atMs)) }
                    if let next = followUps.nextDue { wake = min(wake, next) }
                    try? await Task.sleep(until: wake, clock: .continuous)
                }
                queue.close()
            }
        }
    }

    /// Reads back every SKU and every reservation whose fate matters, then judges.
    func verify(_ workload: Workload, recorder: Recorder, admin: ServiceClient) async throws -> Verdict {
        var rows: [String: [FetchedRow]] = [:]
        var rowReader = admin
        for sku in workload.stock.keys { rows[sku] = try await persistently(&rowReader, slot: 0) { try await $0.rows(sku) } }
        let fates = recorder.fates()
        let ids = Array(Set(fates.granted.keys).union(fates.unanswered)).sorted()
        var readers: [ServiceClient] = []
        for _ in 0..<min(16, max(1, ids.count)) { readers.append(try await connectPersistently(slot: 0)) }
        let readerList = readers
        let fetched = try await withThrowingTaskGroup(of: [(String, FetchedReservation?)].self) { group in
            for (index, first) in readerList.enumerated() {
                group.addTask {
                    var reader = first
                    var found: [(String, FetchedReservation?)] = []
                    for position in stride(from: index, to: ids.count, by: readerList.count) {
                        let id = ids[position]
                        found.append((id, try await persistently(&reader, slot: index) { try await $0.reservation(id) }))
                    }
                    await reader.connection.close()
                    return found
                }
            }
            var all: [String: FetchedReservation?] = [:]
            for try await part in group { for (id, reservation) in part { all[id] = reservation } }
            return all
        }
        var verdict = Verdict.judge(rows: rows, granted: fates.granted, fetched: fetched, released: fates.released)
        if let history = settings.history {
            history.close()
            let problems = try await checkHistory(history.taken.check, reader: admin) + history.taken.problems
            verdict.violations += problems
            verdict.passed = verdict.passed && problems.isEmpty
        }
        return verdict
    }

    /// Holds every id's answers to one serial history of its hold, against the hold each id ends
    /// with as the cluster reads it now (the simulator's checker; nothing is purged in a run).
    public func checkHistory(_ check: HistoryCheck, reader: ServiceClient) async throws -> [String] {
        var finals: [String: (hold: HoldView?, conflicts: Set<UInt64>)] = [:]
        var client = reader
        for id in check.histories.keys.sorted() {
            finals[id] = try await persistently(&client, slot: 0) { try await $0.reservationView(id) }
        }
        return check.violations(final: { finals[$0] ?? (nil, []) }, purgeable: { _ in false })
    }

    func reportProgress(_ recorder: Recorder, total: Int) async {
        var last = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let summary = recorder.summary()
            let rate = summary.attempts - last
            last = summary.attempts
            let p99 = summary.perSecond.last?.p99Ms ?? 0
            let line = String(
                format: "\r[%5.0fs] %d/%d sent, %d granted, %d/s, p99 %.1f ms   ", summary.elapsedSeconds, summary.attempts,
                total, summary.granted, rate, p99)
            FileHandle.standardError.write(Data(line.utf8))
        }
    }
}

/// Hands out positions 0..<n to concurrent workers.
final class Cursor: @unchecked Sendable {
    private let lock = NSLock()
    private var next = 0
    func take(below limit: Int) -> Int? {
        lock.withLock {
            guard next < limit else { return nil }
            defer { next += 1 }
            return next
        }
    }
}

/// Confirms and releases scheduled for later, and the reserves still in flight that may add more.
final class FollowUps: @unchecked Sendable {
    struct Entry: Comparable {
        var due: ContinuousClock.Instant
        var sequence: Int
        var id: String
        var action: String
        static func < (lhs: Entry, rhs: Entry) -> Bool { (lhs.due, lhs.sequence) < (rhs.due, rhs.sequence) }
        static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.sequence == rhs.sequence }
    }
    private let lock = NSLock()
    private var heap = Heap<Entry>()
    private var sequence = 0
    private var reservesInFlight = 0

    func add(at due: ContinuousClock.Instant, id: String, action: String) {
        lock.withLock {
            sequence += 1
            heap.insert(Entry(due: due, sequence: sequence, id: id, action: action))
        }
    }

    func reserveStarted() { lock.withLock { reservesInFlight += 1 } }
    func reserveDone() { lock.withLock { reservesInFlight -= 1 } }

    func due(at now: ContinuousClock.Instant) -> [(String, String)] {
        lock.withLock {
            var result: [(String, String)] = []
            while let first = heap.min, first.due <= now {
                heap.removeMin()
                result.append((first.id, first.action))
            }
            return result
        }
    }

    var nextDue: ContinuousClock.Instant? { lock.withLock { heap.min?.due } }
    var isIdle: Bool { lock.withLock { heap.isEmpty && reservesInFlight == 0 } }
}
