import StockadeCore

/// The ledger's holds, stored compactly in the order the ledger stored them.
///
/// Each hold has a *sequence* that the ledger derives from the log position that stored it (see
/// `Ledger.sequence(index:position:)`), so sequences grow in store order. Fencing tokens do not
/// always: a hold sold by the cache carries the token Redis gave it and may reach the ledger
/// after newer ones. Holds live in slots, appended in sequence order; an index maps a
/// reservation id to its slot. A purged hold leaves a tombstone that is
/// compacted away once tombstones outnumber live holds. Compared with a dictionary of holds this
/// keeps each hold's value out of the hash table (whose buckets are over-allocated), gives
/// sequence-order iteration for paging and snapshots without sorting, and lets the expiry queues
/// refer to holds by sequence alone.
///
/// Nothing here grows all at once: slots are fixed-size chunks, and the id index is split into
/// shards that each grow on their own. A single table of 100,000 ids took 30–45 ms to rehash
/// when it doubled, and that stalled every request waiting on the apply thread; a shard's
/// rehash is a sixty-fourth of that. It also spreads the copy-on-write cost after a snapshot
/// takes a copy of the ledger over many later writes.
public struct HoldStore: Sendable {
    private var slots = ChunkedSlots()
    private var sequences: [UInt64] = []
    private var slotByID = ShardedIndex()
    private var tombstones = 0

    public init() {}

    /// Live holds.
    public var count: Int { slotByID.count }

    public subscript(id: ReservationID) -> Hold? {
        guard let slot = slotByID[id] else { return nil }
        return slots[Int(slot)]
    }

    /// The hold with this sequence, if it is still stored.
    public func hold(sequence: UInt64) -> Hold? {
        guard let slot = slot(ofSequence: sequence) else { return nil }
        return slots[slot]
    }

    /// The sequence of a stored hold.
    public func sequence(of id: ReservationID) -> UInt64? {
        slotByID[id].map { sequences[Int($0)] }
    }

    /// The highest sequence in the store (0 if none); a new hold must exceed it.
    var lastSequence: UInt64 { sequences.last ?? 0 }

    /// Adds a new hold. Its sequence must exceed every stored one and its id must be free.
    mutating func append(_ hold: Hold, sequence: UInt64) {
        precondition(sequence > lastSequence, "holds must arrive in sequence order")
        precondition(slotByID[hold.reservationId] == nil, "hold \(hold.reservationId) already stored")
        precondition(slots.count < Int(UInt32.max), "too many hold slots")
        slotByID[hold.reservationId] = UInt32(slots.count)
        slots.append(hold)
        sequences.append(sequence)
    }

    /// Replaces a stored hold (same id and token) with its new state.
    mutating func update(_ hold: Hold) {
        guard let slot = slotByID[hold.reservationId] else { preconditionFailure("update of unknown hold") }
        precondition(slots[Int(slot)]?.token == hold.token, "update changes a hold's token")
        slots[Int(slot)] = hold
    }

    /// Forgets a hold; its id may be used again afterwards.
    mutating func remove(_ id: ReservationID) {
        guard let slot = slotByID.removeValue(forKey: id) else { return }
        slots[Int(slot)] = nil
        tombstones += 1
        if tombstones > max(1024, slotByID.count) { compact() }
    }

    private mutating func compact() {
        var keptSlots = ChunkedSlots()
        var keptSequences: [UInt64] = []
        keptSequences.reserveCapacity(slotByID.count + 1)
        for slot in 0..<slots.count {
            guard let hold = slots[slot] else { continue }
            slotByID[hold.reservationId] = UInt32(keptSlots.count)
            keptSlots.append(hold)
            keptSequences.append(sequences[slot])
        }
        slots = keptSlots
        sequences = keptSequences
        tombstones = 0
    }

    /// The slot holding `sequence`, by binary search.
    private func slot(ofSequence sequence: UInt64) -> Int? {
        guard sequence > 0 else { return nil }
        let position = firstSlot(afterSequence: sequence - 1)
        guard position < sequences.count, sequences[position] == sequence, slots[position] != nil else { return nil }
        return position
    }

    /// The first slot whose sequence is greater than `sequence`.
    private func firstSlot(afterSequence sequence: UInt64) -> Int {
        var low = 0
        var high = sequences.count
        while low < high {
            let middle = (low + high) / 2
            if sequences[middle] <= sequence { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Calls `body` with each live hold and its sequence, in sequence order, starting after
    /// `afterSequence`, until it returns false. Returns the sequence of the last slot examined and
    /// whether slots remain after it.
    @discardableResult
    public func forEach(afterSequence: UInt64 = 0, _ body: (Hold, UInt64) throws -> Bool) rethrows -> (
        lastSequence: UInt64?, more: Bool
    ) {
        var position = firstSlot(afterSequence: afterSequence)
        var last: UInt64?
        while position < slots.count {
            last = sequences[position]
            let hold = slots[position]
            position += 1
            if let hold, try !body(hold, last!) { break }
        }
        return (last, position < slots.count)
    }

    /// Every live hold in sequence order.
    public var values: [Hold] {
        var result: [Hold] = []
        result.reserveCapacity(count)
        forEach { hold, _ in result.append(hold); return true }
        return result
    }
}

/// Slots in fixed-size chunks: appending never copies the slots already stored.
struct ChunkedSlots: Sendable {
    static let chunkShift = 12
    static let chunkMask = (1 << chunkShift) - 1
    private var chunks: [[Hold?]] = []
    private(set) var count = 0

    subscript(slot: Int) -> Hold? {
        get { chunks[slot >> Self.chunkShift][slot & Self.chunkMask] }
        set { chunks[slot >> Self.chunkShift][slot & Self.chunkMask] = newValue }
    }

    mutating func append(_ hold: Hold) {
        if count & Self.chunkMask == 0 {
            var chunk: [Hold?] = []
            chunk.reserveCapacity(1 << Self.chunkShift)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(hold)
        count += 1
    }
}

/// Reservation id → slot, split into shards by hash so that growing rehashes one shard at a time.
struct ShardedIndex: Sendable {
    static let shardBits = 6
    private var shards = [[ReservationID: UInt32]](repeating: [:], count: 1 << shardBits)
    private(set) var count = 0

    private static func shard(_ id: ReservationID) -> Int {
        Int(truncatingIfNeeded: UInt64(UInt(bitPattern: id.hashValue)) >> UInt64(64 - shardBits))
    }

    subscript(id: ReservationID) -> UInt32? {
        get { shards[Self.shard(id)][id] }
        set {
            let shard = Self.shard(id)
            if let newValue {
                if shards[shard].updateValue(newValue, forKey: id) == nil { count += 1 }
            } else if shards[shard].removeValue(forKey: id) != nil {
                count -= 1
            }
        }
    }

    mutating func removeValue(forKey id: ReservationID) -> UInt32? {
        let removed = shards[Self.shard(id)].removeValue(forKey: id)
        if removed != nil { count -= 1 }
        return removed
    }
}
