import ArgumentParser
import Foundation
import StockadeClient

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cluster", abstract: "The cluster as the node sees it.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The node's role and term, the leader, commit and applied index, and each peer's progress and last contact.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let format = try connection.format
            let data = try await withClient(connection) { try await $0.data(.cluster) }
            if format == .json { return try printJSON(data) }
            say(render(try decode(ClusterStatus.self, data), wide: format == .wide, terminal: .current))
        }
    }

    static func render(_ status: ClusterStatus, wide: Bool, terminal: Terminal) -> String {
        var table = Table(["NODE", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "LAST CONTACT"], rightAligned: [2, 4, 5, 6])
        let role = status.role == "leader" ? terminal.paint(status.role, .green) : status.role
        table.add([
            status.nodeId + " (this node)", role, String(status.term), status.leaderId ?? terminal.paint("none", .red),
            String(status.commitIndex), String(status.appliedIndex), String(status.commitIndex - min(status.commitIndex, status.appliedIndex)), "-",
        ])
        for peer in status.peers {
            // On the leader a peer's lag is how far its durable log trails the commit index.
            let lag = peer.matchIndex.map { String(status.commitIndex - min(status.commitIndex, $0)) } ?? "-"
            let contact = peer.lastContactMs.map { Durations.format(milliseconds: $0) + " ago" } ?? terminal.paint("never", .red)
            table.add([
                peer.nodeId, peer.nodeId == status.leaderId ? "leader" : (status.role == "leader" ? "follower" : "-"), "-", "-", "-",
                peer.matchIndex.map(String.init) ?? "-", lag, contact,
            ])
        }
        var lines = [table.rendered(terminal: terminal)]
        if wide || (status.local?.provisionalHolds ?? 0) > 0 {
            if let local = status.local {
                lines.append(
                    "local fallback: epoch \(local.epoch.map(String.init) ?? "-"), \(local.provisionalHolds) provisional holds"
                        + (local.oldestAgeMs.map { " (oldest \(Durations.format(milliseconds: $0)))" } ?? "")
                        + ", \(local.fallbacks) fallbacks, \(local.reconciledHolds) reconciled, \(local.reconcileErrors) reconcile errors")
            }
        }
        if wide, let cache = status.cache {
            lines.append(
                "cache: breaker \(cache.breaker), hit rate \(percent(cache.hitRate)), queue \(cache.queuePending), dead letters \(cache.deadLetters)")
        }
        return lines.joined(separator: "\n")
    }
}

struct QueueCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "queue", abstract: "The Redis decrement queue.", subcommands: [Status.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stream length, entries delivered and not yet acknowledged, age of the oldest, dead letters.")
        @OptionGroup var connection: ConnectionOptions

        func run() async throws {
            let format = try connection.format
            let cluster = try JSONValue.parse(try await withClient(connection) { try await $0.data(.cluster) })
            guard let cacheValue = cluster["cache"], cacheValue != .null else {
                throw CLIError.failed("this node has no Redis hot path (its config has no redis section), so no decrement queue")
            }
            if format == .json { return say(cacheValue.rendered()) }
            let cache = try decode(ClusterStatus.Cache.self, Data(cacheValue.rendered().utf8))
            let terminal = Terminal.current
            var table = Table(["STREAM", "DELIVERED", "OLDEST", "DEAD LETTERS", "BREAKER"], rightAligned: [0, 1, 3])
            let dead = cache.deadLetterStream ?? cache.deadLetters
            table.add([
                grouped(cache.queuePending), cache.queueDelivered.map { grouped($0) } ?? "-",
                cache.queuePending > 0 ? Durations.format(milliseconds: cache.queueOldestAgeMs) : "-",
                dead > 0 ? terminal.paint(grouped(dead), .red) : "0",
                cache.breaker == "closed" ? cache.breaker : terminal.paint(cache.breaker, .red),
            ])
            say(table.rendered(terminal: terminal))
        }
    }
}

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Reservations per second by outcome, cache hit rate, degrade switches and fallbacks, over an interval.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: ArgumentHelp("The interval the rates are measured over (e.g. 1s).", valueName: "duration")) var interval = "1s"

    func validate() throws {
        guard let ms = Durations.parse(interval), ms >= 100, ms <= 600_000 else {
            throw ValidationError("--interval must be a duration between 100ms and 10m")
        }
    }

    func run() async throws {
        let format = try connection.format
        let (first, second, raw) = try await withClient(connection) { client in
            let first = try await client.stats()
            try await Task.sleep(for: .milliseconds(Durations.parse(interval)!))
            let raw = try await client.data(.stats)
            return (first, try decode(NodeStats.self, raw), raw)
        }
        let seconds = Double(max(1, second.atMs - first.atMs)) / 1000
        let rates = second.reservations.mapValues { Double($0) }.merging(first.reservations.mapValues { -Double($0) }, uniquingKeysWith: +)
            .mapValues { $0 / seconds }
        if format == .json {
            let value = JSONValue.object([
                "intervalMs": .integer(second.atMs - first.atMs),
                "perSecond": .object(rates.mapValues { .double(($0 * 10).rounded() / 10) }),
                "stats": try JSONValue.parse(raw),
            ])
            return say(value.rendered())
        }
        let terminal = Terminal.current
        var lines = ["\(second.nodeId) (\(second.role), term \(second.term)) over \(Durations.format(milliseconds: second.atMs - first.atMs))"]
        var table = Table(["OUTCOME", "PER SECOND", "SINCE START"], rightAligned: [1, 2])
        for outcome in second.reservations.keys.sorted(by: { (second.reservations[$1]!, $0) < (second.reservations[$0]!, $1) })
        where format == .wide || second.reservations[outcome]! > 0 {
            let name = outcome == "granted" ? terminal.paint(outcome, .green) : outcome
            table.add([name, String(format: "%.1f", rates[outcome] ?? 0), grouped(second.reservations[outcome]!)])
        }
        lines.append(table.rows.isEmpty ? "no reservations since the node started" : table.rendered(terminal: terminal))
        lines.append("holds: \(grouped(second.holds.active)) held, \(grouped(second.holds.stored)) stored")
        if let cache = second.cache {
            let answered = Double((cache.cacheAnswered - (first.cache?.cacheAnswered ?? 0)) + (cache.quorumAnswered - (first.cache?.quorumAnswered ?? 0)))
            let hit = answered > 0 ? Double(cache.cacheAnswered - (first.cache?.cacheAnswered ?? 0)) / answered : cache.hitRate
            lines.append(
                "cache: hit rate \(percent(hit)) (\(percent(cache.hitRate)) since start), breaker \(cache.breaker), "
                    + "\(cache.degradeSwitches) degrade switches, \(cache.refills) refills")
        } else {
            lines.append("cache: none on this node")
        }
        if let local = second.local {
            lines.append("local fallback: \(local.fallbacks) fallbacks, \(local.provisionalHolds) provisional holds, \(local.reconciledHolds) reconciled")
        }
        say(lines.joined(separator: "\n"))
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Cross-check the node: ledger rows against their holds and allotments, cache allotments against Redis, provisional holds against local reserves.",
        discussion: "Prints every disagreement with its numbers and exits 1 if there is any; exits 0 when clean.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: "Only this SKU.") var sku: String?

    func run() async throws {
        let format = try connection.format
        let data = try await withClient(connection) { try await $0.data(.audit(sku: sku)) }
        let report = try decode(AuditReport.self, data)
        if format == .json {
            try printJSON(data)
        } else {
            let terminal = Terminal.current
            let cache = report.checked.cacheRows.map { "\($0) cache rows against Redis" } ?? "no cache"
            say(
                "\(report.nodeId) at applied index \(report.appliedIndex): \(report.checked.rows) rows, \(cache), "
                    + "\(report.checked.provisionalHolds) provisional holds")
            if report.clean {
                say(terminal.paint("clean", .green))
            } else {
                var table = Table(["SKU", "WAREHOUSE", "CHECK", "LEDGER", "DERIVED", "DIFFERENCE", "DETAIL"], rightAligned: [3, 4, 5])
                for finding in report.findings {
                    table.add([
                        finding.sku ?? "-", finding.warehouse ?? "-", terminal.paint(finding.check, .red), String(finding.ledger),
                        String(finding.derived), String(finding.ledger - finding.derived), finding.message,
                    ])
                }
                say(table.rendered(terminal: terminal))
                say(terminal.paint("\(report.findings.count) disagreement\(report.findings.count == 1 ? "" : "s")", .red))
            }
        }
        if !report.clean { throw CLIError.problemsReported }
    }
}

func percent(_ fraction: Double) -> String { String(format: "%.1f%%", fraction * 100) }
