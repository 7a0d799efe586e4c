import Foundation

/// A real redis-server for tests, started with the repository's `deploy/redis/redis.conf` on a
/// free loopback port, in its own directory, with an ACL file of two users: `stockade` (the
/// production rule: Stockade's keys only, nothing @dangerous) and a password-protected `default`
/// with every permission (which Redis 7.0 needs to replay its AOF; see redis.conf).
public final class RedisServerProcess: @unchecked Sendable {
    public let directory: String
    public let password = "test-stockade-\(UInt32.random(in: 0...UInt32.max))"
    public let adminPassword = "test-admin-\(UInt32.random(in: 0...UInt32.max))"
    public private(set) var port: Int = 0
    private var process: ChildProcess?

    public init() {
        directory = NodeProcess.temporaryDirectory(prefix: "stockade-redis")
    }

    public static var serverPath: String {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "/usr/bin/redis-server"
    }

    public static var cliPath: String {
        ["/usr/bin/redis-cli", "/usr/local/bin/redis-cli"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "/usr/bin/redis-cli"
    }

    static var configPath: String {
        // Sources/StockadeTesting/RedisServerProcess.swift → the repository root.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/redis/redis.conf").path
    }

    /// Starts the server (on the same port and data as before, after a kill) and waits until it answers.
    public func start() async throws {
        let fresh = port == 0
        // A port found free can be taken again before redis-server binds it (tests run in
        // parallel, and outgoing connections draw from the same range): a fresh server tries
        // another port. A restart after a kill must keep its port.
        for attempt in 1...5 {
            do {
                return try await startOnce()
            } catch is PortTaken where fresh && attempt < 5 {
                if let process { _ = await process.exit() }
                process = nil
                port = try Self.freePort()
            }
        }
        throw NodeProcessError("redis-server did not start on any of five ports; see \(directory)/redis.log")
    }

    struct PortTaken: Error {}

    private func startOnce() async throws {
        if port == 0 {
            port = try Self.freePort()
            try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
            let acl = """
                user default on >\(adminPassword) ~* &* +@all
                user stockade on >\(password) ~stockade:* resetchannels -@all +@read +@write +@stream +@scripting +ping +auth +hello -@dangerous

                """
            try acl.write(toFile: directory + "/users.acl", atomically: true, encoding: .utf8)
        }
        process = try ChildProcess(
            Self.serverPath,
            [Self.configPath, "--port", "\(port)", "--dir", directory + "/data", "--aclfile", directory + "/users.acl"],
            environment: [:], outputPath: directory + "/redis.log")
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await admin("PING") == "PONG" { return }
            if let process, !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOfFile: directory + "/redis.log", encoding: .utf8)) ?? ""
        if log.contains("Address already in use") {
            try? FileManager.default.removeItem(atPath: directory + "/redis.log")
            throw PortTaken()
        }
        throw NodeProcessError("redis-server did not start; see \(directory)/redis.log")
    }

    /// Runs one command as the admin user with redis-cli and returns its output, trimmed.
    @discardableResult
    public func admin(_ arguments: String...) async throws -> String {
        let output = directory + "/cli-\(UInt32.random(in: 0...UInt32.max)).out"
        let cli = try ChildProcess(
            Self.cliPath,
            ["-p", "\(port)", "--user", "default", "--pass", adminPassword, "--no-auth-warning"] + arguments,
            environment: [:], outputPath: output)
        _ = await cli.exit()
        defer { try? FileManager.default.removeItem(atPath: output) }
        return (try? String(contentsOfFile: output, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// kill -9: no shutdown, no final fsync beyond what `appendfsync always` already did.
    public func kill() async {
        guard let process else { return }
        process.signal(SIGKILL)
        _ = await process.exit()
        self.process = nil
    }

    /// Freezes or thaws the server (SIGSTOP / SIGCONT): it keeps its sockets but answers nothing.
    public func pause(_ paused: Bool) {
        process?.signal(paused ? SIGSTOP : SIGCONT)
    }

    public func stop() async {
        guard let process else { return }
        process.signal(SIGCONT)
        process.signal(SIGTERM)
        _ = await process.exit()
        self.process = nil
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, read back, released).
    public static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw NodeProcessError("socket failed") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw NodeProcessError("bind failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
