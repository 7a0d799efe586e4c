import Dispatch
import Glibc
import StockadeCore
import Synchronization

/// The durable, ordered command log: segment files of checksummed records.
///
/// A segment is named by the index of its first entry (`log-<index>.wal`). A new segment starts
/// after each snapshot, so compaction deletes whole files. Recovery reads every record after the
/// snapshot; a record that is incomplete or fails its checksum in the last segment is a torn
/// write from a crash and is cut off, since nothing past it was ever acknowledged. The same in an
/// earlier segment is corruption, and opening fails.
///
/// Preallocation (`segmentBytes > 0`): segments are zero-filled files of `segmentBytes`, made in
/// the background ahead of need (`spare.tmp`, renamed into place when the log rolls). Appending
/// then overwrites blocks the file already has, so an fdatasync writes the data alone and no
/// file-size metadata: about half the latency of an appending fdatasync on ext4, and concurrent
/// logs on one disk stop syncing in lockstep. A zero tail after the last record is free space;
/// anything else there is a torn write. The log rolls to a new segment once the current one is
/// full (a batch may run past the end: the file just grows), and also as soon as a spare is ready
/// while the current segment is not preallocated (a fresh log, or one cut by recovery).
///
/// Threading: not thread-safe. One thread (the commit loop) owns a log; only the spare is
/// prepared on a background queue, and handed over under the `spare` mutex.
public final class CommandLog {
    public let directory: String
    let payloadBytesMax: Int
    /// Preallocated segment size in bytes; 0 turns preallocation off (plain appending files).
    public let segmentBytes: Int
    private var segment: PosixFile?
    private var segmentFirstIndex: LogIndex = 0
    /// Bytes of records in the open segment (where the next write goes).
    private var segmentPosition = 0
    /// Zero-filled bytes the open segment was created with (0 when not preallocated).
    private var segmentCapacity = 0
    /// The index of the last entry written (durable after the next `sync()`).
    public private(set) var lastIndex: LogIndex = 0
    /// The term of the last entry written.
    public private(set) var lastTerm: UInt64 = 0
    private var buffer: [UInt8] = []

    private let spare: SpareSegment?

    /// Opens (creating if needed) the log in `directory`. Call `recover(after:_:)` before appending.
    public init(directory: String, payloadBytesMax: Int, segmentBytes: Int = 0) throws {
        precondition(segmentBytes == 0 || segmentBytes >= 4096, "segmentBytes must be 0 or at least 4096")
        self.directory = directory
        self.payloadBytesMax = payloadBytesMax
        self.segmentBytes = segmentBytes
        try Directory.create(directory)
        // A spare left by an earlier run may be partly written: make a new one.
        try Directory.remove(directory + "/" + SpareSegment.name)
        spare = segmentBytes > 0 ? SpareSegment(path: directory + "/" + SpareSegment.name, bytes: segmentBytes) : nil
    }

    static func segmentName(_ firstIndex: LogIndex) -> String {
        let digits = String(firstIndex)
        return "log-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".wal"
    }

    func segments() throws -> [(firstIndex: LogIndex, name: String)] {
        try Directory.list(directory).compactMap { name -> (LogIndex, String)? in
            guard name.hasPrefix("log-"), name.hasSuffix(".wal"),
                let first = LogIndex(name.dropFirst(4).dropLast(4))
            else { return nil }
            return (first, name)
        }.sorted { $0.0 < $1.0 }
    }

    /// Reads every entry with index > `snapshotIndex` in order, cutting off a torn tail, and
    /// leaves the log ready to append after the last good entry.
    public func recover(after snapshotIndex: LogIndex, snapshotTerm: UInt64 = 0, _ visit: (LogEntry) throws -> Void) throws {
        let all = try segments()
        lastIndex = snapshotIndex
        lastTerm = snapshotTerm
        var openName: String?
        for (position, (firstIndex, name)) in all.enumerated() {
            let path = directory + "/" + name
            let bytes = try PosixFile(path: path, flags: O_RDONLY).readAll()
            var offset = 0
            var expected = firstIndex
            while offset < bytes.count {
                guard let (entry, next) = LogEntry.parse(bytes, at: offset, payloadBytesMax: payloadBytesMax),
                    entry.index == expected
                else { break }
                if entry.index > snapshotIndex {
                    guard entry.index == lastIndex + 1 else {
                        throw StorageError("log gap in \(name): entry \(entry.index) after \(lastIndex)")
                    }
                    try visit(entry)
                    lastIndex = entry.index
                    lastTerm = entry.term
                }
                expected += 1
                offset = next
            }
            let isLast = position == all.count - 1
            var capacity = 0
            if offset < bytes.count {
                if bytes[offset...].allSatisfy({ $0 == 0 }) {
                    capacity = bytes.count  // preallocated space never written
                } else {
                    guard isLast else { throw StorageError("corrupt record in \(name) at byte \(offset)") }
                    // Cut, rather than zero, the torn bytes: the segment is then no longer
                    // preallocated and the log rolls to a fresh one as soon as a spare is ready.
                    let file = try PosixFile(path: path, flags: O_WRONLY)
                    try file.truncate(to: offset)
                    try file.syncData()
                }
            }
            if isLast {
                openName = name
                segmentFirstIndex = firstIndex
                segmentPosition = offset
                segmentCapacity = capacity
            }
        }
        if let openName, lastIndex >= segmentFirstIndex - 1 {
            let file = try PosixFile(path: directory + "/" + openName, flags: O_WRONLY)
            try file.seek(to: segmentPosition)
            segment = file
            spare?.prepareIfNeeded()
        } else {
            try startSegment(firstIndex: lastIndex + 1)
        }
    }

    /// Buffers entries for the next `sync()`. Indices must continue the log without gaps.
    public func append(_ entry: LogEntry) {
        precondition(entry.index == lastIndex + 1, "append \(entry.index) after \(lastIndex)")
        precondition(entry.payload.count <= payloadBytesMax, "entry \(entry.index) exceeds the size limit")
        entry.append(to: &buffer)
        lastIndex = entry.index
        lastTerm = entry.term
    }

    /// Writes the buffered entries and makes them durable with one fdatasync (group commit).
    /// Then rolls to a new segment when the current one is full, or when a preallocated one is
    /// ready and the current one is not.
    public func sync() throws {
        guard let segment else { preconditionFailure("log used before recover") }
        if !buffer.isEmpty {
            try buffer.withUnsafeBytes { try segment.write($0) }
            segmentPosition += buffer.count
            buffer.removeAll(keepingCapacity: buffer.count <= 4 << 20)
        }
        try segment.syncData()
        guard segmentBytes > 0 else { return }
        if segmentCapacity == 0 ? spare?.isReady == true : segmentPosition >= segmentCapacity {
            try startSegment(firstIndex: lastIndex + 1)
        }
    }

    /// Starts a new segment whose first entry will be `firstIndex`: the preallocated spare if one
    /// is ready, else an empty file. Buffered entries must be synced first.
    public func startSegment(firstIndex: LogIndex) throws {
        precondition(buffer.isEmpty, "start a segment only after sync")
        // Already there (the log just rolled at this index): keep the segment and its space.
        if segment != nil && segmentFirstIndex == firstIndex && segmentPosition == 0 { return }
        let path = directory + "/" + Self.segmentName(firstIndex)
        let file: PosixFile
        if let spare, spare.take() {
            try Directory.rename(spare.path, path)
            file = try PosixFile(path: path, flags: O_WRONLY)
            segmentCapacity = segmentBytes
        } else {
            file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try file.syncData()
            segmentCapacity = 0
        }
        try Directory.sync(directory)
        segment = file
        segmentFirstIndex = firstIndex
        segmentPosition = 0
        spare?.prepareIfNeeded()  // the next one, made while this one fills
    }

    /// Waits for a spare being prepared (tests).
    func waitForSpare() { spare?.wait() }

    /// Drops every entry after `index`, durably: a follower replacing a tail that conflicts with a
    /// new leader's log. `term` is the term of the entry at `index` (0 when `index` is the
    /// snapshot point). Buffered entries must be synced first.
    public func truncate(after index: LogIndex, term: UInt64) throws {
        precondition(buffer.isEmpty, "truncate only after sync")
        guard index < lastIndex else { return }
        let all = try segments()
        for (firstIndex, name) in all.reversed() {
            let path = directory + "/" + name
            if firstIndex > index + 1 || (firstIndex == index + 1 && firstIndex != all.first!.firstIndex) {
                try Directory.remove(path)
                continue
            }
            // This segment holds entry `index + 1` (or is the first one): cut it there.
            let bytes = try PosixFile(path: path, flags: O_RDONLY).readAll()
            var offset = 0
            while offset < bytes.count, let (entry, next) = LogEntry.parse(bytes, at: offset, payloadBytesMax: payloadBytesMax),
                entry.index <= index
            {
                offset = next
            }
            let file = try PosixFile(path: path, flags: O_WRONLY)
            try file.truncate(to: offset)
            try file.syncData()
            try file.seekToEnd()
            segment = file
            segmentFirstIndex = firstIndex
            segmentPosition = offset
            segmentCapacity = 0  // cut: no longer preallocated; the log rolls once a spare is ready
            spare?.prepareIfNeeded()
            break
        }
        try Directory.sync(directory)
        lastIndex = index
        lastTerm = term
    }

    /// Discards the whole log and starts empty after `index`: a follower that installed a snapshot
    /// at `index` (term `term`) its own log did not match. Buffered entries must be synced first.
    public func reset(after index: LogIndex, term: UInt64) throws {
        precondition(buffer.isEmpty, "reset only after sync")
        for (_, name) in try segments() { try Directory.remove(directory + "/" + name) }
        try startSegment(firstIndex: index + 1)
        lastIndex = index
        lastTerm = term
    }

    /// Deletes segments whose entries all lie at or before `index` (covered by a durable snapshot).
    public func compact(through index: LogIndex) throws {
        let all = try segments()
        for (position, (_, name)) in all.enumerated() {
            guard position + 1 < all.count, all[position + 1].firstIndex <= index + 1 else { continue }
            try Directory.remove(directory + "/" + name)
        }
        try Directory.sync(directory)
    }
}

/// A zero-filled segment file made in the background, ahead of the log's next roll.
final class SpareSegment: Sendable {
    static let name = "spare.tmp"

    let path: String
    let bytes: Int
    private let queue = DispatchQueue(label: "stockade-log-spare")
    private let state = Mutex(State.none)

    private enum State {
        case none, preparing, ready
    }

    init(path: String, bytes: Int) {
        self.path = path
        self.bytes = bytes
    }

    var isReady: Bool { state.withLock { $0 == .ready } }

    /// Claims the ready spare, if there is one; the caller renames it into place.
    func take() -> Bool {
        state.withLock { state in
            guard state == .ready else { return false }
            state = .none
            return true
        }
    }

    /// Starts zero-filling the spare unless one is ready or on its way. A failure (say, a full
    /// disk) leaves no spare: the log goes on with plain appending files and tries again later.
    func prepareIfNeeded() {
        let claimed = state.withLock { state in
            guard state == .none else { return false }
            state = .preparing
            return true
        }
        guard claimed else { return }
        queue.async { [self] in
            let made = (try? fill()) != nil
            if !made { try? Directory.remove(path) }
            state.withLock { $0 = made ? .ready : .none }
        }
    }

    /// Writes the zeros a mebibyte at a time, syncing each, so the disk never holds one long
    /// write that the log's own fdatasyncs would queue behind.
    private func fill() throws {
        let file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        let zeros = [UInt8](repeating: 0, count: min(bytes, 1 << 20))
        var written = 0
        while written < bytes {
            let count = min(zeros.count, bytes - written)
            try zeros.withUnsafeBytes { try file.write(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            try file.syncData()
            written += count
        }
    }

    /// Waits until a spare being prepared is done (tests).
    func wait() { queue.sync {} }
}
