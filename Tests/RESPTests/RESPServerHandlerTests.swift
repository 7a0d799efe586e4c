import Foundation
import Ledger
import Logging
import Metrics
import NIOCore
import NIOEmbedded
import Node
import RESP
import StockadeCore
import Testing

@testable import API

/// The handler on a test channel over a real replica: pipelined commands answered in order
/// through the real operations, and a bad frame answered after them before the close.
@Suite struct RESPServerHandlerTests {
    static func withChannel(_ body: (NIOAsyncTestingChannel) async throws -> Void) async throws {
        let directory = NSTemporaryDirectory() + "stockade-resp-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let replica = try Replica(
            configuration: .init(
                dataDirectory: directory, warehouses: [Warehouse(id: WarehouseID("yiwu"), regions: ["east"], priority: 1)],
                limits: .default),
            logger: Logger(label: "test"), metrics: ReplicaMetrics(factory: NOOPMetricsHandler.instance))
        replica.startLoop()
        let authenticator = TokenAuthenticator(adminTokens: ["admin-token"], checkoutTokens: ["checkout-token"])
        let api = StockadeAPI(
            replica: replica, authenticator: authenticator, metrics: APIMetrics(factory: NOOPMetricsHandler.instance),
            renderMetrics: { "" })
        let limits = Limits.default
        let machine = RESPConnectionStateMachine(
            identity: .init(id: 1, peer: "test", local: "test"), limits: limits, serverVersion: "7.2.0",
            authenticate: { authenticator.role(forToken: $0) })
        let channel = NIOAsyncTestingChannel()
        let parserLimits = RESPParserLimits(
            bulkBytesMax: limits.respBulkBytesMax, aggregateLengthMax: limits.respArgumentsMax, depthMax: 1,
            lineBytesMax: limits.respLineBytesMax)
        try await channel.pipeline.addHandler(ByteToMessageHandler(RESPCommandDecoder(limits: parserLimits)))
        try await channel.pipeline.addHandler(
            RESPServerHandler(machine: machine, executor: RESPExecutor(api: api, facts: .init(port: 0, startedAt: .now))))
        try await body(channel)
        _ = try? await channel.finish()
        replica.stop()
        await replica.waitForLoop()
    }

    /// Reads replies until `count` complete values have arrived.
    static func replies(_ channel: NIOAsyncTestingChannel, count: Int) async throws -> [RESPValue] {
        var pending = ByteBuffer()
        var values: [RESPValue] = []
        let parser = RESPParser(limits: .init(bulkBytesMax: 1 << 20, aggregateLengthMax: 1 << 16, depthMax: 8, lineBytesMax: 1 << 16))
        while values.count < count {
            var chunk = try await channel.waitForOutboundWrite(as: ByteBuffer.self)
            pending.writeBuffer(&chunk)
            while let value = try parser.parseValue(&pending) { values.append(value) }
        }
        return values
    }

    static func command(_ words: String...) -> ByteBuffer { RESPValue.command(words).encoded(version: .resp2) }

    @Test func pipelinedCommandsAreAnsweredInOrder() async throws {
        try await Self.withChannel { channel in
            var wire = Self.command("AUTH", "admin-token")
            wire.writeImmutableBuffer(Self.command("STOCK.SET", "tee", "yiwu", "5"))
            for number in 1...7 { wire.writeImmutableBuffer(Self.command("RESERVE", "r\(number)", "o", "east", "60", "0", "tee", "1")) }
            wire.writeImmutableBuffer(Self.command("RESERVE", "r1", "o", "east", "60", "0", "tee", "1"))
            wire.writeImmutableBuffer(Self.command("PING"))
            try await channel.writeInbound(wire)
            let replies = try await Self.replies(channel, count: 11)
            #expect(replies[0] == .simpleString("OK"))
            guard case .array(let sku?) = replies[1] else { Issue.record("STOCK.SET answered \(replies[1])"); return }
            #expect(sku.contains(.bulk("tee")))
            var tokens: [Int64] = []
            for reply in replies[2..<7] {
                guard case .array(let fields?) = reply, let index = fields.firstIndex(of: .bulk("token")),
                    case .integer(let token) = fields[index + 1]
                else { Issue.record("not a grant: \(reply)"); return }
                tokens.append(token)
            }
            #expect(tokens == tokens.sorted() && Set(tokens).count == 5, "granted in request order")
            for reply in replies[7..<9] {
                #expect(reply == .error("INSUFFICIENT_STOCK available=0 requested=1 sku=tee sku tee: requested 1, available 0 in any single warehouse (allowSplit is false)") || (reply.errorCode == "INSUFFICIENT_STOCK"))
            }
            #expect(replies[9] == replies[2], "a replay gets the identical reply")
            #expect(replies[10] == .simpleString("PONG"))
        }
    }

    @Test func aBadFrameIsAnsweredAfterTheRepliesOwedThenTheConnectionCloses() async throws {
        try await Self.withChannel { channel in
            var wire = Self.command("AUTH", "checkout-token")
            wire.writeImmutableBuffer(Self.command("RESERVATION", "nope"))
            wire.writeString("*1\r\n$999999999\r\n")
            try await channel.writeInbound(wire)
            let replies = try await Self.replies(channel, count: 3)
            #expect(replies[0] == .simpleString("OK"))
            #expect(replies[1].errorCode == "NOT_FOUND")
            #expect(replies[2] == .error("ERR Protocol error: invalid bulk length"))
            try await channel.closeFuture.get()
        }
    }
}

extension RESPValue {
    /// The first word of an error reply.
    var errorCode: String? {
        guard case .error(let text) = self else { return nil }
        return text.split(separator: " ").first.map(String.init)
    }
}
