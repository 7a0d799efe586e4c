import CHiredis
import DequeModule
import Foundation
import Logging
import StockadeCore

/// One hiredis connection driven by its own OS thread, so no event loop or cooperative thread
/// ever blocks on Redis.
///
/// The thread pipelines: it takes every command queued since its last turn (up to
/// `pipelineMax`), writes them in one go and reads their replies in order, so concurrent callers
/// share round trips. Socket timeouts bound each read and write. When the connection fails, the
/// commands that were written get `outcomeUnknown` (Redis may have run them), the connection is
/// dropped and re-dialled with backoff, and commands not yet written stay queued until their
/// deadline (`notSent`).
final class RedisConnection: @unchecked Sendable {
    struct Pending {
        var command: RedisCommand
        var deadline: ContinuousClock.Instant
        /// Called once, on the connection's thread: it must not block.
        var completion: @Sendable (Result<RedisValue, any Error>) -> Void
    }

    private let configuration: RedisConfiguration
    private let logger: Logger
    private let name: String
    private let condition = NSCondition()
    private var queue: Deque<Pending> = []
    private var stopped = false
    private var connected = false
    private var threadDone = false
    private var batches = 0
    private var commands = 0
    private var context: UnsafeMutablePointer<redisContext>?
    private let onStateChange: @Sendable (Bool) -> Void

    init(configuration: RedisConfiguration, name: String, logger: Logger, onStateChange: @escaping @Sendable (Bool) -> Void) {
        self.configuration = configuration
        self.name = name
        self.logger = logger
        self.onStateChange = onStateChange
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    /// Batches written and commands in them, since start.
    var counts: (batches: Int, commands: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (batches, commands)
    }

    /// Commands waiting, and whether the connection is up (for choosing a connection).
    var load: (queued: Int, connected: Bool) {
        condition.lock()
        defer { condition.unlock() }
        return (queue.count, connected)
    }

    func send(_ command: RedisCommand) async throws -> RedisValue {
        try await withCheckedThrowingContinuation { continuation in
            send(command) { continuation.resume(with: $0) }
        }
    }

    /// Queues `command`; `completion` gets its reply (or why it failed) on this connection's
    /// thread, or at once on the caller's when it cannot be queued.
    func send(_ command: RedisCommand, completion: @escaping @Sendable (Result<RedisValue, any Error>) -> Void) {
        condition.lock()
        if stopped {
            condition.unlock()
            return completion(.failure(RedisError.notSent("client stopped")))
        }
        if queue.count >= configuration.queueMax {
            condition.unlock()
            return completion(.failure(RedisError.overloaded))
        }
        queue.append(Pending(command: command, deadline: .now + configuration.commandTimeout, completion: completion))
        if queue.count == 1 { condition.signal() }
        condition.unlock()
    }

    /// Fails what is queued and ends the thread after its current batch.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while !threadDone { condition.wait() }
        condition.unlock()
    }

    // MARK: - The thread

    private func run() {
        var backoff = configuration.reconnectBackoffMin
        while true {
            condition.lock()
            if stopped {
                let leftover = queue
                queue.removeAll()
                condition.unlock()
                for pending in leftover { pending.completion(.failure(RedisError.notSent("client stopped"))) }
                break
            }
            condition.unlock()
            if context == nil {
                if let failure = connect() {
                    failExpired(reason: failure)
                    sleep(backoff)
                    backoff = min(backoff * 2, configuration.reconnectBackoffMax)
                    continue
                }
                backoff = configuration.reconnectBackoffMin
            }
            condition.lock()
            while queue.isEmpty && !stopped { condition.wait() }
            if context != nil && peerClosed() {
                condition.unlock()
                // Redis went away while this connection sat idle: re-dial before writing anything,
                // so these commands are not sent into a dead socket and reported as unknown.
                drop(reason: "closed by the server while idle")
                continue
            }
            let take = min(queue.count, configuration.pipelineMax)
            var batch: [Pending] = []
            batch.reserveCapacity(take)
            for _ in 0..<take { batch.append(queue.removeFirst()) }
            if take > 0 {
                batches += 1
                commands += take
            }
            condition.unlock()
            if !batch.isEmpty { execute(batch) }
        }
        if let context { redisFree(context) }
        context = nil
        condition.lock()
        threadDone = true
        condition.broadcast()
        condition.unlock()
    }

    /// Writes the batch and reads one reply per command, in order.
    private func execute(_ batch: [Pending]) {
        guard let context else { return }
        var appended = 0
        for pending in batch {
            let status = Self.withArgv(pending.command) { argc, argv, lengths in
                redisAppendCommandArgv(context, argc, argv, lengths)
            }
            guard status == REDIS_OK else { break }
            appended += 1
        }
        for (position, pending) in batch.enumerated() {
            guard position < appended else {
                pending.completion(.failure(RedisError.notSent("could not buffer the command")))
                continue
            }
            var raw: UnsafeMutableRawPointer?
            if redisGetReply(context, &raw) != REDIS_OK || raw == nil {
                let reason = errorText(context)
                // Everything buffered from here on may have reached Redis: its outcome is unknown.
                for rest in batch[position..<appended] { rest.completion(.failure(RedisError.outcomeUnknown(reason))) }
                for rest in batch[appended...] { rest.completion(.failure(RedisError.notSent(reason))) }
                drop(reason: reason)
                return
            }
            let reply = raw!.assumingMemoryBound(to: redisReply.self)
            let value = Self.convert(reply)
            freeReplyObject(raw)
            pending.completion(.success(value))
        }
    }

    /// Dials, sets socket timeouts and authenticates; returns why it failed, or nil.
    private func connect() -> String? {
        let timeout = Self.timeval(configuration.connectTimeout)
        guard let context = redisConnectWithTimeout(configuration.host, Int32(configuration.port), timeout) else {
            return "cannot allocate a connection"
        }
        if context.pointee.err != 0 {
            let reason = errorText(context)
            redisFree(context)
            return reason
        }
        redisSetTimeout(context, Self.timeval(configuration.commandTimeout))
        redisEnableKeepAlive(context)
        self.context = context
        if let password = configuration.password {
            var auth = RedisCommand(["AUTH"])
            if let username = configuration.username { auth.append(username) }
            auth.append(password)
            switch syncCommand(auth) {
            case .status("OK"): break
            case .error(let message):
                drop(reason: "AUTH refused: \(message)")
                return "AUTH refused: \(message)"
            case let other:
                let reason = "AUTH failed: \(String(describing: other))"
                drop(reason: reason)
                return reason
            }
        }
        condition.lock()
        connected = true
        condition.unlock()
        onStateChange(true)
        logger.info("redis connected", metadata: ["connection": "\(name)", "host": "\(configuration.host):\(configuration.port)"])
        return nil
    }

    /// One command on the thread's own connection, outside the queue (used for AUTH).
    private func syncCommand(_ command: RedisCommand) -> RedisValue? {
        guard let context else { return nil }
        let raw = Self.withArgv(command) { argc, argv, lengths in redisCommandArgv(context, argc, argv, lengths) }
        guard let raw else { return nil }
        let value = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
        freeReplyObject(raw)
        return value
    }

    /// Whether the server has closed the socket (readable, and a peek reads end of file). Redis
    /// sends nothing unsolicited, so a readable idle socket means it is closing.
    private func peerClosed() -> Bool {
        guard let context else { return false }
        var descriptor = pollfd(fd: context.pointee.fd, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) > 0 else { return false }
        var byte: UInt8 = 0
        let read = recv(context.pointee.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        return read == 0 || (read < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
    }

    private func drop(reason: String) {
        if let context { redisFree(context) }
        context = nil
        condition.lock()
        let was = connected
        connected = false
        condition.unlock()
        if was {
            onStateChange(false)
            logger.warning("redis connection lost", metadata: ["connection": "\(name)", "reason": "\(reason)"])
        }
    }

    /// While disconnected: commands past their deadline are failed as not sent.
    private func failExpired(reason: String) {
        let now = ContinuousClock.now
        condition.lock()
        var expired: [Pending] = []
        while let first = queue.first, first.deadline <= now { expired.append(queue.removeFirst()) }
        condition.unlock()
        for pending in expired { pending.completion(.failure(RedisError.notSent(reason))) }
    }

    /// Sleeps for `duration`, waking early if the client stops.
    private func sleep(_ duration: Duration) {
        condition.lock()
        if !stopped { _ = condition.wait(until: Date(timeIntervalSinceNow: duration.secondsValue)) }
        condition.unlock()
    }

    private func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    /// Calls `body` with hiredis's argv form of `command`: pointers into its packed bytes and their
    /// lengths (hiredis copies the arguments before returning).
    static func withArgv<T>(
        _ command: RedisCommand, _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        precondition(command.count > 0, "an empty Redis command")
        return command.bytes.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var argv: [UnsafePointer<CChar>?] = []
            argv.reserveCapacity(command.count)
            var offset = 0
            for length in command.lengths {
                argv.append(base.advanced(by: offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            return command.lengths.withUnsafeBufferPointer { lengths in
                argv.withUnsafeMutableBufferPointer { pointers in body(Int32(command.count), pointers.baseAddress!, lengths.baseAddress!) }
            }
        }
    }

    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS: return .status(text(value))
        case REDIS_REPLY_ERROR: return .error(text(value))
        case REDIS_REPLY_INTEGER: return .integer(Int64(value.integer))
        case REDIS_REPLY_NIL: return .bulk(nil)
        case REDIS_REPLY_STRING:
            guard let str = value.str else { return .bulk([]) }
            return .bulk(Array(UnsafeRawBufferPointer(start: str, count: Int(value.len))))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) {
                if let element = value.element[index] { elements.append(convert(element)) }
            }
            return .array(elements)
        default: return .error("unknown reply type \(value.type)")
        }
    }

    private static func text(_ value: redisReply) -> String {
        guard let str = value.str else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: str, count: Int(value.len)), as: UTF8.self)
    }

    static func timeval(_ duration: Duration) -> timeval {
        let micros = max(1, Int(duration.components.seconds) * 1_000_000 + Int(duration.components.attoseconds / 1_000_000_000_000))
        return Glibc.timeval(tv_sec: micros / 1_000_000, tv_usec: micros % 1_000_000)
    }

}
