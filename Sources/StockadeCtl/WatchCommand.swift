import ArgumentParser
import Foundation
import StockadeClient

struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "A live screen, refreshed every second: holds and rate per SKU, what expires next, leader and lag, queue depth.",
        discussion: "q quits. The terminal is restored on exit and on Ctrl-C. When stdout is not a terminal, frames are printed one after another.")
    @OptionGroup var connection: ConnectionOptions
    @Option(help: ArgumentHelp("Time between refreshes (e.g. 1s).", valueName: "duration")) var interval = "1s"
    @Option(help: "Stop after this many refreshes (0: until q).") var count = 0

    func validate() throws {
        guard let ms = Durations.parse(interval), ms >= 100, ms <= 600_000 else {
            throw ValidationError("--interval must be a duration between 100ms and 10m")
        }
        if count < 0 { throw ValidationError("--count must be 0 or more") }
    }

    func run() async throws {
        let intervalMs = Durations.parse(interval)!
        let terminal = Terminal.current
        let screen = ScreenSession(interactive: terminal.isTTY)
        screen.start()
        defer { screen.finish() }
        let client = try connection.client()
        do {
            try await loop(client, screen: screen, terminal: terminal, intervalMs: intervalMs)
            await client.close()
        } catch {
            await client.close()
            throw error
        }
    }

    private func loop(_ client: StockadeClient, screen: ScreenSession, terminal: Terminal, intervalMs: Int64) async throws {
        var previous: NodeStats?
        var frames = 0
        var failures = 0
        while !screen.quitRequested {
            let frameStart = ContinuousClock.now
            do {
                async let stats = client.stats()
                async let cluster = client.cluster()
                let current = try await stats
                let view = WatchScreen(current: current, previous: previous, cluster: try? await cluster)
                let size = screen.size
                screen.draw(view.lines(width: size.columns, height: size.rows, now: nowMs(), terminal: terminal))
                previous = current
                failures = 0
            } catch {
                failures += 1
                let failure = CLIError.from(error, server: connection.serverURL)
                // The first frame must work; later a failed refresh is shown and retried, as top does.
                if previous == nil || failures >= 30 {
                    screen.finish()
                    throw failure
                }
                if let previous {
                    let view = WatchScreen(current: previous, previous: nil, cluster: nil, error: failure.line ?? "refresh failed")
                    let size = screen.size
                    screen.draw(view.lines(width: size.columns, height: size.rows, now: nowMs(), terminal: terminal))
                }
            }
            frames += 1
            if count > 0 && frames >= count { break }
            let elapsed = ContinuousClock.now - frameStart
            screen.waitForKey(upTo: .milliseconds(intervalMs) - elapsed)
        }
    }
}

/// The terminal while `watch` runs: raw keys and the alternate screen on a terminal, restored by
/// `finish()` (also on SIGINT and SIGTERM, which end the loop instead of the process).
final class ScreenSession: @unchecked Sendable {
    let interactive: Bool
    private var original = termios()
    private var raw = false
    private var finished = false
    private let lock = NSLock()
    private var quit = false
    private var signalSources: [DispatchSourceSignal] = []

    init(interactive: Bool) { self.interactive = interactive }

    var quitRequested: Bool {
        lock.lock()
        defer { lock.unlock() }
        return quit
    }

    func requestQuit() {
        lock.lock()
        quit = true
        lock.unlock()
    }

    func start() {
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { [weak self] in self?.requestQuit() }
            source.resume()
            signalSources.append(source)
        }
        guard interactive else { return }
        if isatty(STDIN_FILENO) == 1, tcgetattr(STDIN_FILENO, &original) == 0 {
            var settings = original
            // No line buffering and no echo; signals stay on, so Ctrl-C arrives as SIGINT.
            settings.c_lflag &= ~tcflag_t(ICANON | ECHO)
            withUnsafeMutableBytes(of: &settings.c_cc) { cc in
                cc[Int(VMIN)] = 0
                cc[Int(VTIME)] = 0
            }
            raw = tcsetattr(STDIN_FILENO, TCSANOW, &settings) == 0
        }
        write("\u{1B}[?1049h\u{1B}[?25l\u{1B}[H\u{1B}[2J")
    }

    /// Restores the terminal; safe to call more than once.
    func finish() {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        finished = true
        if interactive {
            write("\u{1B}[?25h\u{1B}[?1049l")
            if raw { tcsetattr(STDIN_FILENO, TCSANOW, &original) }
        }
        for source in signalSources { source.cancel() }
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] { signal(signalNumber, SIG_DFL) }
    }

    var size: (columns: Int, rows: Int) {
        var window = winsize()
        if interactive, ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &window) == 0, window.ws_col > 0, window.ws_row > 0 {
            return (Int(window.ws_col), Int(window.ws_row))
        }
        return (120, 40)
    }

    func draw(_ lines: [String]) {
        if interactive {
            // Home, then each line cleared to its end, then the rest of the screen cleared.
            write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
        } else {
            write(lines.joined(separator: "\n") + "\n\n")
        }
    }

    /// Waits for the next refresh, returning early on `q` (or a quit signal).
    func waitForKey(upTo duration: Duration) {
        let deadline = ContinuousClock.now + duration
        while !quitRequested && ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            let ms = Int32(min(100, max(0, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, ms)
            guard ready > 0, descriptor.revents & Int16(POLLIN) != 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 64)
            let count = read(STDIN_FILENO, &buffer, buffer.count)
            if count <= 0 {
                // End of input (stdin closed): only the interval and signals end the wait now.
                if count == 0 { Thread.sleep(forTimeInterval: Double(ms) / 1000) }
                continue
            }
            if buffer[..<count].contains(where: { $0 == UInt8(ascii: "q") || $0 == UInt8(ascii: "Q") || $0 == 3 }) { requestQuit() }
        }
    }

    private func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
