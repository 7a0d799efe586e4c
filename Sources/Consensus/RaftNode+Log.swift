import StockadeCore

extension RaftNode {
    public var lastIndex: LogIndex { log.last?.index ?? snapshotIndex }
    public var lastTerm: Term { log.last?.term ?? snapshotTerm }

    /// The term of the entry at `index`; nil if it is compacted away or beyond the log.
    public func term(at index: LogIndex) -> Term? {
        if index == snapshotIndex { return snapshotTerm }
        guard index > snapshotIndex, index <= lastIndex else { return index == 0 ? 0 : nil }
        return log[position(of: index)].term
    }

    func position(of index: LogIndex) -> Int { Int(index - snapshotIndex - 1) }

    mutating func appendToLog(_ entry: Entry) {
        precondition(entry.index == lastIndex + 1, "log append out of order")
        log.append(entry)
    }

    /// Drops every entry from `index` on. Committed entries are never dropped.
    mutating func truncate(from index: LogIndex) {
        precondition(index > commitIndex, "truncating committed entry \(index) (commit \(commitIndex))")
        guard index <= lastIndex else { return }
        log.removeLast(Int(lastIndex - index + 1))
        unstableFrom = min(unstableFrom, index)
        stableIndex = min(stableIndex, index - 1)
    }

    /// Whether a candidate's log is at least as up to date as this one (§5.4.1).
    func isUpToDate(lastIndex candidateIndex: LogIndex, lastTerm candidateTerm: Term) -> Bool {
        candidateTerm > lastTerm || (candidateTerm == lastTerm && candidateIndex >= lastIndex)
    }
}
