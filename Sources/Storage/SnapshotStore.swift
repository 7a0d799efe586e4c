import Glibc
import StockadeCore

/// Snapshot files: `snapshot-<index>.snap`, written to a temporary name, fsynced and renamed into place.
///
/// Layout: magic u32, CRC-32C u32, index u64, term u64, length u64, bytes. Magic "STKS": the
/// checksum covers the header then the bytes; magic "SKS2" (written now, as the bytes stream to
/// disk): the bytes then the header.
/// Threading: not thread-safe; used by the commit loop and at start-up.
public struct SnapshotStore: Sendable {
    public let directory: String
    /// The first layout: the checksum covers the header, then the snapshot bytes. Still read.
    static let magic: UInt32 = 0x534B_5453
    /// The streamed layout: the checksum covers the snapshot bytes, then the header (which holds
    /// the length, known only once the bytes are written).
    static let streamedMagic: UInt32 = 0x3253_4B53
    /// Magic, checksum, index, term, length.
    static let prefixBytes = 32

    static func checksum(_ file: [UInt8], streamed: Bool) -> UInt32 {
        file.withUnsafeBytes { raw in
            let header = UnsafeRawBufferPointer(rebasing: raw[8..<prefixBytes])
            let body = UnsafeRawBufferPointer(rebasing: raw[prefixBytes...])
            return streamed
                ? CRC32C.update(CRC32C.update(0, body), header) : CRC32C.update(CRC32C.update(0, header), body)
        }
    }

    public init(directory: String) throws {
        self.directory = directory
        try Directory.create(directory)
    }

    /// A snapshot read back from disk.
    public struct Snapshot: Sendable {
        public var index: LogIndex
        public var term: UInt64
        public var bytes: [UInt8]
    }

    static func name(_ index: LogIndex) -> String {
        let digits = String(index)
        return "snapshot-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".snap"
    }

    /// Durably stores a snapshot, then removes older ones. Writes `bytes` without copying them.
    public func save(index: LogIndex, term: UInt64, bytes: [UInt8]) throws {
        try save(index: index, term: term) { write in try write(bytes) }
    }

    /// Durably stores a snapshot whose bytes `body` hands to `write` in order, then removes older
    /// ones; returns the snapshot's length. The bytes go to disk as they come, never all in memory.
    ///
    /// The file is synced every `syncBytes` (1 MiB), as the log's spare segments are filled: one
    /// long write of a 100 MB snapshot would sit in front of the log's own fdatasyncs for as long
    /// as the disk takes to write it. The header is written last, over a placeholder, because it
    /// holds the length and the checksum.
    @discardableResult
    public func save(
        index: LogIndex, term: UInt64, syncBytes: Int = 1 << 20,
        body: (_ write: ([UInt8]) throws -> Void) throws -> Void
    ) throws -> Int {
        let finalPath = directory + "/" + Self.name(index)
        let temporaryPath = finalPath + ".tmp"
        var length = 0
        do {
            let handle = try PosixFile(path: temporaryPath, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try [UInt8](repeating: 0, count: Self.prefixBytes).withUnsafeBytes { try handle.write($0) }
            var crc: UInt32 = 0
            var unsynced = 0
            try body { chunk in
                try chunk.withUnsafeBytes { raw in
                    crc = CRC32C.update(crc, raw)
                    try handle.write(raw)
                }
                length += chunk.count
                unsynced += chunk.count
                if unsynced >= syncBytes {
                    try handle.syncData()
                    unsynced = 0
                }
            }
            var header = ByteWriter(capacity: 24)
            header.write(index)
            header.write(term)
            header.write(UInt64(length))
            crc = header.bytes.withUnsafeBytes { CRC32C.update(crc, $0) }
            var prefix = ByteWriter(capacity: Self.prefixBytes)
            prefix.write(Self.streamedMagic)
            prefix.write(crc)
            prefix.write(raw: header.bytes)
            try handle.seek(to: 0)
            try prefix.bytes.withUnsafeBytes { try handle.write($0) }
            try handle.syncData()
        }
        try Directory.rename(temporaryPath, finalPath)
        try Directory.sync(directory)
        for name in try Directory.list(directory) where name.hasPrefix("snapshot-") && name != Self.name(index) {
            try Directory.remove(directory + "/" + name)
        }
        return length
    }

    /// The newest snapshot that passes its checksum, or nil if there is none.
    public func loadLatest() throws -> Snapshot? {
        let names = try Directory.list(directory).filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".snap") }.sorted(
            by: >)
        for name in names {
            let bytes = try PosixFile(path: directory + "/" + name, flags: O_RDONLY).readAll()
            var reader = ByteReader(bytes)
            guard bytes.count >= Self.prefixBytes, let magic = try? reader.readUInt32(),
                magic == Self.magic || magic == Self.streamedMagic, let crc = try? reader.readUInt32(),
                Self.checksum(bytes, streamed: magic == Self.streamedMagic) == crc, let index = try? reader.readUInt64(),
                let term = try? reader.readUInt64(), let length = try? reader.readUInt64(), Int(length) == reader.remaining
            else { continue }
            return Snapshot(index: index, term: term, bytes: Array(bytes[reader.offset...]))
        }
        return nil
    }
}
