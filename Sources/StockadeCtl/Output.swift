import ArgumentParser
import Foundation

/// How a command prints its answer.
public enum OutputFormat: String, CaseIterable, ExpressibleByArgument, Sendable {
    /// Aligned columns for people (the default).
    case table
    /// The table with more columns.
    case wide
    /// The service's own JSON answer, keys sorted and indented.
    case json
}

/// What the terminal allows: colour only when stdout is a terminal and `NO_COLOR` is unset (and
/// `TERM` is not `dumb`).
public struct Terminal: Sendable {
    public var colour: Bool
    public var isTTY: Bool

    public static var current: Terminal {
        let tty = isatty(STDOUT_FILENO) == 1
        let environment = ProcessInfo.processInfo.environment
        let noColour = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
        return Terminal(colour: tty && !noColour && environment["TERM"] != "dumb", isTTY: tty)
    }

    public static let plain = Terminal(colour: false, isTTY: false)

    public enum Colour: String, Sendable {
        case red = "31"
        case green = "32"
        case yellow = "33"
        case cyan = "36"
        case dim = "2"
        case bold = "1"
    }

    public func paint(_ text: String, _ colour: Colour) -> String {
        self.colour ? "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m" : text
    }

    /// The colour of a hold status.
    public func status(_ status: String) -> String {
        switch status {
        case "held": paint(status, .yellow)
        case "confirmed": paint(status, .green)
        case "released", "expired": paint(status, .dim)
        default: status
        }
    }
}

/// Aligned columns. Numbers (and columns marked so) are right-aligned; cells may carry colour
/// escapes, which do not count towards the width.
public struct Table: Sendable {
    public var headers: [String]
    public var rightAligned: Set<Int>
    public var rows: [[String]] = []

    public init(_ headers: [String], rightAligned: Set<Int> = []) {
        self.headers = headers
        self.rightAligned = rightAligned
    }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func rendered(terminal: Terminal = .plain) -> String {
        var widths = headers.map(Self.visibleWidth)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count {
                widths[index] = max(widths[index], Self.visibleWidth(cell))
            }
        }
        func line(_ cells: [String], header: Bool) -> String {
            var parts: [String] = []
            for (index, width) in widths.enumerated() {
                let cell = index < cells.count ? cells[index] : ""
                let padding = String(repeating: " ", count: max(0, width - Self.visibleWidth(cell)))
                let text = header ? terminal.paint(cell, .bold) : cell
                if index == widths.count - 1 && !rightAligned.contains(index) {
                    parts.append(text)
                } else {
                    parts.append(rightAligned.contains(index) ? padding + text : text + padding)
                }
            }
            return parts.joined(separator: "  ")
        }
        return ([line(headers, header: true)] + rows.map { line($0, header: false) }).joined(separator: "\n")
    }

    /// Width on screen: escapes take none; East Asian wide characters take two columns.
    static func visibleWidth(_ text: String) -> Int {
        var width = 0
        var inEscape = false
        for scalar in text.unicodeScalars {
            if inEscape {
                if scalar == "m" { inEscape = false }
                continue
            }
            if scalar == "\u{1B}" {
                inEscape = true
                continue
            }
            let value = scalar.value
            let wide = (0x1100...0x115F).contains(value) || (0x2E80...0xA4CF).contains(value) || (0xAC00...0xD7A3).contains(value)
                || (0xF900...0xFAFF).contains(value) || (0xFE30...0xFE4F).contains(value) || (0xFF00...0xFF60).contains(value)
                || (0xFFE0...0xFFE6).contains(value)
            width += wide ? 2 : 1
        }
        return width
    }
}

/// Key–value lines, the keys aligned.
public func fieldLines(_ fields: [(String, String)], terminal: Terminal = .plain) -> String {
    let width = fields.map { $0.0.count }.max() ?? 0
    return fields.map { key, value in
        terminal.paint(key + String(repeating: " ", count: width - key.count), .bold) + "  " + value
    }.joined(separator: "\n")
}

/// A count with thousands separators: `12,345`.
public func grouped(_ number: some BinaryInteger) -> String {
    let digits = String(number.magnitude)
    var out = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { out.append(",") }
        out.append(digit)
    }
    return (number < 0 ? "-" : "") + out
}

/// UTC milliseconds as `2026-11-30T00:25:53Z`.
public func timestamp(_ ms: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
}

/// The current UTC time in milliseconds on this machine (for display only: "expires in …").
public func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
