import NIOCore

/// Bounds on what a parser accepts; a frame past any of them is a protocol error.
public struct RESPParserLimits: Sendable, Hashable {
    /// Longest bulk string, in bytes.
    public var bulkBytesMax: Int
    /// Most elements in one array, map, set or push (a map counts its keys and values).
    public var aggregateLengthMax: Int
    /// Deepest nesting of aggregates; 1 allows an array of scalars only.
    public var depthMax: Int
    /// Longest line: a simple string, an error, a number, or an inline command.
    public var lineBytesMax: Int

    public init(bulkBytesMax: Int, aggregateLengthMax: Int, depthMax: Int, lineBytesMax: Int) {
        self.bulkBytesMax = bulkBytesMax
        self.aggregateLengthMax = aggregateLengthMax
        self.depthMax = depthMax
        self.lineBytesMax = lineBytesMax
    }
}

/// A frame that breaks the protocol or a limit. The connection cannot be trusted to be in step
/// after it, so it is closed once the error is answered.
public struct RESPProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Redis's wording where there is one (`invalid bulk length`, `invalid multibulk length`, …).
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "Protocol error: \(reason)" }
}

/// Parses RESP frames from a buffer. Pure: it reads bytes and returns values, nothing else.
///
/// Each call either consumes one complete frame and returns it, returns nil and consumes nothing
/// (the frame is not complete yet), or throws. Incomplete frames are parsed again from their
/// start on the next call; the limits bound that work.
public struct RESPParser: Sendable {
    public var limits: RESPParserLimits

    public init(limits: RESPParserLimits) { self.limits = limits }

    /// One value of any RESP2 or RESP3 type (a client reading replies).
    public func parseValue(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        let result = try buffer.withUnsafeReadableBytes { bytes -> (RESPValue, Int)? in
            var cursor = Cursor(bytes: bytes, limits: limits)
            guard let value = try cursor.value(depth: 0) else { return nil }
            return (value, cursor.position)
        }
        guard let (value, consumed) = result else { return nil }
        buffer.moveReaderIndex(forwardBy: consumed)
        return value
    }

    /// One command as a server reads it: an array of bulk strings, or an inline command (a line
    /// of words, as typed into telnet). Returns an empty array for frames Redis ignores
    /// (`*0`, `*-1`, a blank inline line).
    public func parseCommand(_ buffer: inout ByteBuffer) throws -> [ByteBuffer]? {
        let result = try buffer.withUnsafeReadableBytes { bytes -> ([Range<Int>], Int)? in
            var cursor = Cursor(bytes: bytes, limits: limits)
            guard let ranges = try cursor.command() else { return nil }
            return (ranges, cursor.position)
        }
        guard let (ranges, consumed) = result else { return nil }
        let start = buffer.readerIndex
        let arguments = ranges.map { buffer.getSlice(at: start + $0.lowerBound, length: $0.count)! }
        buffer.moveReaderIndex(forwardBy: consumed)
        return arguments
    }
}

/// The byte-level reader under `RESPParser`. `nil` means "need more bytes".
struct Cursor {
    let bytes: UnsafeRawBufferPointer
    let limits: RESPParserLimits
    var position = 0

    init(bytes: UnsafeRawBufferPointer, limits: RESPParserLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    /// The range of the line starting at `position`, without its CRLF; moves past the CRLF.
    /// A lone LF ends an inline line too, as in Redis.
    mutating func line(allowBareNewline: Bool = false) throws -> Range<Int>? {
        var index = position
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                let hasCR = index > position && bytes[index - 1] == UInt8(ascii: "\r")
                if !hasCR && !allowBareNewline { throw RESPProtocolError("expected CRLF line ending") }
                let range = position..<(hasCR ? index - 1 : index)
                position = index + 1
                return range
            }
            index += 1
            if index - position > limits.lineBytesMax {
                throw RESPProtocolError(allowBareNewline ? "too big inline request" : "too long line")
            }
        }
        return nil
    }

    func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }

    /// A decimal Int64 on a line; `what` names it in the error.
    func integer(_ range: Range<Int>, _ what: String) throws -> Int64 {
        guard !range.isEmpty, range.count <= 20 else { throw RESPProtocolError(what) }
        var value: Int64 = 0
        var index = range.lowerBound
        let negative = bytes[index] == UInt8(ascii: "-")
        if negative || bytes[index] == UInt8(ascii: "+") { index += 1 }
        guard index < range.upperBound else { throw RESPProtocolError(what) }
        while index < range.upperBound {
            let byte = bytes[index]
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { throw RESPProtocolError(what) }
            let digit = Int64(byte - UInt8(ascii: "0"))
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) =
                negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow1, !overflow2 else { throw RESPProtocolError(what) }
            value = next
            index += 1
        }
        return value
    }

    /// The body of a bulk string of `length` bytes and its CRLF; nil if not all here yet.
    mutating func bulkBody(length: Int) throws -> Range<Int>? {
        guard bytes.count - position >= length + 2 else { return nil }
        let range = position..<(position + length)
        guard bytes[position + length] == UInt8(ascii: "\r"), bytes[position + length + 1] == UInt8(ascii: "\n") else {
            throw RESPProtocolError("bulk string not terminated by CRLF")
        }
        position += length + 2
        return range
    }

    /// A bulk length, checked against the limit; -1 (null) only where `allowNull`.
    func bulkLength(_ range: Range<Int>, allowNull: Bool) throws -> Int {
        let length = try integer(range, "invalid bulk length")
        if length == -1 && allowNull { return -1 }
        guard length >= 0, length <= limits.bulkBytesMax else { throw RESPProtocolError("invalid bulk length") }
        return Int(length)
    }

    func aggregateLength(_ range: Range<Int>, allowNull: Bool) throws -> Int {
        let length = try integer(range, "invalid multibulk length")
        if length == -1 && allowNull { return -1 }
        guard length >= 0, length <= limits.aggregateLengthMax else { throw RESPProtocolError("invalid multibulk length") }
        return Int(length)
    }

    mutating func command() throws -> [Range<Int>]? {
        guard position < bytes.count else { return nil }
        guard bytes[position] == UInt8(ascii: "*") else { return try inlineCommand() }
        position += 1
        guard let countLine = try line() else { return nil }
        let count = try aggregateLength(countLine, allowNull: true)
        if count <= 0 { return [] }
        var arguments: [Range<Int>] = []
        arguments.reserveCapacity(count)
        for _ in 0..<count {
            guard position < bytes.count else { return nil }
            guard bytes[position] == UInt8(ascii: "$") else {
                throw RESPProtocolError("expected '$', got '\(Character(Unicode.Scalar(bytes[position])))'")
            }
            position += 1
            guard let lengthLine = try line() else { return nil }
            let length = try bulkLength(lengthLine, allowNull: false)
            guard let body = try bulkBody(length: length) else { return nil }
            arguments.append(body)
        }
        return arguments
    }

    /// Words separated by spaces or tabs; no quoting.
    mutating func inlineCommand() throws -> [Range<Int>]? {
        guard let range = try line(allowBareNewline: true) else { return nil }
        var words: [Range<Int>] = []
        var start: Int?
        for index in range {
            let blank = bytes[index] == UInt8(ascii: " ") || bytes[index] == UInt8(ascii: "\t")
            if blank, let begun = start {
                words.append(begun..<index)
                start = nil
            } else if !blank && start == nil {
                start = index
            }
            if words.count > limits.aggregateLengthMax { throw RESPProtocolError("too many arguments in inline request") }
        }
        if let begun = start { words.append(begun..<range.upperBound) }
        return words
    }

    mutating func value(depth: Int) throws -> RESPValue? {
        guard position < bytes.count else { return nil }
        let type = bytes[position]
        position += 1
        guard let header = try line() else { return nil }
        switch type {
        case UInt8(ascii: "+"): return .simpleString(text(header))
        case UInt8(ascii: "-"): return .error(text(header))
        case UInt8(ascii: ":"): return .integer(try integer(header, "invalid integer"))
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: "#"):
            guard header.count == 1, let flag = Optional(bytes[header.lowerBound]),
                flag == UInt8(ascii: "t") || flag == UInt8(ascii: "f")
            else { throw RESPProtocolError("invalid boolean") }
            return .boolean(flag == UInt8(ascii: "t"))
        case UInt8(ascii: ","):
            let spelled = text(header)
            let value: Double? =
                switch spelled {
                case "inf": .infinity
                case "-inf": -.infinity
                case "nan": .nan
                default: Double(spelled)
                }
            guard let value else { throw RESPProtocolError("invalid double") }
            return .double(value)
        case UInt8(ascii: "("): return .bigNumber(text(header))
        case UInt8(ascii: "$"), UInt8(ascii: "!"), UInt8(ascii: "="):
            let length = try bulkLength(header, allowNull: type == UInt8(ascii: "$"))
            if length == -1 { return .bulkString(nil) }
            guard let body = try bulkBody(length: length) else { return nil }
            if type == UInt8(ascii: "!") { return .error(text(body)) }
            if type == UInt8(ascii: "=") {
                guard body.count >= 4, bytes[body.lowerBound + 3] == UInt8(ascii: ":") else {
                    throw RESPProtocolError("invalid verbatim string")
                }
                return .verbatim(format: text(body.lowerBound..<(body.lowerBound + 3)), text: text((body.lowerBound + 4)..<body.upperBound))
            }
            var buffer = ByteBufferAllocator().buffer(capacity: body.count)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[body]))
            return .bulkString(buffer)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"), UInt8(ascii: "%"), UInt8(ascii: "|"):
            guard depth < limits.depthMax else { throw RESPProtocolError("nesting too deep") }
            let isMap = type == UInt8(ascii: "%") || type == UInt8(ascii: "|")
            var count = try aggregateLength(header, allowNull: type == UInt8(ascii: "*"))
            if count == -1 { return .array(nil) }
            if isMap {
                guard count <= limits.aggregateLengthMax / 2 else { throw RESPProtocolError("invalid multibulk length") }
                count *= 2
            }
            var elements: [RESPValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                guard let element = try value(depth: depth + 1) else { return nil }
                elements.append(element)
            }
            switch type {
            case UInt8(ascii: "~"): return .set(elements)
            case UInt8(ascii: ">"): return .push(elements)
            case UInt8(ascii: "%"):
                return .map(stride(from: 0, to: elements.count, by: 2).map { RESPPair(elements[$0], elements[$0 + 1]) })
            case UInt8(ascii: "|"):
                // An attribute describes the value after it; Stockade has no use for it.
                return try value(depth: depth)
            default: return .array(elements)
            }
        default:
            throw RESPProtocolError("unknown type byte '\(Character(Unicode.Scalar(type)))'")
        }
    }
}
