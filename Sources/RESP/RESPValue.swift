import NIOCore

/// One value of the Redis serialization protocol (RESP2 and RESP3), as sent by either side.
public enum RESPValue: Sendable, Hashable {
    case simpleString(String)
    case error(String)
    case integer(Int64)
    /// A bulk string; nil is RESP2's null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// An array; nil is RESP2's null array (`*-1`).
    case array([RESPValue]?)
    /// RESP3's null (`_`); written as `$-1` in RESP2.
    case null
    case double(Double)
    case boolean(Bool)
    /// A RESP3 map in its order; written as a flat key/value array in RESP2.
    case map([RESPPair])
    case set([RESPValue])
    /// A RESP3 push (out-of-band); never sent by Stockade, read by the client so it can be skipped.
    case push([RESPValue])
    case bigNumber(String)
    /// A RESP3 verbatim string with its three-letter format (`txt`, `mkd`).
    case verbatim(format: String, text: String)

    /// A bulk string holding `text`.
    public static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// A command as clients send it: an array of bulk strings.
    public static func command(_ arguments: [String]) -> RESPValue { .array(arguments.map(bulk)) }

    /// The text of a simple, bulk or verbatim string; nil for anything else.
    public var string: String? {
        switch self {
        case .simpleString(let text), .verbatim(_, let text): text
        case .bulkString(let buffer?): String(buffer: buffer)
        default: nil
        }
    }

    /// Whether this is a null of either protocol.
    public var isNull: Bool {
        switch self {
        case .null, .bulkString(nil), .array(nil): true
        default: false
        }
    }
}

/// One key and value of a RESP3 map.
public struct RESPPair: Sendable, Hashable {
    public var key: RESPValue
    public var value: RESPValue

    public init(_ key: RESPValue, _ value: RESPValue) {
        self.key = key
        self.value = value
    }

    /// A pair with a bulk-string key, the common case.
    public init(_ key: String, _ value: RESPValue) {
        self.init(.bulk(key), value)
    }
}

/// The protocol version a connection speaks: 2 until `HELLO 3`.
public enum RESPVersion: Int, Sendable, Hashable {
    case resp2 = 2
    case resp3 = 3
}
