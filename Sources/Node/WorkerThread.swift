import Foundation
import ServiceLifecycle
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

/// A replica whose work runs on its own `WorkerThread` (`Replica`'s commit loop, a cluster
/// member's protocol loop): as a service it starts the loop, waits for it, and at graceful
/// shutdown stops taking commands so the loop can finish what it holds and end.
public protocol LoopService: Service {
    /// Starts the loop thread. `run()` calls this; tests may call it directly, with `stop()`.
    func startLoop()
    /// Returns once the loop thread has ended.
    func waitForLoop() async
    /// Stops taking commands; the loop finishes what it holds, then ends.
    func stop()
}

extension LoopService {
    public func run() async throws {
        startLoop()
        await withGracefulShutdownHandler {
            await waitForLoop()
        } onGracefulShutdown: {
            self.stop()
        }
    }
}
