/// The after-run check that nothing oversold and nothing acknowledged was lost.
///
/// Inputs are what the harness saw and what it read back. The harness owns its SKUs (their
/// names are unique to the run), so every unit held or sold on them is its doing.
public struct Verdict: Codable, Sendable {
    public var passed: Bool
    public var violations: [String]
    public var checkedSKUs: Int
    public var checkedReservations: Int

    /// - Parameters:
    ///   - rows: each SKU's rows as read back after the run.
    ///   - granted: reservations answered as granted, with the allocations in the answer.
    ///   - fetched: every granted or unanswered reservation read back (nil: 404).
    ///   - released: reservations this harness released.
    public static func judge(
        rows: [String: [FetchedRow]], granted: [String: [GrantedAllocation]], fetched: [String: FetchedReservation?],
        released: Set<String>
    ) -> Verdict {
        var reservationViolations: [String] = []
        var violations: [String] = []
        // Every reservation seen granted can still be fetched, with the same allocations.
        for (id, allocations) in granted.sorted(by: { $0.key < $1.key }) {
            guard let found = fetched[id] ?? nil else {
                reservationViolations.append("reservation \(id) was granted but cannot be fetched")
                continue
            }
            if Set(found.allocations) != Set(allocations) {
                reservationViolations.append("reservation \(id) changed allocations: answered \(allocations), now \(found.allocations)")
            }
            if released.contains(id) && found.status == "held" {
                reservationViolations.append("reservation \(id) was released but is still held")
            }
        }
        // Units the harness accounts for, per SKU: every grant it saw, with the allocations it was
        // answered, unless it released it or it expired; plus unanswered reserves that turn out to exist.
        var expected: [String: Int] = [:]
        for (id, allocations) in granted {
            let status = (fetched[id] ?? nil)?.status
            if released.contains(id) || status == "released" || status == "expired" { continue }
            for allocation in allocations { expected[allocation.sku, default: 0] += allocation.quantity }
        }
        for (id, fetchedReservation) in fetched where granted[id] == nil {
            guard let reservation = fetchedReservation, reservation.status == "held" || reservation.status == "confirmed"
            else { continue }
            for allocation in reservation.allocations { expected[allocation.sku, default: 0] += allocation.quantity }
        }
        for (sku, skuRows) in rows.sorted(by: { $0.key < $1.key }) {
            var committed = 0
            for row in skuRows {
                let allotted = row.allotted ?? 0
                if row.held < 0 || row.sold < 0 || allotted < 0 || row.total < 0 {
                    violations.append("\(sku)@\(row.warehouse) has a negative counter: \(row)")
                }
                if row.held + row.sold + allotted > row.total {
                    violations.append(
                        "\(sku)@\(row.warehouse) oversold: held \(row.held) + sold \(row.sold) + allotted \(allotted) > total \(row.total)")
                }
                committed += row.held + row.sold
            }
            let seen = expected[sku, default: 0]
            if seen != committed {
                violations.append("\(sku): the harness accounts for \(seen) units granted, the ledger holds or sold \(committed)")
            }
        }
        // Per-SKU findings first: they say whether anything oversold; per-reservation ones say which.
        violations += reservationViolations
        return Verdict(
            passed: violations.isEmpty, violations: violations, checkedSKUs: rows.count, checkedReservations: fetched.count)
    }
}
