import NIOCore

/// A minimal JSON writer for the hot responses (reservations and errors), which Foundation's
/// `JSONEncoder` makes a large share of request cost. Keys are written in sorted order, matching
/// `JSON.encoder`'s `.sortedKeys`, so both paths produce the same bytes.
/// Writes a payload in some encoding: objects of named fields, arrays, strings and integers.
/// A payload described once through it (`ReservationPayload.write(into:)`) reads the same in JSON
/// (`JSONWriter`) and in RESP (`RESPTreeWriter`).
protocol PayloadWriter {
    mutating func beginObject()
    mutating func endObject()
    mutating func beginArray(_ key: StaticString)
    mutating func endArray()
    mutating func field(_ key: StaticString, _ value: String)
    mutating func field(_ key: StaticString, _ value: Int64)
    mutating func field(_ key: StaticString, _ value: UInt64)
}

struct JSONWriter: PayloadWriter {
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

    mutating func beginArray(_ key: StaticString) {
        self.key(key)
        buffer.writeInteger(UInt8(ascii: "["))
        needsComma = false
    }

    mutating func endArray() {
        buffer.writeInteger(UInt8(ascii: "]"))
        needsComma = true
    }

    mutating func field(_ key: StaticString, _ value: String) {
        self.key(key)
        string(value)
        needsComma = true
    }

    mutating func field(_ key: StaticString, _ value: Int64) {
        self.key(key)
        if value < 0 { buffer.writeInteger(UInt8(ascii: "-")) }
        decimal(value.magnitude)
        needsComma = true
    }

    mutating func field(_ key: StaticString, _ value: UInt64) {
        self.key(key)
        decimal(value)
        needsComma = true
    }

    mutating func separator() {
        if needsComma { buffer.writeInteger(UInt8(ascii: ",")) }
    }

    /// Writes `"key":`; the value that follows is written without a leading comma. Keys are the
    /// API's own field names, so they need no escaping.
    mutating func key(_ key: StaticString) {
        let comma = needsComma
        let count = key.utf8CodeUnitCount
        // One write for `,"key":` (each small ByteBuffer write checks capacity and uniqueness).
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count + 4) { out in
            var at = 0
            if comma {
                out[0] = UInt8(ascii: ",")
                at = 1
            }
            out[at] = UInt8(ascii: "\"")
            UnsafeMutableRawBufferPointer(rebasing: out[(at + 1)...]).copyMemory(
                from: UnsafeRawBufferPointer(start: key.utf8Start, count: count))
            out[at + 1 + count] = UInt8(ascii: "\"")
            out[at + 2 + count] = UInt8(ascii: ":")
            return at + count + 3
        }
        needsComma = false
    }

    mutating func beginNestedObject() {
        buffer.writeInteger(UInt8(ascii: "{"))
        needsComma = false
    }

    /// Writes the digits of `value` straight into the buffer (no intermediate String).
    mutating func decimal(_ value: UInt64) {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: digits) { out in
            var remaining = value
            for position in stride(from: digits - 1, through: 0, by: -1) {
                out[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: remaining % 10)
                remaining /= 10
            }
            return digits
        }
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
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case 0..<0x20:
                    let hex: StaticString = "0123456789abcdef"
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hex.utf8Start[Int(byte >> 4)])
                    buffer.writeInteger(hex.utf8Start[Int(byte & 0xF)])
                default: buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}

extension ReservationPayload {
    /// Writes the same JSON as `JSONEncoder` with sorted keys, straight from the hold (or the
    /// same fields in RESP).
    func write<Writer: PayloadWriter>(into writer: inout Writer) {
        writer.beginObject()
        writer.beginArray("allocations")
        for allocation in hold.allocations {
            writer.beginObject()
            writer.field("quantity", allocation.quantity)
            writer.field("sku", allocation.sku.rawValue)
            writer.field("warehouse", allocation.warehouse.rawValue)
            writer.endObject()
        }
        writer.endArray()
        if !conflicts.isEmpty {
            writer.beginArray("conflicts")
            for conflict in conflicts {
                writer.beginObject()
                writer.field("atIndex", conflict.index)
                writer.field("message", conflict.reason.message)
                writer.field("path", conflict.replayed.path.name)
                writer.field("reason", conflict.reason.name)
                writer.field("status", conflict.replayed.status.name)
                writer.field("token", conflict.replayed.token.rawValue)
                writer.endObject()
            }
            writer.endArray()
        }
        writer.field("createdAt", hold.createdAtMs)
        writer.field("expiresAt", hold.expiresAtMs)
        if hold.status.isFinished { writer.field("finishedAt", hold.finishedAtMs) }
        writer.beginArray("lines")
        for line in hold.lines {
            writer.beginObject()
            writer.field("quantity", line.quantity)
            writer.field("sku", line.sku.rawValue)
            writer.endObject()
        }
        writer.endArray()
        if let local = hold.local {
            writer.field("localEpoch", local.epoch)
            writer.field("localNode", local.node)
            writer.field("localSequence", local.sequence)
            writer.field("localTerm", local.term)
        }
        writer.field("orderId", hold.orderId)
        writer.field("path", hold.path.name)
        if let reconciliation { writer.field("reconciliation", reconciliation) }
        writer.field("region", hold.region)
        writer.field("reservationId", hold.reservationId.rawValue)
        writer.field("status", hold.status.name)
        writer.field("token", hold.token.rawValue)
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
