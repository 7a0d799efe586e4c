/// Work a node hands to its runtime, in the order the runtime must do it:
/// 1. send `messagesBeforePersist` (a leader's appends; they may overlap its own fsync),
/// 2. install `snapshot` if any, and persist `hardState` and `entries` (truncating any existing
///    suffix from the first entry's index) durably,
/// 3. send `messages` (votes and append acknowledgements promise durable state),
/// 4. apply `committedEntries` in order and serve `readStates` once applied,
/// 5. call `advance(_:)` with this ready.
public struct Ready: Sendable {
    public var hardState: HardState?
    public var entries: [Entry] = []
    public var snapshot: Snapshot?
    public var messagesBeforePersist: [Envelope] = []
    public var messages: [Envelope] = []
    public var committedEntries: [Entry] = []
    public var readStates: [ReadState] = []

    public var isEmpty: Bool {
        hardState == nil && entries.isEmpty && snapshot == nil && messagesBeforePersist.isEmpty && messages.isEmpty
            && committedEntries.isEmpty && readStates.isEmpty
    }
}
