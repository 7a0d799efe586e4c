import Hummingbird
import Ledger
import NIOCore
import NIOHTTPTypes
import StockadeCore

/// Answers `POST /v1/reservations` on the connection's event loop, without a task.
///
/// Through the router a reserve crosses threads four times: the event loop hands the request to
/// the connection's task on the concurrency pool, the task queues the command and suspends, the
/// commit thread resumes it on the pool, and the task hands the response back to the event loop.
/// Here the event loop parses the request and queues the command, and the commit thread hands
/// the outcome straight back to the event loop. Rendering and counting are shared with the route
/// (`ReserveEndpoint`).
///
/// Only requests it can answer in full are taken: `POST` on exactly `/v1/reservations`, a
/// known bearer token, no `Expect` header, a body within the limit that the fast parser accepts.
/// Every other request, including every malformed one, goes to the router untouched, which
/// then gives the exact error. Nothing is consumed before that choice: the head and body are
/// held until the request has ended.
///
/// HTTP/1.1 lets a client send its next request before the answer to the last; answers must
/// then go out in order. While an answer is owed (ours, or the router's for a request handed
/// on), later input is held and reading stops; it resumes once the answer's end is written.
final class ReserveChannelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// A reserve this handler may take; its body is being read.
        case collecting(HTTPRequest, body: ByteBuffer?, start: ContinuousClock.Instant)
        /// A reserve taken here, waiting for its outcome.
        case answering(closeAfter: Bool)
        /// A request handed to the router: its parts pass on until its end, and the next request
        /// waits for the end of the router's response.
        case passing(requestEnded: Bool, responseEnded: Bool)
        /// The connection is closing or closed: input is dropped.
        case closed
    }

    private let endpoint: ReserveEndpoint
    private let authenticator: TokenAuthenticator
    private let serverName: String?
    private var state = State.idle
    /// Input that arrived while an answer was owed, in order.
    private var held = CircularBuffer<HTTPRequestPart>()
    /// A read was asked for while input was held.
    private var readHeld = false
    /// Shutdown asked to close the connection while a reserve of ours was in progress.
    private var quiesceHeld = false
    private var draining = false
    /// The connection's last `Authorization` header and its role: a keep-alive client sends the
    /// same header on every request, and digesting the token once per connection is enough.
    /// (Comparing a header with the client's own previous one reveals nothing about the tokens.)
    private var lastAuthorization: (header: String, role: Role?)?

    init(endpoint: ReserveEndpoint, authenticator: TokenAuthenticator, serverName: String?) {
        self.endpoint = endpoint
        self.authenticator = authenticator
        self.serverName = serverName
    }

    /// Whether an answer is owed that the next request must wait for.
    private var owesAnswer: Bool {
        switch state {
        case .idle, .collecting: false
        case .answering, .closed: true
        case .passing(let requestEnded, _): requestEnded
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if owesAnswer || !held.isEmpty {
            if case .closed = state { return }
            held.append(part)
            return
        }
        process(part, context: context)
    }

    func read(context: ChannelHandlerContext) {
        if owesAnswer || !held.isEmpty {
            readHeld = true
        } else {
            context.read()
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(data, promise: promise)
        guard case .end = unwrapOutboundIn(data), case .passing(let requestEnded, _) = state else { return }
        if requestEnded {
            state = .idle
            resume(context: context)
        } else {
            // The router answered before reading the whole request (a body over the limit).
            state = .passing(requestEnded: false, responseEnded: true)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            switch state {
            case .collecting, .answering:
                // The router's connection handler does not know of this request and would close
                // at once: the answer goes out first, then the connection closes.
                quiesceHeld = true
                return
            case .idle, .passing, .closed:
                break
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        held.removeAll()
        context.fireChannelInactive()
    }

    // MARK: - Requests

    private func process(_ part: HTTPRequestPart, context: ChannelHandlerContext) {
        switch state {
        case .idle:
            if case .head(let head) = part, takes(head) {
                state = .collecting(head, body: nil, start: .now)
            } else {
                state = .passing(requestEnded: part.isEnd, responseEnded: false)
                context.fireChannelRead(wrapInboundOut(part))
            }
        case .collecting(let head, var body, let start):
            switch part {
            case .head:
                // The decoder never sends a head inside a request; let the router report it.
                handOver(head, body, then: [part], context: context)
            case .body(var chunk):
                if (body?.readableBytes ?? 0) + chunk.readableBytes > endpoint.limits.requestBodyBytesMax {
                    handOver(head, body, then: [part], context: context)
                } else if body == nil {
                    state = .collecting(head, body: chunk, start: start)
                } else {
                    state = .idle  // drop the state's reference so the buffer is not copied on write
                    body!.writeBuffer(&chunk)
                    state = .collecting(head, body: body, start: start)
                }
            case .end:
                guard let body, let parsed = body.withUnsafeReadableBytes({ ReserveBodyParser.parse($0) }) else {
                    return handOver(head, body, then: [part], context: context)
                }
                do throws(StockadeError) {
                    answer(try parsed.request(limits: endpoint.limits), head: head, start: start, context: context)
                } catch {
                    // Lines that break a per-line bound: answered here like the router would.
                    state = .answering(closeAfter: head.headerFields[.connection] == "close")
                    endpoint.metrics.count(outcome: error.code.rawValue)
                    respond(ErrorBody.rendered(error), context: context)
                }
            }
        case .passing(requestEnded: false, let responseEnded):
            context.fireChannelRead(wrapInboundOut(part))
            if part.isEnd {
                if responseEnded {
                    state = .idle
                } else {
                    state = .passing(requestEnded: true, responseEnded: false)
                }
            }
        case .answering, .passing(requestEnded: true, _), .closed:
            preconditionFailure("input is held while an answer is owed")
        }
    }

    /// Whether this handler answers the request itself.
    private func takes(_ head: HTTPRequest) -> Bool {
        head.method == .post && head.path == "/v1/reservations" && head.headerFields[.expect] == nil
            && role(forAuthorization: head.headerFields[.authorization]) != nil
    }

    private func role(forAuthorization header: String?) -> Role? {
        guard let header else { return nil }
        if let last = lastAuthorization, last.header == header { return last.role }
        let role = authenticator.role(forAuthorization: header)
        lastAuthorization = (header, role)
        return role
    }

    /// Hands a request this handler will not answer to the router, as it arrived.
    private func handOver(_ head: HTTPRequest, _ body: ByteBuffer?, then parts: [HTTPRequestPart], context: ChannelHandlerContext) {
        state = .passing(requestEnded: false, responseEnded: false)
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if quiesceHeld {
            // Now the router's connection handler knows of the request: it closes after answering.
            quiesceHeld = false
            context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
        if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
        for part in parts {
            context.fireChannelRead(wrapInboundOut(part))
            if part.isEnd { state = .passing(requestEnded: true, responseEnded: false) }
        }
    }

    private func answer(_ request: ReserveRequest, head: HTTPRequest, start: ContinuousClock.Instant, context: ChannelHandlerContext) {
        state = .answering(closeAfter: head.headerFields[.connection] == "close")
        let promise = context.eventLoop.makePromise(of: Outcome.self)
        endpoint.reserve(request) { promise.succeed($0) }
        promise.futureResult.assumeIsolated().whenSuccess { outcome in
            self.respond(self.endpoint.answer(outcome, for: request, start: start), context: context)
        }
    }

    private func respond(_ answer: (status: HTTPResponse.Status, body: ByteBuffer), context: ChannelHandlerContext) {
        guard case .answering(let closeAfter) = state else { return }  // the connection closed meanwhile
        let close = closeAfter || quiesceHeld
        var fields = HTTPFields()
        fields[.contentType] = "application/json"
        fields[.contentLength] = String(answer.body.readableBytes)
        if let serverName { fields[.server] = serverName }
        fields[.date] = HTTPDate.now
        if close { fields[.connection] = "close" }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: answer.status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(answer.body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if close {
            state = .closed
            held.removeAll()
            context.close(promise: nil)
            return
        }
        state = .idle
        resume(context: context)
    }

    /// Works through held input until an answer is owed again, then reads on if nothing is held.
    private func resume(context: ChannelHandlerContext) {
        guard !draining else { return }
        draining = true
        defer { draining = false }
        var processed = false
        while !owesAnswer, let part = held.popFirst() {
            process(part, context: context)
            processed = true
        }
        // Held parts handed to the router now arrive outside a socket read: the read-complete that
        // followed them then was not passed on (they were held), and NIOAsyncChannel hands what it
        // has read to the router's task only on read-complete. Without this a request pipelined
        // behind another waited for the client's next bytes, which never came.
        if processed, case .passing = state { context.fireChannelReadComplete() }
        if !owesAnswer && held.isEmpty && readHeld {
            readHeld = false
            context.read()
        }
    }
}

extension HTTPRequestPart {
    fileprivate var isEnd: Bool {
        if case .end = self { return true }
        return false
    }
}
