import NIOCore
import RESP
import Testing

/// The parser and encoder: every type both ways, frames split anywhere, and every limit.
@Suite struct RESPParserTests {
    static let generous = RESPParserLimits(bulkBytesMax: 1 << 20, aggregateLengthMax: 1 << 16, depthMax: 8, lineBytesMax: 1 << 16)
    static let server = RESPParserLimits(bulkBytesMax: 16, aggregateLengthMax: 4, depthMax: 1, lineBytesMax: 64)

    static let samples: [RESPValue] = [
        .simpleString("OK"), .error("ERR nope"), .integer(-42), .integer(Int64.max), .bulk("hello"), .bulk(""),
        .null, .double(1.5), .double(.infinity), .boolean(true), .boolean(false),
        .bigNumber("123456789012345678901234567890"), .verbatim(format: "txt", text: "some text"),
        .array([.integer(1), .array([.bulk("nested"), .null])]),
        .map([RESPPair("a", .integer(1)), RESPPair("b", .array([.bulk("x")]))]),
        .set([.bulk("x"), .bulk("y")]), .push([.bulk("message"), .bulk("hi")]),
    ]

    @Test func everyValueRoundTripsInRESP3() throws {
        for value in Self.samples {
            var buffer = value.encoded(version: .resp3)
            let parsed = try RESPParser(limits: Self.generous).parseValue(&buffer)
            #expect(parsed == value, "\(value)")
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func resp2NullsRoundTripInRESP2AndAreOneNullInRESP3() throws {
        for value in [RESPValue.bulkString(nil), .array(nil)] {
            var buffer = value.encoded(version: .resp2)
            #expect(try RESPParser(limits: Self.generous).parseValue(&buffer) == value)
            #expect(String(buffer: value.encoded(version: .resp3)) == "_\r\n")
        }
    }

    @Test func resp2SpellsRESP3TypesAsRedisDoes() {
        func spelled(_ value: RESPValue) -> String { String(buffer: value.encoded(version: .resp2)) }
        #expect(spelled(.map([RESPPair("k", .integer(1))])) == "*2\r\n$1\r\nk\r\n:1\r\n")
        #expect(spelled(.null) == "$-1\r\n")
        #expect(spelled(.array(nil)) == "*-1\r\n")
        #expect(spelled(.boolean(true)) == ":1\r\n")
        #expect(spelled(.double(2.5)) == "$3\r\n2.5\r\n")
        #expect(spelled(.set([.integer(1)])) == "*1\r\n:1\r\n")
        #expect(spelled(.verbatim(format: "txt", text: "a")) == "$1\r\na\r\n")
        #expect(String(buffer: RESPValue.map([RESPPair("k", .null)]).encoded(version: .resp3)) == "%1\r\n$1\r\nk\r\n_\r\n")
        // A line type cannot carry a line break; it is flattened rather than break the frame.
        #expect(spelled(.error("ERR a\r\nb")) == "-ERR a  b\r\n")
    }

    /// A pipeline of commands cut at every byte: each prefix parses to the complete commands it holds.
    @Test func commandsSplitAtEveryByteParseTheSame() throws {
        let wire = "*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n*1\r\n$4\r\nQUIT\r\nECHO  a\tb\r\n*0\r\n"
        let expected: [[String]] = [["PING", "hi"], ["QUIT"], ["ECHO", "a", "b"], []]
        let parser = RESPParser(limits: Self.generous)
        for cut in 0...wire.utf8.count {
            var buffer = ByteBuffer(string: String(wire.prefix(cut)))
            var commands: [[String]] = []
            while let command = try parser.parseCommand(&buffer) { commands.append(command.map { String(buffer: $0) }) }
            buffer.writeString(String(wire.dropFirst(cut)))
            while let command = try parser.parseCommand(&buffer) { commands.append(command.map { String(buffer: $0) }) }
            #expect(commands == expected, "cut at \(cut)")
            #expect(buffer.readableBytes == 0)
        }
    }

    @Test func repliesSplitAtEveryByteParseTheSame() throws {
        var whole = ByteBuffer()
        for value in Self.samples { value.write(to: &whole, version: .resp3) }
        let bytes = Array(whole.readableBytesView)
        let parser = RESPParser(limits: Self.generous)
        for cut in stride(from: 0, through: bytes.count, by: 7) {
            var buffer = ByteBuffer(bytes: bytes[..<cut])
            var values: [RESPValue] = []
            while let value = try parser.parseValue(&buffer) { values.append(value) }
            buffer.writeBytes(bytes[cut...])
            while let value = try parser.parseValue(&buffer) { values.append(value) }
            #expect(values == Self.samples, "cut at \(cut)")
        }
    }

    @Test(arguments: [
        ("*1\r\n$17\r\n", "invalid bulk length"),  // over bulkBytesMax (16)
        ("*5\r\n", "invalid multibulk length"),  // over aggregateLengthMax (4)
        ("*-2\r\n", "invalid multibulk length"),
        ("*x\r\n", "invalid multibulk length"),
        ("*1\r\n:1\r\n", "expected '$', got ':'"),
        ("*1\r\n$-1\r\n", "invalid bulk length"),
        ("*1\r\n$2\r\nabcd\r\n", "bulk string not terminated by CRLF"),
        ("*1\n", "expected CRLF line ending"),
        (String(repeating: "A", count: 80) + "\r\n", "too big inline request"),
    ])
    func badFramesAreProtocolErrors(wire: String, reason: String) {
        var buffer = ByteBuffer(string: wire)
        #expect(throws: RESPProtocolError(reason)) { try RESPParser(limits: Self.server).parseCommand(&buffer) }
    }

    @Test func repliesNestedPastTheDepthLimitAreRefused() {
        var buffer = ByteBuffer(string: "*1\r\n*1\r\n*0\r\n")
        let shallow = RESPParserLimits(bulkBytesMax: 16, aggregateLengthMax: 4, depthMax: 1, lineBytesMax: 64)
        #expect(throws: RESPProtocolError("nesting too deep")) { try RESPParser(limits: shallow).parseValue(&buffer) }
    }

    @Test func aBulkStringMayHoldAnyBytes() throws {
        var buffer = ByteBuffer(string: "*2\r\n$4\r\nECHO\r\n$4\r\na\r\nb\r\n")
        let command = try #require(try RESPParser(limits: Self.generous).parseCommand(&buffer))
        #expect(command.map { String(buffer: $0) } == ["ECHO", "a\r\nb"])
    }
}
