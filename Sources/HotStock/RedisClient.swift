import Foundation
import Logging
import Synchronization

/// Where and how to reach Redis.
public struct RedisConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// ACL user and password for `AUTH`; no `AUTH` when the password is nil.
    public var username: String?
    public var password: String?
    /// Connections in the pool; each pipelines on its own thread.
    public var connections: Int = 2
    /// Commands written per round trip on one connection.
    public var pipelineMax: Int = 512
    /// Commands waiting per connection before callers get `overloaded`.
    public var queueMax: Int = 8_192
    public var connectTimeout: Duration = .milliseconds(500)
    /// Bounds each socket read and write, and how long a command may wait for a connection.
    public var commandTimeout: Duration = .seconds(1)
    public var reconnectBackoffMin: Duration = .milliseconds(50)
    public var reconnectBackoffMax: Duration = .seconds(2)

    public init(host: String = "127.0.0.1", port: Int = 6379, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
    }
}

/// A Lua script run by `EVALSHA`, reloaded when Redis answers `NOSCRIPT` (e.g. after a restart).
public struct RedisScript: Sendable {
    public let source: String
    /// The SHA-1 of `source`, as Redis names it.
    public let sha: String

    public init(_ source: String) {
        self.source = source
        sha = SHA1.hex(Array(source.utf8))
    }
}

/// A pool of pipelining hiredis connections. `send` never blocks the calling thread.
public final class RedisClient: Sendable {
    private let connections: [RedisConnection]
    private let next = Atomic<Int>(0)
    private let counter: ConnectedCounter

    public init(configuration: RedisConfiguration, logger: Logger) {
        precondition(configuration.connections >= 1 && configuration.pipelineMax >= 1 && configuration.queueMax >= 1)
        var connections: [RedisConnection] = []
        let box = ConnectedCounter()
        for index in 0..<configuration.connections {
            connections.append(
                RedisConnection(
                    configuration: configuration, name: "stockade-redis-\(index)", logger: logger,
                    onStateChange: { up in box.change(up ? 1 : -1) }))
        }
        self.connections = connections
        counter = box
    }

    /// Round trips (pipelined batches) and the commands they carried, over all connections.
    public var counts: (roundTrips: Int, commands: Int) {
        connections.reduce((0, 0)) { total, connection in
            let counts = connection.counts
            return (total.0 + counts.batches, total.1 + counts.commands)
        }
    }

    /// Connections in the pool.
    public var connectionCount: Int { connections.count }

    /// Whether at least one connection is up.
    public var isConnected: Bool { counter.value > 0 }

    /// Sends one command on the least loaded connected connection (round-robin among equals).
    public func send(_ command: RedisCommand) async throws -> RedisValue {
        try await pick().send(command)
    }

    /// `send` for callers outside Swift concurrency: `completion` runs once, on a connection's
    /// thread (or the caller's, when the command cannot be queued), and must not block.
    public func send(_ command: RedisCommand, completion: @escaping @Sendable (Result<RedisValue, any Error>) -> Void) {
        pick().send(command, completion: completion)
    }

    public func send(_ arguments: String...) async throws -> RedisValue {
        try await send(RedisCommand(arguments))
    }

    /// Sends a command and turns an error reply into `RedisError.server`.
    public func call(_ command: RedisCommand) async throws -> RedisValue {
        let value = try await send(command)
        if case .error(let message) = value { throw RedisError.server(message) }
        return value
    }

    /// `EVALSHA` of the script; on `NOSCRIPT`, loads it and tries once more.
    public func evaluate(_ script: RedisScript, keys: [String], arguments: RedisCommand) async throws -> RedisValue {
        try await withCheckedThrowingContinuation { continuation in
            evaluate(script, keys: keys, arguments: arguments) { continuation.resume(with: $0) }
        }
    }

    /// `evaluate` for callers outside Swift concurrency: `completion` runs once, on a connection's
    /// thread (or the caller's, when the command cannot be queued), and must not block.
    public func evaluate(
        _ script: RedisScript, keys: [String], arguments: RedisCommand,
        completion: @escaping @Sendable (Result<RedisValue, any Error>) -> Void
    ) {
        var command = RedisCommand(["EVALSHA", script.sha, String(keys.count)])
        for key in keys { command.append(key) }
        command.bytes.append(contentsOf: arguments.bytes)
        command.lengths.append(contentsOf: arguments.lengths)
        let finalCommand = command
        pick().send(finalCommand) { [self] result in
            guard case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT") else { return completion(result) }
            pick().send(RedisCommand(["SCRIPT", "LOAD", script.source])) { [self] loaded in
                switch loaded {
                case .success(let value) where value.string == script.sha:
                    pick().send(finalCommand, completion: completion)
                case .success(let value):
                    completion(.failure(RedisError.unexpectedReply("SCRIPT LOAD returned \(value), expected \(script.sha)")))
                case .failure(let error):
                    completion(.failure(error))
                }
            }
        }
    }

    /// Stops every connection; queued commands fail as not sent.
    public func shutdown() async {
        let connections = self.connections
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                for connection in connections { connection.stop() }
                continuation.resume()
            }
        }
    }

    private func pick() -> RedisConnection {
        let start = next.add(1, ordering: .relaxed).oldValue
        var best: RedisConnection?
        var bestQueued = Int.max
        for offset in 0..<connections.count {
            let connection = connections[(start + offset) % connections.count]
            let load = connection.load
            guard load.connected else { continue }
            if load.queued < bestQueued {
                best = connection
                bestQueued = load.queued
            }
        }
        return best ?? connections[start % connections.count]
    }
}

/// How many connections are up.
final class ConnectedCounter: Sendable {
    private let count = Atomic<Int>(0)
    func change(_ delta: Int) { count.add(delta, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}
