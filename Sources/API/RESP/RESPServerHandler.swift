import NIOCore
import RESP
import StockadeCore

/// Serves one RESP connection. Thin: `RESPConnectionStateMachine` decides, this handler reads,
/// runs what the machine asks for, and writes the replies the machine releases.
///
/// Threading: every method runs on the channel's event loop; replies computed elsewhere come
/// back through a promise on that loop.
final class RESPServerHandler: ChannelDuplexHandler {
    typealias InboundIn = [ByteBuffer]
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var machine: RESPConnectionStateMachine
    private let executor: RESPExecutor
    /// A read was asked for while the machine did not want more input.
    private var readHeld = false
    /// Shutdown asked the connection to finish what it has and close.
    private var quiescing = false
    private var closed = false
    private var writeScheduled = false

    init(machine: RESPConnectionStateMachine, executor: RESPExecutor) {
        self.machine = machine
        self.executor = executor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .execute(let slot, let request, let token) = machine.received(unwrapInboundIn(data)) else { return }
        run(.init(slot: slot, request: request, token: token), context: context)
    }

    private func run(_ dispatch: RESPConnectionStateMachine.Dispatch, context: ChannelHandlerContext) {
        let promise = context.eventLoop.makePromise(of: RESPExecutor.Answer.self)
        executor.execute(dispatch.request, token: dispatch.token) { promise.succeed($0) }
        promise.futureResult.assumeIsolated().whenSuccess { answer in
            let reply = self.executor.reply(answer)
            let next = self.machine.complete(dispatch.slot, with: reply)
            // Commands read but not started when the connection closed are not run: their client
            // saw no answer, and retries them (with the same reservation id) where it reconnects.
            guard !self.closed else { return }
            for command in next { self.run(command, context: context) }
            self.scheduleWrite(context: context)
        }
    }

    /// Answers completed by one commit batch arrive as one task each, queued together on the
    /// loop: the write waits behind them, so they leave in one write and one flush instead of a
    /// system call each.
    private func scheduleWrite(context: ChannelHandlerContext) {
        guard !writeScheduled else { return }
        writeScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.writeScheduled = false
            self.writeReplies(context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        writeReplies(context: context)
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? RESPProtocolError {
            machine.protocolError(error)
            writeReplies(context: context)
        } else {
            close(context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        if machine.mayRead && !quiescing {
            context.read()
        } else {
            readHeld = true
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent else { return context.fireUserInboundEventTriggered(event) }
        quiescing = true
        if machine.pendingCount == 0 { close(context: context) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        context.fireChannelInactive()
    }

    /// Writes what the machine releases; closes when it says so, or when quiescing and idle.
    private func writeReplies(context: ChannelHandlerContext) {
        guard !closed else { return }
        var buffer = context.channel.allocator.buffer(capacity: 512)
        let closeAfter = machine.takeReplies(into: &buffer)
        if buffer.readableBytes > 0 {
            let written = context.writeAndFlush(wrapOutboundOut(buffer))
            if closeAfter || (quiescing && machine.pendingCount == 0) {
                closed = true
                written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
                return
            }
        } else if closeAfter || (quiescing && machine.pendingCount == 0) {
            return close(context: context)
        }
        if readHeld && machine.mayRead && !quiescing {
            readHeld = false
            context.read()
        }
    }

    private func close(context: ChannelHandlerContext) {
        guard !closed else { return }
        closed = true
        context.close(promise: nil)
    }
}

/// Accepts a connection past the limit only to tell it so, as Redis does.
final class RESPRefusingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let message: String

    init(message: String = "ERR max number of clients reached") { self.message = message }

    func channelActive(context: ChannelHandlerContext) {
        let refusal = RESPValue.error(message).encoded(version: .resp2)
        context.writeAndFlush(wrapOutboundOut(refusal)).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
