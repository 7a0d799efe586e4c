import ArgumentParser
import Foundation
import LoadHarness
import StockadeTesting

/// `stockade-load`: replays big-promotion peaks against a Stockade node and checks nothing oversold.
@main
struct StockadeLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stockade-load",
        abstract: "Replay big-promotion peaks against Stockade and prove nothing oversold.",
        subcommands: [FlashSale.self, PromotionReplay.self, Steady.self, MakeTrace.self, CheckHistory.self])
}

/// Options every scenario takes.
struct Common: ParsableArguments {
    @Option(help: "The node's base URL (http://HOST:PORT, or resp://HOST:PORT for its RESP port), or several separated by commas (connections are spread over them).")
    var url = "http://127.0.0.1:7101"

    @Option(name: .customLong("report-dir"), help: "Where report.json and report.html are written.")
    var reportDir = "load-report"

    @Option(name: .customLong("timeout-ms"), help: "Per-request timeout; an unanswered reserve is checked after the run.")
    var timeoutMs = 5_000

    @Option(name: .customLong("ttl-seconds"), help: "Hold time-to-live requested for every reservation.")
    var ttlSeconds = 900

    @Option(name: .customLong("backlog-max"), help: "Open loop: most arrivals waiting for a connection; more are dropped and counted.")
    var backlogMax = 100_000

    @Flag(name: .customLong("no-progress"), help: "Do not print the live progress line.")
    var noProgress = false

    @Option(help: "Seed for the random choices.")
    var seed: UInt64 = 1

    @Option(help: "Write every answer to this file (JSON lines) and hold them to one history per reservation in the verdict (costs harness CPU).")
    var history: String?

    func settings(connections: Int) throws -> RunSettings {
        var endpoints: [(host: String, port: Int)] = []
        var schemes = Set<String>()
        for part in url.split(separator: ",") {
            guard let components = URLComponents(string: String(part)), let scheme = components.scheme,
                ["http", "resp"].contains(scheme), let host = components.host
            else { throw ValidationError("--url must look like http://HOST:PORT[,...] or resp://HOST:PORT[,...]") }
            schemes.insert(scheme)
            endpoints.append((host, components.port ?? (scheme == "resp" ? 7401 : 80)))
        }
        guard schemes.count <= 1 else { throw ValidationError("--url: every URL must use the same scheme") }
        guard !endpoints.isEmpty, endpoints.count <= 16 else { throw ValidationError("--url takes 1 to 16 URLs") }
        let environment = ProcessInfo.processInfo.environment
        guard let checkout = environment["STOCKADE_CHECKOUT_TOKEN"], let admin = environment["STOCKADE_ADMIN_TOKEN"],
            !checkout.isEmpty, !admin.isEmpty
        else { throw ValidationError("set STOCKADE_CHECKOUT_TOKEN and STOCKADE_ADMIN_TOKEN") }
        guard (1...4096).contains(connections) else { throw ValidationError("connections must be between 1 and 4096") }
        guard timeoutMs > 0, ttlSeconds > 0, backlogMax > 0 else { throw ValidationError("limits must be positive") }
        let stamp = Int(Date().timeIntervalSince1970) % 1_000_000
        var settings = RunSettings(
            endpoints: endpoints, resp: schemes.contains("resp"), checkoutToken: checkout, adminToken: admin, connections: connections,
            timeout: .milliseconds(timeoutMs), ttlSeconds: ttlSeconds, backlogMax: backlogMax, progress: !noProgress,
            runID: "ld\(stamp)\(String(UInt32.random(in: 0...0xFFFF), radix: 16))")
        if let history { settings.history = try HistoryRecorder(path: history) }
        return settings
    }

    /// Runs, writes the reports, prints the table, and fails the command if the verdict fails.
    func execute(_ workload: Workload, settings: RunSettings, described: [String: String]) async throws {
        let result = try await Runner(settings: settings).run(workload)
        var all = described
        all["url"] = url
        all["timeoutMs"] = String(timeoutMs)
        all["ttlSeconds"] = String(ttlSeconds)
        all["seed"] = String(seed)
        let report = Report(scenario: workload.scenario, runID: settings.runID, settings: all, result: result)
        try report.write(to: reportDir)
        print(report.table())
        print("reports      \(reportDir)/report.json, \(reportDir)/report.html")
        if !result.verdict.passed { throw ExitCode(1) }
    }
}

struct FlashSale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flash-sale", abstract: "A burst of attempts far above a fixed stock on one or a few SKUs.")

    @OptionGroup var common: Common
    @Option(help: "Units per SKU.") var stock = 1_000
    @Option(help: "Reservation attempts.") var attempts = 10_000
    @Option(help: "Closed loop: connections, each sending its next request when answered.") var concurrency = 64
    @Option(help: "Open loop instead: arrivals per second (uses --concurrency connections).") var rate: Double?
    @Option(help: "Number of flash SKUs.") var skus = 1
    @Option(help: "Units per attempt.") var quantity = 1
    @Option(help: "Warehouses the stock is spread over.") var warehouses = 2
    @Option(name: .customLong("confirm-percent"), help: "Share of grants confirmed at once.") var confirmPercent = 0
    @Flag(help: "Promote the SKUs to hot first (needs a node with the Redis hot path).") var hot = false

    func run() async throws {
        guard stock >= 0, attempts > 0, attempts <= 10_000_000, skus > 0, quantity > 0, warehouses > 0,
            (0...100).contains(confirmPercent)
        else { throw ValidationError("check --stock, --attempts, --skus, --quantity, --warehouses, --confirm-percent") }
        let settings = try common.settings(connections: concurrency)
        let model: LoadModel = rate == nil ? .closedLoop(concurrency: concurrency) : .openLoop
        var workload = Scenarios.flashSale(
            runID: settings.runID, stock: stock, attempts: attempts, skus: skus, quantity: quantity, warehouses: warehouses,
            model: model, ratePerSecond: rate, confirmPercent: confirmPercent, seed: common.seed)
        workload.hot = hot
        try await common.execute(
            workload, settings: settings,
            described: [
                "stock": String(stock), "attempts": String(attempts), "concurrency": String(concurrency),
                "model": rate == nil ? "closed-loop" : "open-loop \(rate!)/s", "skus": String(skus),
                "warehouses": String(warehouses), "confirmPercent": String(confirmPercent), "hot": String(hot),
            ])
    }
}

struct PromotionReplay: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promotion-replay",
        abstract: "Replay a trace of timestamped orders (open loop): pays confirm, cancels release, timeouts stay held.")

    @OptionGroup var common: Common
    @Option(help: "Trace file (JSON lines from make-trace). Without it, the default promotion-day trace is generated.")
    var trace: String?
    @Option(help: "Time compression: trace time divided by this is run time.") var compress = 1_440.0
    @Option(name: .customLong("stock-per-sku"), help: "Units per SKU, spread over every warehouse.") var stockPerSKU = 60
    @Option(help: "Connections.") var connections = 64
    @Flag(name: .customLong("closed-loop"), help: "Send as fast as answers come instead of on schedule.") var closedLoop = false
    @Option(name: .customLong("max-orders"), help: "Most orders read from the trace.") var maxOrders = 2_000_000

    func run() async throws {
        guard compress > 0, stockPerSKU >= 0 else { throw ValidationError("--compress must be > 0 and --stock-per-sku ≥ 0") }
        let settings = try common.settings(connections: connections)
        let orders: [TraceOrder]
        if let trace {
            orders = try TraceFile.read(trace, ordersMax: maxOrders)
        } else {
            var generator = TraceGenerator(shape: TraceShape(), seed: common.seed)
            orders = Array(generator.generate().prefix(maxOrders))
        }
        let workload = Scenarios.promotionReplay(
            runID: settings.runID, trace: orders, compress: compress, stockPerSKU: stockPerSKU,
            model: closedLoop ? .closedLoop(concurrency: connections) : .openLoop)
        try await common.execute(
            workload, settings: settings,
            described: [
                "trace": trace ?? "generated (seed \(common.seed))", "orders": String(orders.count),
                "compress": String(compress), "stockPerSKU": String(stockPerSKU), "connections": String(connections),
                "model": closedLoop ? "closed-loop" : "open-loop",
            ])
    }
}

struct Steady: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "steady", abstract: "A constant arrival rate (open loop).")

    @OptionGroup var common: Common
    @Option(help: "Arrivals per second.") var rate = 500.0
    @Option(help: "Seconds to run.") var duration = 30.0
    @Option(help: "Connections.") var connections = 64
    @Option(help: "SKUs.") var skus = 20
    @Option(name: .customLong("stock-per-sku"), help: "Units per SKU, spread over every warehouse (default: more than the run can take).")
    var stockPerSKU: Int?

    func run() async throws {
        guard rate > 0, duration > 0, rate * duration <= 10_000_000, skus > 0, (stockPerSKU ?? 1) > 0 else {
            throw ValidationError("--rate, --duration and --stock-per-sku must be positive, at most 10,000,000 orders in all")
        }
        let settings = try common.settings(connections: connections)
        let workload = Scenarios.steady(
            runID: settings.runID, ratePerSecond: rate, seconds: duration, skus: skus, seed: common.seed, stockPerSKU: stockPerSKU)
        try await common.execute(
            workload, settings: settings,
            described: ["rate": String(rate), "duration": String(duration), "connections": String(connections), "skus": String(skus)])
    }
}

struct MakeTrace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-trace", abstract: "Generate a promotion-day trace: a midnight peak, zipfian SKUs, live-stream spikes.")

    @Option(help: "Output file (JSON lines).") var out = "promotion.trace.jsonl"
    @Option(help: "Seed.") var seed: UInt64 = 1
    @Option(help: "Hours covered; the peak falls in the middle.") var hours = 24.0
    @Option(help: "Baseline rate, orders per day.") var baseline = 8_000.0
    @Option(help: "Peak rate around 00:00, orders per day.") var peak = 42_000.0
    @Option(help: "SKUs (zipfian popularity).") var skus = 200
    @Option(help: "Live-stream spikes.") var spikes = 4
    @Option(name: .customLong("cancel-ratio")) var cancelRatio = 0.20
    @Option(name: .customLong("timeout-ratio")) var timeoutRatio = 0.03

    func run() async throws {
        guard hours > 0, hours <= 24 * 7, baseline >= 0, peak >= baseline, skus > 0, spikes >= 0,
            cancelRatio >= 0, timeoutRatio >= 0, cancelRatio + timeoutRatio <= 1
        else { throw ValidationError("check --hours, --baseline ≤ --peak, --skus and the ratios") }
        var shape = TraceShape()
        shape.hours = hours
        shape.peakAtHour = hours / 2
        shape.baselineOrdersPerDay = baseline
        shape.peakOrdersPerDay = peak
        shape.skus = skus
        shape.spikes = spikes
        shape.cancelRatio = cancelRatio
        shape.timeoutRatio = timeoutRatio
        var generator = TraceGenerator(shape: shape, seed: seed)
        let orders = generator.generate()
        try TraceFile.write(orders, to: out)
        print("wrote \(orders.count) orders over \(hours) h to \(out)")
    }
}

/// Checks a history file written by `--history` against the cluster as it stands now.
struct CheckHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-history",
        abstract: "Hold every answer in a history file (JSON lines from --history) to one serial history per reservation, against the holds the cluster reads now.")

    @Option(help: "The history file.") var history: String
    @Option(help: "A node's base URL, or several separated by commas.") var url = "http://127.0.0.1:7101"

    func run() async throws {
        var common = try Common.parse(["--url", url])
        common.history = nil
        let settings = try common.settings(connections: 1)
        let text = try String(contentsOfFile: history, encoding: .utf8)
        let (check, problems) = try HistoryCheck.read(lines: text.split(separator: "\n"))
        let runner = Runner(settings: settings)
        let reader = try await runner.connectPersistently(slot: 0, admin: true)
        let violations = try await runner.checkHistory(check, reader: reader) + problems
        await reader.connection.close()
        print("history: \(check.answers) answers about \(check.histories.count) reservations, \(violations.count) violations")
        for violation in violations.prefix(50) { print("VIOLATION: \(violation)") }
        if !violations.isEmpty { throw ExitCode(1) }
    }
}
