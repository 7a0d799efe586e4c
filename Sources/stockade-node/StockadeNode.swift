import API
import ArgumentParser
import Cluster
import Consensus
import Foundation
import HotStock
import Hummingbird
import HummingbirdCore
import Ledger
import Logging
import Metrics
import NIOCore
import NIOPosix
import Node
import Prometheus
import ServiceLifecycle
import StockadeCore

/// `stockade-node`: runs one Stockade node.
@main
struct StockadeNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stockade-node", abstract: "Run a Stockade inventory-reservation node.", subcommands: [HashToken.self])

    @Option(help: "Path to a JSON config file.")
    var config: String?

    @Flag(help: "Start a development node with the built-in four-warehouse demo layout and dev tokens.")
    var dev = false

    @Option(name: .customLong("data-dir"), help: "Directory for the command log and snapshots.")
    var dataDir: String?

    @Option(help: "HTTP listen address, host:port (port 0 picks a free port).")
    var http: String?

    @Option(help: "RESP (TCP API) listen address, host:port (port 0 picks a free port); off unless given here or as resp in the config.")
    var resp: String?

    @Option(name: .customLong("ready-file"), help: "Write the bound HTTP port to this file once listening (and the RESP port to FILE.resp).")
    var readyFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String?

    @Option(name: .customLong("snapshot-interval"), help: "Log entries between snapshots.")
    var snapshotInterval: Int?

    @Option(name: .customLong("event-loop-threads"), help: "SwiftNIO event-loop threads (default: one per core).")
    var eventLoopThreads: Int?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve HTTP, RESP and peers over TLS (with --tls-key).")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: "PEM authorities of the nodes' certificates; peers must then present one.")
    var tlsCA: String?

    func run() async throws {
        var file = try config.map(NodeConfiguration.load(path:)) ?? NodeConfiguration()
        if dev && (file.warehouses ?? []).isEmpty { file.warehouses = NodeConfiguration.devWarehouses }
        if let threads = try Self.checked(eventLoopThreads ?? file.eventLoopThreads, "eventLoopThreads", in: 1...256) {
            // Must happen before anything touches the shared event-loop group.
            NIOSingletons.groupLoopCountSuggestion = threads
        }
        let level = Logger.Level(rawValue: logLevel ?? file.logLevel ?? "info") ?? .info
        LoggingSystem.bootstrap { JSONLogHandler(label: $0, level: level) }
        var logger = Logger(label: "stockade")
        logger[metadataKey: "node"] = "\(file.nodeId ?? "n1")"

        guard let dataDirectory = dataDir ?? file.dataDir else {
            throw ConfigurationError("a data directory is needed: --data-dir or dataDir in the config")
        }
        let address = try parseAddress(http ?? file.http ?? "127.0.0.1:7101")
        let warehouses = try file.resolvedWarehouses()
        guard !warehouses.isEmpty else {
            throw ConfigurationError("no warehouses configured: give a config file with warehouses, or --dev")
        }
        if let problem = Validation.warehouses(warehouses, limits: file.resolvedLimits()) {
            throw ConfigurationError("warehouses: \(problem.message)")
        }
        var limits = file.resolvedLimits()
        if let snapshotInterval { limits.snapshotIntervalEntries = snapshotInterval }
        let problems = limits.violations()
        guard problems.isEmpty else { throw ConfigurationError("limits: \(problems.joined(separator: "; "))") }

        switch (tlsCert, tlsKey) {
        case (let certificate?, let key?):
            var section = file.tls ?? NodeConfiguration.TLSSection(certificateFile: certificate, keyFile: key)
            section.certificateFile = certificate
            section.keyFile = key
            if let tlsCA { section.caFile = tlsCA }
            file.tls = section
        case (nil, nil):
            if let tlsCA { file.tls?.caFile = tlsCA }
        default: throw ConfigurationError("--tls-cert and --tls-key go together")
        }
        let tls = try file.tls.map(NodeTLS.init) ?? NodeTLS()
        if tls.http == nil && !NodeTLS.isLoopback(address.host) {
            logger.warning("HTTP listens in plaintext beyond loopback; configure tls", metadata: ["host": "\(address.host)"])
        }

        let environment = ProcessInfo.processInfo.environment
        var adminTokens = file.tokens?.admin ?? []
        var checkoutTokens = file.tokens?.checkout ?? []
        let configured = adminTokens + checkoutTokens
        if let problem = TokenAuthenticator.problems(in: configured).first { throw ConfigurationError("tokens: \(problem)") }
        if configured.contains(where: { !$0.hasPrefix(TokenAuthenticator.digestPrefix) }) {
            logger.warning("the config holds a plain token; store its digest instead (stockade-node hash-token)")
        }
        if let token = environment["STOCKADE_ADMIN_TOKEN"], !token.isEmpty { adminTokens.append(token) }
        if let token = environment["STOCKADE_CHECKOUT_TOKEN"], !token.isEmpty { checkoutTokens.append(token) }
        if dev && adminTokens.isEmpty { adminTokens = ["dev-admin-token"] }
        if dev && checkoutTokens.isEmpty { checkoutTokens = ["dev-checkout-token"] }
        guard !adminTokens.isEmpty else {
            throw ConfigurationError("no admin token: set STOCKADE_ADMIN_TOKEN or tokens.admin in the config")
        }
        if dev { logger.warning("development mode: demo layout, dev tokens unless set in the environment") }

        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [
            "stockade_reservation_duration_seconds": [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000].map { .microseconds(Int64($0 * 1000)) },
            "stockade_fsync_duration_seconds": [0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 100].map { .microseconds(Int64($0 * 1000)) },
        ]
        factory.valueHistogramBuckets = ["stockade_commit_batch_size": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]]
        MetricsSystem.bootstrap(factory)

        let nodeName = file.nodeId ?? "n1"
        let replica: any ReplicatedLedger
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        var routing: ClusterRouting?
        if let section = file.cluster {
            let setup = try ClusterSetup(
                section: section, nodeName: nodeName, dataDirectory: dataDirectory, warehouses: warehouses, limits: limits,
                environment: environment, tls: tls, logger: logger, metrics: ReplicaMetrics(factory: factory))
            replica = setup.replica
            routing = setup.routing
            services = [.init(service: setup.replica), .init(service: setup.transport)]
        } else if environment["STOCKADE_ONE_VOTER"] == "1" {
            let single = try ClusterReplica(
                configuration: .init(nodeID: 1, voters: [1], dataDirectory: dataDirectory, warehouses: warehouses, limits: limits),
                logger: logger, metrics: ReplicaMetrics(factory: factory))
            replica = single
            services = [.init(service: single)]
        } else {
            let single = try Replica(
                configuration: .init(dataDirectory: dataDirectory, warehouses: warehouses, limits: limits),
                logger: logger, metrics: ReplicaMetrics(factory: factory))
            replica = single
            services = [.init(service: single)]
        }
        var cache: HotPath?
        if let section = file.redis {
            let hotPath = try Self.hotPath(
                section, replica: replica, nodeName: nodeName, environment: environment, logger: logger, factory: factory)
            services.append(.init(service: HotStockService(hotPath: hotPath)))
            cache = hotPath
        }
        let api = StockadeAPI(
            replica: replica, authenticator: TokenAuthenticator(adminTokens: adminTokens, checkoutTokens: checkoutTokens),
            metrics: APIMetrics(factory: factory), renderMetrics: { registry.emitToString() }, cluster: routing,
            nodeName: nodeName, cache: cache)
        let readyFile = self.readyFile
        let startupLogger = logger
        let application = Application(
            router: api.buildRouter(),
            server: try api.server(serverName: "stockade", tls: tls.http),
            configuration: ApplicationConfiguration(
                address: .hostname(address.host, port: address.port), serverName: "stockade",
                availableConnectionsDelegate: MaximumAvailableConnections(limits.connectionsMax)),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? 0
                startupLogger.info("http listening", metadata: ["host": "\(address.host)", "port": "\(port)"])
                if let readyFile {
                    try? "\(port)\n".write(toFile: readyFile, atomically: true, encoding: .utf8)
                }
            },
            logger: logger)
        var respServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let respAddress = try (resp ?? file.resp).map(parseAddress) {
            // Listed last: graceful shutdown stops it first, while the replica still commits.
            respServices.append(
                .init(
                    service: RESPServer(
                        api: api, host: respAddress.host, port: respAddress.port, tls: tls.resp, logger: logger,
                        onListening: { port in
                            if let readyFile { try? "\(port)\n".write(toFile: readyFile + ".resp", atomically: true, encoding: .utf8) }
                        })))
        }
        let expiry = ExpiryService(replica: replica, tickMs: file.expiryTickMs ?? 250, logger: logger)
        // Graceful shutdown runs in reverse: RESP and HTTP stop first, then expiry, then the replica drains its queue.
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services + [.init(service: expiry), .init(service: application)] + respServices,
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("stopped")
    }

    static func hotPath(
        _ section: NodeConfiguration.RedisSection, replica: any ReplicatedLedger, nodeName: String,
        environment: [String: String], logger: Logger, factory: MetricsFactory
    ) throws -> HotPath {
        var password = environment["STOCKADE_REDIS_PASSWORD"]
        if password == nil || password!.isEmpty, let file = section.passwordFile {
            do {
                password = try String(contentsOfFile: file, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw ConfigurationError("cannot read redis.passwordFile \(file): \(error)")
            }
        }
        var redis = RedisConfiguration(
            host: section.host ?? "127.0.0.1", port: section.port ?? 7300, username: section.username, password: password)
        redis.connections = try checked(section.connections, "redis.connections", in: 1...64) ?? redis.connections
        if let timeout = try checked(section.commandTimeoutMs, "redis.commandTimeoutMs", in: 10...60_000) {
            redis.commandTimeout = .milliseconds(timeout)
        }
        var hot = HotPathConfiguration()
        hot.consumerName = nodeName
        hot.hotThresholdPerSecond =
            try checked(section.hotThresholdPerSecond, "redis.hotThresholdPerSecond", atLeast: 0) ?? hot.hotThresholdPerSecond
        hot.coolSeconds = try checked(section.coolSeconds, "redis.coolSeconds", atLeast: 1) ?? hot.coolSeconds
        hot.chunkPercent = try checked(section.chunkPercent, "redis.chunkPercent", in: 1...100) ?? hot.chunkPercent
        hot.chunkUnitsMin = try checked(section.chunkMin, "redis.chunkMin", atLeast: 1) ?? hot.chunkUnitsMin
        hot.chunkUnitsMax = try checked(section.chunkMax, "redis.chunkMax", atLeast: 1) ?? hot.chunkUnitsMax
        hot.chunkSeconds = try checked(section.chunkSeconds, "redis.chunkSeconds", in: 1...3_600) ?? hot.chunkSeconds
        hot.lowWaterPercent = try checked(section.lowWaterPercent, "redis.lowWaterPercent", in: 1...100) ?? hot.lowWaterPercent
        hot.backlogRecordsMax = try checked(section.backlogMax, "redis.backlogMax", atLeast: 1) ?? hot.backlogRecordsMax
        hot.claimIdleMs = try checked(section.claimIdleMs, "redis.claimIdleMs", atLeast: 100) ?? hot.claimIdleMs
        // The `redis` section's chunkMin, chunkMax and backlogMax set `Limits.HotPath`'s
        // chunkUnitsMin, chunkUnitsMax and backlogRecordsMax.
        let problems = hot.limits.violations()
        guard problems.isEmpty else { throw ConfigurationError("redis: \(problems.joined(separator: "; "))") }
        #if DEBUG
        if let delay = environment["STOCKADE_DEBUG_ACK_DELAY_MS"].flatMap(Int.init) { hot.debugAckDelayMs = delay }
        #endif
        return HotPath(
            redis: RedisClient(configuration: redis, logger: logger), replica: replica, configuration: hot, logger: logger,
            metrics: factory)
    }

    /// A config value, if given, after checking it lies in `range`.
    static func checked<T: Comparable>(_ value: T?, _ name: String, in range: ClosedRange<T>) throws -> T? {
        guard let value else { return nil }
        guard range.contains(value) else {
            throw ConfigurationError("\(name) must be in \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// A config value, if given, after checking it is at least `lower`.
    static func checked<T: Comparable>(_ value: T?, _ name: String, atLeast lower: T) throws -> T? {
        guard let value else { return nil }
        guard value >= lower else { throw ConfigurationError("\(name) must be ≥ \(lower)") }
        return value
    }
}

/// `stockade-node hash-token`: the config entry for a token, `sha256:<hex>`, so the config holds
/// no token in the clear. Reads the token from stdin when not given (keeping it out of the shell's
/// history).
struct HashToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-token", abstract: "Print a token's config entry (sha256:…) for tokens.admin or tokens.checkout.")

    @Argument(help: "The token; read from stdin when left out.") var token: String?

    func run() throws {
        guard let token = token ?? readLine(strippingNewline: true), !token.isEmpty else {
            throw ValidationError("give a token, as an argument or on stdin")
        }
        print(TokenAuthenticator.configEntry(for: token))
    }
}
