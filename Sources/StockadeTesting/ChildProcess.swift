import Foundation

/// A child process started with posix_spawn and reaped with waitpid by this object alone.
///
/// Tests start and kill many processes at once (nodes, scripts, the load tool); this keeps
/// every wait explicit instead of relying on a shared child-exit monitor, and sends output to a
/// file (a pipe's write end can stay open in a daemonised grandchild).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?

    /// Starts `path` with `arguments`, stdin from /dev/null, stdout and stderr appended to `outputPath`.
    public init(_ path: String, _ arguments: [String], environment: [String: String], outputPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        // The child starts with no blocked signals and default handlers: the spawning thread may be
        // one whose mask blocks SIGTERM, and a child that inherited that would ignore `terminate`.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        guard result == 0 else { throw NodeProcessError("posix_spawn \(path) failed: \(String(cString: strerror(result)))") }
        self.pid = pid
    }

    /// The exit status (128 + signal if killed) once the process has been reaped.
    public var exitStatus: Int32? {
        lock.lock()
        defer { lock.unlock() }
        return status
    }

    /// Whether it is still running (reaps it without blocking if it has exited).
    public var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        if status != nil { return false }
        var raw: Int32 = 0
        let result = waitpid(pid, &raw, WNOHANG)
        if result == pid { status = Self.decode(raw) }
        return status == nil
    }

    /// Blocks until the process exits. Call off the cooperative pool when it may take long.
    @discardableResult
    public func wait() -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        if let status { return status }
        var raw: Int32 = 0
        while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
        status = Self.decode(raw)
        return status!
    }

    /// Waits on a thread of its own.
    public func exit() async -> Int32 {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: self.wait()) }
        }
    }

    public func signal(_ signal: Int32) {
        if isRunning { kill(pid, signal) }
    }

    static func decode(_ raw: Int32) -> Int32 {
        // WIFEXITED / WEXITSTATUS / WTERMSIG by hand (the macros are not imported).
        (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }

    /// Runs a tool to completion (killed after `timeout`) and returns its exit status and its
    /// output, stdout and stderr together. `PATH` is searched for a bare name.
    public static func run(_ tool: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws
        -> (status: Int32, output: String)
    {
        let outputPath = NSTemporaryDirectory() + "stockade-tool-\(UInt64.random(in: 0...UInt64.max)).out"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let environment = ProcessInfo.processInfo.environment
        var path = tool
        if !tool.contains("/") {
            let directories = (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
            path = directories.map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) } ?? tool
        }
        let process = try ChildProcess(path, arguments, environment: environment, outputPath: outputPath)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        if process.isRunning { process.signal(SIGKILL) }
        let status = await process.exit()
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        return (status, output)
    }
}
