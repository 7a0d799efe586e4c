import ArgumentParser
import Foundation
import StockadeClient
import StockadeCore

/// Options every command that talks to a node takes. Each flag has an environment variable that
/// sets it when the flag is absent.
public struct ConnectionOptions: ParsableArguments, Sendable {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The node: resp://, resps://, http:// or https://host:port (host:port means RESP). Env: STOCKADE_SERVER.",
            valueName: "url"))
    public var server: String?

    @Option(name: .long, help: ArgumentHelp("An admin token. Env: STOCKADE_TOKEN.", valueName: "token"))
    public var token: String?

    @Option(name: [.customShort("o"), .long], help: "Output: table, wide or json. Env: STOCKADE_OUTPUT.")
    public var output: OutputFormat?

    @Option(name: .long, help: ArgumentHelp("How long one call may take (e.g. 10s). Env: STOCKADE_TIMEOUT.", valueName: "duration"))
    public var timeout: String?

    @Option(
        name: .customLong("ca-file"),
        help: ArgumentHelp("PEM authorities a resps:// or https:// node's certificate must chain to (default: the system's). Env: STOCKADE_CA_FILE.", valueName: "file"))
    public var caFile: String?

    public init() {}

    static let defaultServer = "resp://127.0.0.1:7401"

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    /// The server URL, from the flag, then `STOCKADE_SERVER`, then the default.
    public var serverURL: String {
        let value = server ?? environment["STOCKADE_SERVER"] ?? Self.defaultServer
        return value.contains("://") ? value : "resp://" + value
    }

    public var format: OutputFormat {
        get throws {
            if let output { return output }
            guard let name = environment["STOCKADE_OUTPUT"] else { return .table }
            guard let format = OutputFormat(rawValue: name) else {
                throw CLIError.usage("STOCKADE_OUTPUT must be table, wide or json, not \(name)")
            }
            return format
        }
    }

    /// A client of the node; nothing is sent until the first call.
    public func client() throws -> StockadeClient {
        guard let token = token ?? environment["STOCKADE_TOKEN"], !token.isEmpty else {
            throw CLIError.usage("no token: pass --token or set STOCKADE_TOKEN")
        }
        let timeoutText = timeout ?? environment["STOCKADE_TIMEOUT"] ?? "10s"
        guard let timeoutMs = Durations.parse(timeoutText), timeoutMs > 0 else {
            throw CLIError.usage("the timeout must be a duration such as 10s, not \(timeoutText)")
        }
        do {
            return try StockadeClient(
                url: serverURL, token: token, connections: 1, timeout: .milliseconds(timeoutMs),
                tls: StockadeClient.TLSOptions(caFile: caFile ?? environment["STOCKADE_CA_FILE"]))
        } catch let error as StockadeError {
            throw CLIError.usage(error.message)
        } catch {
            throw CLIError.usage("\(error)")  // an unreadable CA file
        }
    }
}

/// A failure the CLI reports as one line on stderr, with its exit code.
public enum CLIError: Error, Sendable {
    /// Bad flags or arguments, or a file that does not parse: exit 2.
    case usage(String)
    /// Cannot reach the node, or it refused the token: exit 2.
    case connection(String)
    /// The node refused the operation, or a check found problems: exit 1.
    case failed(String)
    /// Problems were printed already (audit findings, import errors): exit 1 with nothing more to say.
    case problemsReported

    public var exitCode: Int32 {
        switch self {
        case .usage, .connection: 2
        case .failed, .problemsReported: 1
        }
    }

    public var line: String? {
        switch self {
        case .usage(let text), .connection(let text), .failed(let text): text
        case .problemsReported: nil
        }
    }

    /// Any error a command throws, as the CLI reports it.
    public static func from(_ error: any Error, server: String) -> CLIError {
        switch error {
        case let error as CLIError: return error
        case let error as StockadeError:
            switch error.code {
            case .unauthorized: return .connection("\(server) refused the token (\(error.code.rawValue): \(error.message))")
            case .forbidden: return .connection("the token may not do this: \(error.message) (an admin token is needed)")
            default: return .failed("\(error.code.rawValue): \(error.message)")
            }
        case let error as TransportError:
            let text = error.description
            if text.contains("WRONGPASS") || text.contains("NOAUTH") || text.contains("UNAUTHORIZED") {
                return .connection("\(server) refused the token")
            }
            if text.hasPrefix("cannot reach") { return .connection("cannot reach \(server): \(reason(text))") }
            return .connection("lost the connection to \(server): \(reason(text))")
        default:
            return .failed("\(error)")
        }
    }

    /// NIO's connect errors list every address tried; one reason is enough for one line.
    static func reason(_ text: String) -> String {
        let lowered = text.lowercased()
        for known in ["connection refused", "connection reset", "timed out", "timeout", "no route to host", "network is unreachable", "connection closed"]
        where lowered.contains(known) {
            return known
        }
        if lowered.contains("unknownhost") || lowered.contains("name or service not known") || lowered.contains("resolv") {
            return "the host name does not resolve"
        }
        let line = text.split(separator: "\n").first.map(String.init) ?? text
        return line.count > 160 ? String(line.prefix(160)) + "…" : line
    }
}

/// Runs `body` with a client, closing it afterwards whatever happens.
func withClient<T: Sendable>(_ options: ConnectionOptions, _ body: (StockadeClient) async throws -> T) async throws -> T {
    let client = try options.client()
    do {
        let result = try await body(client)
        await client.close()
        return result
    } catch {
        await client.close()
        throw CLIError.from(error, server: options.serverURL)
    }
}

/// Writes `text` and a newline to stdout.
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// Writes one line to stderr.
func warn(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Prints the service's JSON answer as it came, keys sorted.
func printJSON(_ data: Data) throws {
    say(try JSONValue.parse(data).rendered())
}

func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws -> T {
    do {
        return try JSONDecoder().decode(type, from: data)
    } catch {
        throw CLIError.failed("unreadable answer from the server: \(error)")
    }
}
