/// One clock reading a node sends a peer, every `Limits.clockPingIntervalMs`.
///
/// It also echoes the last ping it received from that peer, and how long it held it, so the peer
/// learns a bound on the round trip that carried this very reading.
public struct ClockPing: Sendable, Hashable {
    /// The sender's monotonic time when it sent this (an echo token for the receiver).
    public var sentMs: Int64
    /// The sender's wall clock at the same moment.
    public var wallMs: Int64
    /// The `sentMs` of the last ping the sender received from the receiver (-1: none yet).
    public var echoMs: Int64
    /// How long the sender held that ping before sending this one.
    public var heldMs: Int64

    public init(sentMs: Int64, wallMs: Int64, echoMs: Int64, heldMs: Int64) {
        self.sentMs = sentMs
        self.wallMs = wallMs
        self.echoMs = echoMs
        self.heldMs = heldMs
    }
}
