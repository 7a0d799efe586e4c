import HTTPTypes
import Hummingbird
import Node

/// A read with `?consistency=local` answers from this node's applied state, which may be behind
/// the cluster; the answer says how far (never a guess passed off as current):
/// - `Stockade-Applied-Index`: the log index the answer reflects;
/// - `Stockade-Stale`: `false` only on a node that may answer from its applied state (the single
///   node, or a caught-up leader that heard from a majority lately), `true` otherwise;
/// - `Stockade-Leader-Contact-Ms`: on a cluster member that knows a leader, how long ago it last
///   heard from it (absent when it knows none).
struct LocalReadMiddleware: RouterMiddleware {
    typealias Context = StockadeRequestContext
    let replica: any ReplicatedLedger
    let cluster: ClusterRouting?

    static let appliedIndex = HTTPField.Name("Stockade-Applied-Index")!
    static let stale = HTTPField.Name("Stockade-Stale")!
    static let leaderContact = HTTPField.Name("Stockade-Leader-Contact-Ms")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .get, StockadeAPI.readConsistency(request) == "local", request.uri.path.hasPrefix("/v1/") else {
            return try await next(request, context)
        }
        var response = try await next(request, context)
        let status = cluster?.replica.memberStatus
        response.headers[Self.appliedIndex] = String(status?.appliedIndex ?? replica.read { $0.appliedIndex })
        response.headers[Self.stale] = replica.answersFromAppliedState ? "false" : "true"
        if let status, let leader = status.leaderID {
            let contact = leader == status.nodeID ? 0 : status.peers.first { $0.nodeID == leader }?.lastContactMs
            if let contact { response.headers[Self.leaderContact] = String(contact) }
        }
        return response
    }
}
