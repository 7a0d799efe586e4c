import Foundation

/// A named OS thread that runs its body once, and whose end can be awaited without blocking
/// the cooperative pool. The commit loop and the cluster's raft loop run on one each: they fsync,
/// and blocking one of the pool's two threads on this machine would stall every request.
public final class WorkerThread: @unchecked Sendable {
    private let name: String
    private let condition = NSCondition()
    private var started = false
    private var done = false

    public init(name: String) { self.name = name }

    /// Starts `body` on the thread; later calls do nothing.
    public func start(_ body: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in
            body()
            condition.lock()
            done = true
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.start()
    }

    /// Returns once the body has returned (waiting on a detached thread).
    public func finished() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread { [self] in
                condition.lock()
                while !done { condition.wait() }
                condition.unlock()
                continuation.resume()
            }
        }
    }
}
