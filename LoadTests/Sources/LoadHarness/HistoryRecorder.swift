import Foundation
import StockadeTesting

/// Every answer the harness got about each reservation, as `HistoryAnswer`s: kept for the
/// verdict's per-reservation check (`HistoryCheck`, the simulator's checker), and written to a
/// file as JSON lines when one is named, so `stockade-load check-history` can check it again.
public final class HistoryRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var check = HistoryCheck()
    private var problems: [String] = []
    private var nextCall = 0
    private let file: FileHandle?
    private var buffer = Data()

    /// `path` nil: kept in memory only.
    public init(path: String?) throws {
        if let path {
            guard FileManager.default.createFile(atPath: path, contents: nil) else { throw LoadError("cannot create \(path)") }
            file = FileHandle(forWritingAtPath: path)
        } else {
            file = nil
        }
    }

    /// Records one answer: the HTTP status and body (a RESP answer in the HTTP shape), or status
    /// 0 when none came back.
    func record(node: String, operation: HistoryAnswer.Operation, id: String, lines: [String]?, status: Int, body: [UInt8]) {
        let json = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:]
        let code: String? =
            status == 0 ? "transport_error" : (json["error"] as? [String: Any]).map { $0["code"] as? String ?? "http_\(status)" }
        let hold = (200..<300).contains(status) ? HoldView(json: json) : nil
        lock.withLock {
            nextCall += 1
            let answer = HistoryAnswer(
                call: nextCall, node: node, operation: operation, reservationId: id, lines: lines, hold: hold,
                created: status == 201, code: code)
            if let problem = check.take(answer) { problems.append(problem) }
            if file != nil, var line = try? JSONEncoder().encode(answer) {
                line.append(0x0A)
                buffer.append(line)
                if buffer.count >= 1 << 16 { flushLocked() }
            }
        }
    }

    private func flushLocked() {
        guard let file, !buffer.isEmpty else { return }
        file.write(buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes what is buffered and closes the file.
    public func close() {
        lock.withLock {
            flushLocked()
            try? file?.close()
        }
    }

    /// The histories so far, and the violations single answers showed.
    public var taken: (check: HistoryCheck, problems: [String]) { lock.withLock { (check, problems) } }
}
