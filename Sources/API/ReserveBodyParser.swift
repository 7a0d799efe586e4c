/// A fast parser for the common shape of a reserve body: one object with the known keys, plain
/// strings (no escapes), integer numbers and booleans, each key at most once.
///
/// It returns nil for anything else (escapes, unknown keys, nulls, floats, duplicates, malformed
/// input), and the caller falls back to `JSONDecoder`, which gives the exact semantics and the
/// error messages. So this parser only has to be right when it succeeds; a test checks that it
/// then agrees with `JSONDecoder`.
enum ReserveBodyParser {
    static func parse(_ bytes: UnsafeRawBufferPointer) -> ReserveBody? {
        var cursor = Cursor(bytes: bytes)
        var reservationId: String?
        var orderId: String?
        var region: String?
        var lines: [ReserveBody.Line]?
        var ttlSeconds: Int64?
        var allowSplit: Bool?
        guard cursor.consume(UInt8(ascii: "{")) else { return nil }
        if !cursor.consume(UInt8(ascii: "}")) {
            repeat {
                guard let key = cursor.string(), cursor.consume(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "reservationId":
                    guard reservationId == nil, let value = cursor.string() else { return nil }
                    reservationId = value
                case "orderId":
                    guard orderId == nil, let value = cursor.string() else { return nil }
                    orderId = value
                case "region":
                    guard region == nil, let value = cursor.string() else { return nil }
                    region = value
                case "ttlSeconds":
                    guard ttlSeconds == nil, let value = cursor.integer() else { return nil }
                    ttlSeconds = value
                case "allowSplit":
                    guard allowSplit == nil, let value = cursor.boolean() else { return nil }
                    allowSplit = value
                case "lines":
                    guard lines == nil, let value = parseLines(&cursor) else { return nil }
                    lines = value
                default:
                    return nil
                }
            } while cursor.consume(UInt8(ascii: ","))
            guard cursor.consume(UInt8(ascii: "}")) else { return nil }
        }
        guard cursor.atEnd, let reservationId, let orderId, let region, let lines else { return nil }
        return ReserveBody(
            reservationId: reservationId, orderId: orderId, region: region, lines: lines, ttlSeconds: ttlSeconds,
            allowSplit: allowSplit)
    }

    static func parseLines(_ cursor: inout Cursor) -> [ReserveBody.Line]? {
        guard cursor.consume(UInt8(ascii: "[")) else { return nil }
        var lines: [ReserveBody.Line] = []
        if cursor.consume(UInt8(ascii: "]")) { return lines }
        repeat {
            guard cursor.consume(UInt8(ascii: "{")) else { return nil }
            var sku: String?
            var quantity: Int64?
            repeat {
                guard let key = cursor.string(), cursor.consume(UInt8(ascii: ":")) else { return nil }
                switch key {
                case "sku":
                    guard sku == nil, let value = cursor.string() else { return nil }
                    sku = value
                case "quantity":
                    guard quantity == nil, let value = cursor.integer() else { return nil }
                    quantity = value
                default:
                    return nil
                }
            } while cursor.consume(UInt8(ascii: ","))
            guard cursor.consume(UInt8(ascii: "}")), let sku, let quantity else { return nil }
            lines.append(ReserveBody.Line(sku: sku, quantity: quantity))
        } while cursor.consume(UInt8(ascii: ","))
        guard cursor.consume(UInt8(ascii: "]")) else { return nil }
        return lines
    }

    struct Cursor {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        var atEnd: Bool {
            mutating get {
                skipWhitespace()
                return position == bytes.count
            }
        }

        mutating func consume(_ byte: UInt8) -> Bool {
            skipWhitespace()
            guard position < bytes.count, bytes[position] == byte else { return false }
            position += 1
            return true
        }

        /// A string without escapes or control characters; nil otherwise.
        mutating func string() -> String? {
            guard consume(UInt8(ascii: "\"")) else { return nil }
            let start = position
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    // As typed UInt8 storage, so String takes its contiguous UTF-8 path (a raw
                    // buffer went through the generic, element-by-element one).
                    let value = String(
                        validating: UnsafeRawBufferPointer(rebasing: bytes[start..<position]).assumingMemoryBound(to: UInt8.self),
                        as: UTF8.self)
                    position += 1
                    return value
                }
                if byte == UInt8(ascii: "\\") || byte < 0x20 { return nil }
                position += 1
            }
            return nil
        }

        /// An integer without fraction or exponent that fits Int64; nil otherwise.
        mutating func integer() -> Int64? {
            skipWhitespace()
            var negative = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
                negative = true
                position += 1
            }
            let start = position
            var value: Int64 = 0
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                let digit = Int64(bytes[position] - UInt8(ascii: "0"))
                let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (next, overflow2) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
                if overflow1 || overflow2 { return nil }
                value = next
                position += 1
            }
            let digits = position - start
            // JSON forbids leading zeros; a fraction or exponent is left to the full decoder.
            if digits == 0 || (digits > 1 && bytes[start] == UInt8(ascii: "0")) { return nil }
            if position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"): return nil
                default: break
                }
            }
            return value
        }

        mutating func boolean() -> Bool? {
            skipWhitespace()
            let remaining = bytes.count - position
            if remaining >= 4, bytes[position] == UInt8(ascii: "t"), bytes[position + 1] == UInt8(ascii: "r"),
                bytes[position + 2] == UInt8(ascii: "u"), bytes[position + 3] == UInt8(ascii: "e")
            {
                position += 4
                return true
            }
            if remaining >= 5, bytes[position] == UInt8(ascii: "f"), bytes[position + 1] == UInt8(ascii: "a"),
                bytes[position + 2] == UInt8(ascii: "l"), bytes[position + 3] == UInt8(ascii: "s"),
                bytes[position + 4] == UInt8(ascii: "e")
            {
                position += 5
                return false
            }
            return nil
        }
    }
}
