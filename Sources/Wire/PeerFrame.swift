import Consensus
import StockadeCore

/// A frame between cluster peers.
///
/// On the wire: `length u32` (of what follows), `version u8`, `kind u8`, body; little-endian.
/// Frames above `PeerFrame.bytesMax` are refused before anything is allocated for them.
public enum PeerFrame: Hashable, Sendable {
    /// A connector's opening: who it is and a fresh nonce (the start of the HMAC challenge).
    case hello(node: NodeID, nonce: [UInt8])
    /// The acceptor's answer: its own nonce and its proof over both nonces.
    case challenge(node: NodeID, nonce: [UInt8], proof: [UInt8])
    /// The connector's proof over both nonces. After it, both sides have shown they hold the secret.
    case proof([UInt8])
    /// A protocol message.
    case raft(Envelope)
    /// Commands a follower forwards to the leader to propose (each a `TimedCommand` encoding;
    /// the leader stamps the time).
    case forward(requestID: UInt64, commands: [[UInt8]])
    /// The leader's answer to a `forward`: one encoded `Outcome` per command, in order, and the
    /// leader's applied index when it answered (the forwarding node waits to apply that far).
    case forwardReply(requestID: UInt64, appliedIndex: UInt64, outcomes: [[UInt8]])
    /// A clock reading (the cluster's time is what a majority of these agree on).
    case clock(ClockPing)

    public static let version: UInt8 = 1
    /// Largest frame, header included. Snapshots larger than this must be sent in chunks.
    public static let bytesMax = 64 << 20
    static let nonceBytesMax = 64
    /// Commands (or outcomes) in one forward frame.
    public static let forwardBatchMax = Limits.forwardFrameCommandsMax
    static let proofBytesMax = 64
}

/// A frame that cannot be read: bad version, unknown kind, malformed body or oversized.
public struct PeerFrameError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension PeerFrame {
    /// The whole frame, length prefix included.
    public func encoded() -> [UInt8] {
        var body = ByteWriter(capacity: 64)
        body.write(Self.version)
        switch self {
        case .hello(let node, let nonce):
            body.write(UInt8(1))
            body.write(node)
            body.writeBytes(nonce)
        case .challenge(let node, let nonce, let proof):
            body.write(UInt8(2))
            body.write(node)
            body.writeBytes(nonce)
            body.writeBytes(proof)
        case .proof(let proof):
            body.write(UInt8(3))
            body.writeBytes(proof)
        case .raft(let envelope):
            body.write(UInt8(4))
            body.write(envelope.from)
            body.write(envelope.to)
            body.write(envelope.message)
        case .forward(let requestID, let commands):
            body.write(UInt8(5))
            body.write(requestID)
            body.write(UInt32(commands.count))
            for command in commands { body.writeBytes(command) }
        case .forwardReply(let requestID, let appliedIndex, let outcomes):
            body.write(UInt8(6))
            body.write(requestID)
            body.write(appliedIndex)
            body.write(UInt32(outcomes.count))
            for outcome in outcomes { body.writeBytes(outcome) }
        case .clock(let ping):
            body.write(UInt8(7))
            body.write(ping.sentMs)
            body.write(ping.wallMs)
            body.write(ping.echoMs)
            body.write(ping.heldMs)
        }
        var frame = ByteWriter(capacity: body.bytes.count + 4)
        frame.write(UInt32(body.bytes.count))
        frame.write(raw: body.bytes)
        return frame.bytes
    }

    /// Decodes a frame body (after the length prefix). The whole body must be consumed.
    public init(body: [UInt8]) throws {
        var reader = ByteReader(body)
        do {
            let version = try reader.readUInt8()
            guard version == Self.version else { throw PeerFrameError("unsupported peer protocol version \(version)") }
            switch try reader.readUInt8() {
            case 1:
                self = .hello(node: try reader.readUInt64(), nonce: try reader.readBytes(max: Self.nonceBytesMax))
            case 2:
                self = .challenge(
                    node: try reader.readUInt64(), nonce: try reader.readBytes(max: Self.nonceBytesMax),
                    proof: try reader.readBytes(max: Self.proofBytesMax))
            case 3:
                self = .proof(try reader.readBytes(max: Self.proofBytesMax))
            case 4:
                let from = try reader.readUInt64()
                let to = try reader.readUInt64()
                self = .raft(Envelope(from: from, to: to, message: try reader.readMessage()))
            case 5, 6:
                let kind = body[1]
                let requestID = try reader.readUInt64()
                let appliedIndex = kind == 6 ? try reader.readUInt64() : 0
                let count = try reader.readCount(max: Self.forwardBatchMax)
                var items: [[UInt8]] = []
                items.reserveCapacity(count)
                for _ in 0..<count { items.append(try reader.readBytes(max: Self.bytesMax)) }
                self =
                    kind == 5
                    ? .forward(requestID: requestID, commands: items)
                    : .forwardReply(requestID: requestID, appliedIndex: appliedIndex, outcomes: items)
            case 7:
                self = .clock(
                    ClockPing(
                        sentMs: try reader.readInt64(), wallMs: try reader.readInt64(), echoMs: try reader.readInt64(),
                        heldMs: try reader.readInt64()))
            case let kind:
                throw PeerFrameError("unknown frame kind \(kind)")
            }
        } catch let error as ByteReader.Failure {
            throw PeerFrameError("malformed frame: \(error)")
        }
        guard reader.isAtEnd else { throw PeerFrameError("\(reader.remaining) trailing bytes in frame") }
    }
}

extension ByteWriter {
    mutating func writeBytes(_ bytes: [UInt8]) {
        write(UInt32(bytes.count))
        write(raw: bytes)
    }

    mutating func write(_ entry: Entry) {
        write(entry.index)
        write(entry.term)
        writeBytes(entry.payload)
    }

    mutating func write(_ message: Message) {
        switch message {
        case .requestVote(let term, let lastLogIndex, let lastLogTerm, let preVote):
            write(UInt8(1))
            write(term)
            write(lastLogIndex)
            write(lastLogTerm)
            write(preVote)
        case .voteResponse(let term, let granted, let preVote):
            write(UInt8(2))
            write(term)
            write(granted)
            write(preVote)
        case .appendEntries(let term, let prevLogIndex, let prevLogTerm, let entries, let leaderCommit, let readContext):
            write(UInt8(3))
            write(term)
            write(prevLogIndex)
            write(prevLogTerm)
            write(leaderCommit)
            write(readContext)
            write(UInt32(entries.count))
            for entry in entries { write(entry) }
        case .appendResponse(let term, let success, let matchIndex, let hintIndex, let readContext):
            write(UInt8(4))
            write(term)
            write(success)
            write(matchIndex)
            write(hintIndex)
            write(readContext)
        case .installSnapshot(let term, let snapshot):
            write(UInt8(5))
            write(term)
            write(snapshot.index)
            write(snapshot.term)
            writeBytes(snapshot.data)
        }
    }
}

extension ByteReader {
    mutating func readBytes(max: Int) throws -> [UInt8] {
        try readRaw(count: try readCount(max: max))
    }

    mutating func readEntry() throws -> Entry {
        Entry(index: try readUInt64(), term: try readUInt64(), payload: try readBytes(max: PeerFrame.bytesMax))
    }

    mutating func readMessage() throws -> Message {
        switch try readUInt8() {
        case 1:
            return .requestVote(
                term: try readUInt64(), lastLogIndex: try readUInt64(), lastLogTerm: try readUInt64(), preVote: try readBool())
        case 2:
            return .voteResponse(term: try readUInt64(), granted: try readBool(), preVote: try readBool())
        case 3:
            let term = try readUInt64()
            let prevLogIndex = try readUInt64()
            let prevLogTerm = try readUInt64()
            let leaderCommit = try readUInt64()
            let readContext = try readUInt64()
            // Each entry takes at least 20 bytes, which bounds the count before allocating.
            let count = try readCount(max: remaining / 20)
            var entries: [Entry] = []
            entries.reserveCapacity(count)
            for _ in 0..<count { entries.append(try readEntry()) }
            return .appendEntries(
                term: term, prevLogIndex: prevLogIndex, prevLogTerm: prevLogTerm, entries: entries,
                leaderCommit: leaderCommit, readContext: readContext)
        case 4:
            return .appendResponse(
                term: try readUInt64(), success: try readBool(), matchIndex: try readUInt64(), hintIndex: try readUInt64(),
                readContext: try readUInt64())
        case 5:
            let term = try readUInt64()
            let snapshot = Snapshot(index: try readUInt64(), term: try readUInt64(), data: try readBytes(max: PeerFrame.bytesMax))
            return .installSnapshot(term: term, snapshot: snapshot)
        case let tag:
            throw ByteReader.Failure(description: "unknown message tag \(tag)")
        }
    }
}
