import Glibc
import StockadeCore

/// The durable, ordered command log: segment files of checksummed records.
///
/// A segment is named by the index of its first entry (`log-<index>.wal`). A new segment starts
/// after each snapshot, so compaction deletes whole files. Recovery reads every record after the
/// snapshot; a record that is incomplete or fails its checksum in the last segment is a torn
/// write from a crash and is cut off, since nothing past it was ever acknowledged. The same in an
/// earlier segment is corruption, and opening fails.
///
/// Threading: not thread-safe. One thread (the commit loop) owns a log.
public final class CommandLog {
    public let directory: String
    let payloadBytesMax: Int
    private var segment: PosixFile?
    private var segmentFirstIndex: LogIndex = 0
    /// The index of the last entry written (durable after the next `sync()`).
    public private(set) var lastIndex: LogIndex = 0
    /// The term of the last entry written.
    public private(set) var lastTerm: UInt64 = 0
    private var buffer: [UInt8] = []

    /// Opens (creating if needed) the log in `directory`. Call `recover(after:_:)` before appending.
    public init(directory: String, payloadBytesMax: Int) throws {
        self.directory = directory
        self.payloadBytesMax = payloadBytesMax
        try Directory.create(directory)
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
            if offset < bytes.count {
                guard isLast else { throw StorageError("corrupt record in \(name) at byte \(offset)") }
                let file = try PosixFile(path: path, flags: O_WRONLY)
                try file.truncate(to: offset)
                try file.syncData()
            }
            if isLast { openName = name; segmentFirstIndex = firstIndex }
        }
        if let openName, lastIndex >= segmentFirstIndex - 1 {
            let file = try PosixFile(path: directory + "/" + openName, flags: O_WRONLY)
            try file.seekToEnd()
            segment = file
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
    public func sync() throws {
        guard let segment else { preconditionFailure("log used before recover") }
        if !buffer.isEmpty {
            try buffer.withUnsafeBytes { try segment.write($0) }
            buffer.removeAll(keepingCapacity: buffer.count <= 4 << 20)
        }
        try segment.syncData()
    }

    /// Starts a new segment whose first entry will be `firstIndex`. Buffered entries must be synced first.
    public func startSegment(firstIndex: LogIndex) throws {
        precondition(buffer.isEmpty, "start a segment only after sync")
        let name = Self.segmentName(firstIndex)
        let file = try PosixFile(path: directory + "/" + name, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try file.syncData()
        try Directory.sync(directory)
        segment = file
        segmentFirstIndex = firstIndex
    }

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
