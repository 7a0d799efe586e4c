import ArgumentParser
import Foundation

/// `stockadectl`: the operator's view of a Stockade node.
public struct Stockadectl: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stockadectl",
        abstract: "Inspect and operate a Stockade node: holds, SKUs, the cluster, the decrement queue.",
        discussion: """
            Every command takes --server (resp://host:port or http://host:port; env STOCKADE_SERVER, default \
            resp://127.0.0.1:7401), --token (env STOCKADE_TOKEN; an admin token) and -o table|wide|json (env \
            STOCKADE_OUTPUT; table by default, json prints the service's own answer with sorted keys). Durations \
            are written 90s, 10m, 1h30m.

            Exit codes: 0 ok; 1 the operation failed or found problems (a refusal, audit disagreements, import \
            errors); 2 a usage error or no connection (cannot reach the server, the token was refused).

            Shell completions: stockadectl --generate-completion-script bash|zsh|fish.
            """,
        subcommands: [
            Holds.self, SKUCommand.self, ClusterCommand.self, QueueCommand.self, StatsCommand.self, AuditCommand.self, WatchCommand.self,
        ])

    public init() {}

    /// The connection flags (`--server`, `--token`, `-o`/`--output`, `--timeout`) may come before
    /// the command, as with etcdctl and kubectl; they are moved after it, where each command reads them.
    static func hoistingConnectionFlags(_ arguments: [String]) -> [String] {
        let valued: Set<String> = ["--server", "--token", "-o", "--output", "--timeout", "--ca-file"]
        var global: [String] = []
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if !rest.isEmpty || argument == "--" {
                rest += arguments[index...]
                break
            }
            let name = String(argument.prefix { $0 != "=" })
            if valued.contains(name) {
                global.append(argument)
                if !argument.contains("="), index + 1 < arguments.count {
                    global.append(arguments[index + 1])
                    index += 1
                }
            } else if argument.hasPrefix("-") {
                // Help, version and completion flags stay where they are.
                return arguments
            } else {
                rest.append(argument)
            }
            index += 1
        }
        // Commands take options after their arguments too; append the hoisted ones at the end
        // (before a `--`, after which everything is an argument).
        if let separator = rest.firstIndex(of: "--") {
            return Array(rest[..<separator]) + global + Array(rest[separator...])
        }
        return rest + global
    }

    /// Parses, runs and exits with the documented codes, every failure as one line on stderr.
    public static func run(_ arguments: [String]) async -> Never {
        do {
            var command = try parseAsRoot(hoistingConnectionFlags(arguments))
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            Foundation.exit(0)
        } catch let error as CLIError {
            if let line = error.line { warn("stockadectl: " + line) }
            Foundation.exit(error.exitCode)
        } catch {
            // Help, version and completion scripts are "errors" that print and exit 0.
            let code = exitCode(for: error)
            if code == .success {
                let message = fullMessage(for: error)
                if !message.isEmpty { say(message) }
                Foundation.exit(0)
            }
            let text = message(for: error)
            warn("stockadectl: " + (text.isEmpty ? "\(error)" : text.split(separator: "\n").first.map(String.init) ?? text))
            Foundation.exit(2)
        }
    }
}
