import NIOCore

/// Splits a peer byte stream into frames. Refuses (and the channel should close on) an oversized
/// length before buffering it, an unknown version, or a malformed body.
///
/// Threading: a channel handler; runs on its channel's event loop.
public struct PeerFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = PeerFrame

    public init() {}

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .little, as: UInt32.self) else {
            return .needMoreData
        }
        guard Int(length) + 4 <= PeerFrame.bytesMax else {
            throw PeerFrameError("peer frame of \(length) bytes exceeds \(PeerFrame.bytesMax)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        let body = buffer.readBytes(length: Int(length))!
        context.fireChannelRead(wrapInboundOut(try PeerFrame(body: body)))
        return .continue
    }
}

/// Writes frames with their length prefix.
public struct PeerFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = PeerFrame

    public init() {}

    public func encode(data: PeerFrame, out: inout ByteBuffer) throws {
        let bytes = data.encoded()
        guard bytes.count <= PeerFrame.bytesMax else {
            throw PeerFrameError("peer frame of \(bytes.count) bytes exceeds \(PeerFrame.bytesMax)")
        }
        out.writeBytes(bytes)
    }
}
