import NIOCore

/// A minimal JSON writer for the hot responses (reservations and errors), which Foundation's
/// `JSONEncoder` makes a large share of request cost. Keys are written in sorted order, matching
/// `JSON.encoder`'s `.sortedKeys`, so both paths produce the same bytes.
struct JSONWriter {
    var buffer: ByteBuffer
    private var needsComma = false

    init(capacity: Int = 512) {
        buffer = ByteBuffer()
        buffer.reserveCapacity(capacity)
    }

    mutating func beginObject() {
        separator()
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma = false
    }

    mutating func endObject() {
        buffer.writeInteger(UInt8(ascii: "}"))
        needsComma = true
    }

    mutating func beginArray(_ key: String) {
        self.key(key)
        buffer.writeInteger(UInt8(ascii: "["))
        needsComma = false
    }

    mutating func endArray() {
        buffer.writeInteger(UInt8(ascii: "]"))
        needsComma = true
    }

    mutating func field(_ key: String, _ value: String) {
        self.key(key)
        string(value)
        needsComma = true
    }

    mutating func field(_ key: String, _ value: some BinaryInteger) {
        self.key(key)
        buffer.writeString(String(value))
        needsComma = true
    }

    mutating func separator() {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
    }

    mutating func string(_ value: String) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var plain = true
        for byte in value.utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
            plain = false
            break
        }
        if plain {
            buffer.writeString(value)
        } else {
            for byte in value.utf8 {
                switch byte {
                case UInt8(ascii: "\""): buffer.writeString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeString("\\\\")
                case UInt8(ascii: "\n"): buffer.writeString("\\n")
                case UInt8(ascii: "\r"): buffer.writeString("\\r")
                case UInt8(ascii: "\t"): buffer.writeString("\\t")
                case 0..<0x20:
                    let hex = Array("0123456789abcdef".utf8)
                    buffer.writeString("\\u00")
                    buffer.writeInteger(hex[Int(byte >> 4)])
                    buffer.writeInteger(hex[Int(byte & 0xF)])
                default: buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}

extension ReservationPayload {
    /// Writes the same JSON as `JSONEncoder` with sorted keys.
    func write(into writer: inout JSONWriter) {
        writer.beginObject()
        writer.beginArray("allocations")
        for allocation in allocations {
            writer.beginObject()
            writer.field("quantity", allocation.quantity)
            writer.field("sku", allocation.sku)
            writer.field("warehouse", allocation.warehouse)
            writer.endObject()
        }
        writer.endArray()
        writer.field("createdAt", createdAt)
        writer.field("expiresAt", expiresAt)
        if let finishedAt { writer.field("finishedAt", finishedAt) }
        writer.beginArray("lines")
        for line in lines {
            writer.beginObject()
            writer.field("quantity", line.quantity)
            writer.field("sku", line.sku)
            writer.endObject()
        }
        writer.endArray()
        writer.field("orderId", orderId)
        writer.field("path", path)
        writer.field("region", region)
        writer.field("reservationId", reservationId)
        writer.field("status", status)
        writer.field("token", token)
        writer.endObject()
    }
}

extension HoldsPagePayload {
    /// Writes the page with the same writer as single reservations, so both read alike.
    func write(into writer: inout JSONWriter) {
        writer.beginObject()
        writer.beginArray("holds")
        for hold in holds { hold.write(into: &writer) }
        writer.endArray()
        if let nextCursor { writer.field("nextCursor", nextCursor) }
        writer.endObject()
    }
}

extension ErrorBody {
    /// Writes the same JSON as `JSONEncoder` with sorted keys.
    func write(into writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("error")
        writer.beginNestedObject()
        if let available = error.available { writer.field("available", available) }
        writer.field("code", error.code)
        writer.field("message", error.message)
        if let requested = error.requested { writer.field("requested", requested) }
        if let sku = error.sku { writer.field("sku", sku) }
        writer.endObject()
        writer.endObject()
    }
}

extension JSONWriter {
    /// Writes `"key":`; the value that follows is written without a leading comma.
    mutating func key(_ key: String) {
        separator()
        string(key)
        buffer.writeInteger(UInt8(ascii: ":"))
        needsComma = false
    }

    mutating func beginNestedObject() {
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma = false
    }
}
