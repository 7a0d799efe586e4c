import StockadeClient

/// One frame of `stockadectl watch`, from two samples of the node's stats (the rates are the
/// difference) and its cluster view. Pure: the tests render frames without a terminal.
public struct WatchScreen: Sendable {
    public var current: NodeStats
    public var previous: NodeStats?
    public var cluster: ClusterStatus?
    public var error: String?

    public init(current: NodeStats, previous: NodeStats?, cluster: ClusterStatus?, error: String? = nil) {
        self.current = current
        self.previous = previous
        self.cluster = cluster
        self.error = error
    }

    /// The frame's lines, each at most `width` columns (before colour escapes).
    public func lines(width: Int, height: Int, now: Int64, terminal: Terminal) -> [String] {
        var lines: [String] = []
        let stats = current
        let seconds = previous.map { Double(max(1, stats.atMs - $0.atMs)) / 1000 }
        func rate(_ key: String) -> Double? {
            guard let previous, let seconds else { return nil }
            return Double((stats.reservations[key] ?? 0) - (previous.reservations[key] ?? 0)) / seconds
        }
        let role = stats.role == "leader" ? terminal.paint(stats.role, .green) : stats.role
        lines.append(
            terminal.paint("stockade \(stats.nodeId)", .bold) + "  \(role)  term \(stats.term)  leader \(stats.leaderId ?? terminal.paint("none", .red))"
                + "  applied \(stats.appliedIndex)  \(timestamp(stats.atMs))")
        var lagText = "-"
        if let cluster, !cluster.peers.isEmpty {
            let lags = cluster.peers.compactMap { peer in peer.matchIndex.map { "\(peer.nodeId) \(cluster.commitIndex - min(cluster.commitIndex, $0))" } }
            let contact = cluster.peers.compactMap { peer in peer.lastContactMs.map { "\(peer.nodeId) \(Durations.format(milliseconds: $0))" } }
            lagText = (lags.isEmpty ? "commit \(cluster.commitIndex)" : "lag " + lags.joined(separator: ", "))
                + (contact.isEmpty ? "" : "  contact " + contact.joined(separator: ", "))
        }
        lines.append("cluster: \(lagText)")
        let granted = rate("granted").map { String(format: "%.0f/s", $0) } ?? "…"
        let refused = previous == nil ? "…" : String(format: "%.0f/s", stats.reservations.keys.filter { $0 != "granted" && $0 != "replayed" }.reduce(0) { $0 + (rate($1) ?? 0) })
        lines.append("holds held: \(grouped(stats.holds.active))  reservations: \(granted) granted, \(refused) refused")
        if let cache = stats.cache {
            let dead = cache.deadLetterStream ?? cache.deadLetters
            lines.append(
                "queue: \(grouped(cache.queuePending)) (oldest \(cache.queuePending > 0 ? Durations.format(milliseconds: cache.queueOldestAgeMs) : "-"))"
                    + "  dead letters: \(dead > 0 ? terminal.paint(grouped(dead), .red) : "0")  cache hit \(percent(cache.hitRate))  breaker \(cache.breaker)")
        } else {
            lines.append("queue: no cache on this node")
        }
        if let local = stats.local, local.provisionalHolds > 0 || local.fallbacks > 0 {
            lines.append("local fallback: \(local.provisionalHolds) provisional holds, \(local.fallbacks) fallbacks")
        }
        lines.append("")
        // Units reserved per second per SKU: the change of held + sold between samples.
        var table = Table(["SKU", "HOT", "HELD", "SOLD", "AVAILABLE", "UNITS/S"], rightAligned: [2, 3, 4, 5])
        let before = Dictionary((previous?.skus ?? []).map { ($0.sku, $0.held + $0.sold) }, uniquingKeysWith: { first, _ in first })
        let skuRows = max(1, (height - lines.count - 4) / 2)
        for sku in stats.skus.prefix(skuRows) {
            let speed = before[sku.sku].flatMap { old in seconds.map { Double(sku.held + sku.sold - old) / $0 } }
            table.add([
                sku.sku, sku.hot ? terminal.paint("yes", .cyan) : "", grouped(sku.held), grouped(sku.sold), grouped(sku.available),
                speed.map { String(format: "%.1f", $0) } ?? "…",
            ])
        }
        lines += table.rendered(terminal: terminal).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines.append("")
        lines.append(terminal.paint("EXPIRING NEXT", .bold))
        let room = max(1, height - lines.count - 2)
        if stats.nextExpiries.isEmpty { lines.append("(no held holds)") }
        for expiry in stats.nextExpiries.prefix(room) {
            let left = expiry.expiresAt - stats.atMs
            lines.append("\(expiry.reservationId)  order \(expiry.orderId)  \(expiry.units) units  in \(Durations.format(milliseconds: max(0, left)))")
        }
        if let error { lines.append(terminal.paint("last refresh failed: \(error)", .red)) }
        lines.append(terminal.paint("q quits", .dim))
        return lines.prefix(height).map { clip($0, width) }
    }

    /// Cuts a line to `width` visible columns, keeping colour escapes intact.
    func clip(_ line: String, _ width: Int) -> String {
        guard Table.visibleWidth(line) > width else { return line }
        var out = ""
        var used = 0
        var inEscape = false
        for character in line {
            if inEscape || character == "\u{1B}" {
                out.append(character)
                inEscape = character == "m" ? false : true
                continue
            }
            let cost = Table.visibleWidth(String(character))
            if used + cost > width { break }
            out.append(character)
            used += cost
        }
        return out + (line.contains("\u{1B}") ? "\u{1B}[0m" : "")
    }
}
