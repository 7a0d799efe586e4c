import Foundation
import Ledger
import NIOCore
import RESP
import StockadeCore

/// Runs the Stockade commands a RESP connection reads, through the same operations as the HTTP
/// routes, and says their answers in RESP.
struct RESPExecutor: Sendable {
    /// Facts `INFO` reports.
    struct ServerFacts: Sendable {
        var port: Int
        var startedAt: ContinuousClock.Instant
    }

    let api: StockadeAPI
    let facts: ServerFacts

    /// What a command came to: a reply, or a reserve's outcome still to be said in RESP.
    enum Answer: Sendable {
        case reply(RESPValue)
        case reserved(Outcome, ReserveRequest, start: ContinuousClock.Instant)
    }

    /// Runs `request` for the holder of `token`; `completion` gets the answer on some thread and
    /// must only hand it on: a reserve's completes on the commit thread, so its reply is made by
    /// `reply(_:)` on the connection's event loop, as the HTTP fast path does. Reserves are queued
    /// from the caller's thread (the event loop); everything else runs in a task.
    func execute(_ request: RESPRequest, token: String, completion: @escaping @Sendable (Answer) -> Void) {
        if case .reserve(let reserve) = request {
            let start = ContinuousClock.now
            api.reserveEndpoint.reserve(reserve) { completion(.reserved($0, reserve, start: start)) }
            return
        }
        Task { completion(.reply(await run(request, token: token))) }
    }

    /// The reply for an answer: counts a reserve's outcome; a reservation is left to be written
    /// straight into the output.
    func reply(_ answer: Answer) -> RESPConnectionStateMachine.Reply {
        switch answer {
        case .reply(let value): return .value(value)
        case .reserved(let outcome, let request, let start):
            let recorded = api.reserveEndpoint.recorded(outcome, for: request, start: start)
            if case .reservation(let hold, _) = recorded { return .reservation(hold) }
            return .value(RESPReply.from(recorded))
        }
    }

    func run(_ request: RESPRequest, token: String) async -> RESPValue {
        do {
            switch request {
            case .reserve(let reserve):
                let endpoint = api.reserveEndpoint
                return RESPReply.from(endpoint.recorded(await endpoint.reserve(reserve), for: reserve, start: .now))
            case .confirm(let id): return RESPReply.from(await api.confirm(id))
            case .release(let id): return RESPReply.from(await api.release(id))
            case .extend(let id, let ttlSeconds): return RESPReply.from(try await api.extend(id, ttlSeconds: ttlSeconds))
            case .reservation(let id, let consistency):
                return RESPReply.from(try await read(request, consistency, token) { try api.reservationAnswer(id) })
            case .sku(let sku, let consistency):
                return RESPReply.from(try await read(request, consistency, token) { try api.skuAnswer(sku) })
            case .holds(let parameters, let consistency):
                let query = try api.holdQuery { parameters[$0] }
                return RESPReply.from(try await read(request, consistency, token) { api.holdsAnswer(query) })
            case .warehouses: return RESPReply.from(api.warehousesAnswer())
            case .clusterInfo: return RESPReply.from(api.clusterAnswer())
            case .setStock(let sku, let warehouse, let total):
                return RESPReply.from(try await api.setStock(sku, warehouse: warehouse, total: total))
            case .adjustStock(let sku, let warehouse, let delta, let reason):
                return RESPReply.from(try await api.adjustStock(sku, warehouse: warehouse, delta: delta, reason: reason))
            case .setHot(let sku, let hot): return RESPReply.from(try await api.setHot(sku, hot))
            case .info(let section): return .verbatim(format: "txt", text: info(section))
            case .audit(let sku): return RESPReply.from(try await api.auditAnswer(sku: sku))
            case .stats: return RESPReply.from(api.statsAnswer())
            }
        } catch let error as StockadeError {
            return RESPReply.error(error)
        } catch {
            return RESPReply.error(StockadeError(.internalError, "internal error"))
        }
    }

    /// A read at the read point its consistency asks for: on a follower of a cluster, a
    /// linearizable read is relayed to the leader as the HTTP API relays it.
    private func read(
        _ request: RESPRequest, _ consistency: String?, _ token: String, _ local: () throws -> APIAnswer
    ) async throws -> APIAnswer {
        guard let cluster = api.cluster, let path = request.leaderReadPath else {
            try await api.readPoint(consistency: consistency)
            return try local()
        }
        return try await cluster.leaderRead(
            path: path, authorization: "Bearer \(token)",
            local: {
                try await api.readPoint(consistency: consistency)
                return try local()
            },
            relayed: { APIAnswer(status: .init(code: $0.status), body: ByteBuffer(bytes: $0.body)) })
    }

    /// `INFO`'s text: `# Section` headers and `field:value` lines, as Redis writes them.
    func info(_ section: String?) -> String {
        let uptime = (ContinuousClock.now - facts.startedAt).components.seconds
        let status = api.clusterPayload()
        let sections: [(String, [(String, String)])] = [
            ("server", [
                ("redis_version", RESPServer.protocolVersion), ("stockade_version", RESPServer.stockadeVersion),
                ("redis_mode", "standalone"), ("os", "Linux"), ("arch_bits", "64"),
                ("process_id", "\(ProcessInfo.processInfo.processIdentifier)"), ("tcp_port", "\(facts.port)"),
                ("uptime_in_seconds", "\(uptime)"), ("uptime_in_days", "\(uptime / 86_400)"),
            ]),
            ("persistence", [
                // Every grant is fsynced to the command log (on a majority in a cluster) before it is answered.
                ("loading", "0"), ("aof_enabled", "1"), ("aof_rewrite_in_progress", "0"), ("rdb_bgsave_in_progress", "0"),
                ("stockade_fsync", "every_write"),
            ]),
            ("replication", [("role", "master"), ("connected_slaves", "0")]),
            ("stockade", [
                ("node_id", status.nodeId), ("raft_role", status.role), ("term", "\(status.term)"),
                ("leader_id", status.leaderId ?? ""), ("commit_index", "\(status.commitIndex)"),
                ("applied_index", "\(status.appliedIndex)"), ("cache", status.cache == nil ? "off" : "on"),
            ]),
        ]
        let wanted = section.flatMap { ["all", "everything", "default"].contains($0) ? nil : $0 }
        return sections.filter { wanted == nil || $0.0 == wanted }.map { name, fields in
            "# \(name.prefix(1).uppercased() + name.dropFirst())\r\n" + fields.map { "\($0):\($1)\r\n" }.joined()
        }.joined(separator: "\r\n")
    }
}
