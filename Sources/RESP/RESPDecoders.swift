import NIOCore

/// Decodes client commands for a server pipeline: each is an array of its arguments (empty for
/// frames that carry no command, which the server ignores).
public struct RESPCommandDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = [ByteBuffer]
    let parser: RESPParser

    public init(limits: RESPParserLimits) { parser = RESPParser(limits: limits) }

    public mutating func decode(buffer: inout ByteBuffer) throws -> [ByteBuffer]? {
        try parser.parseCommand(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> [ByteBuffer]? {
        try decode(buffer: &buffer)
    }
}

/// Decodes replies for a client pipeline.
public struct RESPValueDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPValue
    let parser: RESPParser

    public init(limits: RESPParserLimits) { parser = RESPParser(limits: limits) }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        try parser.parseValue(&buffer)
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try decode(buffer: &buffer)
    }
}
