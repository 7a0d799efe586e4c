import ArgumentParser
import Foundation
import Hummingbird
import OrderPipeline
import StockadeClient
import StockadeCore

/// The webhook: channels POST one order update each. An update is answered `202` only once it is
/// in the inbox on disk (fsynced); a worker then runs the inbox through the same lifecycle as
/// `ingest`. A line that does not read is answered `400` (`malformed`) or `422`
/// (`unknown_status`) and noted as an exception, so nothing is dropped unseen.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Accept order updates over HTTP: POST /v1/orders, one channel JSON object per request.")
    @OptionGroup var data: DataOption
    @Option(help: "Listen on host:port (port 0 picks one).") var http = "127.0.0.1:7600"
    @Option(help: "The Stockade node. Env: STOCKADE_SERVER.") var server: String?
    @Option(help: "A checkout token. Env: STOCKADE_TOKEN.") var token: String?
    @Option(name: .customLong("ca-file"), help: "PEM authorities of a TLS node's certificate. Env: STOCKADE_CA_FILE.") var caFile: String?
    @Option(name: .customLong("ready-file"), help: "Write the bound port here once listening.") var readyFile: String?
    @Option(help: "Orders worked on at once.") var concurrency = Limits.Orders().concurrencyDefault
    @OptionGroup var policyOptions: PolicyOptions

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let token = token ?? environment["STOCKADE_TOKEN"] else { throw ValidationError("no token: pass --token or set STOCKADE_TOKEN") }
        let url = server ?? environment["STOCKADE_SERVER"] ?? "resp://127.0.0.1:7401"
        let parts = http.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("--http takes host:port") }
        let policy = try policyOptions.policy()
        let store = try OrderStore(directory: data.path, durable: true)
        let client = try nodeClient(url, token: token, caFile: caFile ?? environment["STOCKADE_CA_FILE"], connections: 8)
        var options = IngestOptions()
        options.concurrency = concurrency
        let ingestor = try Ingestor(store: store, client: client, policy: policy, options: options)
        let limits = options.limits
        let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

        let router = Router()
        router.get("/healthz") { _, _ in "ok" }
        router.post("/v1/orders") { request, _ -> Response in
            let body = try await request.body.collect(upTo: limits.webhookBodyBytesMax)
            let line = Data(buffer: body)
            do {
                let event = try ChannelAdapter.event(nil, line: line)
                let seq = try store.accept(String(decoding: line, as: UTF8.self))
                wake.continuation.yield()
                return Self.json(.accepted, ["accepted": event.key, "inbox": "\(seq)"])
            } catch let problem as FeedProblem {
                let source = "webhook:refused-\(Int64(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max))"
                try store.save(orders: [], exceptions: [OrderException(problem, source: source)])
                return Self.json(
                    problem.kind == .malformed ? .badRequest : .unprocessableContent,
                    ["error": ["code": problem.kind.rawValue, "message": problem.reason]])
            }
        }
        var configuration = ApplicationConfiguration(address: .hostname(String(parts[0]), port: port))
        configuration.serverName = "stockade-orders"
        let readyFile = readyFile
        let app = Application(
            router: router, configuration: configuration,
            onServerRunning: { channel in
                if let readyFile, let bound = channel.localAddress?.port { try? "\(bound)".write(toFile: readyFile, atomically: true, encoding: .utf8) }
            })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            group.addTask {
                // The worker: drains the inbox whenever something arrives (and once at start, for
                // what a previous run accepted and did not finish).
                var iterator = wake.stream.makeAsyncIterator()
                while !Task.isCancelled {
                    let batch = try store.inbox(limit: limits.inboxBatchMax)
                    if batch.isEmpty {
                        _ = await iterator.next()
                        continue
                    }
                    let items = batch.map { entry in
                        FeedItem(
                            source: "webhook:\(entry.seq)",
                            result: Result { () throws(FeedProblem) -> OrderEvent in try ChannelAdapter.event(nil, line: Data(entry.body.utf8)) })
                    }
                    _ = try await ingestor.process(items)
                    try store.markProcessed(batch.map(\.seq))
                }
            }
            try await group.next()
            group.cancelAll()
        }
        await client.close()
    }

    /// A JSON answer; refusals are `{"error": {"code", "message"}}`, as Stockade's own.
    static func json(_ status: HTTPResponse.Status, _ fields: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data()
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
