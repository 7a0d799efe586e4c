/// A scanner for the plain JSON the hot paths exchange: objects and arrays, strings without
/// escapes or control characters, integers, booleans and null. Every method returns nil (or
/// false) on anything else, so a caller can fall back to `JSONDecoder` for the exact semantics.
/// Used by the API's reserve-body parser and the load harness's reply scanner. Inlinable: it runs
/// per byte on the request path, and calls across the module boundary cost more than the work.
public struct JSONCursor {
    public let bytes: UnsafeRawBufferPointer
    public var position = 0

    @inlinable public init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    @inlinable public mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    @inlinable public var atEnd: Bool {
        mutating get {
            skipWhitespace()
            return position == bytes.count
        }
    }

    @inlinable public mutating func consume(_ byte: UInt8) -> Bool {
        skipWhitespace()
        guard position < bytes.count, bytes[position] == byte else { return false }
        position += 1
        return true
    }

    /// A string without escapes or control characters; nil otherwise.
    @inlinable public mutating func string() -> String? {
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
    @inlinable public mutating func integer() -> Int64? {
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

    @inlinable public mutating func boolean() -> Bool? {
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

    /// Skips one value of any kind (within this scanner's subset; numbers may have a fraction or
    /// exponent here), nesting at most `depth` deep. False on anything it cannot skip.
    @inlinable public mutating func skipValue(depth: Int = 32) -> Bool {
        skipWhitespace()
        guard position < bytes.count, depth > 0 else { return false }
        switch bytes[position] {
        case UInt8(ascii: "\""):
            return string() != nil
        case UInt8(ascii: "{"):
            return object { _, cursor in cursor.skipValue(depth: depth - 1) }
        case UInt8(ascii: "["):
            return array { cursor in cursor.skipValue(depth: depth - 1) }
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return boolean() != nil
        case UInt8(ascii: "n"):
            guard bytes.count - position >= 4, bytes[position + 1] == UInt8(ascii: "u"),
                bytes[position + 2] == UInt8(ascii: "l"), bytes[position + 3] == UInt8(ascii: "l")
            else { return false }
            position += 4
            return true
        default:
            let start = position
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "."),
                    UInt8(ascii: "e"), UInt8(ascii: "E"):
                    position += 1
                default:
                    return position > start
                }
            }
            return position > start
        }
    }

    /// Reads an object, handing each member's key to `member`, which reads the value and returns
    /// false to refuse it. False when the object is malformed or a member was refused.
    @inlinable public mutating func object(_ member: (String, inout JSONCursor) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        if consume(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), consume(UInt8(ascii: ":")), member(key, &self) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}"))
    }

    /// Reads an array, handing each element to `element` (false refuses it).
    @inlinable public mutating func array(_ element: (inout JSONCursor) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "[")) else { return false }
        if consume(UInt8(ascii: "]")) { return true }
        repeat {
            guard element(&self) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]"))
    }

    /// Stores `value` in an empty slot: false when the value could not be read or the slot was
    /// already set (a duplicate key), which the parsers built on this scanner refuse.
    @inlinable public static func setOnce<T>(_ slot: inout T?, _ value: T?) -> Bool {
        guard slot == nil, let value else { return false }
        slot = value
        return true
    }
}
