#if DEBUG
import Foundation
import Ledger
import StockadeCore

/// A fault switch that exists only in debug builds, for proving that checkers catch a broken service.
///
/// `STOCKADE_DEBUG_FAULT=ack-insufficient` makes the node answer 201 to reserves it refused for
/// lack of stock, without holding anything: from the outside, an oversell.
enum DebugFault {
    static let ackInsufficient = ProcessInfo.processInfo.environment["STOCKADE_DEBUG_FAULT"] == "ack-insufficient"

    static func apply(to outcome: Outcome, request: ReserveRequest) -> Outcome {
        guard ackInsufficient, case .rejected(let error, _) = outcome, error.code == .insufficientStock else { return outcome }
        let fake = Hold(
            reservationId: request.reservationId, orderId: request.orderId, region: request.region,
            allocations: request.lines.map { Allocation(sku: $0.sku, warehouse: WarehouseID("phantom"), quantity: $0.quantity) },
            ttlMs: request.ttlMs, allowSplit: request.allowSplit, path: .quorum, token: FencingToken(0), createdAtMs: 0,
            expiresAtMs: request.ttlMs, status: .held, finishedAtMs: 0)
        return .reservation(fake, created: true)
    }
}
#endif
