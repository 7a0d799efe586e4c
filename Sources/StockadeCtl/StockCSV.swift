import Ledger
import StockadeCore

/// A stock file for `sku import`: a header `sku,warehouse,total`, then one row per stock row.
/// Fields may be quoted (RFC 4180: `"a,b"`, `"say ""hi"""`). The whole file is checked before
/// anything is sent, and every problem is reported with its line number.
public struct StockCSV: Sendable {
    public struct Row: Hashable, Sendable {
        public var line: Int
        public var sku: String
        public var warehouse: String
        public var total: Int64
    }
    public struct Problem: Hashable, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    public var rows: [Row] = []
    public var problems: [Problem] = []

    /// Parses and checks `text`. `warehouses`, when given, are the warehouses the node knows.
    public init(_ text: String, limits: Limits, warehouses: Set<String>? = nil) {
        var seen: [String: Int] = [:]
        let lines = Self.records(text)
        guard let header = lines.first else {
            problems.append(Problem(line: 1, message: "the file is empty; it needs the header sku,warehouse,total"))
            return
        }
        if header.fields.map({ $0.trimmingSpaces.lowercased() }) != ["sku", "warehouse", "total"] {
            problems.append(Problem(line: header.line, message: "the header must be sku,warehouse,total"))
            return
        }
        for record in lines.dropFirst() {
            if let problem = record.problem {
                problems.append(Problem(line: record.line, message: problem))
                continue
            }
            let fields = record.fields
            if fields.count == 1 && fields[0].trimmingSpaces.isEmpty { continue }  // a blank line
            guard fields.count == 3 else {
                problems.append(Problem(line: record.line, message: "expected 3 fields (sku,warehouse,total), found \(fields.count)"))
                continue
            }
            let sku = fields[0]
            let warehouse = fields[1]
            var rowProblems: [String] = []
            if let error = Validation.identifier(sku, field: "sku", limits: limits) { rowProblems.append(error.message) }
            if let error = Validation.identifier(warehouse, field: "warehouse", limits: limits) { rowProblems.append(error.message) }
            if let warehouses, !warehouse.isEmpty, !warehouses.contains(warehouse) {
                rowProblems.append("unknown warehouse \(warehouse)")
            }
            let total = Int64(fields[2].trimmingSpaces)
            if let total {
                if let error = Validation.stockTotal(total, limits: limits) { rowProblems.append(error.message) }
            } else {
                rowProblems.append("total must be a whole number, not \(fields[2])")
            }
            let key = sku + "\u{0}" + warehouse
            if let first = seen[key] {
                rowProblems.append("\(sku) at \(warehouse) is already set on line \(first)")
            } else {
                seen[key] = record.line
            }
            if rowProblems.isEmpty, let total {
                rows.append(Row(line: record.line, sku: sku, warehouse: warehouse, total: total))
            } else {
                problems += rowProblems.map { Problem(line: record.line, message: $0) }
            }
        }
        if rows.count + problems.count > limits.importRowsMax {
            problems.append(Problem(line: lines.last?.line ?? 1, message: "more than \(limits.importRowsMax) rows; split the file"))
        }
        if rows.isEmpty && problems.isEmpty {
            problems.append(Problem(line: 2, message: "no rows after the header"))
        }
    }

    struct Record {
        var line: Int
        var fields: [String]
        var problem: String?
    }

    /// Splits `text` into records of fields; a quoted field may span lines.
    static func records(_ text: String) -> [Record] {
        var records: [Record] = []
        var fields: [String] = []
        var field = ""
        var quoted = false
        var wasQuoted = false
        var problem: String?
        var line = 1
        var start = 1
        var characters = Array(text.replacingOccurrences(of: "\r\n", with: "\n"))
        if characters.first == "\u{FEFF}" { characters.removeFirst() }  // a byte-order mark
        var index = 0
        func endRecord() {
            fields.append(field)
            records.append(Record(line: start, fields: fields, problem: problem))
            fields = []
            field = ""
            wasQuoted = false
            problem = nil
        }
        while index < characters.count {
            let character = characters[index]
            if quoted {
                if character == "\"" {
                    if index + 1 < characters.count && characters[index + 1] == "\"" {
                        field.append("\"")
                        index += 1
                    } else {
                        quoted = false
                    }
                } else {
                    if character == "\n" { line += 1 }
                    field.append(character)
                }
            } else {
                switch character {
                case "\"":
                    if field.isEmpty && !wasQuoted {
                        quoted = true
                        wasQuoted = true
                    } else {
                        problem = problem ?? "a quote inside an unquoted field"
                        field.append(character)
                    }
                case ",":
                    fields.append(field)
                    field = ""
                    wasQuoted = false
                case "\n":
                    endRecord()
                    line += 1
                    start = line
                default:
                    if wasQuoted && character != " " { problem = problem ?? "text after a closing quote" }
                    field.append(character)
                }
            }
            index += 1
        }
        if quoted { problem = problem ?? "a quoted field is not closed" }
        if !field.isEmpty || !fields.isEmpty || quoted { endRecord() }
        return records
    }
}
