import StockadeCore

/// One record of the command log: an opaque payload at a position, with the term that wrote it.
public struct LogEntry: Sendable, Equatable {
    public var index: LogIndex
    public var term: UInt64
    public var payload: [UInt8]

    public init(index: LogIndex, term: UInt64, payload: [UInt8]) {
        self.index = index
        self.term = term
        self.payload = payload
    }

    /// Record layout, little-endian: payload length u32, CRC-32C u32, index u64, term u64, payload.
    /// The checksum covers the length, index, term and payload.
    static let headerBytes = 24

    func append(to buffer: inout [UInt8]) {
        let start = buffer.count
        var writer = ByteWriter(capacity: Self.headerBytes)
        writer.write(UInt32(payload.count))
        writer.write(UInt32(0))
        writer.write(index)
        writer.write(term)
        buffer.append(contentsOf: writer.bytes)
        buffer.append(contentsOf: payload)
        let crc = buffer.withUnsafeBytes { raw in
            let lengthPart = UnsafeRawBufferPointer(rebasing: raw[start..<(start + 4)])
            let rest = UnsafeRawBufferPointer(rebasing: raw[(start + 8)..<buffer.count])
            return CRC32C.update(CRC32C.update(0, lengthPart), rest)
        }
        withUnsafeBytes(of: crc.littleEndian) { crcBytes in
            for (offset, byte) in crcBytes.enumerated() { buffer[start + 4 + offset] = byte }
        }
    }

    /// Parses one record at `offset`. Returns nil if the bytes there are incomplete or fail the checksum.
    static func parse(_ bytes: [UInt8], at offset: Int, payloadBytesMax: Int) -> (entry: LogEntry, next: Int)? {
        guard bytes.count - offset >= headerBytes else { return nil }
        var reader = ByteReader(bytes, offset: offset)
        guard let length = try? Int(reader.readUInt32()), length <= payloadBytesMax,
            let crc = try? reader.readUInt32(), let index = try? reader.readUInt64(), let term = try? reader.readUInt64(),
            bytes.count - offset - headerBytes >= length
        else { return nil }
        let end = offset + headerBytes + length
        let actual = bytes.withUnsafeBytes { raw in
            CRC32C.update(
                CRC32C.update(0, UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4)])),
                UnsafeRawBufferPointer(rebasing: raw[(offset + 8)..<end]))
        }
        guard actual == crc else { return nil }
        return (LogEntry(index: index, term: term, payload: Array(bytes[(offset + headerBytes)..<end])), end)
    }
}
