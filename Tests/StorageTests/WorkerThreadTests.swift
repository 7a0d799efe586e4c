import Foundation
import Node
import Testing

@Suite struct WorkerThreadTests {
    /// The OS thread carries the worker's name (at most 15 bytes), so `top -H`, perf and `/proc`
    /// can tell the commit thread from the cooperative pool.
    @Test func theOSThreadCarriesTheName() async throws {
        #if os(Linux)
        let seen = NameBox()
        let worker = WorkerThread(name: "stockade-test-worker")
        worker.start {
            let comm = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? ""
            seen.set(comm.trimmingCharacters(in: .newlines))
        }
        await worker.finished()
        #expect(seen.value == "stockade-test-w")
        #endif
    }
}

private final class NameBox: @unchecked Sendable {
    private let lock = NSLock()
    private var stored = ""
    var value: String { lock.withLock { stored } }
    func set(_ name: String) { lock.withLock { stored = name } }
}
