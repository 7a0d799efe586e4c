import ArgumentParser
import Foundation
import OrderPipeline
import StockadeClient
import StockadeCore

/// `stockade-orders`: marketplace order feeds → one order model → holds in Stockade.
@main
struct StockadeOrders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stockade-orders",
        abstract: "Turn marketplace order feeds into reservations: reserve on order, confirm on payment, release on cancel.",
        discussion: "Exit codes: 0 ok (exceptions are in the report); 1 a refusal, or calls still unanswered after their tries (run the ingest again); 2 usage error or refused token.",
        subcommands: [Ingest.self, Serve.self, Report.self, Orders.self, Generate.self])

    /// Runs the command with the documented exit codes, every failure one line on stderr.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch let error as StockadeError {
            FileHandle.standardError.write(Data("stockade-orders: \(error.code.rawValue): \(error.message)\n".utf8))
            Foundation.exit(error.code == .unauthorized || error.code == .forbidden ? 2 : 1)
        } catch let error as TransportError {
            FileHandle.standardError.write(Data("stockade-orders: \(error.description)\n".utf8))
            Foundation.exit(2)
        } catch {
            let code = exitCode(for: error)
            if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }  // said what it had to already
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("stockade-orders: \(message(for: error))\n".utf8))
            Foundation.exit(code == ExitCode(1) ? 1 : 2)
        }
    }
}

struct DataOption: ParsableArguments {
    @Option(name: .customLong("data-dir"), help: "Where the pipeline keeps its state (orders.db). Env: STOCKADE_ORDERS_DATA.")
    var dataDirectory: String?

    var path: String { dataDirectory ?? ProcessInfo.processInfo.environment["STOCKADE_ORDERS_DATA"] ?? "./orders-data" }
}

/// What decides an order's fate, the same for `ingest` and `serve`.
struct PolicyOptions: ParsableArguments {
    @Option(name: .customLong("ttl"), help: "How long a hold lasts unpaid, in seconds.") var ttlSeconds: Int64 = 900
    @Option(name: .customLong("freeze-window"), help: "Seconds after an order in which an address change rebooks its hold.") var freezeSeconds: Int64 = 15
    @Option(name: .customLong("presale"), help: "A pre-sale SKU and the units it may take beyond stock: sku=cap (repeatable).") var presale: [String] = []

    func policy() throws -> LifecyclePolicy {
        var policy = LifecyclePolicy()
        guard ttlSeconds > 0, freezeSeconds >= 0 else { throw ValidationError("--ttl must be positive and --freeze-window not negative") }
        policy.ttlSeconds = ttlSeconds
        policy.freezeWindowMs = freezeSeconds * 1000
        for entry in presale {
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2, let cap = Int64(parts[1]), cap >= 0 else { throw ValidationError("--presale takes sku=cap, not \(entry)") }
            policy.presaleCaps[String(parts[0])] = cap
        }
        return policy
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest JSON Lines feeds (any of the four channels; each line is recognised by its fields).")
    @OptionGroup var data: DataOption
    @Option(help: "The Stockade node: resp://, resps://, http:// or https://host:port. Env: STOCKADE_SERVER.") var server: String?
    @Option(help: "A checkout token. Env: STOCKADE_TOKEN.") var token: String?
    @Option(name: .customLong("ca-file"), help: "PEM authorities of a TLS node's certificate. Env: STOCKADE_CA_FILE.") var caFile: String?
    @Option(help: "Orders worked on at once.") var concurrency = Limits.Orders().concurrencyDefault
    @Option(help: "Connections to the node.") var connections = 8
    @OptionGroup var policyOptions: PolicyOptions
    @Flag(name: .customLong("no-progress"), help: "No progress bar.") var noProgress = false
    @Flag(help: "Print the summary as JSON.") var json = false
    @Argument(help: "Feed files (JSON Lines).") var files: [String]

    func run() async throws {
        let policy = try policyOptions.policy()
        let environment = ProcessInfo.processInfo.environment
        guard let token = token ?? environment["STOCKADE_TOKEN"] else { throw ValidationError("no token: pass --token or set STOCKADE_TOKEN") }
        let url = server ?? environment["STOCKADE_SERVER"] ?? "resp://127.0.0.1:7401"
        let client = try nodeClient(url, token: token, caFile: caFile ?? environment["STOCKADE_CA_FILE"], connections: connections)
        let store = try OrderStore(directory: data.path)
        var options = IngestOptions()
        options.concurrency = concurrency
        options.progress = !noProgress
        let ingestor = try Ingestor(store: store, client: client, policy: policy, options: options)
        let summary = try await ingestor.ingest(files)
        await client.close()
        let orders = try store.allOrders()
        var states: [String: Int] = [:]
        for order in orders { states[order.state.rawValue, default: 0] += 1 }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            struct Output: Encodable {
                var summary: IngestSummary
                var ordersPerSecond: Double
                var states: [String: Int]
            }
            print(String(decoding: try encoder.encode(Output(summary: summary, ordersPerSecond: summary.ordersPerSecond, states: states)), as: UTF8.self))
        } else {
            print(
                "\(summary.lines) lines, \(summary.events) updates of \(summary.orders) orders, \(summary.problems) bad lines; "
                    + "\(summary.calls) calls (\(summary.retries) retried), \(String(format: "%.1f", summary.seconds)) s, "
                    + "\(Int(summary.ordersPerSecond)) orders/s")
            print("orders now: " + states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        if summary.unresolved > 0 { throw ExitCode(1) }
    }
}

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exceptions: unpaid over 2 h, holds past their TTL, failed reservations, unknown statuses, bad lines, brushing.")
    @OptionGroup var data: DataOption
    @Flag(help: "As JSON.") var json = false
    @Option(help: "Judge ages at this UTC time in milliseconds (default: now).") var now: Int64?

    func run() async throws {
        let store = try OrderStore(directory: data.path)
        let report = ExceptionsReport.make(
            orders: try store.allOrders(), exceptions: try store.exceptions(), nowMs: now ?? Int64(Date().timeIntervalSince1970 * 1000))
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("\(report.orders) orders: " + report.states.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        func section(_ title: String, _ entries: [ExceptionsReport.Entry]) {
            print("\n\(title) (\(entries.count))")
            for entry in entries.prefix(50) {
                print("  " + [entry.order, entry.source].compactMap { $0 }.joined(separator: "  ") + "  " + entry.detail)
            }
            if entries.count > 50 { print("  … \(entries.count - 50) more (--json for all)") }
        }
        section("unpaid for more than 2 h", report.unpaid)
        section("holds past their TTL, unpaid", report.holdsPastTTL)
        section("failed reservations", report.failedReservations)
        section("unknown statuses", report.unknownStatuses)
        section("malformed lines", report.malformedLines)
        section("other exceptions", report.other)
        print("\nsuspected brushing (\(report.suspectedBrushing.count))")
        for suspect in report.suspectedBrushing.prefix(50) {
            print("  phone \(suspect.phone)  sku \(suspect.sku)  \(suspect.orders.joined(separator: ", "))  within \(suspect.spanSeconds) s")
        }
    }
}

struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The pipeline's orders, as JSON Lines (one normalized order per line).")
    @OptionGroup var data: DataOption
    @Option(help: "Only orders in this state.") var state: String?

    func run() async throws {
        let store = try OrderStore(directory: data.path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for order in try store.allOrders() where state == nil || order.state.rawValue == state {
            print(String(decoding: try encoder.encode(order), as: UTF8.self))
        }
    }
}

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a seeded peak day of orders, one JSON Lines file per channel (tmall.jsonl, pinduoduo.jsonl, douyin.jsonl, web.jsonl).")
    @Option(help: "Orders in the day.") var orders = 42_000
    @Option(help: "Distinct SKUs (sku-0000…).") var skus = 200
    @Option(help: "Seed.") var seed: UInt64 = 1111
    @Option(name: .customLong("out-dir"), help: "Directory for the files.") var outDirectory: String

    func run() async throws {
        var options = FeedGenerator.Options()
        options.orders = orders
        options.skus = skus
        options.seed = seed
        try FileManager.default.createDirectory(atPath: outDirectory, withIntermediateDirectories: true)
        for (channel, lines) in FeedGenerator.generate(options).sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let path = outDirectory + "/\(channel.rawValue).jsonl"
            try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
            print("\(path): \(lines.count) lines")
        }
    }
}


/// The client of the node at `url` (`host:port` means RESP); TLS for resps:// and https://,
/// checked against `caFile` (or the system's roots).
func nodeClient(_ url: String, token: String, caFile: String?, connections: Int) throws -> StockadeClient {
    try StockadeClient(
        url: url.contains("://") ? url : "resp://" + url, token: token, connections: connections,
        tls: StockadeClient.TLSOptions(caFile: caFile))
}
