import Ledger
import NIOCore
import RESP
import StockadeCore

/// The HTTP API's answers, said in RESP. A JSON object becomes a map (a flat key/value array in
/// RESP2), an array an array, a string a bulk string, an integer an integer, a fraction a double,
/// true/false a boolean, null a null. A refusal becomes an error whose first word is its code in
/// upper case, then the detail as key=value words, then the message.
enum RESPReply {
    static func from(_ answer: APIAnswer) -> RESPValue {
        let value = answer.body.withUnsafeReadableBytes { bytes -> RESPValue? in
            var parser = JSONToRESP(bytes: bytes)
            return parser.document()
        }
        guard let value else { return error(StockadeError(.internalError, "the answer was not JSON")) }
        guard answer.status.code >= 400 else { return value }
        return refusal(value) ?? error(StockadeError(.internalError, "status \(answer.status.code)"))
    }

    /// A reservation outcome: the reservation written straight into RESP by the payload that
    /// writes its JSON (the reserve path's answer, so it skips the JSON), or the refusal.
    static func from(_ outcome: Outcome) -> RESPValue {
        switch outcome {
        case .reservation(let hold, _):
            var writer = RESPTreeWriter()
            ReservationPayload(hold).write(into: &writer)
            return writer.value ?? error(StockadeError(.internalError, "empty reservation"))
        case .rejected(let refusal, let detail):
            return error(refusal, sku: detail?.sku.rawValue, requested: detail?.requested, available: detail?.available)
        default:
            let rendered = ReserveEndpoint.rendered(outcome, createdStatus: .created)
            return from(APIAnswer(status: rendered.status, body: rendered.body))
        }
    }

    /// Writes a reservation's reply straight into `buffer`: the bytes `from(.reservation(hold, …))`
    /// encodes to, without building the value (this is every granted reserve's reply).
    static func write(_ hold: Hold, version: RESPVersion, into buffer: inout ByteBuffer) {
        let payload = ReservationPayload(hold)
        var counter = RESPCountingWriter()
        payload.write(into: &counter)
        var writer = RESPByteWriter(buffer: buffer, version: version, counts: counter.counts)
        buffer = ByteBuffer()  // one owner while writing, so the buffer is not copied
        payload.write(into: &writer)
        buffer = writer.buffer
    }

    static func error(_ error: StockadeError, sku: String? = nil, requested: Int64? = nil, available: Int64? = nil) -> RESPValue {
        var words = [error.code.rawValue.uppercased()]
        if let available { words.append("available=\(available)") }
        if let requested { words.append("requested=\(requested)") }
        if let sku { words.append("sku=\(sku)") }
        words.append(error.message)
        return .error(words.joined(separator: " "))
    }

    /// `{"error":{"code","message",…}}` as an error reply.
    private static func refusal(_ body: RESPValue) -> RESPValue? {
        guard case .map(let outer) = body, let inner = outer.first(where: { $0.key == .bulk("error") }),
            case .map(let fields) = inner.value
        else { return nil }
        func field(_ name: String) -> RESPValue? { fields.first(where: { $0.key == .bulk(name) })?.value }
        guard let code = field("code")?.string, let parsed = ErrorCode(rawValue: code) else { return nil }
        func integer(_ name: String) -> Int64? {
            if case .integer(let value) = field(name) { return value }
            return nil
        }
        return error(
            StockadeError(parsed, field("message")?.string ?? ""), sku: field("sku")?.string, requested: integer("requested"),
            available: integer("available"))
    }
}

/// A complete JSON parser (RFC 8259) that builds RESP values directly.
struct JSONToRESP {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    var depth = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    mutating func document() -> RESPValue? {
        guard let value = value() else { return nil }
        skipWhitespace()
        return position == bytes.count ? value : nil
    }

    mutating func skipWhitespace() {
        while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard bytes.count - position >= count else { return false }
        for index in 0..<count where bytes[position + index] != word.utf8Start[index] { return false }
        position += count
        return true
    }

    mutating func value() -> RESPValue? {
        skipWhitespace()
        guard position < bytes.count, depth < 64 else { return nil }
        switch bytes[position] {
        case UInt8(ascii: "{"):
            position += 1
            depth += 1
            defer { depth -= 1 }
            var pairs: [RESPPair] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .map(pairs)
            }
            while true {
                skipWhitespace()
                guard let key = string() else { return nil }
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { return nil }
                position += 1
                guard let element = value() else { return nil }
                pairs.append(RESPPair(key, element))
                skipWhitespace()
                guard position < bytes.count else { return nil }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .map(pairs)
                } else {
                    return nil
                }
            }
        case UInt8(ascii: "["):
            position += 1
            depth += 1
            defer { depth -= 1 }
            var elements: [RESPValue] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                guard let element = value() else { return nil }
                elements.append(element)
                skipWhitespace()
                guard position < bytes.count else { return nil }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                } else {
                    return nil
                }
            }
        case UInt8(ascii: "\""):
            return string().map { .bulk($0) }
        case UInt8(ascii: "t"): return literal("true") ? .boolean(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .boolean(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default: return number()
        }
    }

    mutating func number() -> RESPValue? {
        let start = position
        var integral = true
        while position < bytes.count, Self.isNumberByte(bytes[position]) {
            let byte = bytes[position]
            if byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { integral = false }
            position += 1
        }
        guard position > start else { return nil }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
        if integral {
            if let value = Int64(text) { return .integer(value) }
            // Past Int64 (a fencing token may be): a big number, never a rounded double.
            if UInt64(text) != nil || text.dropFirst(text.hasPrefix("-") ? 1 : 0).allSatisfy(\.isNumber) { return .bigNumber(text) }
        }
        return Double(text).map { .double($0) }
    }

    static func isNumberByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E")
    }

    mutating func string() -> String? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
        position += 1
        var out: [UInt8] = []
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""): return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { return nil }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard literal("\\u"), let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { return nil }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: return nil
                }
            default:
                if byte < 0x20 { return nil }
                out.append(byte)
            }
        }
        return nil
    }

    mutating func hex4() -> UInt32? {
        guard bytes.count - position >= 4 else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = Character(Unicode.Scalar(bytes[position])).hexDigitValue else { return nil }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }
}
