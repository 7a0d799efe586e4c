import Foundation
import StockadeClient

/// Any JSON value, kept exactly as the service sent it (integers stay integers, to 2^64), so
/// `-o json` prints the service's own answer, with sorted keys and indentation.
public indirect enum JSONValue: Hashable, Sendable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case unsigned(UInt64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(UInt64.self) {
            self = .unsigned(value)
        } else if let value = try? container.decode(Double.self) {
            self = .double(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public static func parse(_ data: Data) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: data)
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    /// Indented, keys sorted; the same value always prints the same text.
    public func rendered(indent: Int = 0) -> String {
        var out = ""
        write(into: &out, indent: indent)
        return out
    }

    private func write(into out: inout String, indent: Int) {
        let inner = String(repeating: "  ", count: indent + 1)
        let closing = String(repeating: "  ", count: indent)
        switch self {
        case .null: out += "null"
        case .bool(let flag): out += flag ? "true" : "false"
        case .integer(let number): out += String(number)
        case .unsigned(let number): out += String(number)
        case .double(let number): out += number.isFinite ? "\(number)" : "null"
        case .string(let text): Self.quote(text, into: &out)
        case .array(let elements):
            guard !elements.isEmpty else { return out += "[]" }
            out += "[\n"
            for (index, element) in elements.enumerated() {
                out += inner
                element.write(into: &out, indent: indent + 1)
                out += index < elements.count - 1 ? ",\n" : "\n"
            }
            out += closing + "]"
        case .object(let fields):
            guard !fields.isEmpty else { return out += "{}" }
            out += "{\n"
            let keys = fields.keys.sorted()
            for (index, key) in keys.enumerated() {
                out += inner
                Self.quote(key, into: &out)
                out += ": "
                fields[key]!.write(into: &out, indent: indent + 1)
                out += index < keys.count - 1 ? ",\n" : "\n"
            }
            out += closing + "}"
        }
    }

    static func quote(_ text: String, into out: inout String) {
        out += jsonQuoted(text)
    }
}
