import Consensus
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import StockadeTLS
import ServiceLifecycle
import StockadeCore
import Wire

/// TCP between cluster peers: `PeerFrame`s (length-prefixed, versioned, bounded), authenticated
/// with an HMAC challenge over the shared cluster secret.
///
/// Each node dials every peer and sends its messages only over the connection it dialled; it
/// receives over the connections peers dialled to it. A link that drops is redialled with
/// exponential backoff and jitter. Messages to a peer that is not connected, or whose socket is
/// backed up, are dropped: the protocol tolerates loss and resends.
///
/// Threading: `send` may be called from any thread; connection state is guarded by a lock per link.
public final class PeerTransport: Service, @unchecked Sendable {
    public struct Peer: Sendable {
        public var id: NodeID
        public var host: String
        public var port: Int
        public init(id: NodeID, host: String, port: Int) {
            self.id = id
            self.host = host
            self.port = port
        }
    }

    public let nodeID: NodeID
    let listenHost: String
    let listenPort: Int
    let peers: [Peer]
    let secret: [UInt8]
    let group: EventLoopGroup
    let logger: Logger
    let deliver: @Sendable (Envelope) -> Void
    let forwarding: Forwarding
    let links: [NodeID: PeerLink]
    /// Inbound connections at once; beyond it new ones are closed.
    let inboundConnectionsMax: Int
    let inboundCount = NIOLockedValueBox(0)
    /// Each peer's authenticated inbound connection. A peer keeps one outbound link at a time, so
    /// when it authenticates a new one, the one before is stale (its far end gave up on it) and
    /// is closed.
    let inbound = NIOLockedValueBox<[NodeID: Channel]>([:])
    /// TLS on peer links: the listener's context (which may demand a client certificate) and the
    /// dialler's. Both nil: plaintext, authenticated by the shared-secret handshake alone.
    let tls: PeerTLS?
    private let serverChannel = NIOLockedValueBox<Channel?>(nil)
    private let boundPort = NIOLockedValueBox<Int?>(nil)

    public init(
        nodeID: NodeID, listenHost: String, listenPort: Int, peers: [Peer], secret: [UInt8],
        group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger,
        deliver: @escaping @Sendable (Envelope) -> Void, forwarding: Forwarding = Forwarding(), tls: PeerTLS? = nil
    ) {
        self.tls = tls
        self.forwarding = forwarding
        self.nodeID = nodeID
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.peers = peers
        self.secret = secret
        self.group = group
        self.logger = logger
        self.deliver = deliver
        inboundConnectionsMax = max(8, peers.count * 4)
        links = Dictionary(uniqueKeysWithValues: peers.map { ($0.id, PeerLink(peer: $0)) })
    }

    /// Where forwarded commands, their answers and clock readings go.
    public struct Forwarding: Sendable {
        public var onForward: @Sendable (_ from: NodeID, _ requestID: UInt64, _ commands: [[UInt8]]) -> Void
        public var onReply: @Sendable (_ requestID: UInt64, _ appliedIndex: UInt64, _ outcomes: [[UInt8]]) -> Void
        public var onClock: @Sendable (_ from: NodeID, _ ping: ClockPing) -> Void
        public init(
            onForward: @escaping @Sendable (NodeID, UInt64, [[UInt8]]) -> Void = { _, _, _ in },
            onReply: @escaping @Sendable (UInt64, UInt64, [[UInt8]]) -> Void = { _, _, _ in },
            onClock: @escaping @Sendable (NodeID, ClockPing) -> Void = { _, _ in }
        ) {
            self.onForward = onForward
            self.onReply = onReply
            self.onClock = onClock
        }
    }

    /// Sends one frame to `peer`. False if the link is down or backed up: it certainly was not sent.
    @discardableResult
    public func send(_ frame: PeerFrame, to peer: NodeID) -> Bool {
        guard let channel = links[peer]?.channel.withLockedValue({ $0 }), channel.isWritable else { return false }
        channel.writeAndFlush(frame, promise: nil)
        return true
    }

    /// The port the peer listener is bound to, once it is.
    public var port: Int? { boundPort.withLockedValue { $0 } }

    /// Sends envelopes to their peers; drops those whose link is down or full.
    public func send(_ envelopes: [Envelope]) {
        var byPeer: [NodeID: [PeerFrame]] = [:]
        for envelope in envelopes { byPeer[envelope.to, default: []].append(.raft(envelope)) }
        for (peer, frames) in byPeer {
            guard let channel = links[peer]?.channel.withLockedValue({ $0 }), channel.isWritable else { continue }
            channel.eventLoop.execute {
                for frame in frames { channel.write(frame, promise: nil) }
                channel.flush()
            }
        }
    }

    // MARK: - Service

    public func run() async throws {
        let server = try await bind()
        serverChannel.withLockedValue { $0 = server }
        boundPort.withLockedValue { $0 = server.localAddress?.port }
        logger.info("peer listener up", metadata: ["host": "\(listenHost)", "port": "\(server.localAddress?.port ?? 0)"])
        await withDiscardingTaskGroup { tasks in
            for link in links.values {
                tasks.addTask { await self.maintain(link) }
            }
            tasks.addTask {
                // Ends on graceful shutdown, and also on cancellation (the group cancels its other
                // services when one fails): waiting on the close future does not notice that.
                await withTaskCancellationHandler {
                    await withGracefulShutdownHandler {
                        try? await server.closeFuture.get()
                    } onGracefulShutdown: {
                        server.close(promise: nil)
                    }
                } onCancel: {
                    server.close(promise: nil)
                }
                for link in self.links.values {
                    link.stopped.withLockedValue { $0 = true }
                    link.channel.withLockedValue { $0 }?.close(promise: nil)
                }
            }
        }
    }

    private func bind() async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(Self.userTimeout, value: Self.userTimeoutMs)
            .childChannelOption(.socketOption(.so_keepalive), value: 1)
            .childChannelOption(Self.keepIdle, value: Self.keepIdleSeconds)
            .childChannelOption(Self.keepInterval, value: 1)
            .childChannelOption(Self.keepCount, value: 3)
            .childChannelInitializer { [self] channel in
                let admitted = inboundCount.withLockedValue { count -> Bool in
                    guard count < inboundConnectionsMax else { return false }
                    count += 1
                    return true
                }
                guard admitted else {
                    logger.warning("refusing peer connection: too many", metadata: ["max": "\(inboundConnectionsMax)"])
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in
                    self.inboundCount.withLockedValue { $0 -= 1 }
                    self.inbound.withLockedValue { inbound in
                        for (peer, current) in inbound where current === channel { inbound[peer] = nil }
                    }
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.server)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(PeerFrameEncoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        AcceptorHandler(
                            nodeID: nodeID, voters: Set(peers.map(\.id)), secret: secret, logger: logger, deliver: deliver,
                            forwarding: forwarding, onAuthenticated: { [self] peer, channel in self.adopt(channel, from: peer) }))
                }
            }
            .bind(host: listenHost, port: listenPort).get()
    }

    /// Records `channel` as `peer`'s inbound connection and closes the one before it, if open.
    func adopt(_ channel: Channel, from peer: NodeID) {
        let stale = inbound.withLockedValue { inbound -> Channel? in
            defer { inbound[peer] = channel }
            guard let previous = inbound[peer], previous !== channel else { return nil }
            return previous
        }
        guard let stale else { return }
        stale.close(promise: nil)
        logger.info("closed a stale inbound connection", metadata: ["peer": "n\(peer)"])
    }

    /// Keepalive probes on idle peer connections. Inbound peer connections only carry what the
    /// peer sends, so without them a connection whose far end went away unseen (its RST lost in a
    /// partition, its node killed while cut off) stays open here forever, holding one of the
    /// `inboundConnectionsMax` slots. Once every slot is held so, the node refuses its peers and
    /// is cut off for good (seen in scripts/soak.sh after a one-way partition). With probes after
    /// 2 s idle, 1 s apart, 3 unanswered (or answered with RST), such a connection closes.
    static let keepIdleSeconds: SocketOptionValue = 2
    static let keepIdle = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 4))  // TCP_KEEPIDLE
    static let keepInterval = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 5))  // TCP_KEEPINTVL
    static let keepCount = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 6))  // TCP_KEEPCNT

    /// A peer connection whose sent data stays unacknowledged this long is closed by the kernel
    /// (`TCP_USER_TIMEOUT`), and redialled. Without it a connection across a partition stays
    /// "established" while TCP's retransmission backs off, and once the partition heals the
    /// peers may not hear each other for as long as the last back-off (tens of seconds).
    static let userTimeoutMs: SocketOptionValue = 3_000
    static let userTimeout = ChannelOptions.Types.SocketOption(level: .tcp, name: .init(rawValue: 18))  // TCP_USER_TIMEOUT

    /// Keeps one outbound, authenticated connection to `link`'s peer, redialling with backoff.
    private func maintain(_ link: PeerLink) async {
        var backoff = Duration.milliseconds(50)
        let backoffMax = Duration.seconds(2)
        // Cancelled, `Task.sleep` returns at once: without the check this loop would redial flat out.
        while !link.stopped.withLockedValue({ $0 }) && !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                let channel = try await dial(link.peer)
                link.channel.withLockedValue { $0 = channel }
                if link.stopped.withLockedValue({ $0 }) { channel.close(promise: nil) }
                logger.info("peer connected", metadata: ["peer": "n\(link.peer.id)"])
                backoff = .milliseconds(50)
                try? await channel.closeFuture.get()
                link.channel.withLockedValue { $0 = nil }
                logger.info("peer disconnected", metadata: ["peer": "n\(link.peer.id)"])
            } catch {
                logger.debug("peer dial failed", metadata: ["peer": "n\(link.peer.id)", "error": "\(error)"])
            }
            let jitter = Double.random(in: 0.5...1.0)
            try? await Task.sleep(for: backoff * jitter)
            backoff = min(backoff * 2, backoffMax)
        }
    }

    private func dial(_ peer: Peer) async throws -> Channel {
        let authenticated = group.any().makePromise(of: Void.self)
        let connecting = ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(Self.userTimeout, value: Self.userTimeoutMs)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(Self.keepIdle, value: Self.keepIdleSeconds)
            .channelOption(Self.keepInterval, value: 1)
            .channelOption(Self.keepCount, value: 3)
            .channelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 8 << 20))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(try StockadeTLS.clientHandler(tls.client, host: peer.host)) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(PeerFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(PeerFrameEncoder()))
                    try channel.pipeline.syncOperations.addHandler(
                        ConnectorHandler(nodeID: nodeID, peer: peer.id, secret: secret, authenticated: authenticated))
                }
            }
        let channel: Channel
        do {
            channel = try await connecting.connect(host: peer.host, port: peer.port).get()
        } catch {
            authenticated.fail(error)
            throw error
        }
        do {
            try await authenticated.futureResult.get()
        } catch {
            channel.close(promise: nil)
            throw error
        }
        return channel
    }
}

/// TLS contexts for peer links: `server` for the listener, `client` for dialling.
public struct PeerTLS: Sendable {
    public let server: NIOSSLContext
    public let client: NIOSSLContext
    public init(server: NIOSSLContext, client: NIOSSLContext) {
        self.server = server
        self.client = client
    }
}

/// The outbound side towards one peer.
final class PeerLink: Sendable {
    let peer: PeerTransport.Peer
    let channel = NIOLockedValueBox<Channel?>(nil)
    let stopped = NIOLockedValueBox(false)
    init(peer: PeerTransport.Peer) { self.peer = peer }
}

struct HandshakeError: Error, CustomStringConvertible {
    var description: String
}

/// The dialling side: hello, check the acceptor's proof, send ours. Closes after 5 s unauthenticated.
final class ConnectorHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = PeerFrame
    typealias OutboundOut = PeerFrame

    let nodeID: NodeID
    let peer: NodeID
    let secret: [UInt8]
    let authenticated: EventLoopPromise<Void>
    let nonce = PeerHandshake.nonce()
    var done = false

    init(nodeID: NodeID, peer: NodeID, secret: [UInt8], authenticated: EventLoopPromise<Void>) {
        self.nodeID = nodeID
        self.peer = peer
        self.secret = secret
        self.authenticated = authenticated
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.hello(node: nodeID, nonce: nonce)), promise: nil)
        let channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(5)) {
            guard !handler.value.done else { return }
            handler.value.done = true
            handler.value.authenticated.fail(HandshakeError(description: "handshake timed out"))
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }  // acceptors send nothing after the handshake
        guard case .challenge(let node, let theirNonce, let proof) = unwrapInboundIn(data), node == peer,
            theirNonce.count == PeerHandshake.nonceBytes,
            HMACSHA256.equal(
                proof,
                PeerHandshake.acceptorProof(
                    secret: secret, connector: nodeID, acceptor: peer, connectorNonce: nonce, acceptorNonce: theirNonce))
        else {
            fail(context, "peer n\(peer) failed the handshake (wrong node or wrong cluster secret)")
            return
        }
        done = true
        let ours = PeerHandshake.connectorProof(
            secret: secret, connector: nodeID, acceptor: peer, connectorNonce: nonce, acceptorNonce: theirNonce)
        context.writeAndFlush(wrapOutboundOut(.proof(ours)), promise: nil)
        authenticated.succeed(())
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !done {
            done = true
            authenticated.fail(HandshakeError(description: "connection closed during handshake"))
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(context, "\(error)")
    }

    private func fail(_ context: ChannelHandlerContext, _ reason: String) {
        if !done {
            done = true
            authenticated.fail(HandshakeError(description: reason))
        }
        context.close(promise: nil)
    }
}

/// The accepting side: answer a known peer's hello with our proof, then admit protocol frames
/// only after its proof checks out, and only ones it sends as itself, to us.
final class AcceptorHandler: ChannelInboundHandler {
    typealias InboundIn = PeerFrame
    typealias OutboundOut = PeerFrame

    enum State {
        case awaitingHello
        case awaitingProof(peer: NodeID, theirNonce: [UInt8], ourNonce: [UInt8])
        case authenticated(peer: NodeID)
    }

    let nodeID: NodeID
    let voters: Set<NodeID>
    let secret: [UInt8]
    let logger: Logger
    let deliver: @Sendable (Envelope) -> Void
    let forwarding: PeerTransport.Forwarding
    let onAuthenticated: @Sendable (NodeID, Channel) -> Void
    var state = State.awaitingHello

    init(
        nodeID: NodeID, voters: Set<NodeID>, secret: [UInt8], logger: Logger, deliver: @escaping @Sendable (Envelope) -> Void,
        forwarding: PeerTransport.Forwarding, onAuthenticated: @escaping @Sendable (NodeID, Channel) -> Void = { _, _ in }
    ) {
        self.onAuthenticated = onAuthenticated
        self.forwarding = forwarding
        self.nodeID = nodeID
        self.voters = voters
        self.secret = secret
        self.logger = logger
        self.deliver = deliver
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
        context.eventLoop.scheduleTask(in: .seconds(5)) {
            if case .authenticated = handler.value.state { return }
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch (state, frame) {
        case (.authenticated(let peer), .raft(let envelope)):
            guard envelope.from == peer, envelope.to == nodeID else {
                refuse(context, "n\(peer) sent a message addressed from n\(envelope.from) to n\(envelope.to)")
                return
            }
            deliver(envelope)
        case (.authenticated(let peer), .forward(let requestID, let commands)):
            forwarding.onForward(peer, requestID, commands)
        case (.authenticated, .forwardReply(let requestID, let appliedIndex, let outcomes)):
            forwarding.onReply(requestID, appliedIndex, outcomes)
        case (.authenticated(let peer), .clock(let ping)):
            forwarding.onClock(peer, ping)
        case (.awaitingHello, .hello(let peer, let theirNonce)):
            guard voters.contains(peer), theirNonce.count == PeerHandshake.nonceBytes else {
                refuse(context, "hello from unknown node n\(peer)")
                return
            }
            let ourNonce = PeerHandshake.nonce()
            let proof = PeerHandshake.acceptorProof(
                secret: secret, connector: peer, acceptor: nodeID, connectorNonce: theirNonce, acceptorNonce: ourNonce)
            state = .awaitingProof(peer: peer, theirNonce: theirNonce, ourNonce: ourNonce)
            context.writeAndFlush(wrapOutboundOut(.challenge(node: nodeID, nonce: ourNonce, proof: proof)), promise: nil)
        case (.awaitingProof(let peer, let theirNonce, let ourNonce), .proof(let proof)):
            let expected = PeerHandshake.connectorProof(
                secret: secret, connector: peer, acceptor: nodeID, connectorNonce: theirNonce, acceptorNonce: ourNonce)
            guard HMACSHA256.equal(proof, expected) else {
                refuse(context, "n\(peer) failed the handshake (wrong cluster secret)")
                return
            }
            state = .authenticated(peer: peer)
            onAuthenticated(peer, context.channel)
        default:
            refuse(context, "unexpected peer frame before authentication")
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        refuse(context, "\(error)")
    }

    private func refuse(_ context: ChannelHandlerContext, _ reason: String) {
        logger.warning("closing peer connection", metadata: ["reason": "\(reason)"])
        context.close(promise: nil)
    }
}
