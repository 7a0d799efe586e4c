import Cluster
import Consensus
import Foundation
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import StockadeTesting
import Testing
import Wire

/// Two transports on loopback: messages flow only between holders of the same secret.
@Suite(.serialized, .timeLimit(.minutes(2))) struct PeerTransportTests {
    final class Inbox: Sendable {
        let received = NIOLockedValueBox<[Envelope]>([])
        var count: Int { received.withLockedValue { $0.count } }
    }

    /// Runs two transports (n1 with `secretA`, n2 with `secretB`), has n1 send to n2 until n2 has
    /// received something or `window` has passed, and returns what n2 received. The window is
    /// long for the case that must deliver (a loaded CI machine may take seconds to connect) and
    /// fixed for the case that must not.
    static func exchange(secretA: String, secretB: String, window: Duration) async throws -> [Envelope] {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        // Both listen on a port the kernel picks, so no other test can take it between choosing and
        // binding; n1 is made once n2's port is known. n2's link to n1 points nowhere (only n1 → n2
        // is checked).
        let inboxB = Inbox()
        let b = PeerTransport(
            nodeID: 2, listenHost: "127.0.0.1", listenPort: 0, peers: [.init(id: 1, host: "127.0.0.1", port: 1)],
            secret: Array(secretB.utf8), logger: logger, deliver: { envelope in inboxB.received.withLockedValue { $0.append(envelope) } })
        let groupB = ServiceGroup(configuration: .init(services: [b], logger: logger))
        let runningB = Task { try await groupB.run() }
        while b.port == nil { try await Task.sleep(for: .milliseconds(20)) }
        let a = PeerTransport(
            nodeID: 1, listenHost: "127.0.0.1", listenPort: 0, peers: [.init(id: 2, host: "127.0.0.1", port: b.port!)],
            secret: Array(secretA.utf8), logger: logger, deliver: { _ in })
        let group = ServiceGroup(configuration: .init(services: [a], logger: logger))
        let running = Task { try await group.run() }
        let message = Envelope(from: 1, to: 2, message: .voteResponse(term: 7, granted: true, preVote: false))
        let deadline = ContinuousClock.now + window
        while ContinuousClock.now < deadline && inboxB.count == 0 {
            a.send([message])
            try await Task.sleep(for: .milliseconds(50))
        }
        // A message claiming another sender is never delivered.
        a.send([Envelope(from: 3, to: 2, message: .voteResponse(term: 7, granted: true, preVote: false))])
        try await Task.sleep(for: .milliseconds(200))
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        await groupB.triggerGracefulShutdown()
        _ = try? await runningB.value
        return inboxB.received.withLockedValue { $0 }
    }

    @Test func peersWithTheSameSecretExchangeMessages() async throws {
        let received = try await Self.exchange(
            secretA: "same-secret-0123456789", secretB: "same-secret-0123456789", window: .seconds(60))
        #expect(!received.isEmpty)
        #expect(received.allSatisfy { $0.from == 1 && $0.to == 2 })
    }

    @Test func aWrongSecretDeliversNothing() async throws {
        let received = try await Self.exchange(
            secretA: "secret-one-0123456789", secretB: "secret-two-0123456789", window: .seconds(3))
        #expect(received.isEmpty)
    }

    /// A transport whose listener cannot bind (its port is taken) fails the service group, and the
    /// group's other transports stop too. They used to keep redialling without pause once
    /// cancelled (`Task.sleep` returns at once in a cancelled task), and never returned.
    @Test func aListenerThatCannotBindEndsTheGroup() async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let holder = PeerTransport(
            nodeID: 2, listenHost: "127.0.0.1", listenPort: 0, peers: [], secret: Array("s".utf8), logger: logger,
            deliver: { _ in })
        let holding = ServiceGroup(configuration: .init(services: [holder], logger: logger))
        let held = Task { try await holding.run() }
        while holder.port == nil { try await Task.sleep(for: .milliseconds(20)) }
        let taken = holder.port!
        var closed = try RedisServerProcess.freePort()
        while closed == taken { closed = try RedisServerProcess.freePort() }
        // n1 dials a port nobody listens on: each dial fails at once.
        let a = PeerTransport(
            nodeID: 1, listenHost: "127.0.0.1", listenPort: 0, peers: [.init(id: 3, host: "127.0.0.1", port: closed)],
            secret: Array("s".utf8), logger: logger, deliver: { _ in })
        let c = PeerTransport(
            nodeID: 3, listenHost: "127.0.0.1", listenPort: taken, peers: [.init(id: 1, host: "127.0.0.1", port: 1)],
            secret: Array("s".utf8), logger: logger, deliver: { _ in })
        let group = ServiceGroup(configuration: .init(services: [a, c], logger: logger))
        await #expect(throws: (any Error).self) { try await group.run() }
        await holding.triggerGracefulShutdown()
        _ = try? await held.value
    }

    @Test func proofsAreBoundToRoleNodesAndNonces() {
        let secret = Array("s".utf8)
        let c = [UInt8](repeating: 1, count: 32)
        let a = [UInt8](repeating: 2, count: 32)
        let acceptor = PeerHandshake.acceptorProof(secret: secret, connector: 1, acceptor: 2, connectorNonce: c, acceptorNonce: a)
        let connector = PeerHandshake.connectorProof(secret: secret, connector: 1, acceptor: 2, connectorNonce: c, acceptorNonce: a)
        #expect(acceptor != connector)
        #expect(acceptor != PeerHandshake.acceptorProof(secret: secret, connector: 3, acceptor: 2, connectorNonce: c, acceptorNonce: a))
        #expect(acceptor != PeerHandshake.acceptorProof(secret: secret, connector: 1, acceptor: 2, connectorNonce: a, acceptorNonce: c))
        #expect(acceptor == PeerHandshake.acceptorProof(secret: secret, connector: 1, acceptor: 2, connectorNonce: c, acceptorNonce: a))
    }
}
