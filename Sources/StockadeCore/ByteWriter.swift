/// An append-only little-endian binary writer. Its output is a deterministic function of the calls made.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 64) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func write(_ value: UInt8) { bytes.append(value) }

    /// Empties the writer, keeping its capacity (for writers that hand their bytes on in chunks).
    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    public mutating func write(_ value: Bool) { bytes.append(value ? 1 : 0) }

    public mutating func write(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ value: Int64) { write(UInt64(bitPattern: value)) }

    /// Writes a length (as UInt32) followed by the UTF-8 bytes.
    public mutating func write(_ value: String) {
        var copy = value
        copy.withUTF8 { utf8 in
            write(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func write(raw: some Collection<UInt8>) { bytes.append(contentsOf: raw) }
}

/// Reads what `ByteWriter` wrote. Every read checks bounds and throws `ByteReader.Failure` on malformed input.
public struct ByteReader {
    /// Malformed or truncated input.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var isAtEnd: Bool { offset == bytes.count }
    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw Failure(description: "need \(count) bytes at offset \(offset), have \(remaining)")
        }
        defer { offset += count }
        return bytes[offset..<(offset + count)]
    }

    public mutating func readUInt8() throws -> UInt8 { try take(1).first! }

    public mutating func readBool() throws -> Bool {
        switch try readUInt8() {
        case 0: return false
        case 1: return true
        case let other: throw Failure(description: "invalid bool \(other)")
        }
    }

    public mutating func readUInt32() throws -> UInt32 {
        let slice = try take(4)
        var value: UInt32 = 0
        for (shift, byte) in slice.enumerated() { value |= UInt32(byte) << (8 * UInt32(shift)) }
        return value
    }

    public mutating func readUInt64() throws -> UInt64 {
        let slice = try take(8)
        var value: UInt64 = 0
        for (shift, byte) in slice.enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return value
    }

    public mutating func readInt64() throws -> Int64 { Int64(bitPattern: try readUInt64()) }

    public mutating func readString() throws -> String {
        let count = Int(try readUInt32())
        let slice = try take(count)
        guard let string = String(validating: slice, as: UTF8.self) else {
            throw Failure(description: "invalid UTF-8 at offset \(offset - count)")
        }
        return string
    }

    /// Reads `count` raw bytes in one copy.
    public mutating func readRaw(count: Int) throws -> [UInt8] { Array(try take(count)) }

    /// Reads a count and checks it against a bound before anything is allocated for it.
    public mutating func readCount(max: Int) throws -> Int {
        let count = Int(try readUInt32())
        guard count <= max else { throw Failure(description: "count \(count) exceeds \(max)") }
        return count
    }
}
