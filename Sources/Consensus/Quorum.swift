/// Majority arithmetic, in one small pure place.
public enum Quorum {
    /// Votes needed among `voters`.
    public static func size(of voters: Int) -> Int { voters / 2 + 1 }

    /// The highest index that a majority has reached, given every voter's match index.
    public static func committedIndex(_ matches: [UInt64]) -> UInt64 {
        guard !matches.isEmpty else { return 0 }
        let sorted = matches.sorted(by: >)
        return sorted[size(of: matches.count) - 1]
    }
}
