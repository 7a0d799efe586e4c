import NIOCore
import RESP

/// Builds the RESP value of a payload described through `PayloadWriter`: objects become maps,
/// arrays arrays. What `RESPReply.from(_: APIAnswer)` would make of the JSON, without the JSON.
struct RESPTreeWriter: PayloadWriter {
    private enum Frame {
        case object([RESPPair], key: StaticString?)
        case array([RESPValue], key: StaticString?)
    }

    private var stack: [Frame] = []
    /// The finished top-level value.
    private(set) var value: RESPValue?

    mutating func beginObject() { stack.append(.object([], key: nil)) }

    mutating func beginArray(_ key: StaticString) { stack.append(.array([], key: key)) }

    mutating func endObject() {
        guard case .object(let pairs, let key) = stack.popLast() else { preconditionFailure("endObject without beginObject") }
        add(.map(pairs), key: key)
    }

    mutating func endArray() {
        guard case .array(let elements, let key) = stack.popLast() else { preconditionFailure("endArray without beginArray") }
        add(.array(elements), key: key)
    }

    mutating func field(_ key: StaticString, _ value: String) { add(.bulk(value), key: key) }

    mutating func field(_ key: StaticString, _ value: Int64) { add(.integer(value), key: key) }

    mutating func field(_ key: StaticString, _ value: UInt64) {
        add(value <= UInt64(Int64.max) ? .integer(Int64(value)) : .bigNumber(String(value)), key: key)
    }

    private mutating func add(_ element: RESPValue, key: StaticString?) {
        switch stack.popLast() {
        case nil:
            value = element
        case .object(var pairs, let ownKey)?:
            pairs.append(RESPPair(key.map { $0.description } ?? "", element))
            stack.append(.object(pairs, key: ownKey))
        case .array(var elements, let ownKey)?:
            elements.append(element)
            stack.append(.array(elements, key: ownKey))
        }
    }
}

/// Counts the fields of every object and the elements of every array of a payload, in the order
/// they begin: RESP states an aggregate's length before its elements, so `RESPByteWriter` writes
/// a payload in a second pass over the same description with these counts.
struct RESPCountingWriter: PayloadWriter {
    private(set) var counts: [Int] = []
    private var open: [Int] = []

    private mutating func element() {
        if let top = open.last { counts[top] += 1 }
    }

    private mutating func begin() {
        element()
        counts.append(0)
        open.append(counts.count - 1)
    }

    mutating func beginObject() { begin() }
    mutating func beginArray(_ key: StaticString) { begin() }
    mutating func endObject() { open.removeLast() }
    mutating func endArray() { open.removeLast() }
    mutating func field(_ key: StaticString, _ value: String) { element() }
    mutating func field(_ key: StaticString, _ value: Int64) { element() }
    mutating func field(_ key: StaticString, _ value: UInt64) { element() }
}

/// Writes a payload's RESP bytes straight into a buffer (the same bytes `RESPTreeWriter`'s value
/// encodes to), given the counts `RESPCountingWriter` took from the same description.
struct RESPByteWriter: PayloadWriter {
    var buffer: ByteBuffer
    let version: RESPVersion
    private let counts: [Int]
    private var next = 0

    init(buffer: ByteBuffer, version: RESPVersion, counts: [Int]) {
        self.buffer = buffer
        self.version = version
        self.counts = counts
    }

    private mutating func header(_ type: UInt8, _ number: Int) {
        buffer.writeRESPHeader(type, Int64(number))
    }

    private mutating func key(_ key: StaticString) {
        buffer.writeRESPBulk(key)
    }

    mutating func beginObject() {
        let count = counts[next]
        next += 1
        if version == .resp3 { header(UInt8(ascii: "%"), count) } else { header(UInt8(ascii: "*"), count * 2) }
    }

    mutating func beginArray(_ key: StaticString) {
        self.key(key)
        header(UInt8(ascii: "*"), counts[next])
        next += 1
    }

    mutating func endObject() {}
    mutating func endArray() {}

    mutating func field(_ key: StaticString, _ value: String) {
        self.key(key)
        buffer.writeRESPBulk(value)
    }

    mutating func field(_ key: StaticString, _ value: Int64) {
        self.key(key)
        header(UInt8(ascii: ":"), Int(value))
    }

    mutating func field(_ key: StaticString, _ value: UInt64) {
        guard value > UInt64(Int64.max) else { return field(key, Int64(value)) }
        self.key(key)
        if version == .resp3 {
            buffer.writeInteger(UInt8(ascii: "("))
            buffer.writeString(String(value))
            buffer.writeStaticString("\r\n")
        } else {
            let digits = String(value)
            header(UInt8(ascii: "$"), digits.utf8.count)
            buffer.writeString(digits)
            buffer.writeStaticString("\r\n")
        }
    }
}
