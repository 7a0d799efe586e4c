import Glibc
import StockadeCore

/// Snapshot files: `snapshot-<index>.snap`, written to a temporary name, fsynced and renamed into place.
///
/// Layout: magic u32 "STKS", CRC-32C u32 of the rest, index u64, term u64, length u64, bytes.
/// Threading: not thread-safe; used by the commit loop and at start-up.
public struct SnapshotStore: Sendable {
    public let directory: String
    static let magic: UInt32 = 0x534B_5453

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
        var header = ByteWriter(capacity: 24)
        header.write(index)
        header.write(term)
        header.write(UInt64(bytes.count))
        let crc = bytes.withUnsafeBytes { CRC32C.update(header.bytes.withUnsafeBytes { CRC32C.update(0, $0) }, $0) }
        var prefix = ByteWriter(capacity: 32)
        prefix.write(Self.magic)
        prefix.write(crc)
        prefix.write(raw: header.bytes)
        let finalPath = directory + "/" + Self.name(index)
        let temporaryPath = finalPath + ".tmp"
        do {
            let handle = try PosixFile(path: temporaryPath, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try prefix.bytes.withUnsafeBytes { try handle.write($0) }
            try bytes.withUnsafeBytes { try handle.write($0) }
            try handle.syncData()
        }
        try Directory.rename(temporaryPath, finalPath)
        try Directory.sync(directory)
        for name in try Directory.list(directory) where name.hasPrefix("snapshot-") && name != Self.name(index) {
            try Directory.remove(directory + "/" + name)
        }
    }

    /// The newest snapshot that passes its checksum, or nil if there is none.
    public func loadLatest() throws -> Snapshot? {
        let names = try Directory.list(directory).filter { $0.hasPrefix("snapshot-") && $0.hasSuffix(".snap") }.sorted(
            by: >)
        for name in names {
            let bytes = try PosixFile(path: directory + "/" + name, flags: O_RDONLY).readAll()
            var reader = ByteReader(bytes)
            guard let magic = try? reader.readUInt32(), magic == Self.magic, let crc = try? reader.readUInt32(),
                CRC32C.checksum(bytes[8...]) == crc, let index = try? reader.readUInt64(),
                let term = try? reader.readUInt64(), let length = try? reader.readUInt64(), Int(length) == reader.remaining
            else { continue }
            return Snapshot(index: index, term: term, bytes: Array(bytes[reader.offset...]))
        }
        return nil
    }
}
