import Glibc
import StockadeCore

/// A replica's consensus state: its current term, whom it voted for (0 for nobody) and the highest
/// index it knows committed. One small checksummed file, replaced atomically.
///
/// Term and vote must be durable before the node answers a vote or an append in that term; the
/// commit index may lag (a restarted node learns it again from the leader).
/// Threading: not thread-safe; one thread owns it.
public struct HardStateFile: Sendable {
    public struct Value: Hashable, Sendable {
        public var term: UInt64
        public var votedFor: UInt64
        public var commit: LogIndex
        public init(term: UInt64 = 0, votedFor: UInt64 = 0, commit: LogIndex = 0) {
            self.term = term
            self.votedFor = votedFor
            self.commit = commit
        }
    }

    public let path: String
    static let magic: UInt32 = 0x5348_5453  // "STHS"

    public init(directory: String) throws {
        try Directory.create(directory)
        path = directory + "/hardstate"
    }

    /// The stored value, or the zero value if there is none yet. A file that fails its checksum
    /// is refused: a term or vote that cannot be trusted must not be guessed.
    public func load() throws -> Value {
        guard Directory.exists(path) else { return Value() }
        let bytes = try PosixFile(path: path, flags: O_RDONLY).readAll()
        var reader = ByteReader(bytes)
        guard let magic = try? reader.readUInt32(), magic == Self.magic, let crc = try? reader.readUInt32(),
            bytes.count == 32, CRC32C.checksum(bytes[8...]) == crc
        else { throw StorageError("hard state file \(path) is corrupt") }
        return Value(term: try reader.readUInt64(), votedFor: try reader.readUInt64(), commit: try reader.readUInt64())
    }

    /// Replaces the stored value: write a temporary file, fsync it when `durable`, rename over.
    public func save(_ value: Value, durable: Bool) throws {
        var body = ByteWriter(capacity: 24)
        body.write(value.term)
        body.write(value.votedFor)
        body.write(value.commit)
        var bytes = ByteWriter(capacity: 32)
        bytes.write(Self.magic)
        bytes.write(CRC32C.checksum(body.bytes[...]))
        bytes.write(raw: body.bytes)
        let temporary = path + ".tmp"
        do {
            let file = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
            try bytes.bytes.withUnsafeBytes { try file.write($0) }
            if durable { try file.syncData() }
        }
        try Directory.rename(temporary, path)
        if durable { try Directory.sync(String(path.dropLast("/hardstate".count))) }
    }
}
