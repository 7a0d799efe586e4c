import Foundation

/// `report.json`: the run's figures, its verdict and how it was run.
public struct Report: Codable, Sendable {
    public var scenario: String
    public var runID: String
    public var settings: [String: String]
    public var attempts: Int
    public var granted: Int
    public var throughputPerSecond: Double
    public var latencyMs: RunSummary.Latency
    public var outcomes: [String: Int]
    public var paths: [String: Int]
    public var verdict: String
    public var violations: [String]
    public var summary: RunSummary

    public init(scenario: String, runID: String, settings: [String: String], result: RunResult) {
        self.scenario = scenario
        self.runID = runID
        self.settings = settings
        attempts = result.summary.attempts
        granted = result.summary.granted
        throughputPerSecond = result.summary.throughputPerSecond
        latencyMs = result.summary.latencyMs
        outcomes = result.summary.outcomes
        paths = result.summary.paths
        verdict = result.verdict.passed ? "pass" : "fail"
        violations = result.verdict.violations
        summary = result.summary
    }

    /// Writes `report.json` and `report.html` into `directory`.
    public func write(to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: URL(fileURLWithPath: directory + "/report.json"))
        try ReportPage(report: self).html().write(toFile: directory + "/report.html", atomically: true, encoding: .utf8)
    }

    /// The summary table printed at the end of a run.
    public func table() -> String {
        var lines: [String] = []
        lines.append("scenario     \(scenario)  (run \(runID))")
        lines.append("attempts     \(attempts)   granted \(granted)   throughput \(String(format: "%.0f", throughputPerSecond))/s")
        lines.append(
            String(
                format: "latency ms   p50 %.2f   p90 %.2f   p99 %.2f   p99.9 %.2f   max %.2f", latencyMs.p50, latencyMs.p90,
                latencyMs.p99, latencyMs.p999, latencyMs.max))
        lines.append("outcomes     " + outcomes.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: "   "))
        lines.append("paths        " + paths.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "   "))
        lines.append("follow-ups   confirmed \(summary.confirms)   released \(summary.releases)   failed \(summary.followUpFailures)   dropped arrivals \(summary.droppedBacklog)")
        lines.append("verdict      \(verdict.uppercased())" + (violations.isEmpty ? "" : " (\(violations.count) violations)"))
        for violation in violations.prefix(5) { lines.append("  - " + violation) }
        if violations.count > 5 { lines.append("  - … \(violations.count - 5) more in report.json") }
        return lines.joined(separator: "\n")
    }
}

/// A self-contained HTML page with inline SVG charts; no scripts, no external files.
struct ReportPage {
    let report: Report

    func html() -> String {
        let summary = report.summary
        let verdictColor = report.verdict == "pass" ? "#1b7f3b" : "#b3261e"
        var page = """
            <!doctype html><html><head><meta charset="utf-8"><title>Stockade load report: \(escape(report.scenario))</title>
            <style>body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1000px}
            h1{font-size:20px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}
            td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}th{text-align:left}
            .verdict{color:#fff;background:\(verdictColor);padding:4px 10px;border-radius:4px}</style></head><body>
            <h1>Stockade load report: \(escape(report.scenario)) <span class="verdict">\(report.verdict.uppercased())</span></h1>
            <p>Run \(escape(report.runID)). \(report.attempts) attempts, \(report.granted) granted, \(String(format: "%.0f", report.throughputPerSecond)) requests/s over \(String(format: "%.1f", summary.elapsedSeconds)) s.</p>
            <table><tr><th>latency</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>
            <tr><th>ms</th>\([report.latencyMs.p50, report.latencyMs.p90, report.latencyMs.p99, report.latencyMs.p999, report.latencyMs.max].map { "<td>\(String(format: "%.2f", $0))</td>" }.joined())</tr></table>

            """
        if !report.violations.isEmpty {
            page += "<h2>Violations</h2><ul>" + report.violations.prefix(50).map { "<li>\(escape($0))</li>" }.joined() + "</ul>"
        }
        page += "<h2>Throughput per second</h2>"
        page += lineChart(
            series: [
                ("offered", "#9a9a9a", summary.perSecond.map { Double($0.offered) }),
                ("completed", "#1f5fbf", summary.perSecond.map { Double($0.completed) }),
                ("granted", "#1b7f3b", summary.perSecond.map { Double($0.granted) }),
            ], unit: "/s")
        page += "<h2>p99 latency per second</h2>"
        page += lineChart(series: [("p99", "#b3261e", summary.perSecond.map(\.p99Ms))], unit: " ms")
        page += "<h2>Latency distribution</h2>"
        page += barChart(summary.distribution.map { ("p\(trim($0.percentile))", $0.ms) }, unit: " ms")
        page += "<h2>Outcomes</h2>"
        page += barChart(report.outcomes.sorted { $0.value > $1.value }.map { ($0.key, Double($0.value)) }, unit: "")
        if !report.paths.isEmpty {
            page += "<h2>Grants by path</h2>"
            page += barChart(report.paths.sorted { $0.key < $1.key }.map { ($0.key, Double($0.value)) }, unit: "")
        }
        page += "<h2>Settings</h2><table>"
        page += report.settings.sorted { $0.key < $1.key }.map { "<tr><th>\(escape($0.key))</th><td>\(escape($0.value))</td></tr>" }.joined()
        page += "</table></body></html>\n"
        return page
    }

    func trim(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }

    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    func lineChart(series: [(String, String, [Double])], unit: String) -> String {
        let width = 900.0
        let height = 220.0
        let left = 60.0
        let bottom = 24.0
        let count = max(2, series.map(\.2.count).max() ?? 2)
        let top = max(1, series.flatMap(\.2).max() ?? 1)
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for step in 0...4 {
            let value = top * Double(step) / 4
            let y = height - bottom - (height - bottom - 10) * Double(step) / 4
            svg += "<line x1=\"\(left)\" y1=\"\(y)\" x2=\"\(width)\" y2=\"\(y)\" stroke=\"#eee\"/>"
            svg += "<text x=\"\(left - 6)\" y=\"\(y + 4)\" font-size=\"11\" text-anchor=\"end\">\(String(format: "%.0f", value))\(unit)</text>"
        }
        for (position, (name, color, values)) in series.enumerated() {
            let points = values.enumerated().map { index, value in
                let x = left + (width - left - 10) * Double(index) / Double(count - 1)
                let y = height - bottom - (height - bottom - 10) * value / top
                return String(format: "%.1f,%.1f", x, y)
            }.joined(separator: " ")
            svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>"
            svg += "<text x=\"\(left + 10 + Double(position) * 110)\" y=\"\(height - 6)\" font-size=\"11\" fill=\"\(color)\">■ \(escape(name))</text>"
        }
        svg += "<text x=\"\(width - 10)\" y=\"\(height - 6)\" font-size=\"11\" text-anchor=\"end\">seconds → \(count - 1)</text>"
        return svg + "</svg>"
    }

    func barChart(_ bars: [(String, Double)], unit: String) -> String {
        let rowHeight = 22.0
        let width = 900.0
        let labelWidth = 170.0
        let top = max(1, bars.map(\.1).max() ?? 1)
        var svg = "<svg width=\"\(Int(width))\" height=\"\(Int(rowHeight * Double(bars.count) + 6))\" xmlns=\"http://www.w3.org/2000/svg\">"
        for (index, (label, value)) in bars.enumerated() {
            let y = Double(index) * rowHeight + 3
            let length = (width - labelWidth - 120) * value / top
            svg += "<text x=\"\(labelWidth - 8)\" y=\"\(y + 14)\" font-size=\"12\" text-anchor=\"end\">\(escape(label))</text>"
            svg += "<rect x=\"\(labelWidth)\" y=\"\(y)\" width=\"\(max(1, length))\" height=\"\(rowHeight - 6)\" fill=\"#1f5fbf\"/>"
            svg += "<text x=\"\(labelWidth + length + 6)\" y=\"\(y + 14)\" font-size=\"12\">\(value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value))\(unit)</text>"
        }
        return svg + "</svg>"
    }
}
