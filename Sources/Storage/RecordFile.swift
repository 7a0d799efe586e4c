import Glibc
import StockadeCore

/// A single append-only file of checksummed records (the `LogEntry` framing, numbered from 1),
/// for small logs that are never compacted: a node's local log of provisional holds.
///
/// Recovery reads every whole record; an incomplete or mismatching record is a torn write from a
/// crash (nothing past it was ever acknowledged) and the file is cut there.
///
/// Threading: not thread-safe; one thread owns it.
public final class RecordFile {
    public let path: String
    let payloadBytesMax: Int
    private var file: PosixFile?
    private var buffer: [UInt8] = []
    /// Records in the file.
    public private(set) var count: UInt64 = 0
    /// Bytes `recover()` cut off after the last whole record (a torn tail, or a damaged record
    /// and everything after it: the file cannot tell which).
    public private(set) var truncatedBytes = 0

    public init(path: String, payloadBytesMax: Int) {
        self.path = path
        self.payloadBytesMax = payloadBytesMax
    }

    /// Reads every record, cuts off a torn tail, and opens the file for appending.
    /// Returns the payloads in order (empty for a new file).
    public func recover() throws -> [[UInt8]] {
        let file = try PosixFile(path: path, flags: O_RDWR | O_CREAT)
        let bytes = try file.readAll()
        var payloads: [[UInt8]] = []
        var offset = 0
        while let (entry, next) = LogEntry.parse(bytes, at: offset, payloadBytesMax: payloadBytesMax),
            entry.index == UInt64(payloads.count) + 1
        {
            payloads.append(entry.payload)
            offset = next
        }
        truncatedBytes = bytes.count - offset
        if offset < bytes.count {
            try file.truncate(to: offset)
            try file.syncData()
        }
        try file.seek(to: offset)
        if bytes.isEmpty {
            // A new file: make its directory entry durable too.
            try Directory.sync(String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]))
        }
        self.file = file
        count = UInt64(payloads.count)
        return payloads
    }

    /// Appends records; durable after the next `sync()`.
    public func append(_ payload: [UInt8]) {
        count += 1
        LogEntry(index: count, term: 0, payload: payload).append(to: &buffer)
    }

    /// Writes and fsyncs what was appended.
    public func sync() throws {
        guard let file else { throw StorageError("record file \(path) is not open") }
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try file.write($0) }
        buffer.removeAll(keepingCapacity: true)
        try file.syncData()
    }
}
