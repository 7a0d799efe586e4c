import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTPTypes
import StockadeCore

/// Open connections per client address, against `Limits.connectionsPerClientMax`: one client
/// cannot take every connection the server has.
final class ClientConnections: Sendable {
    let max: Int
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    init(max: Int) { self.max = max }

    /// Counts a new connection from `address`; false (and not counted) when it has `max` already.
    func admit(_ address: String) -> Bool {
        counts.withLockedValue { counts in
            let open = counts[address, default: 0]
            guard open < max else { return false }
            counts[address] = open + 1
            return true
        }
    }

    func release(_ address: String) {
        counts.withLockedValue { counts in
            let open = counts[address, default: 0] - 1
            counts[address] = open > 0 ? open : nil
        }
    }

    static func address(of channel: Channel) -> String { channel.remoteAddress?.ipAddress ?? "?" }

    /// The refusal's words, the same over HTTP and RESP.
    func refusal(_ address: String) -> StockadeError {
        StockadeError(.overloaded, "too many connections from \(address) (at most \(max)); retry later")
    }
}

/// First in an HTTP connection's pipeline: counts it against its client's bound, and past the
/// bound answers the first request `429 overloaded` with `Retry-After: 1` and closes.
final class ClientLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let connections: ClientConnections
    private var address: String?
    private var refused = false

    init(connections: ClientConnections) { self.connections = connections }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if address == nil && !refused { admit(context) }
        context.fireChannelActive()
    }

    /// Counts the connection; its slot is given back when the channel has closed, whichever way
    /// it closes (the close future, not this handler's events, which a pipeline change could skip).
    private func admit(_ context: ChannelHandlerContext) {
        let client = ClientConnections.address(of: context.channel)
        guard connections.admit(client) else {
            refused = true
            return
        }
        address = client
        let connections = self.connections
        context.channel.closeFuture.whenComplete { _ in connections.release(client) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard refused else { return context.fireChannelRead(data) }
        guard case .head = unwrapInboundIn(data) else { return }
        let (status, body) = ErrorBody.rendered(connections.refusal(ClientConnections.address(of: context.channel)))
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(body.readableBytes)
        fields[.retryAfter] = "1"
        fields[.connection] = "close"
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

}
