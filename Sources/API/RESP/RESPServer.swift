import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RESP
import ServiceLifecycle
import StockadeCore

/// The TCP API: RESP2/RESP3 on its own port, so any Redis client can reserve (docs/resp.md).
public struct RESPServer: Service {
    /// The Redis version clients are told (`HELLO`, `INFO`): the command set and replies they may
    /// expect, not Stockade's own version.
    static let protocolVersion = "7.2.0"
    static let stockadeVersion = "0.9.0"

    let api: StockadeAPI
    let host: String
    let port: Int
    let onListening: @Sendable (Int) -> Void
    let logger: Logger
    /// How long shutdown waits for connections to answer what they read.
    let shutdownGrace: Duration
    /// TLS (`StockadeTLS.serverContext`); nil: plaintext.
    let tls: NIOSSLContext?

    public init(
        api: StockadeAPI, host: String, port: Int, shutdownGrace: Duration = .seconds(5), tls: NIOSSLContext? = nil,
        logger: Logger, onListening: @escaping @Sendable (Int) -> Void = { _ in }
    ) {
        self.tls = tls
        self.api = api
        self.host = host
        self.port = port
        self.shutdownGrace = shutdownGrace
        self.logger = logger
        self.onListening = onListening
    }

    /// Open connections, for the limit and for shutdown.
    final class Connections: Sendable {
        private struct State {
            var nextID: Int64 = 0
            var open: [ObjectIdentifier: Channel] = [:]
        }
        private let state = NIOLockedValueBox(State())

        /// Registers `channel` and returns its id, or nil when `max` are open already.
        func admit(_ channel: Channel, max: Int) -> Int64? {
            state.withLockedValue { state in
                guard state.open.count < max else { return nil }
                state.nextID += 1
                state.open[ObjectIdentifier(channel)] = channel
                return state.nextID
            }
        }

        func remove(_ channel: Channel) {
            _ = state.withLockedValue { $0.open.removeValue(forKey: ObjectIdentifier(channel)) }
        }

        var all: [Channel] { state.withLockedValue { Array($0.open.values) } }
    }

    public func run() async throws {
        let connections = Connections()
        let limits = api.limits
        let parserLimits = RESPParserLimits(
            bulkBytesMax: limits.respBulkBytesMax, aggregateLengthMax: limits.respArgumentsMax, depthMax: 1,
            lineBytesMax: limits.respLineBytesMax)
        let authenticator = api.authenticator
        let clients = api.respClients
        let api = self.api
        let startedAt = ContinuousClock.now
        let boundPort = NIOLockedValueBox(port)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelOption(.autoRead, value: true)
            .childChannelInitializer { [tls] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    let client = ClientConnections.address(of: channel)
                    guard clients.admit(client) else {
                        let refusal = clients.refusal(client)
                        try channel.pipeline.syncOperations.addHandler(
                            RESPRefusingHandler(message: "\(refusal.code.rawValue.uppercased()) \(refusal.message)"))
                        return
                    }
                    guard let id = connections.admit(channel, max: limits.respConnectionsMax) else {
                        clients.release(client)
                        try channel.pipeline.syncOperations.addHandler(RESPRefusingHandler())
                        return
                    }
                    channel.closeFuture.whenComplete { _ in
                        connections.remove(channel)
                        clients.release(client)
                    }
                    let identity = RESPConnectionStateMachine.Identity(
                        id: id, peer: channel.remoteAddress.map(Self.describe) ?? "?",
                        local: channel.localAddress.map(Self.describe) ?? "?")
                    let machine = RESPConnectionStateMachine(
                        identity: identity, limits: limits, serverVersion: Self.protocolVersion,
                        authenticate: { authenticator.role(forToken: $0) })
                    let executor = RESPExecutor(
                        api: api, facts: .init(port: boundPort.withLockedValue { $0 }, startedAt: startedAt))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPCommandDecoder(limits: parserLimits)))
                    try channel.pipeline.syncOperations.addHandler(RESPServerHandler(machine: machine, executor: executor))
                }
            }
            .bind(host: host, port: port).get()
        let actualPort = server.localAddress?.port ?? port
        boundPort.withLockedValue { $0 = actualPort }
        logger.info("resp listening", metadata: ["host": "\(host)", "port": "\(actualPort)"])
        onListening(actualPort)
        let grace = shutdownGrace
        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onGracefulShutdown: {
            server.close(promise: nil)
        }
        // Connections answer what they have read, then close; past the grace they are closed.
        for channel in connections.all { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        let deadline = ContinuousClock.now + grace
        while !connections.all.isEmpty && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for channel in connections.all { try? await channel.close() }
    }

    static func describe(_ address: SocketAddress) -> String {
        "\(address.ipAddress ?? "?"):\(address.port ?? 0)"
    }
}
