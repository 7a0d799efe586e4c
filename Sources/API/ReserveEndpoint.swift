import Hummingbird
import Ledger
import NIOCore
import Node
import StockadeCore

/// `POST /v1/reservations` after the body is parsed: getting the outcome, and rendering and
/// counting it. Both ways a reserve is served share it: the router's route and the event-loop
/// fast path (`ReserveChannelHandler`), so they answer byte for byte alike.
struct ReserveEndpoint: Sendable {
    let replica: any ReplicatedLedger
    let cache: (any CacheGate)?
    let metrics: APIMetrics
    var limits: Limits { replica.limits }

    /// The outcome of a reserve: from the cache when the hot path answers it, else from the
    /// replica. `completion` runs on whichever thread decided (the caller's, or the commit thread's).
    func reserve(_ request: ReserveRequest, completion: @escaping @Sendable (Outcome) -> Void) {
        guard let cache else { return replica.reserve(request, completion: completion) }
        let replica = self.replica
        cache.reserve(request) { answered in
            if let answered { return completion(answered) }
            replica.reserve(request, completion: completion)
        }
    }

    func reserve(_ request: ReserveRequest) async -> Outcome {
        if let cache, let answered = await cache.reserve(request) { return answered }
        return await replica.reserve(request)
    }

    /// The status and JSON body for `outcome`, counted by outcome and timed from `start`.
    func answer(_ outcome: Outcome, for request: ReserveRequest, start: ContinuousClock.Instant)
        -> (status: HTTPResponse.Status, body: ByteBuffer)
    {
        Self.rendered(recorded(outcome, for: request, start: start), createdStatus: .created)
    }

    /// Counts `outcome` and times it from `start`; returns what is to be answered (in debug builds,
    /// after an injected fault).
    func recorded(_ outcome: Outcome, for request: ReserveRequest, start: ContinuousClock.Instant) -> Outcome {
        var outcome = outcome
        #if DEBUG
        outcome = DebugFault.apply(to: outcome, request: request)
        #endif
        switch outcome {
        case .reservation(_, let created): created ? metrics.countGranted() : metrics.countReplayed()
        case .rejected(let error, _): metrics.count(outcome: error.code.rawValue)
        default: metrics.count(outcome: ErrorCode.internalError.rawValue)
        }
        metrics.reservationDuration.recordNanoseconds((ContinuousClock.now - start).nanoseconds)
        return outcome
    }

    /// A reservation outcome as the API answers it: the reservation (`createdStatus` when this
    /// request created it, else 200) or the refusal with its detail.
    static func rendered(_ outcome: Outcome, createdStatus: HTTPResponse.Status)
        -> (status: HTTPResponse.Status, body: ByteBuffer)
    {
        switch outcome {
        case .reservation(let hold, let created):
            var writer = JSONWriter()
            ReservationPayload(hold).write(into: &writer)
            return (created ? createdStatus : .ok, writer.buffer)
        case .rejected(let error, let detail):
            return ErrorBody.rendered(
                error, sku: detail?.sku.rawValue, requested: detail?.requested, available: detail?.available)
        default:
            return ErrorBody.rendered(StockadeError(.internalError, "unexpected outcome \(outcome)"))
        }
    }
}
