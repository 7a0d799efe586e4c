import NIOCore
import NIOPosix
import NIOSSL
import RESP
import StockadeTLS

/// One RESP3 connection to a Stockade node (or any RESP server). Commands may be pipelined:
/// replies come back in order.
///
/// Threading: safe to use from any task; commands are written on the channel's event loop.
public final class RESPConnection: Sendable {
    let channel: Channel
    public let host: String
    public let port: Int

    /// Replies a client accepts: generous, but bounded like everything else.
    public static let parserLimits = RESPParserLimits(
        bulkBytesMax: 64 << 20, aggregateLengthMax: 1 << 20, depthMax: 32, lineBytesMax: 1 << 20)

    init(channel: Channel, host: String, port: Int) {
        self.channel = channel
        self.host = host
        self.port = port
    }

    /// Opens a connection (over TLS when given a context, `StockadeTLS.clientContext`) and, with a
    /// token, authenticates it and switches it to RESP3 (`HELLO 3 AUTH default <token>`).
    /// `timeout` bounds the connect and the handshake.
    public static func connect(
        host: String, port: Int, token: String?, tls: NIOSSLContext? = nil,
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, timeout: TimeAmount = .seconds(5)
    ) async throws -> RESPConnection {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try StockadeTLS.clientHandler(tls, host: host)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPValueDecoder(limits: parserLimits)))
                    try channel.pipeline.syncOperations.addHandler(RESPReplyCollector())
                }
            }
            .connect(host: host, port: port).get()
        let connection = RESPConnection(channel: channel, host: host, port: port)
        if let token {
            let hello = try await connection.send(["HELLO", "3", "AUTH", "default", token], timeout: .nanoseconds(timeout.nanoseconds))
            if case .error(let message) = hello {
                await connection.close()
                throw TransportError(description: "\(host):\(port) refused the handshake: \(message)", mayHaveBeenSent: false)
            }
        }
        return connection
    }

    /// Sends one command and waits for its reply (an error reply is returned, not thrown). With a
    /// `timeout`, an unanswered command closes the connection, failing every command pipelined on it.
    public func send(_ words: [String], timeout: Duration? = nil) async throws -> RESPValue {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let command = OutboundCommand(bytes: RESPValue.command(words).encoded(version: .resp2), promise: promise)
        channel.write(command, promise: promise, timeout: timeout) {
            TransportError(description: "connection closed", mayHaveBeenSent: false)
        }
        return try await promise.futureResult.get()
    }

    public func close() async {
        try? await channel.close()
    }

    public var isActive: Bool { channel.isActive }
}

/// A failure of the connection itself, not an answer from the server.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// False when the request certainly never left this process: retrying cannot apply it twice.
    public var mayHaveBeenSent = true

    public init(description: String, mayHaveBeenSent: Bool = true) {
        self.description = description
        self.mayHaveBeenSent = mayHaveBeenSent
    }
}

struct OutboundCommand {
    var bytes: ByteBuffer
    var promise: EventLoopPromise<RESPValue>
}

/// Matches replies to commands in order (skipping RESP3 pushes), and fails every waiting command
/// when the connection ends.
final class RESPReplyCollector: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = OutboundCommand
    typealias OutboundOut = ByteBuffer

    private var waiting = CircularBuffer<EventLoopPromise<RESPValue>>()

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let command = unwrapOutboundIn(data)
        guard context.channel.isActive else {
            command.promise.fail(TransportError(description: "connection closed", mayHaveBeenSent: false))
            return
        }
        waiting.append(command.promise)
        context.write(wrapOutboundOut(command.bytes), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        if case .push = value { return }
        waiting.popFirst()?.succeed(value)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(TransportError(description: "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(TransportError(description: "\(error)"))
        context.close(promise: nil)
    }

    private func failAll(_ error: Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

extension RESPConnection {
    /// Sends a Stockade command and returns its answer in the HTTP API's shape: the status the
    /// HTTP API would have answered (200 for any success) and the JSON body, so that code
    /// written against HTTP answers reads RESP ones unchanged.
    public func exchange(_ words: [String], timeout: Duration? = nil) async throws -> (status: Int, body: [UInt8]) {
        let reply = try await send(words, timeout: timeout)
        if case .error(let text) = reply {
            let refusal = ClientJSON.refusal(fromRESP: text)
            var body: [UInt8] = []
            ClientJSON.write(
                .map([RESPPair("error", .map([RESPPair("code", .bulk(refusal.code.rawValue)), RESPPair("message", .bulk(refusal.message))]))]),
                into: &body)
            return (refusal.code.httpStatus, body)
        }
        var body: [UInt8] = []
        ClientJSON.write(reply, into: &body)
        return (200, body)
    }
}
