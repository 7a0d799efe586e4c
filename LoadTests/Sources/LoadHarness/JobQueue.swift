import DequeModule
import Foundation

/// Work for the connection workers.
enum Job: Sendable {
    case reserve(PlannedOrder, intended: ContinuousClock.Instant)
    case finish(reservationId: String, action: String)
}

/// A bounded multi-consumer queue of jobs. `push` refuses when full; `next` waits for work or close.
final class JobQueue: @unchecked Sendable {
    private let lock = NSLock()
    private var jobs = Deque<Job>()
    private var waiters = Deque<CheckedContinuation<Job?, Never>>()
    private var closed = false
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    var count: Int { lock.withLock { jobs.count } }

    /// Adds a job; false when the queue is full (the caller counts it as dropped).
    func push(_ job: Job) -> Bool {
        lock.lock()
        if let waiter = waiters.popFirst() {
            lock.unlock()
            waiter.resume(returning: job)
            return true
        }
        guard jobs.count < capacity else {
            lock.unlock()
            return false
        }
        jobs.append(job)
        lock.unlock()
        return true
    }

    /// The next job, or nil once the queue is closed and empty.
    func next() async -> Job? {
        await withCheckedContinuation { continuation in
            lock.lock()
            if let job = jobs.popFirst() {
                lock.unlock()
                continuation.resume(returning: job)
            } else if closed {
                lock.unlock()
                continuation.resume(returning: nil)
            } else {
                waiters.append(continuation)
                lock.unlock()
            }
        }
    }

    /// No more jobs will come; waiting workers finish.
    func close() {
        lock.lock()
        closed = true
        let waiting = waiters
        waiters.removeAll()
        lock.unlock()
        for waiter in waiting { waiter.resume(returning: nil) }
    }
}
