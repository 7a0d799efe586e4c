import Dispatch
import Metrics
import Synchronization

/// Sends the gate calls that arrive together as one script call (`Scripts.gate`), which decides
/// each reservation in order, so Redis pays its per-command cost once per batch.
///
/// A call goes out at once while fewer than `inFlightMax` batches are at Redis (an idle node adds
/// no wait). Otherwise it waits for the next batch, which leaves when a batch in flight comes
/// back, when `batchMax` calls are waiting, or `waitMicroseconds` after the first of them
/// arrived, whichever is first.
final class GateBatcher: Sendable {
    /// One reservation's part of the script call: its keys (answer key, then the lines' keys) and
    /// its arguments (id, digest, …, lines), in the layout `Scripts.gate` reads.
    struct Call: Sendable {
        var keys: [String]
        var arguments: RedisCommand
    }

    private struct Waiting {
        var call: Call
        var completion: @Sendable (Result<RedisValue, any Error>) -> Void
    }

    private struct State {
        var queue: [Waiting] = []
        var inFlight = 0
        var timerArmed = false
    }

    private let state = Mutex(State())
    private let redis: RedisClient
    private let batchMax: Int
    private let waitMicroseconds: Int
    private let inFlightMax: Int
    /// Arguments every batch starts with: answer retention ms and backlog max.
    private let answerRetentionMs: Int64
    private let backlogMax: Int
    private let batches: Counter
    private let reservations: Counter

    init(redis: RedisClient, batchMax: Int, waitMicroseconds: Int, inFlightMax: Int, configuration: HotPathConfiguration,
         metrics: MetricsFactory)
    {
        precondition(batchMax >= 1 && waitMicroseconds >= 0 && inFlightMax >= 1)
        self.redis = redis
        self.batchMax = batchMax
        self.waitMicroseconds = waitMicroseconds
        self.inFlightMax = inFlightMax
        answerRetentionMs = configuration.answerRetentionMs
        backlogMax = configuration.backlogRecordsMax
        batches = Counter(label: "stockade_cache_gate_batches_total", dimensions: [], factory: metrics)
        reservations = Counter(label: "stockade_cache_gate_reservations_total", dimensions: [], factory: metrics)
    }

    /// The gate's reply for this reservation: `{'granted', stored}`, `{'short', sku, n}`, … or the
    /// error reply of the whole script call; throws what the Redis client threw for the call.
    func decide(_ call: Call) async throws -> RedisValue {
        try await withCheckedThrowingContinuation { continuation in
            decide(call) { continuation.resume(with: $0) }
        }
    }

    /// `decide` for callers outside Swift concurrency: `completion` runs once, on a Redis
    /// connection's thread (or the caller's), and must not block.
    func decide(_ call: Call, completion: @escaping @Sendable (Result<RedisValue, any Error>) -> Void) {
        var armTimer = false
        let batch: [Waiting]? = state.withLock { state in
            state.queue.append(Waiting(call: call, completion: completion))
            if state.inFlight < inFlightMax || state.queue.count >= batchMax {
                state.inFlight += 1
                return take(&state)
            }
            if !state.timerArmed {
                state.timerArmed = true
                armTimer = true
            }
            return nil
        }
        if let batch { send(batch) }
        if armTimer {
            DispatchQueue.global().asyncAfter(deadline: .now() + .microseconds(waitMicroseconds)) { self.waited() }
        }
    }

    /// The wait limit of the oldest waiting call has passed: it goes now, in flight or not.
    private func waited() {
        let batch: [Waiting]? = state.withLock { state in
            state.timerArmed = false
            guard !state.queue.isEmpty else { return nil }
            state.inFlight += 1
            return take(&state)
        }
        if let batch { send(batch) }
    }

    private func take(_ state: inout State) -> [Waiting] {
        let count = min(batchMax, state.queue.count)
        let batch = Array(state.queue.prefix(count))
        state.queue.removeFirst(count)
        return batch
    }

    private func send(_ batch: [Waiting]) {
        batches.increment()
        reservations.increment(by: batch.count)
        let (keys, arguments) = Self.scriptCall(
            batch.map(\.call), answerRetentionMs: answerRetentionMs, backlogMax: backlogMax)
        redis.evaluate(Scripts.gate, keys: keys, arguments: arguments) { [self] result in
            switch result {
            case .success(let reply):
                if let parts = reply.elements, parts.count == batch.count {
                    for (waiting, part) in zip(batch, parts) { waiting.completion(.success(part)) }
                } else {
                    // An error reply (or a malformed one) concerns the whole call: every reservation gets it.
                    for waiting in batch { waiting.completion(.success(reply)) }
                }
            case .failure(let error):
                for waiting in batch { waiting.completion(.failure(error)) }
            }
            // The slot this batch held goes to the calls that waited meanwhile, if any.
            let next: [Waiting]? = state.withLock { state in
                if state.queue.isEmpty {
                    state.inFlight -= 1
                    return nil
                }
                return take(&state)
            }
            if let next { send(next) }
        }
    }

    /// The keys and arguments of one `Scripts.gate` call deciding `calls` in order.
    static func scriptCall(_ calls: [Call], answerRetentionMs: Int64, backlogMax: Int) -> ([String], RedisCommand) {
        var keys = [HotKeys.token, HotKeys.holds]
        var arguments = RedisCommand(["\(answerRetentionMs)", "\(backlogMax)", "\(calls.count)"])
        for call in calls {
            keys.append(contentsOf: call.keys)
            arguments.bytes.append(contentsOf: call.arguments.bytes)
            arguments.lengths.append(contentsOf: call.arguments.lengths)
        }
        return (keys, arguments)
    }
}
