import Foundation
import StockadeClient
import StockadeCore

/// A feed line's place, for exceptions: `file:line`.
public struct FeedItem: Sendable {
    public var source: String
    public var result: Result<OrderEvent, FeedProblem>

    public init(source: String, result: Result<OrderEvent, FeedProblem>) {
        self.source = source
        self.result = result
    }
}

/// Reads JSON Lines feeds: every line becomes an event or a problem with its line number.
public enum FeedReader {
    public static func read(_ path: String, channel: Channel? = nil) throws -> [FeedItem] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StockadeError(.invalidRequest, "cannot read \(path)")
        }
        let name = (path as NSString).lastPathComponent
        var items: [FeedItem] = []
        var number = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            number += 1
            let trimmed = line.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
            if trimmed.isEmpty { continue }
            let source = "\(name):\(number)"
            do {
                items.append(FeedItem(source: source, result: .success(try ChannelAdapter.event(channel, line: Data(line)))))
            } catch {
                items.append(FeedItem(source: source, result: .failure(error)))
            }
        }
        return items
    }
}

/// How the ingest talks to Stockade.
public struct IngestOptions: Sendable {
    /// The bounds (`Limits.orders`).
    public var limits = Limits.Orders()
    /// Orders worked on at once (each order's updates stay in order).
    public var concurrency = Limits.Orders().concurrencyDefault
    /// Tries per call on `unavailable`, `quorum_unavailable`, `outcome_unknown`, `overloaded` or a
    /// lost connection, with the same reservation id; then the order is left as it is, noted
    /// `unresolved`, for the next run.
    public var attempts: Int { limits.attemptsMax }
    public var backoffBaseMs: Int { limits.backoffBaseMs }
    public var backoffMaxMs: Int { limits.backoffMaxMs }
    /// Draws a progress bar on stderr.
    public var progress = false

    public init() {}
}

/// What one ingest did.
public struct IngestSummary: Codable, Sendable {
    public var lines = 0
    public var events = 0
    public var orders = 0
    public var problems = 0
    public var calls = 0
    public var retries = 0
    public var unresolved = 0
    public var seconds = 0.0
    public var ordersPerSecond: Double { seconds > 0 ? Double(orders) / seconds : 0 }
}

/// Runs feeds through the lifecycle against a Stockade node: reads every line, groups the
/// updates by order (keeping their order), and works on `concurrency` orders at once. Each
/// update is merged, then the lifecycle's actions are called until the order is where its channel
/// says, then the order and its exceptions are saved in one transaction.
public final class Ingestor: @unchecked Sendable {
    let store: OrderStore
    let client: StockadeClient
    let policy: LifecyclePolicy
    let options: IngestOptions
    private let lock = NSLock()
    private var presaleUsed: [String: Int64]
    private var counters = IngestSummary()
    private var finishedOrders = 0

    public init(store: OrderStore, client: StockadeClient, policy: LifecyclePolicy, options: IngestOptions) throws {
        self.store = store
        self.client = client
        self.policy = policy
        self.options = options
        presaleUsed = try store.presaleUsed()
    }

    public func ingest(_ files: [String]) async throws -> IngestSummary {
        var items: [FeedItem] = []
        for file in files { items += try FeedReader.read(file) }
        return try await process(items)
    }

    /// Runs feed items (from files, or the webhook's inbox) through the lifecycle.
    public func process(_ feedItems: [FeedItem]) async throws -> IngestSummary {
        let start = ContinuousClock.now
        var problems: [OrderException] = []
        var byOrder: [String: [FeedItem]] = [:]
        var orderKeys: [String] = []
        var summary = IngestSummary()
        lock.withLock { finishedOrders = 0 }
        do {
            for item in feedItems {
                summary.lines += 1
                switch item.result {
                case .success(let event):
                    summary.events += 1
                    if byOrder[event.key] == nil { orderKeys.append(event.key) }
                    byOrder[event.key, default: []].append(item)
                case .failure(let problem):
                    problems.append(OrderException(problem, source: item.source))
                }
            }
        }
        summary.problems = problems.count
        summary.orders = orderKeys.count
        try store.save(orders: [], exceptions: problems)
        let progress = options.progress ? ProgressBar(total: orderKeys.count) : nil
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func launch() {
                let key = orderKeys[next]
                let items = byOrder[key]!
                next += 1
                group.addTask { try await self.run(key, items) }
            }
            while next < orderKeys.count && next < options.concurrency { launch() }
            while try await group.next() != nil {
                let done = lock.withLock {
                    finishedOrders += 1
                    return finishedOrders
                }
                progress?.update(done)
                if next < orderKeys.count { launch() }
            }
        }
        progress?.finish()
        lock.withLock {
            summary.calls = counters.calls
            summary.retries = counters.retries
            summary.unresolved = counters.unresolved
        }
        let elapsed = ContinuousClock.now - start
        summary.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return summary
    }

    /// One order's updates, in order.
    func run(_ key: String, _ items: [FeedItem]) async throws {
        var record = try store.order(key)
        for item in items {
            guard case .success(let event) = item.result else { continue }
            let merged = OrderLifecycle.merge(record, event, policy: policy, source: item.source)
            guard var current = merged.record else { continue }
            var exceptions = merged.exceptions
            var unresolved = false
            var steps = 0
            while steps < options.limits.callsPerUpdateMax {
                steps += 1
                if let settled = OrderLifecycle.settleWithoutAction(current) {
                    current = settled
                    continue
                }
                guard let action = OrderLifecycle.next(current, policy: policy) else { break }
                guard let result = try await call(action) else {
                    unresolved = true
                    exceptions.append(
                        OrderException(
                            kind: .unresolved, orderKey: key, source: item.source,
                            reason: "no answer after \(options.attempts) tries to \(describe(action)); run the ingest again"))
                    break
                }
                let folded = lock.withLock { OrderLifecycle.fold(current, action, result, policy: policy, presaleUsed: &presaleUsed) }
                current = folded.record
                exceptions += folded.exceptions
            }
            let presale = lock.withLock { presaleUsed }
            if unresolved {
                // The update is not marked applied: the next run repeats it.
                var kept = current
                kept.applied.removeAll { $0 == event.fingerprint }
                current = kept
            }
            try store.save(orders: [current], exceptions: exceptions, presale: presale)
            record = current
        }
    }

    /// Calls Stockade, retrying transient failures with the same id; nil when they never stopped.
    func call(_ action: OrderAction) async throws -> ActionResult? {
        for attempt in 0..<options.attempts {
            lock.withLock { counters.calls += 1 }
            do {
                switch action {
                case .reserve(let request): return .reservation(try await client.reserve(request))
                case .confirm(let id): return .reservation(try await client.confirm(id))
                case .release(let id): return .reservation(try await client.release(id))
                }
            } catch let error as StockadeError where ![.unavailable, .quorumUnavailable, .outcomeUnknown, .overloaded].contains(error.code) {
                return .refused(error)
            } catch {
                // Transient: the same call again (same reservation id) after a backoff with full jitter.
                lock.withLock { counters.retries += 1 }
                let ceiling = min(options.backoffMaxMs, options.backoffBaseMs << min(attempt, 16))
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...max(1, ceiling))))
            }
        }
        lock.withLock { counters.unresolved += 1 }
        return nil
    }

    func describe(_ action: OrderAction) -> String {
        switch action {
        case .reserve(let request): "reserve \(request.reservationId)"
        case .confirm(let id): "confirm \(id)"
        case .release(let id): "release \(id)"
        }
    }
}

/// `[#######.....]  12,345/42,000 orders  3,456/s` on stderr: redrawn in place on a terminal,
/// a line per tenth otherwise.
final class ProgressBar: @unchecked Sendable {
    let total: Int
    let start = ContinuousClock.now
    let terminal = isatty(STDERR_FILENO) == 1
    private var lastDraw = ContinuousClock.now - .seconds(1)
    private var lastTenth = 0

    init(total: Int) { self.total = total }

    func update(_ done: Int) {
        if terminal {
            guard ContinuousClock.now - lastDraw >= .milliseconds(200) || done == total else { return }
            lastDraw = ContinuousClock.now
            draw(done, end: "")
        } else {
            let tenth = total > 0 ? done * 10 / total : 10
            guard tenth > lastTenth else { return }
            lastTenth = tenth
            draw(done, end: "\n")
        }
    }

    func finish() {
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    private func draw(_ done: Int, end: String) {
        let width = 30
        let filled = total > 0 ? done * width / total : width
        let elapsed = ContinuousClock.now - start
        let seconds = max(0.001, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\(terminal ? "\r" : "")[\(bar)] \(done)/\(total) orders  \(Int(Double(done) / seconds))/s\(end)"
        FileHandle.standardError.write(Data(line.utf8))
    }
}
