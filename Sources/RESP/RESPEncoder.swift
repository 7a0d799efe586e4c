import NIOCore

extension RESPValue {
    /// Writes this value as `version` spells it. RESP2 has no map, set, null, double, boolean,
    /// big number or verbatim string: they become a flat array, an array, `$-1`, and bulk strings
    /// or integers, as Redis itself downgrades them. Errors and simple strings must not hold CR or
    /// LF; they are replaced by spaces here rather than break the frame.
    public func write(to buffer: inout ByteBuffer, version: RESPVersion) {
        switch self {
        case .simpleString(let text):
            Self.line(UInt8(ascii: "+"), text, to: &buffer)
        case .error(let text):
            Self.line(UInt8(ascii: "-"), text, to: &buffer)
        case .integer(let value):
            buffer.writeInteger(UInt8(ascii: ":"))
            Self.decimal(value, to: &buffer)
        case .bulkString(nil), .array(nil), .null:
            if version == .resp3 {
                buffer.writeStaticString("_\r\n")
            } else if case .array(nil) = self {
                buffer.writeStaticString("*-1\r\n")
            } else {
                buffer.writeStaticString("$-1\r\n")
            }
        case .bulkString(let body?):
            buffer.writeInteger(UInt8(ascii: "$"))
            Self.decimal(Int64(body.readableBytes), to: &buffer)
            buffer.writeImmutableBuffer(body)
            buffer.writeStaticString("\r\n")
        case .array(let elements?):
            Self.aggregate(UInt8(ascii: "*"), elements, to: &buffer, version: version)
        case .set(let elements):
            Self.aggregate(version == .resp3 ? UInt8(ascii: "~") : UInt8(ascii: "*"), elements, to: &buffer, version: version)
        case .push(let elements):
            Self.aggregate(version == .resp3 ? UInt8(ascii: ">") : UInt8(ascii: "*"), elements, to: &buffer, version: version)
        case .map(let pairs):
            buffer.writeInteger(version == .resp3 ? UInt8(ascii: "%") : UInt8(ascii: "*"))
            Self.decimal(Int64(version == .resp3 ? pairs.count : pairs.count * 2), to: &buffer)
            for pair in pairs {
                pair.key.write(to: &buffer, version: version)
                pair.value.write(to: &buffer, version: version)
            }
        case .double(let value):
            let spelled =
                value.isNaN ? "nan" : value == .infinity ? "inf" : value == -.infinity ? "-inf" : "\(value)"
            if version == .resp3 {
                Self.line(UInt8(ascii: ","), spelled, to: &buffer)
            } else {
                RESPValue.bulk(spelled).write(to: &buffer, version: version)
            }
        case .boolean(let value):
            if version == .resp3 {
                buffer.writeStaticString(value ? "#t\r\n" : "#f\r\n")
            } else {
                RESPValue.integer(value ? 1 : 0).write(to: &buffer, version: version)
            }
        case .bigNumber(let digits):
            if version == .resp3 {
                Self.line(UInt8(ascii: "("), digits, to: &buffer)
            } else {
                RESPValue.bulk(digits).write(to: &buffer, version: version)
            }
        case .verbatim(let format, let text):
            if version == .resp3 {
                let body = format + ":" + text
                buffer.writeInteger(UInt8(ascii: "="))
                Self.decimal(Int64(body.utf8.count), to: &buffer)
                buffer.writeString(body)
                buffer.writeStaticString("\r\n")
            } else {
                RESPValue.bulk(text).write(to: &buffer, version: version)
            }
        }
    }

    /// This value as `version` spells it, in a new buffer.
    public func encoded(version: RESPVersion) -> ByteBuffer {
        var buffer = ByteBuffer()
        write(to: &buffer, version: version)
        return buffer
    }

    private static func aggregate(_ type: UInt8, _ elements: [RESPValue], to buffer: inout ByteBuffer, version: RESPVersion) {
        buffer.writeInteger(type)
        decimal(Int64(elements.count), to: &buffer)
        for element in elements { element.write(to: &buffer, version: version) }
    }

    private static func line(_ type: UInt8, _ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(type)
        if text.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }) {
            buffer.writeBytes(text.utf8.map { $0 == 0x0D || $0 == 0x0A ? UInt8(ascii: " ") : $0 })
        } else {
            buffer.writeString(text)
        }
        buffer.writeStaticString("\r\n")
    }

    /// `value` in decimal, then CRLF.
    private static func decimal(_ value: Int64, to buffer: inout ByteBuffer) {
        buffer.writeRESPDecimalLine(value)
    }
}

extension ByteBuffer {
    /// A RESP line of a type byte and a number (`*3`, `$11`, `:42`), then CRLF, in one write.
    @inlinable public mutating func writeRESPHeader(_ type: UInt8, _ value: Int64) {
        writeInteger(type)
        writeRESPDecimalLine(value)
    }

    /// `value` in decimal, then CRLF, in one write and without an intermediate String (this runs
    /// for every length, count and integer of every reply).
    @inlinable public mutating func writeRESPDecimalLine(_ value: Int64) {
        var digits = 1
        var rest = value.magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let sign = value < 0 ? 1 : 0
        writeWithUnsafeMutableBytes(minimumWritableBytes: sign + digits + 2) { out in
            if sign == 1 { out[0] = UInt8(ascii: "-") }
            var remaining = value.magnitude
            for position in stride(from: sign + digits - 1, through: sign, by: -1) {
                out[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: remaining % 10)
                remaining /= 10
            }
            out[sign + digits] = UInt8(ascii: "\r")
            out[sign + digits + 1] = UInt8(ascii: "\n")
            return sign + digits + 2
        }
    }

    /// A RESP bulk string of `text`'s UTF-8 bytes.
    @inlinable public mutating func writeRESPBulk(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            writeRESPHeader(UInt8(ascii: "$"), Int64(bytes.count))
            writeBytes(bytes)
        }
        writeInteger(UInt16(0x0D0A))
    }

    /// A RESP bulk string of a static string (a field name).
    @inlinable public mutating func writeRESPBulk(_ text: StaticString) {
        writeRESPHeader(UInt8(ascii: "$"), Int64(text.utf8CodeUnitCount))
        writeStaticString(text)
        writeInteger(UInt16(0x0D0A))
    }
}
