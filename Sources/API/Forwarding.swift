import Foundation
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOSSL
import Node
import StockadeClient
import StockadeCore

/// A node's number in the cluster (`n3` is 3).
public typealias NodeID = UInt64

/// What the API needs to run as one node of a cluster: the member, where every node's HTTP
/// API listens, and how long a write may wait for the leader.
public struct ClusterRouting: Sendable {
    public let replica: any ClusterMember
    public let httpAddresses: [NodeID: (host: String, port: Int)]
    public let quorumDeadline: Duration
    let forwarder: LeaderForwarder

    /// `tls`: the client context for other nodes' HTTP APIs when they listen with TLS.
    public init(
        replica: any ClusterMember, httpAddresses: [NodeID: (host: String, port: Int)], quorumDeadline: Duration,
        tls: NIOSSLContext? = nil
    ) {
        self.replica = replica
        self.httpAddresses = httpAddresses
        self.quorumDeadline = quorumDeadline
        forwarder = LeaderForwarder(addresses: httpAddresses, idleMax: replica.limits.forwardIdleConnectionsMax, tls: tls)
    }
}

/// The header a node sets on a request it forwards; the receiver never forwards it again.
let forwardedHeader = HTTPFields.Element.Name("x-stockade-forwarded-by")!

/// Relays linearizable reads to the leader and returns its answer, so any node can take any call.
/// `?consistency=local` reads, liveness, metrics and `/v1/cluster` stay local; writes are
/// forwarded as commands by `ClusterReplica`.
struct ForwardingMiddleware: RouterMiddleware {
    typealias Context = StockadeRequestContext
    let cluster: ClusterRouting

    static func needsLeader(_ request: Request) -> Bool {
        let path = request.uri.path
        guard path.hasPrefix("/v1/") else { return false }
        // Writes reach the leader as commands over the peer link (`ClusterReplica.propose`),
        // cheaper than relaying HTTP; only linearizable reads are relayed here.
        guard request.method == .get || request.method == .head else { return false }
        guard path.hasPrefix("/v1/skus/") || path.hasPrefix("/v1/reservations/") || path == "/v1/holds" else {
            return false
        }
        return StockadeAPI.readConsistency(request) != "local"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        guard Self.needsLeader(request), request.headers[forwardedHeader] == nil else {
            return try await next(request, context)
        }
        return try await cluster.leaderRead(
            path: request.uri.description, authorization: request.headers[.authorization],
            local: { try await next(request, context) },
            relayed: { answer in
                var headers = HTTPFields()
                headers[.contentType] = "application/json"
                return Response(
                    status: .init(code: answer.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: answer.body)))
            })
    }

    static func isNotLeader(_ body: [UInt8]) -> Bool {
        String(decoding: body, as: UTF8.self).contains(#""code":"not_leader""#)
    }
}

extension ClusterRouting {
    /// Runs a linearizable read where it can be answered: here (`local`) while this node leads,
    /// else on the leader over HTTP (`relayed` turns its answer into the caller's).
    ///
    /// Until a leader is known the read waits (up to the quorum deadline) and then gets
    /// `quorum_unavailable`; so does a read the leader did not answer (a read changes nothing).
    func leaderRead<T>(
        path: String, authorization: String?, local: () async throws -> T, relayed: (HTTPClientResponse) -> T
    ) async throws -> T {
        let deadline = ContinuousClock.now + quorumDeadline
        let me = replica.memberStatus.nodeID
        while true {
            let status = replica.memberStatus
            if status.isLeader {
                do {
                    return try await local()
                } catch let error as StockadeError where error.code == .notLeader {
                    // Leadership moved between the check and the read point: go round again.
                }
            } else if let leader = status.leaderID, leader != me, httpAddresses[leader] != nil {
                let remaining = deadline - .now
                let result = await forwarder.forward(
                    to: leader, method: .GET, path: path, authorization: authorization, from: me,
                    timeout: max(remaining, .milliseconds(100)) + quorumDeadline / 2)
                switch result {
                case .answered(let answer) where !(answer.status == 503 && ForwardingMiddleware.isNotLeader(answer.body)):
                    return relayed(answer)
                case .answered, .notSent:
                    break  // the leader moved or is down
                case .noAnswer(let reason):
                    throw StockadeError(.quorumUnavailable, "the leader n\(leader) did not answer a read (\(reason))")
                }
            }
            if ContinuousClock.now >= deadline {
                throw StockadeError(
                    .quorumUnavailable, "no leader reachable within \(quorumDeadline); a majority of nodes may be down")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Keep-alive HTTP connections to the other nodes, one request at a time each. Not pipelined:
/// a server answers a connection's requests in order, so a pipelined read would wait for the
/// read point of every request queued before it on that connection.
/// A request takes an idle connection or opens one; it goes back to the idle list afterwards.
final class LeaderForwarder: Sendable {
    enum Result: Sendable {
        case answered(HTTPClientResponse)
        /// Certainly not delivered (no connection): safe to try again.
        case notSent
        /// Possibly delivered, never answered.
        case noAnswer(String)
    }

    /// Idle connections kept per node (`Limits.forwardIdleConnectionsMax`); more are closed when returned.
    let idleMax: Int
    let addresses: [NodeID: (host: String, port: Int)]
    let idle = NIOLockedValueBox<[NodeID: [HTTPConnection]]>([:])
    let tls: NIOSSLContext?

    init(addresses: [NodeID: (host: String, port: Int)], idleMax: Int, tls: NIOSSLContext?) {
        self.addresses = addresses
        self.idleMax = idleMax
        self.tls = tls
    }

    /// Relays a read (no body) to `node`.
    func forward(
        to node: NodeID, method: HTTPMethod, path: String, authorization: String?, from me: NodeID, timeout: Duration
    ) async -> Result {
        guard let connection = await checkOut(node) else { return .notSent }
        var headers: [(String, String)] = [(forwardedHeader.rawName, "n\(me)")]
        if let authorization { headers.append(("Authorization", authorization)) }
        do {
            let answer = try await connection.send(method: method, path: path, headers: headers, timeout: timeout)
            checkIn(connection, node)
            return .answered(answer)
        } catch let error as HTTPConnectionError where !error.mayHaveBeenSent {
            Task { await connection.close() }
            return .notSent
        } catch {
            Task { await connection.close() }
            return .noAnswer("\(error)")
        }
    }

    private func checkOut(_ node: NodeID) async -> HTTPConnection? {
        while let connection = idle.withLockedValue({ $0[node]?.popLast() }) {
            if connection.isActive { return connection }
            Task { await connection.close() }
        }
        guard let address = addresses[node] else { return nil }
        return try? await HTTPConnection.connect(host: address.host, port: address.port, tls: tls, timeout: .milliseconds(500))
    }

    private func checkIn(_ connection: HTTPConnection, _ node: NodeID) {
        let kept = idle.withLockedValue { idle -> Bool in
            guard connection.isActive, (idle[node]?.count ?? 0) < idleMax else { return false }
            idle[node, default: []].append(connection)
            return true
        }
        if !kept { Task { await connection.close() } }
    }
}
