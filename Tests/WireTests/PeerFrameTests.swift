import Consensus
import NIOCore
import NIOEmbedded
import StockadeCore
import Testing
import Wire

/// Peer frames survive encoding, split reads and hostile input.
@Suite struct PeerFrameTests {
    static func randomFrame(_ random: inout SplitMix64) -> PeerFrame {
        func bytes(_ max: Int) -> [UInt8] { (0..<Int.random(in: 0...max, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) } }
        let term = UInt64.random(in: 0...1_000, using: &random)
        let message: Message
        switch Int.random(in: 0..<5, using: &random) {
        case 0: message = .requestVote(term: term, lastLogIndex: random.next() % 10_000, lastLogTerm: term, preVote: Bool.random(using: &random))
        case 1: message = .voteResponse(term: term, granted: Bool.random(using: &random), preVote: Bool.random(using: &random))
        case 2:
            let entries = (0..<Int.random(in: 0...5, using: &random)).map { offset in
                Entry(index: UInt64(10 + offset), term: term, payload: bytes(300))
            }
            message = .appendEntries(term: term, prevLogIndex: 9, prevLogTerm: term, entries: entries, leaderCommit: 7, readContext: random.next())
        case 3: message = .appendResponse(term: term, success: Bool.random(using: &random), matchIndex: 5, hintIndex: 3, readContext: random.next())
        default: message = .installSnapshot(term: term, snapshot: Snapshot(index: 40, term: term, data: bytes(2_000)))
        }
        switch Int.random(in: 0..<9, using: &random) {
        case 8:
            return .clock(
                ClockPing(
                    sentMs: Int64(bitPattern: random.next()), wallMs: Int64(bitPattern: random.next()), echoMs: -1,
                    heldMs: Int64(bitPattern: random.next() % 1_000)))
        case 6: return .forward(requestID: random.next(), commands: (0..<Int.random(in: 0...4, using: &random)).map { _ in bytes(200) })
        case 7: return .forwardReply(requestID: random.next(), appliedIndex: random.next(), outcomes: (0..<Int.random(in: 0...4, using: &random)).map { _ in bytes(200) })
        case 0: return .hello(node: 3, nonce: bytes(32))
        case 1: return .challenge(node: 1, nonce: bytes(32), proof: bytes(32))
        case 2: return .proof(bytes(32))
        default: return .raft(Envelope(from: 1, to: 2, message: message))
        }
    }

    @Test func randomFramesRoundTrip() throws {
        var random = SplitMix64(seed: 99)
        for _ in 0..<2_000 {
            let frame = Self.randomFrame(&random)
            let bytes = frame.encoded()
            #expect(try PeerFrame(body: Array(bytes.dropFirst(4))) == frame)
        }
    }

    @Test func decoderReassemblesFramesSplitAnywhere() throws {
        var random = SplitMix64(seed: 5)
        let frames = (0..<200).map { _ in Self.randomFrame(&random) }
        let stream = frames.flatMap { $0.encoded() }
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        var offset = 0
        while offset < stream.count {
            let size = min(stream.count - offset, Int.random(in: 1...700, using: &random))
            try channel.writeInbound(ByteBuffer(bytes: stream[offset..<(offset + size)]))
            offset += size
        }
        var received: [PeerFrame] = []
        while let frame = try channel.readInbound(as: PeerFrame.self) { received.append(frame) }
        #expect(received == frames)
        _ = try channel.finish()
    }

    @Test func hostileFramesAreRefused() throws {
        // A length over the limit is refused before the body arrives.
        var huge = ByteBuffer()
        huge.writeInteger(UInt32(PeerFrame.bytesMax), endianness: .little)
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder()))
        #expect(throws: PeerFrameError.self) { try channel.writeInbound(huge) }
        // Wrong version, unknown kind, truncated body, trailing bytes.
        let good = PeerFrame.proof([1, 2, 3]).encoded()
        var wrongVersion = Array(good.dropFirst(4))
        wrongVersion[0] = 9
        #expect(throws: PeerFrameError.self) { try PeerFrame(body: wrongVersion) }
        #expect(throws: PeerFrameError.self) { try PeerFrame(body: [PeerFrame.version, 77]) }
        #expect(throws: PeerFrameError.self) { try PeerFrame(body: Array(good.dropFirst(4).dropLast())) }
        #expect(throws: PeerFrameError.self) { try PeerFrame(body: Array(good.dropFirst(4)) + [0]) }
        // A count that claims more entries than the bytes could hold.
        var liar = ByteWriter()
        liar.write(PeerFrame.version)
        liar.write(UInt8(4))
        liar.write(UInt64(1))
        liar.write(UInt64(2))
        liar.write(UInt8(3))
        for _ in 0..<5 { liar.write(UInt64(0)) }
        liar.write(UInt32.max)
        #expect(throws: PeerFrameError.self) { try PeerFrame(body: liar.bytes) }
    }
}
