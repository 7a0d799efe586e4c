import Foundation
import Hummingbird
import Ledger
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Node
import StockadeCore
import Testing

@testable import API

/// The event-loop reserve path on a test channel over a real replica: which requests it takes,
/// which it hands to the router unchanged, and that answers leave in request order.
@Suite struct ReserveChannelHandlerTests {
    /// Records what passes the handler towards the router.
    final class RouterSide: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPRequestPart
        typealias InboundOut = HTTPRequestPart
        let events = NIOLockedValueBox<[String]>([])

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            events.withLockedValue { $0.append("read") }
            context.fireChannelRead(data)
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            events.withLockedValue { $0.append("readComplete") }
            context.fireChannelReadComplete()
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            events.withLockedValue { $0.append("\(type(of: event))") }
            context.fireUserInboundEventTriggered(event)
        }
    }

    struct Rig {
        var channel: NIOAsyncTestingChannel
        var replica: Replica
        var routerSide: RouterSide

        /// Sends parts as the HTTP decoder would.
        func send(_ parts: [HTTPRequestPart]) async throws {
            for part in parts { try await channel.writeInbound(part) }
        }

        /// Everything handed towards the router so far.
        func handedOn() async throws -> [HTTPRequestPart] {
            var parts: [HTTPRequestPart] = []
            while let part = try await channel.readInbound(as: HTTPRequestPart.self) { parts.append(part) }
            return parts
        }

        /// The next whole answer written out: head and the body's text.
        func nextAnswer() async throws -> (head: HTTPResponse, body: String) {
            guard case .head(let head) = try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) else {
                throw RigError("expected a response head")
            }
            var body = ""
            while true {
                switch try await channel.waitForOutboundWrite(as: HTTPResponsePart.self) {
                case .body(let buffer): body += String(buffer: buffer)
                case .end: return (head, body)
                case .head: throw RigError("a second head before the end")
                }
            }
        }

        /// Answers a handed-on request as the router would.
        func routerAnswers(_ status: HTTPResponse.Status) async throws {
            try await channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: status)))
            try await channel.writeOutbound(HTTPResponsePart.end(nil))
        }

        func held() -> Int64 { replica.read { $0.rows(of: SKU("tee"))?.first?.row.held } ?? -1 }

        /// Holds the ledger lock on a thread of its own until `release()`: the commit thread then
        /// cannot apply, so a reserve proposed meanwhile stays unanswered, however slow the machine.
        func holdApply() async -> ApplyHold {
            let hold = ApplyHold()
            holds.withLockedValue { $0.append(hold) }
            let replica = self.replica
            await withCheckedContinuation { (held: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    replica.read { _ in
                        held.resume()
                        hold.semaphore.wait()
                    }
                }
            }
            return hold
        }

        let holds = NIOLockedValueBox<[ApplyHold]>([])
    }

    final class ApplyHold: Sendable {
        let semaphore = DispatchSemaphore(value: 0)
        let released = NIOLockedValueBox(false)

        func release() {
            let first = released.withLockedValue { released in
                defer { released = true }
                return !released
            }
            if first { semaphore.signal() }
        }
    }

    struct RigError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func withRig(_ body: (Rig) async throws -> Void) async throws {
        var limits = Limits()
        limits.requestBodyBytesMax = 1024
        let directory = NSTemporaryDirectory() + "stockade-fastpath-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let replica = try Replica(
            configuration: .init(dataDirectory: directory, warehouses: APITestHarness.layout, limits: limits),
            logger: Logger(label: "test"), metrics: ReplicaMetrics(factory: NOOPMetricsHandler.instance))
        replica.startLoop()
        _ = await replica.propose(.setStock(sku: SKU("tee"), warehouse: WarehouseID("yiwu"), total: 5))
        let endpoint = ReserveEndpoint(replica: replica, cache: nil, metrics: APIMetrics(factory: NOOPMetricsHandler.instance))
        let authenticator = TokenAuthenticator(adminTokens: [APITestHarness.admin], checkoutTokens: [APITestHarness.checkout])
        let routerSide = RouterSide()
        let channel = try await NIOAsyncTestingChannel { channel in
            try channel.pipeline.syncOperations.addHandler(
                ReserveChannelHandler(endpoint: endpoint, authenticator: authenticator, serverName: "stockade"))
            try channel.pipeline.syncOperations.addHandler(routerSide)
        }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 7000)).get()
        let rig = Rig(channel: channel, replica: replica, routerSide: routerSide)
        defer { rig.holds.withLockedValue { $0 }.forEach { $0.release() } }
        try await body(rig)
        rig.holds.withLockedValue { $0 }.forEach { $0.release() }
        _ = try? await channel.finish()
        replica.stop()
        await replica.waitForLoop()
    }

    static func request(
        _ method: HTTPRequest.Method = .post, _ path: String = "/v1/reservations", token: String? = APITestHarness.checkout,
        body: [String] = [], extra: HTTPFields = [:]
    ) -> [HTTPRequestPart] {
        var fields = extra
        if let token { fields[.authorization] = "Bearer \(token)" }
        let head = HTTPRequest(method: method, scheme: nil, authority: "stockade", path: path, headerFields: fields)
        return [.head(head)] + body.map { .body(ByteBuffer(string: $0)) } + [.end(nil)]
    }

    static func reserve(_ id: String, quantity: Int = 2, extra: HTTPFields = [:]) -> [HTTPRequestPart] {
        request(
            body: [#"{"reservationId":"\#(id)","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":\#(quantity)}]}"#],
            extra: extra)
    }

    @Test func takesAWellFormedReserveAndAnswersIt() async throws {
        try await Self.withRig { rig in
            try await rig.send(Self.reserve("r1"))
            let answer = try await rig.nextAnswer()
            #expect(answer.head.status == .created)
            #expect(answer.head.headerFields[.contentType] == "application/json")
            #expect(answer.head.headerFields[.contentLength] == String(answer.body.utf8.count))
            #expect(answer.head.headerFields[.server] == "stockade")
            #expect(answer.head.headerFields[.date] != nil)
            #expect(answer.body.contains(#""reservationId":"r1""#))
            #expect(try await rig.handedOn().isEmpty)
            #expect(rig.held() == 2)
            // A replay is answered from the applied state, the same body with 200.
            try await rig.send(Self.reserve("r1"))
            let replay = try await rig.nextAnswer()
            #expect(replay.head.status == .ok)
            #expect(replay.body == answer.body)
            // A refusal is rendered as the router renders it.
            try await rig.send(Self.reserve("r2", quantity: 4))
            let refused = try await rig.nextAnswer()
            #expect(refused.head.status == .conflict)
            #expect(refused.body.contains(#""code":"insufficient_stock""#))
            #expect(rig.held() == 2)
        }
    }

    /// Requests the handler does not answer reach the router exactly as they arrived (the head,
    /// the body's bytes in order, the end), and it changes nothing on the way.
    @Test func handsEveryOtherRequestToTheRouterUnchanged() async throws {
        let body = #"{"reservationId":"r1","orderId":"o","region":"east","lines":[{"sku":"tee","quantity":1}]}"#
        let cases: [(String, [HTTPRequestPart])] = [
            ("another route", Self.request(.get, "/healthz", token: nil)),
            ("no token", Self.request(token: nil, body: [body])),
            ("unknown token", Self.request(token: "wrong", body: [body])),
            ("a query string", Self.request(.post, "/v1/reservations?x=1", body: [body])),
            ("another method", Self.request(.put, "/v1/reservations", body: [body])),
            ("no body", Self.request()),
            ("malformed JSON", Self.request(body: [#"{"reservationId":"r1""#])),
            ("an escape the fast parser leaves to the decoder", Self.request(body: [body.replacingOccurrences(of: "r1", with: #"r\u0031"#)])),
            ("a body over the limit", Self.request(body: [String(repeating: " ", count: 600), String(repeating: " ", count: 600)])),
            ("Expect: 100-continue", Self.request(body: [body], extra: [.expect: "100-continue"])),
        ]
        try await Self.withRig { rig in
            for (name, parts) in cases {
                try await rig.send(parts)
                let handed = try await rig.handedOn()
                #expect(handed.count >= 2, "\(name)")
                #expect(handed.first == parts.first, "\(name)")
                #expect(handed.last == parts.last, "\(name)")
                #expect(Self.bodyText(handed) == Self.bodyText(parts), "\(name)")
                #expect(try await rig.channel.readOutbound(as: HTTPResponsePart.self) == nil, "\(name)")
                try await rig.routerAnswers(.ok)
                #expect(try await rig.nextAnswer().head.status == .ok)
            }
            #expect(rig.held() == 0)
        }
    }

    /// A client may send its next request before the answer to the last. A reserve behind a
    /// request the router has not answered waits: it is not even proposed until that answer is out.
    @Test func aReserveBehindARouterRequestWaitsForItsAnswer() async throws {
        try await Self.withRig { rig in
            try await rig.send(Self.request(.get, "/v1/skus/tee"))
            #expect(try await rig.handedOn().count == 2)
            try await rig.send(Self.reserve("r1") + Self.request(.get, "/healthz", token: nil))
            #expect(try await rig.handedOn().isEmpty)
            #expect(rig.held() == 0)
            try await rig.routerAnswers(.ok)
            #expect(try await rig.nextAnswer().head.status == .ok)
            #expect(try await rig.nextAnswer().head.status == .created)
            #expect(rig.held() == 2)
            // The request behind the reserve reaches the router only after the reserve's answer.
            let handed = try await rig.handedOn()
            guard case .head(let head) = handed.first else { throw RigError("nothing handed on") }
            #expect(head.path == "/healthz")
            // The router's side reads only at a read-complete (NIOAsyncChannel): one must follow
            // the held request, or it waits for bytes the client will never send.
            #expect(rig.routerSide.events.withLockedValue { $0 }.filter { $0.hasPrefix("read") }.suffix(3) == ["read", "read", "readComplete"])
        }
    }

    /// A request behind a reserve still waiting for its outcome waits too.
    @Test func aRequestBehindAReserveWaitsForItsAnswer() async throws {
        try await Self.withRig { rig in
            let hold = await rig.holdApply()
            try await rig.send(Self.reserve("r1") + Self.request(.get, "/healthz", token: nil))
            #expect(try await rig.handedOn().isEmpty)
            #expect(try await rig.channel.readOutbound(as: HTTPResponsePart.self) == nil)
            hold.release()
            #expect(try await rig.nextAnswer().head.status == .created)
            let handed = try await rig.handedOn()
            guard case .head(let head) = handed.first else { throw RigError("nothing handed on") }
            #expect(head.path == "/healthz")
        }
    }

    /// On graceful shutdown a reserve in progress is answered first; then the connection closes.
    @Test func shutdownLetsAReserveInProgressAnswerFirst() async throws {
        try await Self.withRig { rig in
            let hold = await rig.holdApply()
            try await rig.send(Self.reserve("r1"))
            try await rig.channel.testingEventLoop.executeInContext {
                rig.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
            }
            #expect(rig.routerSide.events.withLockedValue { $0 }.filter { !$0.hasPrefix("read") }.isEmpty)
            #expect(rig.channel.isActive)
            hold.release()
            let answer = try await rig.nextAnswer()
            #expect(answer.head.status == .created)
            #expect(answer.head.headerFields[.connection] == "close")
            try await rig.channel.closeFuture.get()
            #expect(rig.held() == 2)
        }
    }

    /// `Connection: close` from the client: answered, then closed.
    @Test func closesAfterAnsweringWhenAsked() async throws {
        try await Self.withRig { rig in
            try await rig.send(Self.reserve("r1", extra: [.connection: "close"]))
            #expect(try await rig.nextAnswer().head.headerFields[.connection] == "close")
            try await rig.channel.closeFuture.get()
        }
    }

    static func bodyText(_ parts: [HTTPRequestPart]) -> String {
        parts.reduce(into: "") { text, part in
            if case .body(let buffer) = part { text += String(buffer: buffer) }
        }
    }
}
