import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import StockadeTLS

/// A response as the client saw it.
public struct HTTPClientResponse: Sendable {
    public var status: Int
    public var body: [UInt8]

    public var bodyString: String { String(decoding: body, as: UTF8.self) }

    public init(status: Int, body: [UInt8]) {
        self.status = status
        self.body = body
    }
}

/// A failure of the connection itself (not an HTTP error status).
public struct HTTPConnectionError: Error, CustomStringConvertible, Sendable {
    public var description: String
    /// False when the request certainly never left this process (the connection was already
    /// closed): the server did not see it, so retrying elsewhere cannot apply it twice.
    public var mayHaveBeenSent = true

    public init(description: String, mayHaveBeenSent: Bool = true) {
        self.description = description
        self.mayHaveBeenSent = mayHaveBeenSent
    }
}

/// One keep-alive HTTP/1.1 connection. Requests may be pipelined: answers come back in order.
///
/// Threading: safe to use from any task; requests are written on the channel's event loop.
public final class HTTPConnection: Sendable {
    let channel: Channel
    public let host: String
    public let port: Int

    init(channel: Channel, host: String, port: Int) {
        self.channel = channel
        self.host = host
        self.port = port
    }

    /// Opens a connection, over TLS when given a context (`StockadeTLS.clientContext`). `timeout`
    /// bounds the connect only; a failed TLS handshake fails the first request.
    public static func connect(
        host: String, port: Int, tls: NIOSSLContext? = nil, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        timeout: TimeAmount = .seconds(5)
    ) async throws -> HTTPConnection {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try StockadeTLS.clientHandler(tls, host: host)) }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: host, port: port).get()
        return HTTPConnection(channel: channel, host: host, port: port)
    }

    /// Sends one request and waits for its response. With a `timeout`, an unanswered request closes
    /// the connection (failing every request pipelined on it), since HTTP/1.1 cannot skip one answer.
    public func send(
        method: HTTPMethod, path: String, headers: [(String, String)] = [], body: [UInt8]? = nil,
        timeout: Duration? = nil
    ) async throws -> HTTPClientResponse {
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
        head.headers.add(name: "Host", value: "\(host):\(port)")
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        if let body {
            head.headers.add(name: "Content-Length", value: String(body.count))
            head.headers.add(name: "Content-Type", value: "application/json")
        } else if method == .POST || method == .PUT {
            head.headers.add(name: "Content-Length", value: "0")
        }
        let promise = channel.eventLoop.makePromise(of: HTTPClientResponse.self)
        let request = OutboundRequest(head: head, body: body.map { ByteBuffer(bytes: $0) }, promise: promise)
        channel.write(request, promise: promise, timeout: timeout) {
            HTTPConnectionError(description: "connection closed", mayHaveBeenSent: false)
        }
        return try await promise.futureResult.get()
    }

    public func close() async {
        try? await channel.close()
    }

    public var isActive: Bool { channel.isActive }
}

struct OutboundRequest {
    var head: HTTPRequestHead
    var body: ByteBuffer?
    var promise: EventLoopPromise<HTTPClientResponse>
}

/// Matches responses to requests in order, and fails every waiting request when the connection ends.
final class ResponseCollector: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = OutboundRequest
    typealias OutboundOut = HTTPClientRequestPart

    private var waiting = CircularBuffer<EventLoopPromise<HTTPClientResponse>>()
    private var status = 0
    private var body: [UInt8] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard context.channel.isActive else {
            request.promise.fail(HTTPConnectionError(description: "connection closed", mayHaveBeenSent: false))
            return
        }
        waiting.append(request.promise)
        context.write(wrapOutboundOut(.head(request.head)), promise: nil)
        if let body = request.body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body.removeAll(keepingCapacity: true)
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            if let promise = waiting.popFirst() {
                promise.succeed(HTTPClientResponse(status: status, body: body))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(HTTPConnectionError(description: "connection closed"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
    }
}

extension Channel {
    /// Writes a request whose handler completes `promise`, deciding on the event loop: once a
    /// channel has closed its pipeline is gone, so a write would never reach the handler and the
    /// promise would never complete; `closed()` fails it instead. While the channel is active the
    /// handler takes the request and fails it if the connection later closes. With a `timeout`,
    /// an unanswered request closes the connection: neither HTTP/1.1 nor RESP can skip one answer.
    func write<Request: Sendable, Answer: Sendable>(
        _ request: Request, promise: EventLoopPromise<Answer>, timeout: Duration?, closed: @escaping @Sendable () -> any Error
    ) {
        eventLoop.execute { [self] in
            guard isActive else { return promise.fail(closed()) }
            writeAndFlush(request, promise: nil)
            if let timeout {
                let nanoseconds = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                let deadline = eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) { self.close(promise: nil) }
                promise.futureResult.whenComplete { _ in deadline.cancel() }
            }
        }
    }
}
