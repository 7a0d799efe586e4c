import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A named OS thread that runs its body once, and whose end can be awaited without blocking
/// the cooperative pool. The commit loop and the cluster's raft loop run on one each: they fsync,
/// and blocking one of the pool's two threads on this machine would stall every request.
public final class WorkerThread: @unchecked Sendable {
    private let name: String
    private let condition = NSCondition()
    private var started = false
    private var done = false

    public init(name: String) { self.name = name }

    /// Foundation does not pass `Thread.name` to the OS thread on Linux, where the thread would
    /// keep the name of the pool thread that created it; `top -H`, perf and `/proc` then cannot
    /// tell the commit thread from the pool. The kernel keeps at most 15 bytes.
    private static func nameCurrentOSThread(_ name: String) {
        #if os(Linux)
        let descriptor = open("/proc/thread-self/comm", O_WRONLY)
        guard descriptor >= 0 else { return }
        var bytes = Array(name.utf8.prefix(15))
        _ = write(descriptor, &bytes, bytes.count)
        close(descriptor)
        #endif
    }

    /// Starts `body` on the thread; later calls do nothing.
    public func start(_ body: @escaping @Sendable () -> Void) {
        condition.lock()
        defer { condition.unlock() }
        guard !started else { return }
        started = true
        let thread = Thread { [self] in
            Self.nameCurrentOSThread(name)
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
