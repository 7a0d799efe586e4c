import ArgumentParser
import Foundation
import StockadeClient

struct Holds: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "holds", abstract: "List, show, confirm, release and extend holds.",
        subcommands: [List.self, Show.self, Confirm.self, Release.self, Extend.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List holds, newest last, paging through the node's cursor.",
            discussion: "Holds granted from a node's local reserve and not yet reconciled are shown by `holds show` on that node.")

        @OptionGroup var connection: ConnectionOptions
        @Option(help: "Only holds of this SKU.") var sku: String?
        @Option(help: "Only holds of this order.") var order: String?
        @Option(help: "held, confirmed, released or expired.") var status: HoldStatusName?
        @Option(name: .customLong("expiring-within"), help: ArgumentHelp("Only held holds expiring within this long (e.g. 60s).", valueName: "duration"))
        var expiringWithin: String?
        @Option(help: "At most this many holds (0: all).") var limit: Int = 100
        @Flag(help: "Read this node's applied state, possibly stale, instead of the leader's.") var local = false

        func validate() throws {
            if limit < 0 { throw ValidationError("--limit must be 0 (all) or more") }
            if let expiringWithin, Durations.parse(expiringWithin) == nil {
                throw ValidationError("--expiring-within must be a duration such as 60s or 10m")
            }
        }

        func run() async throws {
            let format = try connection.format
            let within = expiringWithin.flatMap(Durations.parse).map { ($0 + 999) / 1000 }
            let (holds, more) = try await withClient(connection) { client -> ([JSONValue], Bool) in
                var collected: [JSONValue] = []
                var cursor: String?
                repeat {
                    let pageSize = limit == 0 ? 1_000 : min(1_000, limit - collected.count)
                    let query = HoldsQuery(
                        sku: sku, orderId: order, status: status?.rawValue, expiringWithinSeconds: within, limit: pageSize, cursor: cursor)
                    let page = try JSONValue.parse(try await client.data(.holds(query, consistency: local ? .local : .linearizable)))
                    if case .array(let holds)? = page["holds"] { collected += holds }
                    if case .string(let next)? = page["nextCursor"] { cursor = next } else { cursor = nil }
                } while cursor != nil && (limit == 0 || collected.count < limit)
                return (collected, cursor != nil)
            }
            if format == .json {
                say(JSONValue.object(["holds": .array(holds)]).rendered())
                return
            }
            let terminal = Terminal.current
            let wide = format == .wide
            var table = Table(
                ["RESERVATION", "ORDER", "STATUS", "PATH", "UNITS", "EXPIRES"] + (wide ? ["REGION", "TOKEN", "CREATED", "ALLOCATIONS"] : []),
                rightAligned: [4])
            let decoded = try holds.map { try decode(Reservation.self, Data($0.rendered().utf8)) }
            let now = nowMs()
            for hold in decoded {
                var row = [
                    hold.reservationId, hold.orderId, terminal.status(hold.status), hold.path,
                    String(hold.allocations.reduce(0) { $0 + $1.quantity }), expiry(hold, now: now),
                ]
                if wide {
                    row += [
                        hold.region, String(hold.token), timestamp(hold.createdAt),
                        hold.allocations.map { "\($0.sku) \($0.quantity)@\($0.warehouse)" }.joined(separator: ", "),
                    ]
                }
                table.add(row)
            }
            say(table.rendered(terminal: terminal))
            if more { warn("(more holds; raise --limit, or --limit 0 for all)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One hold: lines, allocations, token, path, who granted it and when it expires.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The reservation id.") var id: String
        @Flag(help: "Read this node's applied state (and its provisional holds) instead of the leader's.") var local = false

        func run() async throws {
            let format = try connection.format
            let data = try await withClient(connection) { try await $0.data(.reservation(id, consistency: local ? .local : .linearizable)) }
            if format == .json { return try printJSON(data) }
            say(describe(try decode(Reservation.self, data), terminal: .current))
        }
    }

    struct Confirm: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Confirm a hold: its units become sold.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The reservation id.") var id: String

        func run() async throws { try await lifecycle(connection, .confirm(id)) }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Release a hold: its units go back to available.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The reservation id.") var id: String

        func run() async throws { try await lifecycle(connection, .release(id)) }
    }

    struct Extend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Extend a hold: it now expires --ttl from now.")
        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The reservation id.") var id: String
        @Option(help: ArgumentHelp("The new time to live from now (e.g. 10m).", valueName: "duration")) var ttl: String

        func validate() throws {
            guard let ms = Durations.parse(ttl), ms >= 1000, ms % 1000 == 0 else {
                throw ValidationError("--ttl must be a whole number of seconds, at least 1s (e.g. 90s, 10m)")
            }
        }

        func run() async throws { try await lifecycle(connection, .extend(id, ttlSeconds: Durations.parse(ttl)! / 1000)) }
    }
}

enum HoldStatusName: String, CaseIterable, ExpressibleByArgument {
    case held, confirmed, released, expired
}

func lifecycle(_ connection: ConnectionOptions, _ request: StockadeClient.Request) async throws {
    let format = try connection.format
    let data = try await withClient(connection) { try await $0.data(request) }
    if format == .json { return try printJSON(data) }
    say(describe(try decode(Reservation.self, data), terminal: .current))
}

/// "in 14m58s", "expired 3s ago", or when the hold finished.
func expiry(_ hold: Reservation, now: Int64) -> String {
    if hold.status != "held" { return hold.finishedAt.map { "\(hold.status) \(Durations.format(milliseconds: now - $0)) ago" } ?? "-" }
    let left = hold.expiresAt - now
    return left >= 0 ? "in \(Durations.format(milliseconds: left))" : "due \(Durations.format(milliseconds: -left)) ago"
}

/// Who granted a hold, as the ledger knows it.
func grantedBy(_ hold: Reservation) -> String {
    switch hold.path {
    case "local":
        let node = hold.localNode.map { "n\($0)" } ?? "?"
        var text = "\(node) on its own, from its local reserve (term \(hold.localTerm.map(String.init) ?? "?"), local epoch "
        text += "\(hold.localEpoch.map(String.init) ?? "?"), sequence \(hold.localSequence.map(String.init) ?? "?"))"
        if let reconciliation = hold.reconciliation { text += "; \(reconciliation == "pending" ? "not yet in the ledger" : "reconciled into the ledger")" }
        return text
    case "cache": return "the Redis cache (token \(hold.token) from its counter), then the ledger through the decrement queue"
    default: return "the ledger's log entry \(hold.token), durable (on a majority, in a cluster) before the answer"
    }
}

func describe(_ hold: Reservation, terminal: Terminal) -> String {
    let now = nowMs()
    var status = terminal.status(hold.status)
    if hold.status == "held" {
        status += " (expires \(expiry(hold, now: now)), at \(timestamp(hold.expiresAt)))"
    } else if let finished = hold.finishedAt {
        status += " at \(timestamp(finished))"
    }
    var fields: [(String, String)] = [
        ("reservation", hold.reservationId), ("order", hold.orderId), ("region", hold.region), ("status", status),
        ("path", hold.path), ("token", String(hold.token)), ("granted by", grantedBy(hold)), ("created", timestamp(hold.createdAt)),
        ("lines", hold.lines.map { "\($0.sku) ×\($0.quantity)" }.joined(separator: ", ")),
    ]
    for (index, allocation) in hold.allocations.enumerated() {
        fields.append((index == 0 ? "allocations" : "", "\(allocation.sku) \(allocation.quantity) @ \(allocation.warehouse)"))
    }
    return fieldLines(fields, terminal: terminal)
}
