/// A Redis reply.
public enum RedisValue: Hashable, Sendable {
    case status(String)
    case error(String)
    case integer(Int64)
    /// A bulk string; nil is Redis's null.
    case bulk([UInt8]?)
    /// An array; nil is a null array.
    case array([RedisValue]?)

    public var string: String? {
        switch self {
        case .status(let text): text
        case .bulk(let bytes?): String(decoding: bytes, as: UTF8.self)
        default: nil
        }
    }

    public var integer: Int64? {
        switch self {
        case .integer(let value): value
        case .bulk(let bytes?): Int64(String(decoding: bytes, as: UTF8.self))
        default: nil
        }
    }

    public var elements: [RedisValue]? {
        if case .array(let values?) = self { return values }
        return nil
    }

    public var isNull: Bool {
        switch self {
        case .bulk(nil), .array(nil): true
        default: false
        }
    }
}

/// Why a Redis call failed.
public enum RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The command was sent but the connection failed before its reply: it may or may not have run.
    case outcomeUnknown(String)
    /// The command was never sent (no connection within the timeout, or the client stopped).
    case notSent(String)
    /// Too many commands are already waiting.
    case overloaded
    /// Redis answered with an error reply.
    case server(String)
    /// A reply did not have the expected shape.
    case unexpectedReply(String)

    public var description: String {
        switch self {
        case .outcomeUnknown(let detail): "redis: outcome unknown: \(detail)"
        case .notSent(let detail): "redis: not sent: \(detail)"
        case .overloaded: "redis: too many commands waiting"
        case .server(let message): "redis: \(message)"
        case .unexpectedReply(let detail): "redis: unexpected reply: \(detail)"
        }
    }

    /// Whether the command certainly did not run.
    public var certainlyNotRun: Bool {
        switch self {
        case .notSent, .overloaded: true
        case .server(let message): message.hasPrefix("NOSCRIPT")
        case .outcomeUnknown, .unexpectedReply: false
        }
    }
}

/// One command's arguments, packed into one buffer (hiredis copies them into its output buffer).
public struct RedisCommand: Sendable {
    var bytes: [UInt8] = []
    var lengths: [Int] = []

    public init(_ arguments: [String]) {
        for argument in arguments { append(argument) }
    }

    public init() {}

    public mutating func append(_ argument: String) {
        let start = bytes.count
        bytes.append(contentsOf: argument.utf8)
        lengths.append(bytes.count - start)
    }

    public mutating func append(_ argument: [UInt8]) {
        bytes.append(contentsOf: argument)
        lengths.append(argument.count)
    }

    public mutating func append(_ value: Int64) { append(String(value)) }

    public var count: Int { lengths.count }

    /// Each argument's bytes, in order.
    public var arguments: [[UInt8]] {
        var start = 0
        return lengths.map { length in
            defer { start += length }
            return Array(bytes[start..<start + length])
        }
    }

    /// The command's name, for logs.
    public var name: String {
        guard let first = lengths.first else { return "" }
        return String(decoding: bytes.prefix(first), as: UTF8.self).uppercased()
    }
}
