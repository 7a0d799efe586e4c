/// Finds a key repeated in one JSON object (I-JSON, RFC 7493, forbids it): other tools in front of
/// the service may take the last value where a decoder takes the first, and the two would then
/// disagree about which reservation a request is. A bounded scan over the bytes; it judges only
/// keys, and leaves every other error to the decoder.
enum DuplicateKeys {
    /// The first repeated key and the path of the object it is in (`body`, `lines.0`), or nil.
    static func first(in bytes: UnsafeRawBufferPointer, depthMax: Int = 64) -> (key: String, path: String)? {
        var scanner = Scanner(bytes: bytes, depthMax: depthMax)
        return scanner.value(path: "body") ? nil : scanner.found
    }

    /// The first number that is not an integer within 64 bits (`1.5`, `1e20`), with its path. Every
    /// number in the API's request bodies is such an integer, so when decoding fails this names
    /// the culprit.
    static func firstUnfitNumber(in bytes: UnsafeRawBufferPointer, depthMax: Int = 64) -> (path: String, literal: String)? {
        var scanner = Scanner(bytes: bytes, depthMax: depthMax)
        _ = scanner.value(path: "body")
        return scanner.unfit
    }

    struct Scanner {
        let bytes: UnsafeRawBufferPointer
        let depthMax: Int
        var index = 0
        var depth = 0
        var found: (key: String, path: String)?
        var unfit: (path: String, literal: String)?

        init(bytes: UnsafeRawBufferPointer, depthMax: Int) {
            self.bytes = bytes
            self.depthMax = depthMax
        }

        mutating func skipSpace() {
            while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        }

        /// Scans one value; false stops the scan (a duplicate found, or input it does not judge).
        mutating func value(path: String) -> Bool {
            skipSpace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "{"): return object(path: path)
            case UInt8(ascii: "["): return array(path: path)
            case UInt8(ascii: "\""): return string() != nil
            default:
                // A number, true, false or null: up to the next delimiter.
                let start = index
                while index < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) {
                    index += 1
                }
                let literal = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
                if unfit == nil, let first = literal.first, first == "-" || first.isNumber, Int64(literal) == nil {
                    unfit = (path, literal)
                }
                return true
            }
        }

        mutating func object(path: String) -> Bool {
            depth += 1
            defer { depth -= 1 }
            guard depth <= depthMax else { return false }
            index += 1
            var keys: Set<String> = []
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
                index += 1
                return true
            }
            while true {
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: "\""), let key = string() else { return false }
                guard keys.insert(key).inserted else {
                    found = (key, path)
                    return false
                }
                skipSpace()
                guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { return false }
                index += 1
                guard value(path: path == "body" ? key : path + "." + key) else { return false }
                skipSpace()
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "}") else { return false }
                index += 1
                return true
            }
        }

        mutating func array(path: String) -> Bool {
            depth += 1
            defer { depth -= 1 }
            guard depth <= depthMax else { return false }
            index += 1
            skipSpace()
            if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
                index += 1
                return true
            }
            var position = 0
            while true {
                guard value(path: "\(path).\(position)") else { return false }
                position += 1
                skipSpace()
                guard index < bytes.count else { return false }
                if bytes[index] == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard bytes[index] == UInt8(ascii: "]") else { return false }
                index += 1
                return true
            }
        }

        /// A string's decoded text (escapes resolved, so `"a"` and `"\u0061"` are one key).
        mutating func string() -> String? {
            index += 1
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flush() {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
                raw.removeAll(keepingCapacity: true)
            }
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if byte == UInt8(ascii: "\"") {
                    flush()
                    return String(scalars)
                }
                guard byte == UInt8(ascii: "\\") else {
                    raw.append(byte)
                    continue
                }
                guard index < bytes.count else { return nil }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): raw.append(escape)
                case UInt8(ascii: "b"): raw.append(0x08)
                case UInt8(ascii: "f"): raw.append(0x0C)
                case UInt8(ascii: "n"): raw.append(0x0A)
                case UInt8(ascii: "r"): raw.append(0x0D)
                case UInt8(ascii: "t"): raw.append(0x09)
                case UInt8(ascii: "u"):
                    guard var unit = hex4() else { return nil }
                    if (0xD800..<0xDC00).contains(unit), index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        index += 2
                        guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                        unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                    }
                    flush()
                    scalars.append(Unicode.Scalar(unit) ?? "\u{FFFD}")
                default: return nil
                }
            }
            return nil
        }

        mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                index += 1
                let digit: UInt32
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
                default: return nil
                }
                value = value << 4 | digit
            }
            return value
        }
    }
}
