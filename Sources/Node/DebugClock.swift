#if DEBUG
import Foundation
import Synchronization

/// Debug builds only: an offset added to this node's wall clock, to prove how the cluster treats
/// a clock that jumps (a bad NTP step, a virtual machine resumed from a snapshot).
///
/// Set at start with `STOCKADE_DEBUG_CLOCK_OFFSET_MS`, or while running with
/// `PUT /v1/debug/clock-offset?ms=N` (admin token).
public enum DebugClock {
    public static let offsetMs = Atomic<Int64>(
        Int64(ProcessInfo.processInfo.environment["STOCKADE_DEBUG_CLOCK_OFFSET_MS"] ?? "") ?? 0)
}
#endif
