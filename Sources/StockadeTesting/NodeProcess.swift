import Foundation
import StockadeClient

/// A real `stockade-node` process on loopback, started and stopped by a test.
public final class NodeProcess: @unchecked Sendable {
    public let dataDirectory: String
    public let adminToken = "test-admin-token"
    public let checkoutToken = "test-checkout-token"
    public private(set) var port: Int = 0
    /// The RESP port, when started with `resp: true`.
    public private(set) var respPort: Int = 0
    private let resp: Bool
    private var process: ChildProcess?
    private let extraArguments: [String]
    private let extraEnvironment: [String: String]
    private let logPath: String

    /// Prepares a node on a fresh data directory. Call `start()`.
    public init(
        dataDirectory: String? = nil, extraArguments: [String] = [], environment: [String: String] = [:], resp: Bool = false
    ) {
        self.resp = resp
        let directory = dataDirectory ?? NodeProcess.temporaryDirectory(prefix: "stockade-node")
        self.dataDirectory = directory
        self.extraArguments = extraArguments
        self.extraEnvironment = environment
        self.logPath = directory + ".log"
    }

    public static func temporaryDirectory(prefix: String) -> String {
        let path = NSTemporaryDirectory() + "\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The node binary: `STOCKADE_NODE_BIN`, or `stockade-node` beside the running test binary.
    public static var binaryPath: String {
        if let path = ProcessInfo.processInfo.environment["STOCKADE_NODE_BIN"] { return path }
        return productPath("stockade-node")
    }

    /// A product built beside the running test binary.
    public static func productPath(_ name: String) -> String {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        // Test bundles live in `<build>/debug/X.xctest`; products live in `<build>/debug`.
        if directory.pathExtension == "xctest" { directory = directory.deletingLastPathComponent() }
        return directory.appendingPathComponent(name).path
    }

    /// Starts the process (again, after a kill) on the same data directory and waits until it listens.
    public func start() async throws {
        let readyFile = dataDirectory + ".ready"
        try? FileManager.default.removeItem(atPath: readyFile)
        try? FileManager.default.removeItem(atPath: readyFile + ".resp")
        var arguments = ["--dev", "--data-dir", dataDirectory, "--ready-file", readyFile, "--log-level", "warning"]
        arguments += ["--http", "127.0.0.1:\(port)"]
        if resp { arguments += ["--resp", "127.0.0.1:\(respPort)"] }
        arguments += extraArguments
        var environment = ProcessInfo.processInfo.environment
        environment["STOCKADE_ADMIN_TOKEN"] = adminToken
        environment["STOCKADE_CHECKOUT_TOKEN"] = checkoutToken
        environment.merge(extraEnvironment) { _, new in new }
        let process = try ChildProcess(Self.binaryPath, arguments, environment: environment, outputPath: logPath)
        self.process = process
        // Generous: on a loaded 2-core CI machine a debug node can take a while to start.
        let deadline = ContinuousClock.now + .seconds(180)
        while ContinuousClock.now < deadline {
            if let bound = Self.port(in: readyFile), !resp || Self.port(in: readyFile + ".resp") != nil {
                port = bound
                if resp { respPort = Self.port(in: readyFile + ".resp")! }
                return
            }
            if !process.isRunning { throw NodeProcessError("node exited during start-up; log: \(logTail())") }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw NodeProcessError("node did not become ready; log: \(logTail())")
    }

    static func port(in file: String) -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
            let bound = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), bound > 0
        else { return nil }
        return bound
    }

    /// SIGKILL: no shutdown code runs.
    public func kill() {
        guard let process, process.isRunning else { return }
        process.signal(SIGKILL)
        process.wait()
    }

    /// SIGTERM, then wait for a graceful exit.
    public func terminate() {
        guard let process, process.isRunning else { return }
        process.signal(SIGTERM)
        process.wait()
    }

    public var exitStatus: Int32? {
        guard let process, !process.isRunning else { return nil }
        return process.exitStatus
    }

    /// Stops the process if running and deletes its data.
    public func destroy() {
        kill()
        try? FileManager.default.removeItem(atPath: dataDirectory)
        try? FileManager.default.removeItem(atPath: logPath)
        try? FileManager.default.removeItem(atPath: dataDirectory + ".ready")
        try? FileManager.default.removeItem(atPath: dataDirectory + ".ready.resp")
    }

    public func connect() async throws -> HTTPConnection {
        try await HTTPConnection.connect(host: "127.0.0.1", port: port)
    }

    public func logTail() -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log)" }
        return String(text.suffix(2000))
    }
}

public struct NodeProcessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
